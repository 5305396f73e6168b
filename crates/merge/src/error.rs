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
    /// Encoding the result failed.
    #[error(transparent)]
    Format(#[from] rafs_format::Error),
}
