//! Typed errors. Every decoding failure names the structure, the byte offset and what was
//! wrong; tree-level failures also name the path.

use std::fmt;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any failure of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input bytes are not a valid bootstrap.
    #[error(transparent)]
    Decode(Box<DecodeError>),
    /// The model cannot be written in the requested format.
    #[error("cannot encode {format}: {reason}")]
    Encode {
        /// `"v5"` or `"v6"`.
        format: &'static str,
        /// What the model holds that the format cannot store.
        reason: String,
    },
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl Error {
    /// The decoding error, if this is one.
    pub fn as_decode(&self) -> Option<&DecodeError> {
        match self {
            Error::Decode(d) => Some(d),
            _ => None,
        }
    }

    /// Shorthand for the kind of a decoding error.
    pub fn decode_kind(&self) -> Option<&DecodeErrorKind> {
        self.as_decode().map(|d| &d.kind)
    }

    pub(crate) fn encode(format: &'static str, reason: impl Into<String>) -> Self {
        Error::Encode {
            format,
            reason: reason.into(),
        }
    }
}

/// Where and why decoding failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// The structure being read, e.g. `"v6 inode"`.
    pub structure: &'static str,
    /// Byte offset of that structure (or of the offending field) in the bootstrap.
    pub offset: u64,
    /// Path of the node being decoded, when the failure is inside the tree.
    pub path: Option<String>,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.structure, self.offset)?;
        if let Some(p) = &self.path {
            write!(f, " ({p})")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for DecodeError {}

/// What was wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// A structure extends past the end of the input.
    #[error("truncated: needs {need} bytes, {available} available")]
    Truncated {
        /// Bytes the structure needs from its offset.
        need: u64,
        /// Bytes the input has from that offset.
        available: u64,
    },
    /// The input is neither v5 nor v6.
    #[error("bad magic {found:#x}")]
    BadMagic {
        /// The value found.
        found: u32,
    },
    /// Flag bits that no known version defines.
    #[error("unknown {field} bits {bits:#x}")]
    UnknownFlags {
        /// The flag field.
        field: &'static str,
        /// The unknown bits.
        bits: u64,
    },
    /// A field holds a value the format does not allow.
    #[error("invalid {field} = {value:#x}: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A range (table, record, data) falls outside the input or into another one.
    #[error("{field} range [{start:#x}, {end:#x}) is out of bounds or overlaps {other}")]
    BadRange {
        /// The range's name.
        field: &'static str,
        /// Start offset.
        start: u64,
        /// End offset.
        end: u64,
        /// What it overlaps or exceeds.
        other: &'static str,
    },
    /// A directory is reachable from itself or from two parents.
    #[error("directory cycle or hard-linked directory at inode {inode}")]
    DirectoryCycle {
        /// nid (v6) or inode index (v5).
        inode: u64,
    },
    /// A v5 inode record is referenced by no directory.
    #[error("inode index {index} is not reachable from the root")]
    Unreachable {
        /// The inode index.
        index: u64,
    },
    /// A directory entry name is empty, `.`/`..`, or contains `/` or NUL.
    #[error("invalid entry name {name:?}: {reason}")]
    InvalidName {
        /// The name, lossily decoded.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// Directory entries are not in strictly increasing byte order (or repeat a name).
    #[error("entry {name:?} is out of order or duplicated")]
    UnsortedDirectory {
        /// The name, lossily decoded.
        name: String,
    },
    /// A chunk index names a chunk the chunk table does not hold.
    #[error(
        "chunk {chunk_index} of blob {blob_index} (block {blkaddr}) is not in the chunk table"
    )]
    ChunkNotFound {
        /// Blob index.
        blob_index: u32,
        /// Chunk index within the blob.
        chunk_index: u32,
        /// Block address.
        blkaddr: u32,
    },
    /// Records that claim to be one hard-linked inode disagree.
    #[error("hard-link records of inode {ino} disagree")]
    HardLinkMismatch {
        /// The shared inode number.
        ino: u64,
    },
    /// An xattr is malformed.
    #[error("bad xattr: {reason}")]
    BadXattr {
        /// What is wrong.
        reason: &'static str,
    },
    /// A configured resource limit was exceeded.
    #[error("limit {limit} exceeded: {value} > {max}")]
    LimitExceeded {
        /// The limit's name (a field of [`crate::Limits`]).
        limit: &'static str,
        /// The value the input asks for.
        value: u64,
        /// The configured maximum.
        max: u64,
    },
}

impl DecodeErrorKind {
    /// The variant's name, e.g. `"Truncated"` (stable; test manifests use it).
    pub fn name(&self) -> &'static str {
        match self {
            DecodeErrorKind::Truncated { .. } => "Truncated",
            DecodeErrorKind::BadMagic { .. } => "BadMagic",
            DecodeErrorKind::UnknownFlags { .. } => "UnknownFlags",
            DecodeErrorKind::InvalidField { .. } => "InvalidField",
            DecodeErrorKind::BadRange { .. } => "BadRange",
            DecodeErrorKind::DirectoryCycle { .. } => "DirectoryCycle",
            DecodeErrorKind::Unreachable { .. } => "Unreachable",
            DecodeErrorKind::InvalidName { .. } => "InvalidName",
            DecodeErrorKind::UnsortedDirectory { .. } => "UnsortedDirectory",
            DecodeErrorKind::ChunkNotFound { .. } => "ChunkNotFound",
            DecodeErrorKind::HardLinkMismatch { .. } => "HardLinkMismatch",
            DecodeErrorKind::BadXattr { .. } => "BadXattr",
            DecodeErrorKind::LimitExceeded { .. } => "LimitExceeded",
        }
    }
}

/// Builds a [`DecodeError`] as an [`Error`].
pub(crate) fn derr(structure: &'static str, offset: u64, kind: DecodeErrorKind) -> Error {
    Error::Decode(Box::new(DecodeError {
        structure,
        offset,
        path: None,
        kind,
    }))
}

/// Adds a path to a decoding error that has none.
pub(crate) fn with_path(e: Error, path: impl FnOnce() -> String) -> Error {
    match e {
        Error::Decode(mut d) if d.path.is_none() => {
            d.path = Some(path());
            Error::Decode(d)
        }
        other => other,
    }
}
