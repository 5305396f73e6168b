//! Typed errors of reading, unpacking and exporting.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any failure of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path in the image cannot be read, unpacked or exported.
    #[error("{path}: {reason}")]
    Path {
        /// The path in the image.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// Chunk data could not be read.
    #[error("{path}: {source}")]
    Data {
        /// The file whose data failed.
        path: String,
        /// The blob reader's error.
        source: rafs_chunker::Error,
    },
    /// A blob the image needs is not available.
    #[error("blob {blob_id} not found: {reason}")]
    BlobMissing {
        /// Its id.
        blob_id: String,
        /// Where it was looked for.
        reason: String,
    },
    /// A blob file is there but is not the blob the image names (size or digest differ).
    #[error("blob {blob_id}: {reason}")]
    BlobInvalid {
        /// Its id.
        blob_id: String,
        /// What differs.
        reason: String,
    },
    /// Writing the output failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being written.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A configured limit was exceeded.
    #[error("{what} {value} exceeds the limit {limit}")]
    LimitExceeded {
        /// What was counted.
        what: &'static str,
        /// The value reached.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// Encoding the result failed.
    #[error(transparent)]
    Format(#[from] rafs_format::Error),
}

/// Maps an I/O error, unwrapping one of ours that a `Read` adapter carried through it.
pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| {
        if source.get_ref().is_some_and(|r| r.is::<Error>()) {
            if let Some(inner) = source.into_inner() {
                if let Ok(e) = inner.downcast::<Error>() {
                    return *e;
                }
            }
            return Error::Io {
                what,
                source: std::io::Error::other("unreadable data"),
            };
        }
        Error::Io { what, source }
    }
}
