//! RAFS v6 records: the EROFS structures nydus uses plus its extensions
//! (`docs/format/rafs-v6.md`).

use super::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Offset of the EROFS superblock.
pub const SUPERBLOCK_OFFSET: usize = 1024;
/// Offset of the RAFS extended superblock.
pub const EXT_SUPERBLOCK_OFFSET: usize = 1152;
/// Offset of the device table (`s_devt_slotoff` × 128).
pub const DEVICE_TABLE_OFFSET: usize = 1408;
/// `s_devt_slotoff` written by the reference.
pub const DEVT_SLOTOFF: u16 = 11;
/// EROFS superblock magic.
pub const MAGIC: u32 = 0xE0F5_E1E2;
/// `s_feature_compat` bit marking a RAFS v6 image.
pub const FEATURE_COMPAT_RAFS_V6: u32 = 0x4000_0000;
/// `s_feature_incompat` value: chunked files and a device table.
pub const FEATURE_INCOMPAT_VALUE: u32 = 0x0000_000C;
/// Size of one device slot.
pub const DEVICE_SLOT_SIZE: usize = 128;
/// Size of one blob table record.
pub const BLOB_RECORD_SIZE: usize = 256;
/// Size of a compact inode.
pub const INODE_COMPACT_SIZE: usize = 32;
/// Size of an extended inode.
pub const INODE_EXTENDED_SIZE: usize = 64;
/// Size of a directory entry.
pub const DIRENT_SIZE: usize = 12;
/// Size of the xattr body header.
pub const XATTR_IBODY_HEADER_SIZE: usize = 12;
/// Size of an xattr entry header.
pub const XATTR_ENTRY_SIZE: usize = 4;
/// Size of a chunk index entry.
pub const CHUNK_ADDR_SIZE: usize = 8;
/// Alignment of the areas that stay 4 KiB-aligned even in tarfs mode.
pub const META_ALIGNMENT: u64 = 4096;

/// `i_format` layout: plain data blocks.
pub const LAYOUT_FLAT_PLAIN: u16 = 0;
/// `i_format` layout: tail packed after the inode.
pub const LAYOUT_FLAT_INLINE: u16 = 2;
/// `i_format` layout: chunk-based regular file.
pub const LAYOUT_CHUNK_BASED: u16 = 4;
/// `erofs_inode_chunk_info` format bit: 8-byte chunk indexes follow the inode.
pub const CHUNK_FORMAT_INDEXES: u32 = 0x0020;

/// Directory entry file types.
pub mod file_type {
    pub const UNKNOWN: u8 = 0;
    pub const REG: u8 = 1;
    pub const DIR: u8 = 2;
    pub const CHR: u8 = 3;
    pub const BLK: u8 = 4;
    pub const FIFO: u8 = 5;
    pub const SOCK: u8 = 6;
    pub const SYMLINK: u8 = 7;
}

/// The 128-byte EROFS superblock at offset 1024.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SuperBlock {
    pub s_magic: U32,
    pub s_checksum: U32,
    pub s_feature_compat: U32,
    pub s_blkszbits: u8,
    pub s_extslots: u8,
    pub s_root_nid: U16,
    pub s_inos: U64,
    pub s_build_time: U64,
    pub s_build_time_nsec: U32,
    pub s_blocks: U32,
    pub s_meta_blkaddr: U32,
    pub s_xattr_blkaddr: U32,
    pub s_uuid: [u8; 16],
    pub s_volume_name: [u8; 16],
    pub s_feature_incompat: U32,
    pub s_u: U16,
    pub s_extra_devices: U16,
    pub s_devt_slotoff: U16,
    pub s_reserved: [u8; 38],
}

const _: () = assert!(core::mem::size_of::<SuperBlock>() == 128);

/// The 256-byte RAFS extended superblock at offset 1152.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ExtSuperBlock {
    pub s_flags: U64,
    pub s_blob_table_offset: U64,
    pub s_blob_table_size: U32,
    pub s_chunk_size: U32,
    pub s_chunk_table_offset: U64,
    pub s_chunk_table_size: U64,
    pub s_prefetch_table_offset: U64,
    pub s_prefetch_table_size: U32,
    pub s_padding: U32,
    pub s_reserved: [u8; 200],
}

