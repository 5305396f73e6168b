//! The version-independent model of a RAFS image.
//!
//! One [`Image`] holds everything a v5 or v6 bootstrap stores: superblock settings, the blob
//! table, the tree of nodes (an arena: a [`Node`] per path, an [`Inode`] per file, hard links
//! being several nodes of one inode), each file's chunk references and the prefetch list.
//! Values that each format derives from the tree (directory sizes, inode numbers, v6 nids and
//! placement, v5 digests and record offsets) are not stored: the codecs compute them.

mod blob;
mod image;
mod settings;
mod tree;

pub use blob::*;
pub use image::*;
pub use settings::*;
pub use tree::*;

use serde::{Deserialize, Serialize};
