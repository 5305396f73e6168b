//! Typed errors. A corrupt or hostile blob is reported as a [`BlobError`] naming the structure
//! being read, its byte offset in the blob and what was wrong.

use std::fmt;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any failure of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The blob's bytes are invalid.
    #[error(transparent)]
    Blob(Box<BlobError>),
    /// Reading the input or writing the output failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The options cannot produce a valid blob.
    #[error("invalid blob options: {0}")]
    InvalidOptions(String),
    /// The input does not fit the format (too many chunks, a file too large, ...).
    #[error("cannot write blob: {0}")]
    Unrepresentable(String),
    /// A chunk dictionary's bootstrap could not be used.
    #[error("chunk dictionary: {0}")]
    Dictionary(#[from] rafs_format::Error),
    /// A pipeline thread stopped unexpectedly (a bug, not an input problem).
    #[error("blob writer pipeline failed: {0}")]
    Pipeline(String),
}

impl Error {
    /// The blob error, if this is one.
    pub fn as_blob(&self) -> Option<&BlobError> {
        match self {
            Error::Blob(b) => Some(b),
            _ => None,
        }
    }

    /// Shorthand for the kind of a blob error.
    pub fn blob_kind(&self) -> Option<&BlobErrorKind> {
        self.as_blob().map(|b| &b.kind)
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// Where and why a blob is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobError {
    /// The structure being read, e.g. `"chunk-info entry"`.
    pub structure: &'static str,
    /// Byte offset of that structure in the blob (for chunk-info entries: of the entry in the
    /// uncompressed chunk-info array).
    pub offset: u64,
    /// What was wrong.
    pub kind: BlobErrorKind,
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {}: {}",
            self.structure, self.offset, self.kind
        )
    }
}

impl std::error::Error for BlobError {}

/// What was wrong with a blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlobErrorKind {
    /// The structure extends past the end of the blob.
    #[error("truncated: needs {needed} bytes, blob has {available}")]
    Truncated {
        /// End offset the structure needs.
        needed: u64,
        /// Size of the blob.
        available: u64,
    },
    /// A magic number is wrong.
    #[error("bad magic {found:#x}")]
    BadMagic {
        /// What was found.
        found: u64,
    },
    /// A 512-byte tar header is malformed (checksum, size field, name).
    #[error("bad tar header: {0}")]
    BadTarHeader(String),
    /// A field holds an impossible value.
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// Two chunks claim overlapping bytes.
    #[error("chunk {index} overlaps chunk {other}")]
    Overlap {
        /// The later chunk.
        index: u32,
        /// The chunk it overlaps.
        other: u32,
    },
    /// An unknown compression algorithm id.
    #[error("unknown compressor {0}")]
    UnknownCompressor(u32),
    /// Compressed bytes do not decode.
    #[error("corrupt {algorithm} data: {reason}")]
    Corrupt {
        /// `lz4_block`, `zstd`.
        algorithm: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// Decompression produced more than the declared size (a decompression bomb) or less.
    #[error("decompresses to {actual} bytes, {declared} declared")]
    SizeMismatch {
        /// Declared uncompressed size.
        declared: u64,
        /// What the data actually inflates to (a lower bound when it exceeded `declared`).
        actual: u64,
    },
    /// The data's digest differs from the recorded one.
    #[error("digest mismatch: recorded {recorded}, computed {computed}")]
    DigestMismatch {
        /// Recorded digest (hex).
        recorded: String,
        /// Digest of the data read (hex).
        computed: String,
    },
    /// The data's CRC-32C differs from the recorded one.
    #[error("crc32c mismatch: recorded {recorded:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// Recorded CRC.
        recorded: u32,
        /// CRC of the data read.
        computed: u32,
    },
    /// A named entry is not in the blob.
    #[error("no entry named {0:?}")]
    EntryNotFound(String),
    /// A chunk index is not in the chunk-info array.
    #[error("chunk {index} not in the chunk-info array ({count} entries)")]
    ChunkNotFound {
        /// The index asked for.
        index: u32,
        /// Entries in the array.
        count: u32,
    },
    /// A configured limit was exceeded.
    #[error("{what} {value} exceeds the limit {limit}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The value found.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// A feature this reader does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl BlobErrorKind {
    /// A stable short name of the kind (used by test expectations).
    pub fn name(&self) -> &'static str {
        match self {
            BlobErrorKind::Truncated { .. } => "Truncated",
            BlobErrorKind::BadMagic { .. } => "BadMagic",
            BlobErrorKind::BadTarHeader(_) => "BadTarHeader",
            BlobErrorKind::InvalidField { .. } => "InvalidField",
            BlobErrorKind::Overlap { .. } => "Overlap",
            BlobErrorKind::UnknownCompressor(_) => "UnknownCompressor",
            BlobErrorKind::Corrupt { .. } => "Corrupt",
            BlobErrorKind::SizeMismatch { .. } => "SizeMismatch",
            BlobErrorKind::DigestMismatch { .. } => "DigestMismatch",
            BlobErrorKind::CrcMismatch { .. } => "CrcMismatch",
            BlobErrorKind::EntryNotFound(_) => "EntryNotFound",
            BlobErrorKind::ChunkNotFound { .. } => "ChunkNotFound",
            BlobErrorKind::LimitExceeded { .. } => "LimitExceeded",
            BlobErrorKind::Unsupported(_) => "Unsupported",
        }
    }
}

/// Builds a blob error.
/// A length from the input as a `usize` for an allocation or a slice, after the caller
/// checked it against a limit; a value no `usize` holds is a `LimitExceeded` error.
pub(crate) fn len_of(value: u64, structure: &'static str, offset: u64) -> Result<usize> {
    usize::try_from(value).map_err(|_| {
        let limit = usize::MAX as u64;
        berr(
            structure,
            offset,
            BlobErrorKind::LimitExceeded {
                what: "length",
                value,
                limit,
            },
        )
    })
}

pub(crate) fn berr(structure: &'static str, offset: u64, kind: BlobErrorKind) -> Error {
    Error::Blob(Box::new(BlobError {
        structure,
        offset,
        kind,
    }))
}

/// Shorthand for an invalid field.
pub(crate) fn invalid(
    structure: &'static str,
    offset: u64,
    field: &'static str,
    reason: impl Into<String>,
) -> Error {
    berr(
        structure,
        offset,
        BlobErrorKind::InvalidField {
            field,
            reason: reason.into(),
        },
    )
}
