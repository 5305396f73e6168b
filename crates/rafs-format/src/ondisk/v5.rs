//! RAFS v5 records (`docs/format/rafs-v5.md`).

use super::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `s_magic` of a v5 superblock ("RAFS").
pub const MAGIC: u32 = 0x5241_4653;
/// `s_fs_version` of v5.
pub const VERSION: u32 = 0x500;
/// Size of the superblock, which is also where the inode table starts.
pub const SUPERBLOCK_SIZE: usize = 8192;
/// Size of an inode record without name, symlink, xattrs and chunks.
pub const INODE_SIZE: usize = 128;
/// Size of one extended blob table entry.
pub const EXT_BLOB_ENTRY_SIZE: usize = 64;
/// Every v5 structure is aligned to this.
pub const ALIGNMENT: usize = 8;

/// Inode flag: the inode is a symlink.
pub const INODE_FLAG_SYMLINK: u64 = 0x1;
/// Inode flag: set by the tar builder on hard-linked files.
pub const INODE_FLAG_HARDLINK: u64 = 0x2;
/// Inode flag: an xattr table follows the name and symlink.
pub const INODE_FLAG_XATTR: u64 = 0x4;
/// Inode flag: the file has holes (never written by the reference builder).
pub const INODE_FLAG_HAS_HOLE: u64 = 0x8;

/// The 8192-byte superblock at offset 0 (only the first 80 bytes carry fields).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SuperBlock {
    pub s_magic: U32,
    pub s_fs_version: U32,
    pub s_sb_size: U32,
    /// The chunk size (historical name).
    pub s_block_size: U32,
    pub s_flags: U64,
    pub s_inodes_count: U64,
    pub s_inode_table_offset: U64,
    pub s_prefetch_table_offset: U64,
    pub s_blob_table_offset: U64,
    pub s_inode_table_entries: U32,
    pub s_prefetch_table_entries: U32,
    pub s_blob_table_size: U32,
    pub s_extended_blob_table_entries: U32,
    pub s_extended_blob_table_offset: U64,
    pub s_reserved: [u8; 8112],
}

const _: () = assert!(core::mem::size_of::<SuperBlock>() == SUPERBLOCK_SIZE);

/// One 64-byte extended blob table entry.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ExtBlobEntry {
    pub chunk_count: U32,
    pub features: U32,
    pub uncompressed_size: U64,
    pub compressed_size: U64,
    pub reserved2: [u8; 40],
}

const _: () = assert!(core::mem::size_of::<ExtBlobEntry>() == EXT_BLOB_ENTRY_SIZE);

/// The fixed 128-byte head of an inode record.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Inode {
    pub i_digest: [u8; 32],
    pub i_parent: U64,
    pub i_ino: U64,
    pub i_uid: U32,
    pub i_gid: U32,
    pub i_projid: U32,
    pub i_mode: U32,
    pub i_size: U64,
    pub i_blocks: U64,
    pub i_flags: U64,
    pub i_nlink: U32,
    pub i_child_index: U32,
    pub i_child_count: U32,
    pub i_name_size: U16,
    pub i_symlink_size: U16,
    pub i_rdev: U32,
    pub i_mtime_nsec: U32,
    pub i_mtime: U64,
    pub i_reserved: [u8; 8],
}

const _: () = assert!(core::mem::size_of::<Inode>() == INODE_SIZE);
