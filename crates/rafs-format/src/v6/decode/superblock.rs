//! Phase 1: the superblock and extended superblock, checked into a [`Layout`].

use crate::common::flags;
use crate::error::{DecodeErrorKind as K, Result};
use crate::ondisk::v6 as raw;
use crate::read::{invalid, offset_in, record, At};
use crate::Limits;

/// Where everything is, from the two superblocks; every range is inside the file.
pub(super) struct Layout {
    pub sb: raw::SuperBlock,
    /// `s_flags` of the extended superblock.
    pub flags: u64,
    pub block: u64,
    pub meta_addr: u64,
    pub chunk_size: u64,
    /// The chunk size as stored.
    pub sb_chunk_size: u32,
    pub inos: u64,
    pub blob_table: Range,
    pub nblobs: usize,
    /// Empty when the image has no chunk table.
    pub chunk_table: Range,
    pub prefetch: Option<Range>,
}

/// A byte range of the file.
#[derive(Clone, Copy)]
pub(super) struct Range {
    pub offset: u64,
    pub size: u64,
}

impl Range {
    fn end(self) -> u64 {
        self.offset.saturating_add(self.size)
    }
}

const SB: At = At::new("v6 superblock", raw::SUPERBLOCK_OFFSET as u64);
const EXT: At = At::new("v6 extended superblock", raw::EXT_SUPERBLOCK_OFFSET as u64);

/// Reads and checks both superblocks and the table ranges they give.
pub(super) fn read_layout(data: &[u8], limits: &Limits) -> Result<Layout> {
    let len = data.len() as u64;
    let (sb, block) = check_superblock(data, limits)?;
    let ext: raw::ExtSuperBlock = record(data, EXT.base, EXT.structure)?;
    let (flags, chunk_size) = check_ext_flags(&ext)?;
    let blob_table = Range {
        offset: ext.s_blob_table_offset.get(),
        size: u64::from(ext.s_blob_table_size.get()),
    };
    let nblobs = check_blob_table(len, &sb, blob_table)?;
    let chunk_table = Range {
        offset: ext.s_chunk_table_offset.get(),
        size: ext.s_chunk_table_size.get(),
    };
    check_chunk_table(len, chunk_table, blob_table)?;
    let prefetch = Range {
        offset: ext.s_prefetch_table_offset.get(),
        size: u64::from(ext.s_prefetch_table_size.get()),
    };
    let prefetch = (prefetch.size > 0 && prefetch.offset != 0).then_some(prefetch);
    if let Some(p) = prefetch {
        check_range(
            len,
            offset_in!(raw::ExtSuperBlock, s_prefetch_table_offset),
            "prefetch table",
            p,
            1,
        )?;
        if p.size % 4 != 0 {
            return Err(invalid!(
                EXT,
                raw::ExtSuperBlock,
                s_prefetch_table_size,
                p.size,
                "must be a multiple of 4"
            ));
        }
    }
    Ok(Layout {
        flags,
        block,
        meta_addr: u64::from(sb.s_meta_blkaddr.get()) * block,
        chunk_size,
        sb_chunk_size: ext.s_chunk_size.get(),
        inos: sb.s_inos.get(),
        blob_table,
        nblobs,
        chunk_table,
        prefetch,
        sb,
    })
}

/// The superblock's own rules; returns it with the block size.
fn check_superblock(data: &[u8], limits: &Limits) -> Result<(raw::SuperBlock, u64)> {
    type S = raw::SuperBlock;
    let len = data.len() as u64;
    if len < 4096 {
        // Too short to hold the superblock at all: reported at the file's start.
        return Err(At::new(SB.structure, 0).err(
            0,
            K::Truncated {
                need: 4096,
                available: len,
            },
        ));
    }
    let sb: S = record(data, SB.base, SB.structure)?;
    if sb.s_magic.get() != raw::MAGIC {
        return Err(SB.err(
            0,
            K::BadMagic {
                found: sb.s_magic.get(),
            },
        ));
    }
    if sb.s_checksum.get() != 0 {
        return Err(invalid!(
            SB,
            S,
            s_checksum,
            sb.s_checksum.get(),
            "must be 0"
        ));
    }
    if sb.s_feature_compat.get() & raw::FEATURE_COMPAT_RAFS_V6 == 0 {
        return Err(invalid!(
            SB,
            S,
            s_feature_compat,
            sb.s_feature_compat.get(),
            "lacks the RAFS v6 bit"
        ));
    }
    let bits = sb.s_blkszbits;
    if bits != 9 && bits != 12 {
        return Err(invalid!(SB, S, s_blkszbits, bits, "must be 9 or 12"));
    }
    let block = 1u64 << bits;
    if sb.s_extslots != 0 {
        return Err(invalid!(SB, S, s_extslots, sb.s_extslots, "must be 0"));
    }
    check_counts_and_features(&sb, len, block, limits)?;
    Ok((sb, block))
}

