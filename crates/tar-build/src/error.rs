//! Typed errors. A failure tied to one tar entry names the entry (index, path, byte offset of
//! its header in the uncompressed tar) and what was wrong with it.

use std::fmt;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any failure of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// One tar entry is invalid or cannot be represented.
    #[error(transparent)]
    Entry(Box<EntryError>),
    /// The tar stream itself is malformed or ends early.
    #[error("layer tar at byte {offset}: {kind}")]
    Tar {
        /// Offset in the uncompressed tar where reading failed (the next header).
        offset: u64,
        /// What was wrong.
        kind: TarErrorKind,
    },
    /// The options cannot produce a valid image.
    #[error("invalid build options: {0}")]
    InvalidOptions(#[from] OptionsError),
    /// Applying the layer onto its parent bootstrap failed.
    #[error("applying the layer onto the parent bootstrap: {0}")]
    Parent(#[from] rafs_merge::Error),
    /// An invariant of the conversion itself broke (a bug, never the input's fault).
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// Writing or laying out the data blob failed.
    #[error(transparent)]
    Blob(#[from] rafs_chunker::Error),
    /// Encoding the bootstrap failed.
    #[error(transparent)]
    Format(#[from] rafs_format::Error),
}

/// Why a set of [`BuildOptions`](crate::BuildOptions) cannot produce an image, as
/// `nydus-image create` would refuse it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// The chunk size is not a power of two from 4 KiB to 16 MiB.
    #[error("chunk size {0:#x} is not a power of two from 0x1000 to 0x1000000")]
    ChunkSize(u32),
    /// tarfs is a v6 format.
    #[error("tar-tarfs needs --fs-version 6")]
    TarfsNeedsV6,
    /// [`build_tarfs_layer`](crate::build_tarfs_layer) was given options of another
    /// conversion, which needs a blob sink.
    #[error("a tarfs build needs tar-tarfs options; other conversions write a blob")]
    NotTarfs,
    /// tarfs has no blob of its own to inline into, digest or align.
    #[error("tar-tarfs conflicts with --blob-inline-meta, --features blob-toc, --chunk-dict, --aligned-chunk and --parent-bootstrap")]
    TarfsConflict,
    /// targz-ref (zran) leaves the data in the gzip layer: it conflicts with options that
    /// store data elsewhere or name the blob.
    #[error("targz-ref conflicts with {0}")]
    ZranConflict(&'static str),
    /// `--encrypt` keeps the key in the v6 blob table, for chunks stored in the blob.
    #[error("--encrypt conflicts with {0}: the key lives in a RAFS v6 blob table, for chunks stored in the blob")]
    EncryptConflict(&'static str),
    /// targz-ref reads a gzip layer; this one is not gzip.
    #[error("targz-ref needs a gzip layer; this one is {0}")]
    ZranNotGzip(&'static str),
    /// tarfs stores the tar's bytes as they are.
    #[error("tar-tarfs stores data as is: compressor none, digester sha256")]
    TarfsData,
    /// `--blob-id` is not a blob id ([`rafs_format::rules::check_blob_id`]).
    #[error("blob id {id:?}: {reason}")]
    BlobId {
        /// The id given.
        id: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// `--batch-size` is for v6 tar-rafs, a power of two from 4 KiB to the chunk size.
    #[error("batch size {0:#x}: v6 tar-rafs only, a power of two from 0x1000 to the chunk size")]
    BatchSize(u32),
    /// The parent bootstrap was not made with the build's options.
    #[error("parent bootstrap: {field} is {parent}, the build's {build}")]
    Parent {
        /// What differs: `"fs version"`, `"compressor"`, `"digester"`, `"chunk size"`,
        /// `"type"`.
        field: &'static str,
        /// The parent's.
        parent: String,
        /// The build's.
        build: String,
    },
    /// The chunk dictionary's chunks could not be read in the image this build writes.
    #[error("chunk dictionary: {field} is {dict}, the build's {build}")]
    ChunkDict {
        /// What differs: `"digester"`, `"chunk size"`, `"compressor (v5)"`.
        field: &'static str,
        /// The dictionary's.
        dict: String,
        /// The build's.
        build: String,
    },
    /// An inlined bootstrap describes its own layer; a parent's stack goes in a separate one.
    #[error("--parent-bootstrap needs a separate bootstrap, not --blob-inline-meta")]
    ParentInline,
    /// More worker threads than a writer starts.
    #[error("{given} threads; at most {max}")]
    Threads {
        /// Threads asked for.
        given: usize,
        /// The most allowed.
        max: usize,
    },
    /// Prefetch patterns name absolute paths.
    #[error("prefetch patterns must be absolute paths")]
    RelativePrefetch,
    /// More prefetch patterns than the budget allows.
    #[error("{given} prefetch patterns; at most {max} (max_prefetch_patterns)")]
    PrefetchPatterns {
        /// Patterns given.
        given: usize,
        /// The most allowed.
        max: usize,
    },
}

/// What was wrong with the tar stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TarErrorKind {
    /// A header's checksum does not match (also what garbage after the end looks like).
    #[error("header checksum mismatch")]
    BadChecksum,
    /// The stream ends inside a header or an entry's data.
    #[error("stream ends early: {0}")]
    Truncated(String),
    /// The compressed (gzip/zstd) stream is corrupt.
    #[error("corrupt {algorithm} stream: {reason}")]
    Decompression {
        /// `gzip` or `zstd`.
        algorithm: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// Anything else the tar parser refused.
    #[error("{0}")]
    Malformed(String),
}

/// Where and why one entry was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryError {
    /// 0-based index of the entry in the stream (extension headers not counted).
    pub index: u64,
    /// The entry's path as written in the tar, control characters and bytes that are not
    /// UTF-8 escaped as `\\xNN`.
    pub path: String,
    /// Offset of the entry's header in the uncompressed tar.
    pub offset: u64,
    /// What was wrong.
    pub kind: EntryErrorKind,
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tar entry {} {:?} at byte {}: {}",
            self.index, self.path, self.offset, self.kind
        )
    }
}

impl std::error::Error for EntryError {}

/// What was wrong with an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryErrorKind {
    /// The path has a `..` component.
    #[error("path has a '..' component")]
    DotDot,
    /// The path is empty.
    #[error("empty path")]
    EmptyPath,
    /// A path component is longer than 255 bytes.
    #[error("name of {0} bytes exceeds 255")]
    NameTooLong(usize),
    /// The path has more components than a reader accepts.
    #[error("path deeper than {0} components")]
    PathTooDeep(usize),
    /// A hard link names a path no earlier entry created.
    #[error("hard link target {0:?} is not an earlier entry")]
    LinkTargetMissing(String),
    /// A hard link names itself.
    #[error("hard link names itself")]
    LinkToItself,
    /// A hard link names a directory.
    #[error("hard link target {0:?} is a directory")]
    LinkToDirectory(String),
    /// A parent path component is an existing non-directory.
    #[error("parent {0:?} is not a directory")]
    ParentNotDirectory(String),
    /// An entry type RAFS cannot hold (or tar-build does not accept).
    #[error("unsupported entry type {0:?}")]
    UnsupportedType(char),
    /// A header or PAX field is invalid.
    #[error("invalid {field}: {reason}")]
    BadField {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// An extended attribute cannot be stored.
    #[error("xattr {name:?}: {reason}")]
    BadXattr {
        /// Full name.
        name: String,
        /// Why.
        reason: String,
    },
    /// The entry's data ends before its declared size.
    #[error("data ends after {got} of {declared} bytes")]
    DataTruncated {
        /// Declared size.
        declared: u64,
        /// Bytes that were there (a lower bound).
        got: u64,
    },
    /// A PAX 1.0 sparse map is invalid.
    #[error("bad sparse map: {0}")]
    BadSparseMap(String),
    /// The entry is valid tar but RAFS cannot hold it (e.g. a sparse file in tarfs mode).
    #[error("cannot be represented: {0}")]
    Unrepresentable(String),
    /// The entry's xattrs, together, do not fit one inode of the version being written.
    #[error("{0}")]
    XattrsUnstorable(String),
    /// A layer-wide budget ([`BuildLimits`](crate::BuildLimits)) ran out at this entry.
    #[error("{limit} exceeded: {value} > {max}")]
    LimitExceeded {
        /// The limit's field name in `BuildLimits`.
        limit: &'static str,
        /// The value it would have reached.
        value: u64,
        /// The limit.
        max: u64,
    },
}

impl EntryErrorKind {
    /// A stable short name of the kind (for test expectations).
    pub fn name(&self) -> &'static str {
        match self {
            EntryErrorKind::DotDot => "DotDot",
            EntryErrorKind::EmptyPath => "EmptyPath",
            EntryErrorKind::NameTooLong(_) => "NameTooLong",
            EntryErrorKind::PathTooDeep(_) => "PathTooDeep",
            EntryErrorKind::LinkTargetMissing(_) => "LinkTargetMissing",
            EntryErrorKind::LinkToItself => "LinkToItself",
            EntryErrorKind::LinkToDirectory(_) => "LinkToDirectory",
            EntryErrorKind::ParentNotDirectory(_) => "ParentNotDirectory",
            EntryErrorKind::UnsupportedType(_) => "UnsupportedType",
            EntryErrorKind::BadField { .. } => "BadField",
            EntryErrorKind::BadXattr { .. } => "BadXattr",
            EntryErrorKind::DataTruncated { .. } => "DataTruncated",
            EntryErrorKind::BadSparseMap(_) => "BadSparseMap",
            EntryErrorKind::Unrepresentable(_) => "Unrepresentable",
            EntryErrorKind::XattrsUnstorable(_) => "XattrsUnstorable",
            EntryErrorKind::LimitExceeded { .. } => "LimitExceeded",
        }
    }
}

impl Error {
    /// The entry error, if this is one.
    pub fn as_entry(&self) -> Option<&EntryError> {
        match self {
            Error::Entry(e) => Some(e),
            _ => None,
        }
    }
}