const _: () = assert!(core::mem::size_of::<ExtSuperBlock>() == 256);

/// One 128-byte device slot (EROFS `erofs_deviceslot`).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DeviceSlot {
    pub blob_id: [u8; 64],
    pub blocks: U32,
    pub mapped_blkaddr: U32,
    pub reserved2: [u8; 56],
}

const _: () = assert!(core::mem::size_of::<DeviceSlot>() == DEVICE_SLOT_SIZE);

/// One 256-byte blob table record (`RafsV6Blob`).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BlobRecord {
    pub blob_id: [u8; 64],
    pub blob_index: U32,
    pub chunk_size: U32,
    pub chunk_count: U32,
    pub compression_algo: U32,
    pub digest_algo: U32,
    pub features: U32,
    pub compressed_size: U64,
    pub uncompressed_size: U64,
    pub blob_toc_size: U32,
    pub ci_compressor: U32,
    pub ci_offset: U64,
    pub ci_compressed_size: U64,
    pub ci_uncompressed_size: U64,
    pub blob_toc_digest: [u8; 32],
    pub blob_meta_digest: [u8; 32],
    pub blob_meta_size: U64,
    pub cipher_iv: [u8; 8],
    pub cipher_algo: U32,
    pub reserved2: [u8; 36],
}

const _: () = assert!(core::mem::size_of::<BlobRecord>() == BLOB_RECORD_SIZE);

/// The 32-byte compact inode (read only; the reference never writes it).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct InodeCompact {
    pub i_format: U16,
    pub i_xattr_icount: U16,
    pub i_mode: U16,
    pub i_nlink: U16,
    pub i_size: U32,
    pub i_reserved: U32,
    pub i_u: U32,
    pub i_ino: U32,
    pub i_uid: U16,
    pub i_gid: U16,
    pub i_reserved2: [u8; 4],
}

const _: () = assert!(core::mem::size_of::<InodeCompact>() == INODE_COMPACT_SIZE);

/// The 64-byte extended inode.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct InodeExtended {
    pub i_format: U16,
    pub i_xattr_icount: U16,
    pub i_mode: U16,
    pub i_reserved: U16,
    pub i_size: U64,
    pub i_u: U32,
    pub i_ino: U32,
    pub i_uid: U32,
    pub i_gid: U32,
    pub i_mtime: U64,
    pub i_mtime_nsec: U32,
    pub i_nlink: U32,
    pub i_reserved2: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<InodeExtended>() == INODE_EXTENDED_SIZE);

/// A 12-byte directory entry.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Dirent {
    pub e_nid: U64,
    pub e_nameoff: U16,
    pub e_file_type: u8,
    pub e_reserved: u8,
}

const _: () = assert!(core::mem::size_of::<Dirent>() == DIRENT_SIZE);

/// The 12-byte header of an inline xattr body.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct XattrIbodyHeader {
    pub h_reserved: U32,
    pub h_shared_count: u8,
    pub h_reserved2: [u8; 7],
}

const _: () = assert!(core::mem::size_of::<XattrIbodyHeader>() == XATTR_IBODY_HEADER_SIZE);

/// The 4-byte header of one xattr entry; the name suffix and value follow.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct XattrEntry {
    pub e_name_len: u8,
    pub e_name_index: u8,
    pub e_value_size: U16,
}

const _: () = assert!(core::mem::size_of::<XattrEntry>() == XATTR_ENTRY_SIZE);

/// One 8-byte chunk index entry after a chunk-based inode.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ChunkAddr {
    /// Low 16 bits of the chunk index.
    pub c_blob_addr_lo: U16,
    /// Low byte: blob index + 1; high byte: bits 16..23 of the chunk index.
    pub c_blob_addr_hi: U16,
    /// Uncompressed offset / block size.
    pub c_blk_addr: U32,
}

const _: () = assert!(core::mem::size_of::<ChunkAddr>() == CHUNK_ADDR_SIZE);
