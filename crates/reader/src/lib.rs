//! # rafs-reader
//!
//! Owns what happens to a finished image when it is read: opening its blobs (by id, inside a
//! blob directory only, or from any source), reading a file's bytes whole, by range or as a
//! stream with digests verified on request, checking every chunk (`rafs check -D`), unpacking
//! the image back into an OCI layer tar or into a directory without ever writing outside it,
//! and exporting it as one EROFS block image the kernel mounts on its own.
//!
//! It does **not** own the formats (`rafs-format`), blob bytes (`rafs-chunker`), tar
//! conversion (`rafs-tar-build`) or merging (`rafs-merge`). It never prints and never exits.
//!
//! ```
//! use rafs_format::model::{mode, FsVersion, Image, Inode, Superblock, Tree, ROOT};
//! use rafs_reader::{unpack_to_tar, ImageReader};
//!
//! // An image with one empty directory, no blobs.
//! let mut root = Inode::new(mode::S_IFDIR | 0o755);
//! root.nlink = 3;
//! let mut tree = Tree::with_root(root.clone());
//! let d = tree.add_inode(root);
//! tree.push_child(ROOT, b"etc".to_vec(), d);
//! let image = Image {
//!     superblock: Superblock::new(FsVersion::V6),
//!     blobs: vec![],
//!     tree,
//!     prefetch: vec![],
//!     v6_chunk_table: None,
//! };
//! let reader = ImageReader::open_with(image, |_| Ok(None)).unwrap();
//! assert!(reader.lookup("/etc").is_some());
//! let (tar, report) = unpack_to_tar(&reader, Vec::new()).unwrap();
//! assert_eq!(report.entries, 2);
//! assert!(tar.len() >= 3 * 512);
//! ```
//!
//! Dependencies: `tar` frames unpacked layers (names and link targets are written byte for
//! byte by this crate), also in the reference's shape (`unpack_as_reference`); `rustix` opens
//! blobs and creates unpacked files through directory descriptors (`openat2` beneath the
//! target), makes device nodes, sets times, owners and xattrs without following symlinks, and
//! without `unsafe`; `sha2` checks a tarfs layer tar against its id; `base64`
//! writes xattr names that are not UTF-8 as `LIBARCHIVE.xattr` records; `thiserror` derives
//! the errors.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
mod export;
#[doc(hidden)]
pub mod fuzzing;
mod read;
mod reference_tar;
mod unpack;

pub use error::{Error, Result};
pub use export::{export_block, ExportReport};
pub use read::{blob_in_dir, zran_meta_in_dir, BlobSource, FileReader, ImageReader};
pub use reference_tar::{unpack_as_reference, OwnerNames};
pub use unpack::{
    unpack_to_dir, unpack_to_dir_with_limits, unpack_to_tar, unpack_to_tar_with_limits,
    UnpackLimits, UnpackReport,
};
