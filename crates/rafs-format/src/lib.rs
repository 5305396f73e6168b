//! # rafs-format
//!
//! Owns the RAFS bootstrap formats: the raw on-disk records of v5 and v6 ([`ondisk`]), one
//! version-independent in-memory model of an image ([`model`]), and two codecs of that model,
//! [`v5`] and [`v6`], that decode any bootstrap the reference builder (`nydus-image`) writes and
//! encode the model back to the same bytes.
//!
//! It does **not** own blob data (chunking, compression, blob meta: `rafs-chunker`), tar
//! conversion (`rafs-tar-build`) or overlaying layers (`rafs-merge`). It never prints and
//! never exits.
//!
//! Decoding treats every input as hostile: it validates as it reads, allocates only what the
//! input's size bounds, walks trees with explicit stacks (no recursion the input controls),
//! detects directory cycles, honours [`Limits`], and reports a typed [`Error`] naming the
//! structure, the byte offset and, inside the tree, the path.
//!
//! ```
//! use rafs_format::{decode, model::{FsVersion, Image, Inode, Superblock, Tree, mode}, v6};
//!
//! // An image holding only an empty root directory.
//! let mut root = Inode::new(mode::S_IFDIR | 0o755);
//! root.nlink = 2;
//! let image = Image {
//!     superblock: Superblock::new(FsVersion::V6),
//!     blobs: vec![],
//!     tree: Tree::with_root(root),
//!     prefetch: vec![],
//!     v6_chunk_table: None,
//! };
//! let bytes = v6::encode(&image).unwrap();
//! let back = decode(&bytes).unwrap();
//! assert_eq!(back.tree.nodes.len(), 1);
//! ```
//!
//! Section references such as `rafs-v6.md §9`, `blob.md` or `build.md` are to the format
//! documents in the repository's `docs/format/`.
//!
//! Dependencies: `zerocopy` reads and writes the little-endian records without `unsafe`;
//! `thiserror` derives the error types; `bitflags` types the flag words; `memmap2` maps large
//! bootstraps instead of reading them; `sha2` and `blake3` compute v5 inode digests; `serde`
//! gives the model a stable JSON form for `rafs inspect --json`.

#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod check;
pub mod common;
pub mod digest;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod model;
pub mod ondisk;
mod read;
pub mod rules;
pub mod source;
#[cfg(test)]
mod testing;
pub mod v5;
pub mod v6;

pub use error::{DecodeError, DecodeErrorKind, Error, Result};
pub use model::Image;

/// Resource limits applied while decoding. Exceeding one is
/// [`DecodeErrorKind::LimitExceeded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most tree nodes (paths) an image may have.
    pub max_nodes: u64,
    /// Deepest directory nesting (the root is depth 0).
    pub max_depth: u32,
    /// Longest entry name in bytes.
    pub max_name_len: usize,
    /// Most xattr bytes (names and values) one inode may carry.
    pub max_xattr_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_nodes: 1 << 24,
            max_depth: 4096,
            max_name_len: 256,
            max_xattr_bytes: 1 << 20,
        }
    }
}

/// Detects the version of a bootstrap and decodes it with default [`Limits`].
pub fn decode(bytes: &[u8]) -> Result<Image> {
    decode_with_limits(bytes, &Limits::default())
}

/// Detects the version of a bootstrap (v5 first, as the reference does) and decodes it.
pub fn decode_with_limits(bytes: &[u8], limits: &Limits) -> Result<Image> {
    match detect(bytes)? {
        model::FsVersion::V5 => v5::decode_with_limits(bytes, limits),
        model::FsVersion::V6 => v6::decode_with_limits(bytes, limits),
    }
}

/// Tells whether the bytes look like a v5 or a v6 bootstrap (magic numbers only; the v5
/// decoder then checks the version field and says what is wrong with it).
pub fn detect(bytes: &[u8]) -> Result<model::FsVersion> {
    let u32_at = |off: usize| {
        bytes
            .get(off..off + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if u32_at(0) == Some(ondisk::v5::MAGIC) {
        return Ok(model::FsVersion::V5);
    }
    match u32_at(ondisk::v6::SUPERBLOCK_OFFSET) {
        Some(ondisk::v6::MAGIC) => Ok(model::FsVersion::V6),
        Some(found) => Err(error::derr(
            "superblock",
            0,
            DecodeErrorKind::BadMagic { found },
        )),
        None => Err(error::derr(
            "superblock",
            0,
            DecodeErrorKind::Truncated {
                need: (ondisk::v6::SUPERBLOCK_OFFSET + 4) as u64,
                available: bytes.len() as u64,
            },
        )),
    }
}

/// Encodes the model in the version its superblock names.
pub fn encode(image: &Image) -> Result<Vec<u8>> {
    match image.superblock.fs_version {
        model::FsVersion::V5 => v5::encode(image),
        model::FsVersion::V6 => v6::encode(image),
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses 64 hex digits.
pub fn unhex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let d = |c: u8| (c as char).to_digit(16);
        *o = u8::try_from(d(b[2 * i])? * 16 + d(b[2 * i + 1])?).ok()?;
    }
    Some(out)
}

/// Rounds `x` up to a multiple of `a` (a power of two).
pub(crate) fn align_up(x: u64, a: u64) -> u64 {
    (x + a - 1) & !(a - 1)
}
