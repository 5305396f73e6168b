//! Raw on-disk records of RAFS v5 and v6, byte for byte as the reference writes them.
//!
//! Every struct here is plain data: explicit little-endian field types, alignment 1 (so a
//! record can be read from any offset of a memory map), and a compile-time size check. No
//! validation and no logic live here; the codecs in [`crate::v5`] and [`crate::v6`] read and
//! write these records and own every rule about their values.

// Field names are the reference's own (and the spec tables' row names), documented there
// field by field; repeating each row here would only let the two drift apart.
#![allow(missing_docs)]

pub mod v5;
pub mod v6;

pub use zerocopy::byteorder::little_endian::{U16, U32, U64};

/// The 80-byte chunk record shared by v5 (after each regular file's inode) and the v6 chunk
/// table (`RafsV5ChunkInfo` in the reference).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::KnownLayout,
    zerocopy::Immutable,
    zerocopy::Unaligned,
)]
#[repr(C)]
pub struct ChunkInfoRecord {
    /// Digest of the uncompressed chunk data.
    pub block_id: [u8; 32],
    /// Index into the blob table.
    pub blob_index: U32,
    /// `BlobChunkFlags` bits.
    pub flags: U32,
    /// Bytes in the data blob.
    pub compressed_size: U32,
    /// Bytes of the chunk's data.
    pub uncompressed_size: U32,
    /// Offset in the (compressed) data blob.
    pub compressed_offset: U64,
    /// Offset in the uncompressed blob (blob cache).
    pub uncompressed_offset: U64,
    /// Offset of the chunk within its file.
    pub file_offset: U64,
    /// Chunk index within its blob.
    pub index: U32,
    /// CRC-32C of the uncompressed data when flag `HAS_CRC32` is set.
    pub crc32: U32,
}

const _: () = assert!(core::mem::size_of::<ChunkInfoRecord>() == 80);