/// The inode count, the unsupported features, and where the metadata starts.
fn check_counts_and_features(
    sb: &raw::SuperBlock,
    len: u64,
    block: u64,
    limits: &Limits,
) -> Result<()> {
    type S = raw::SuperBlock;
    let inos = sb.s_inos.get();
    if inos == 0 {
        return Err(invalid!(SB, S, s_inos, 0u8, "must not be 0"));
    }
    if inos > limits.max_nodes {
        let kind = K::LimitExceeded {
            limit: "max_nodes",
            value: inos,
            max: limits.max_nodes,
        };
        return Err(SB.err(offset_in!(S, s_inos), kind));
    }
    if sb.s_u.get() != 0 {
        return Err(invalid!(SB, S, s_u, sb.s_u.get(), "must be 0"));
    }
    if sb.s_xattr_blkaddr.get() != 0 {
        return Err(invalid!(
            SB,
            S,
            s_xattr_blkaddr,
            sb.s_xattr_blkaddr.get(),
            "shared xattrs are not supported"
        ));
    }
    if sb.s_devt_slotoff.get() != raw::DEVT_SLOTOFF {
        return Err(invalid!(
            SB,
            S,
            s_devt_slotoff,
            sb.s_devt_slotoff.get(),
            "must be 11"
        ));
    }
    if sb.s_feature_incompat.get() != raw::FEATURE_INCOMPAT_VALUE {
        return Err(invalid!(
            SB,
            S,
            s_feature_incompat,
            sb.s_feature_incompat.get(),
            "must be CHUNKED_FILE | DEVICE_TABLE"
        ));
    }
    if len % block != 0 {
        return Err(SB.invalid(0, "file size", len, "must be a multiple of the block size"));
    }
    if u64::from(sb.s_meta_blkaddr.get()) * block > len {
        return Err(invalid!(
            SB,
            S,
            s_meta_blkaddr,
            sb.s_meta_blkaddr.get(),
            "beyond the end of the file"
        ));
    }
    Ok(())
}

/// The extended superblock's flags and chunk size.
fn check_ext_flags(ext: &raw::ExtSuperBlock) -> Result<(u64, u64)> {
    type E = raw::ExtSuperBlock;
    let f = ext.s_flags.get();
    if f & !flags::KNOWN != 0 {
        let kind = K::UnknownFlags {
            field: "s_flags",
            bits: f & !flags::KNOWN,
        };
        return Err(EXT.err(offset_in!(E, s_flags), kind));
    }
    let compression = flags::COMPRESSION_NONE
        | flags::COMPRESSION_LZ4
        | flags::COMPRESSION_GZIP
        | flags::COMPRESSION_ZSTD;
    if (f & compression).count_ones() != 1 {
        return Err(invalid!(
            EXT,
            E,
            s_flags,
            f,
            "needs exactly one compression bit"
        ));
    }
    if (f & (flags::HASH_BLAKE3 | flags::HASH_SHA256)).count_ones() != 1 {
        return Err(invalid!(EXT, E, s_flags, f, "needs exactly one hash bit"));
    }
    let chunk_size = u64::from(ext.s_chunk_size.get());
    if !crate::common::valid_chunk_size(chunk_size) {
        return Err(invalid!(
            EXT,
            E,
            s_chunk_size,
            chunk_size,
            "must be a power of two in 4 KiB..=16 MiB"
        ));
    }
    Ok((f, chunk_size))
}

