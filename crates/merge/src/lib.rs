//! # rafs-merge
//!
//! Owns overlaying per-layer bootstraps into one image as overlayfs would (what
//! `nydus-image merge` and the Go converter's `Merge` do): OCI or overlayfs whiteouts and
//! opaque markers of upper layers applied, blobs in order of first use, the reference's bytes
//! for every merge it gets right.
//!
//! It does **not** own the formats (`rafs-format`), blob bytes (`rafs-chunker`), tar
//! conversion (`rafs-tar-build`), or reading, unpacking and exporting images
//! (`rafs-reader`). It never prints and never exits.
//!
//! Section references such as `rafs-v6.md §9`, `blob.md` or `build.md` are to the format
//! documents in the repository's `docs/format/`.
//!
//! Dependencies: `thiserror` derives the errors.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod implicit;
mod merge;

pub use error::{Error, Result};
pub use implicit::{implicit_dirs_as_containerd, inherit_implicit_dirs};
pub use merge::{merge, Layer, LayerBlobArgs, MergeOptions};
pub use rafs_format::model::WhiteoutSpec;
