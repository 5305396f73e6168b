//! Typed errors: each names the image part (blob digest, reference, layer) at fault.

use std::path::Path;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any failure of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a file of a layout failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A blob is missing, too large, or its bytes do not match its name.
    #[error("blob {digest}: {reason}")]
    Blob {
        /// The digest the blob was asked for by.
        digest: String,
        /// What was wrong.
        reason: String,
    },
    /// The image's JSON (index, manifest, config) is not what OCI describes.
    #[error("{what}: {reason}")]
    Json {
        /// Which document, e.g. `"manifest sha256:…"`.
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// The image asks for something this converter does not do (an unknown layer media type,
    /// a foreign layer, a missing reference).
    #[error("{what}: {reason}")]
    Unsupported {
        /// The part of the image, e.g. `"layer 2 (sha256:…)"`.
        what: String,
        /// Why it cannot be converted.
        reason: String,
    },
    /// Converting one layer failed.
    #[error("layer {index} ({digest}): {source}")]
    Layer {
        /// Position in the source manifest, from 0.
        index: usize,
        /// The source layer's digest.
        digest: String,
        /// The builder's error.
        source: rafs_tar_build::Error,
    },
    /// Merging the layers' bootstraps failed.
    #[error("merging the layers: {0}")]
    Merge(#[from] rafs_merge::Error),
    /// Encoding or decoding a bootstrap failed.
    #[error("bootstrap: {0}")]
    Format(#[from] rafs_format::Error),
    /// Opening a Nydus image's blobs for reading failed.
    #[error("reading a Nydus image: {0}")]
    Reader(#[from] rafs_reader::Error),
    /// A registry refused or failed a request (after retries where a retry could help).
    #[error("{reference}: {reason}")]
    Registry {
        /// The image, as `docker://HOST/REPO:TAG`.
        reference: String,
        /// The request and what went wrong.
        reason: String,
    },
    /// Reading a packed Nydus blob failed.
    #[error("Nydus blob: {0}")]
    NydusBlob(#[from] rafs_chunker::Error),
}

/// `map_err` for I/O on `path`.
pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(crate) fn json(what: impl Into<String>, reason: impl std::fmt::Display) -> Error {
    Error::Json {
        what: what.into(),
        reason: reason.to_string(),
    }
}

pub(crate) fn unsupported(what: impl Into<String>, reason: impl Into<String>) -> Error {
    Error::Unsupported {
        what: what.into(),
        reason: reason.into(),
    }
}