/// A table's range: aligned to `align`, after the superblocks, inside the file; reported at
/// the extended superblock's field `field_at` that holds its offset.
fn check_range(len: u64, field_at: usize, field: &'static str, r: Range, align: u64) -> Result<()> {
    if r.offset % align != 0 || r.offset < 4096 || r.end() > len {
        let kind = K::BadRange {
            field,
            start: r.offset,
            end: r.end(),
            other: "the file",
        };
        return Err(EXT.err(field_at, kind));
    }
    Ok(())
}

/// The blob table's range and size; returns the blob count, which the device table must fit.
fn check_blob_table(len: u64, sb: &raw::SuperBlock, bt: Range) -> Result<usize> {
    type E = raw::ExtSuperBlock;
    check_range(
        len,
        offset_in!(E, s_blob_table_offset),
        "blob table",
        bt,
        4096,
    )?;
    let record_size = raw::BLOB_RECORD_SIZE as u64;
    if bt.size % record_size != 0 {
        return Err(invalid!(
            EXT,
            E,
            s_blob_table_size,
            bt.size,
            "must be a multiple of 256"
        ));
    }
    let nblobs = bt.size / record_size;
    if nblobs != u64::from(sb.s_extra_devices.get()) {
        let value = sb.s_extra_devices.get();
        return Err(invalid!(
            SB,
            raw::SuperBlock,
            s_extra_devices,
            value,
            "differs from the blob count"
        ));
    }
    if nblobs > 255 {
        return Err(invalid!(
            EXT,
            E,
            s_blob_table_size,
            bt.size,
            "more than 255 blobs"
        ));
    }
    let devt = raw::DEVICE_TABLE_OFFSET as u64;
    let devt_end = devt + nblobs * raw::DEVICE_SLOT_SIZE as u64;
    if devt_end > bt.offset {
        let kind = K::BadRange {
            field: "device table",
            start: devt,
            end: devt_end,
            other: "blob table",
        };
        return Err(At::new("v6 device table", devt).err(0, kind));
    }
    Ok(crate::common::index(nblobs))
}

/// The chunk table's range, record size, and that it does not overlap the blob table.
fn check_chunk_table(len: u64, ct: Range, bt: Range) -> Result<()> {
    type E = raw::ExtSuperBlock;
    if ct.size == 0 {
        return Ok(());
    }
    let field_at = offset_in!(E, s_chunk_table_offset);
    check_range(len, field_at, "chunk table", ct, 4096)?;
    if ct.size % 80 != 0 {
        return Err(invalid!(
            EXT,
            E,
            s_chunk_table_size,
            ct.size,
            "must be a multiple of 80"
        ));
    }
    if ct.offset < bt.end() && bt.offset < ct.end() {
        let kind = K::BadRange {
            field: "chunk table",
            start: ct.offset,
            end: ct.end(),
            other: "blob table",
        };
        return Err(EXT.err(field_at, kind));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testing::*;

    #[test]
    fn a_bad_block_size_is_reported_at_s_blkszbits() {
        let e = decode_corrupted(FsVersion::V6, |b| b[1024 + 12] = 10);
        assert_eq!((e.structure, e.offset), ("v6 superblock", 1036));
        assert!(matches!(
            e.kind,
            K::InvalidField {
                field: "s_blkszbits",
                value: 10,
                ..
            }
        ));
    }

    #[test]
    fn a_chunk_table_overlapping_the_blob_table_is_reported_at_its_offset_field() {
        let e = decode_corrupted(FsVersion::V6, |b| {
            let blob_table = crate::testing::u64_at(b, 1152 + 8);
            b[1152 + 24..1152 + 32].copy_from_slice(&blob_table.to_le_bytes());
            b[1152 + 32..1152 + 40].copy_from_slice(&80u64.to_le_bytes());
        });
        assert_eq!(
            (e.structure, e.offset),
            ("v6 extended superblock", 1152 + 24)
        );
        assert!(matches!(
            e.kind,
            K::BadRange {
                field: "chunk table",
                other: "blob table",
                ..
            }
        ));
    }
}
