//! Typed errors of merging.

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any failure of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A layer cannot be merged with the others.
    #[error("layer {layer}: {reason}")]
    Incompatible {
        /// 0-based index of the layer (lowest first).
        layer: usize,
        /// What differs or is missing.
        reason: String,
    },
    /// The merged image would be larger than a reader accepts.
    #[error("{what}: {value} exceeds the limit {limit}")]
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
