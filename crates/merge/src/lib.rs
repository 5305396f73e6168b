//! # rafs-merge
//!
//! Owns what happens to images after they are built: overlaying per-layer bootstraps into one
//! image as overlayfs would (what `nydus-image merge` and the Go converter's `Merge` do),
//! reading an image's files through its blobs, unpacking an image back into an OCI layer tar
//! or a directory, and exporting it as one EROFS block image the kernel mounts on its own.
//!
//! It does **not** own the formats (`rafs-format`), blob bytes (`rafs-chunker`) or tar
//! conversion (`rafs-tar-build`). It never prints and never exits.
//!
//! Dependencies: `tar` writes unpacked layers; `rustix` creates device nodes, sets times,
//! owners and xattrs without following symlinks, and without `unsafe`; `zerocopy` reads the
//! device slots of an encoded bootstrap; `sha2` checks a tarfs layer tar against its id; `thiserror`
//! derives the errors.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
mod export;
#[doc(hidden)]
pub mod fuzzing;
mod merge;
mod read;
mod unpack;

pub use error::{Error, Result};
pub use export::{export_block, ExportReport};
pub use merge::{merge, Layer, MergeOptions, WhiteoutSpec};
pub use read::{BlobSource, FileReader, ImageReader};
pub use unpack::{
    unpack_to_dir, unpack_to_dir_with_limits, unpack_to_tar, unpack_to_tar_with_limits,
    UnpackLimits, UnpackReport,
};
