//! What both codecs share: the superblock flag words, the chunk-size rule, and the 80-byte
//! chunk-info record both versions store (v5 inline after each inode, v6 in its chunk
//! table). The v5 and v6 codecs are siblings over this module; neither imports the other.

use crate::model::{ChunkFlags, ChunkInfo};
use crate::ondisk::{ChunkInfoRecord, U32, U64};

/// Superblock flag bits shared by v5 and v6 (`RafsSuperFlags`).
pub mod flags {
    /// No compression.
    pub const COMPRESSION_NONE: u64 = 0x1;
    /// LZ4 block.
    pub const COMPRESSION_LZ4: u64 = 0x2;
    /// BLAKE3 digests.
    pub const HASH_BLAKE3: u64 = 0x4;
    /// SHA-256 digests.
    pub const HASH_SHA256: u64 = 0x8;
    /// Real uid/gid in inodes.
    pub const EXPLICIT_UID_GID: u64 = 0x10;
    /// Some inode has xattrs.
    pub const HAS_XATTR: u64 = 0x20;
    /// gzip.
    pub const COMPRESSION_GZIP: u64 = 0x40;
    /// zstd.
    pub const COMPRESSION_ZSTD: u64 = 0x80;
    /// Every blob inlines its chunk digests (v6).
    pub const INLINED_CHUNK_DIGEST: u64 = 0x100;
    /// tarfs mode (v6).
    pub const TARFS_MODE: u64 = 0x200;
    /// No encryption (v6, always set when not encrypting).
    pub const ENCRYPTION_NONE: u64 = 0x0100_0000;
    /// AES-128-XTS encryption (v6).
    pub const ENCRYPTION_AES_128_XTS: u64 = 0x0200_0000;
    /// Reserved bits the reader accepts.
    pub const PRESERVED_COMPAT: u64 = 0xFC00_0000;
    /// Every bit the reference reader accepts.
    pub const KNOWN: u64 = 0x3FF | ENCRYPTION_NONE | ENCRYPTION_AES_128_XTS | PRESERVED_COMPAT;

    use crate::model::{Compressor, Digester};

    /// Compressor as the reference reader picks it: first of NONE, LZ4, GZIP, ZSTD; LZ4 if none.
    pub fn compressor(f: u64) -> Compressor {
        if f & COMPRESSION_NONE != 0 {
            Compressor::None
        } else if f & COMPRESSION_LZ4 != 0 {
            Compressor::Lz4Block
        } else if f & COMPRESSION_GZIP != 0 {
            Compressor::Gzip
        } else if f & COMPRESSION_ZSTD != 0 {
            Compressor::Zstd
        } else {
            Compressor::Lz4Block
        }
    }

    /// Digester as the reference reader picks it: BLAKE3, else SHA-256, else BLAKE3.
    pub fn digester(f: u64) -> Digester {
        if f & HASH_BLAKE3 != 0 {
            Digester::Blake3
        } else if f & HASH_SHA256 != 0 {
            Digester::Sha256
        } else {
            Digester::Blake3
        }
    }

    /// The flag bit of a compressor.
    pub fn compressor_bit(c: Compressor) -> u64 {
        match c {
            Compressor::None => COMPRESSION_NONE,
            Compressor::Lz4Block => COMPRESSION_LZ4,
            Compressor::Gzip => COMPRESSION_GZIP,
            Compressor::Zstd => COMPRESSION_ZSTD,
        }
    }

    /// The bits both versions set the same way: compressor, digester, explicit uid/gid,
    /// xattrs present, and the preserved bits read from the input.
    pub fn common(sb: &crate::model::Superblock, has_xattr: bool) -> u64 {
        let mut f = compressor_bit(sb.compressor) | digester_bit(sb.digester) | sb.preserved_flags;
        if sb.explicit_uid_gid {
            f |= EXPLICIT_UID_GID;
        }
        if has_xattr {
            f |= HAS_XATTR;
        }
        f
    }

    /// The flag bit of a digester.
    pub fn digester_bit(d: Digester) -> u64 {
        match d {
            Digester::Blake3 => HASH_BLAKE3,
            Digester::Sha256 => HASH_SHA256,
        }
    }
}

/// Checks a chunk size: a power of two from 4 KiB to 16 MiB.
pub(crate) fn valid_chunk_size(cs: u64) -> bool {
    cs.is_power_of_two() && (0x1000..=0x100_0000).contains(&cs)
}

/// Model chunk of an on-disk chunk record.
pub(crate) fn chunk_from_record(r: &ChunkInfoRecord) -> ChunkInfo {
    ChunkInfo {
        digest: r.block_id,
        blob_index: r.blob_index.get(),
        index: r.index.get(),
        flags: ChunkFlags::from_bits_retain(r.flags.get()),
        compressed_offset: r.compressed_offset.get(),
        compressed_size: r.compressed_size.get(),
        uncompressed_offset: r.uncompressed_offset.get(),
        uncompressed_size: r.uncompressed_size.get(),
        file_offset: r.file_offset.get(),
        crc32: r.crc32.get(),
    }
}

/// On-disk record of a model chunk.
pub(crate) fn encode_chunk_record(c: &ChunkInfo) -> ChunkInfoRecord {
    ChunkInfoRecord {
        block_id: c.digest,
        blob_index: U32::new(c.blob_index),
        flags: U32::new(c.flags.bits()),
        compressed_size: U32::new(c.compressed_size),
        uncompressed_size: U32::new(c.uncompressed_size),
        compressed_offset: U64::new(c.compressed_offset),
        uncompressed_offset: U64::new(c.uncompressed_offset),
        file_offset: U64::new(c.file_offset),
        index: U32::new(c.index),
        crc32: U32::new(c.crc32),
    }
}

/// `value` in the narrower type of an on-disk field, or an encoding error naming the field.
/// Encoders plan sizes first, so this failing means a plan check is missing, not bad input.
pub(crate) fn fit<T, U>(format: &'static str, field: &'static str, value: U) -> crate::Result<T>
where
    T: TryFrom<U>,
    U: Copy + std::fmt::Display,
{
    T::try_from(value).map_err(|_| {
        crate::Error::encode(format, format!("{field} {value} does not fit its field"))
    })
}

/// A position or count from the input as an index. It saturates instead of truncating, so a
/// value no `usize` holds fails the bounds check that follows instead of wrapping into range.
pub(crate) fn index(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// The model superblock's settings that both versions keep in their flag word; the caller
/// sets what only its version stores (build time, uuid, volume name, tarfs, encryption).
pub(crate) fn superblock_from_flags(
    fs_version: crate::model::FsVersion,
    f: u64,
    chunk_size: u32,
    tree: &crate::model::Tree,
) -> crate::model::Superblock {
    crate::model::Superblock {
        fs_version,
        chunk_size,
        compressor: flags::compressor(f),
        digester: flags::digester(f),
        explicit_uid_gid: f & flags::EXPLICIT_UID_GID != 0,
        preserved_flags: f & flags::PRESERVED_COMPAT,
        xattr_flag_without_xattrs: f & flags::HAS_XATTR != 0
            && tree.inodes.iter().all(|i| i.xattrs.is_empty()),
        ..crate::model::Superblock::new(fs_version)
    }
}
