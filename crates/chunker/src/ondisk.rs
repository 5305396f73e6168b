//! Raw on-disk records of a data blob, byte for byte as the reference writes them: the 4096-byte
//! chunk-info header, the v1/v2 chunk-info entries and the 128-byte ToC entry.
//!
//! Plain data only: explicit little-endian fields, alignment 1, compile-time size checks. The
//! rules about their values live in [`crate::meta`] and [`crate::toc`].

// Field names are the reference's own; blob.md §7-§8 documents them row by row.
#![allow(missing_docs)]

pub use zerocopy::byteorder::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Magic number at both ends of [`CiHeaderRecord`].
pub const CI_MAGIC: u32 = 0xb10b_b10b;
/// Size of [`CiHeaderRecord`].
pub const CI_HEADER_SIZE: usize = 4096;
/// Size of a v1 chunk-info entry.
pub const CI_V1_SIZE: usize = 16;
/// Size of a v2 chunk-info entry.
pub const CI_V2_SIZE: usize = 24;
/// Size of a batch context record following the v2 entries.
pub const BATCH_CONTEXT_SIZE: usize = 40;
/// Size of a [`TocEntryRecord`].
pub const TOC_ENTRY_SIZE: usize = 128;
/// Size of the tar header that follows each section of a packed blob.
pub const TAR_HEADER_SIZE: usize = 512;

/// `BlobCompressionContextHeader`: the 4096-byte header after the chunk-info array.
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CiHeaderRecord {
    pub s_magic: U32,
    pub s_features: U32,
    pub s_ci_compressor: U32,
    pub s_ci_entries: U32,
    pub s_ci_offset: U64,
    pub s_ci_compressed_size: U64,
    pub s_ci_uncompressed_size: U64,
    pub s_ci_zran_offset: U64,
    pub s_ci_zran_size: U64,
    pub s_ci_zran_count: U32,
    pub s_reserved: [u8; 4032],
    pub s_magic2: U32,
}

const _: () = assert!(core::mem::size_of::<CiHeaderRecord>() == CI_HEADER_SIZE);

/// A v1 chunk-info entry (16 bytes).
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CiEntryV1Record {
    pub uncomp_info: U64,
    pub comp_info: U64,
}

const _: () = assert!(core::mem::size_of::<CiEntryV1Record>() == CI_V1_SIZE);

/// A v2 chunk-info entry (24 bytes).
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CiEntryV2Record {
    pub uncomp_info: U64,
    pub comp_info: U64,
    pub data: U64,
}

const _: () = assert!(core::mem::size_of::<CiEntryV2Record>() == CI_V2_SIZE);

/// A batch context (40 bytes) in the uncompressed chunk-info data.
#[derive(Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BatchContextRecord {
    pub compressed_size: U32,
    pub uncompressed_batch_size: U32,
    pub reserved: [u8; 32],
}

const _: () = assert!(core::mem::size_of::<BatchContextRecord>() == BATCH_CONTEXT_SIZE);

/// A ToC entry (128 bytes).
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct TocEntryRecord {
    pub flags: U32,
    pub reserved1: U32,
    pub name: [u8; 16],
    pub uncompressed_digest: [u8; 32],
    pub compressed_offset: U64,
    pub compressed_size: U64,
    pub uncompressed_size: U64,
    pub reserved2: [u8; 48],
}

const _: () = assert!(core::mem::size_of::<TocEntryRecord>() == TOC_ENTRY_SIZE);
