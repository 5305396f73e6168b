//! Phase 1: the superblock, checked into a [`Layout`] of non-overlapping tables.

use crate::common::flags;
use crate::error::{DecodeErrorKind as K, Result};
use crate::ondisk::v5 as raw;
use crate::read::{invalid, offset_in, record, At};
use crate::Limits;

/// Largest bootstrap the reference accepts.
const MAX_METADATA_SIZE: u64 = 0x8000_0000;

pub(super) const SB: At = At::new("v5 superblock", 0);
type S = raw::SuperBlock;

/// A table's byte range, and the superblock field holding its offset (where errors point).
#[derive(Clone, Copy)]
pub(super) struct Table {
    pub name: &'static str,
    pub field_at: usize,
    pub offset: u64,
    pub size: u64,
}

impl Table {
    fn end(&self) -> u64 {
        self.offset.saturating_add(self.size)
    }
}

/// Where everything is, from the superblock; every table is inside the file.
pub(super) struct Layout {
    pub flags: u64,
    pub chunk_size: u32,
    /// `s_inode_table_entries`: the number of records.
    pub entries: u64,
    pub inode_table: Table,
    pub blob_table: Table,
    /// Entries of the extended blob table (0: none).
    pub ext_entries: u64,
    pub ext_blob_table: Table,
    /// Entries of the prefetch table (0: none).
    pub prefetch: Table,
}

/// Reads and checks the superblock and its tables' ranges.
pub(super) fn read_layout(data: &[u8], limits: &Limits) -> Result<Layout> {
    let sb: S = record(data, 0, SB.structure)?;
    let (flags, chunk_size) = check_fields(&sb, data.len() as u64)?;
    let entries = check_counts(&sb, limits)?;
    let layout = Layout {
        flags,
        chunk_size,
        entries,
        inode_table: table(
            "inode table",
            offset_in!(S, s_inode_table_offset),
            sb.s_inode_table_offset.get(),
            entries * 4,
        ),
        blob_table: table(
            "blob table",
            offset_in!(S, s_blob_table_offset),
            sb.s_blob_table_offset.get(),
            u64::from(sb.s_blob_table_size.get()),
        ),
        ext_entries: u64::from(sb.s_extended_blob_table_entries.get()),
        ext_blob_table: table(
            "extended blob table",
            offset_in!(S, s_extended_blob_table_offset),
            sb.s_extended_blob_table_offset.get(),
            u64::from(sb.s_extended_blob_table_entries.get()) * raw::EXT_BLOB_ENTRY_SIZE as u64,
        ),
        prefetch: table(
            "prefetch table",
            offset_in!(S, s_prefetch_table_offset),
            sb.s_prefetch_table_offset.get(),
            u64::from(sb.s_prefetch_table_entries.get()) * 4,
        ),
    };
    check_tables(&layout, data.len() as u64)?;
    Ok(layout)
}

fn table(name: &'static str, field_at: usize, offset: u64, size: u64) -> Table {
    Table {
        name,
        field_at,
        offset,
        size,
    }
}

/// Magic, version, sizes, chunk size and flags; returns the flags and the chunk size.
fn check_fields(sb: &S, len: u64) -> Result<(u64, u32)> {
    if sb.s_magic.get() != raw::MAGIC {
        return Err(SB.err(
            0,
            K::BadMagic {
                found: sb.s_magic.get(),
            },
        ));
    }
    if sb.s_fs_version.get() != raw::VERSION {
        return Err(invalid!(
            SB,
            S,
            s_fs_version,
            sb.s_fs_version.get(),
            "only 0x500 is v5"
        ));
    }
    if sb.s_sb_size.get() as usize != raw::SUPERBLOCK_SIZE {
        return Err(invalid!(
            SB,
            S,
            s_sb_size,
            sb.s_sb_size.get(),
            "must be 8192"
        ));
    }
    if len % 8 != 0 || len > MAX_METADATA_SIZE {
        return Err(SB.invalid(
            0,
            "file size",
            len,
            "must be a multiple of 8 and at most 2 GiB",
        ));
    }
    let chunk_size = sb.s_block_size.get();
    if !crate::common::valid_chunk_size(u64::from(chunk_size)) {
        let reason = "chunk size must be a power of two in 4 KiB..=16 MiB";
        return Err(invalid!(SB, S, s_block_size, chunk_size, reason));
    }
    let f = sb.s_flags.get();
    if f & !flags::KNOWN != 0 {
        let kind = K::UnknownFlags {
            field: "s_flags",
            bits: f & !flags::KNOWN,
        };
        return Err(SB.err(offset_in!(S, s_flags), kind));
    }
    Ok((f, chunk_size))
}

/// The inode counts; returns the number of inode table entries.
fn check_counts(sb: &S, limits: &Limits) -> Result<u64> {
    let entries = u64::from(sb.s_inode_table_entries.get());
    if entries == 0 {
        return Err(invalid!(
            SB,
            S,
            s_inode_table_entries,
            0u8,
            "an image has at least a root"
        ));
    }
    if entries > limits.max_nodes {
        let kind = K::LimitExceeded {
            limit: "max_nodes",
            value: entries,
            max: limits.max_nodes,
        };
        return Err(SB.err(offset_in!(S, s_inode_table_entries), kind));
    }
    if sb.s_inodes_count.get() > entries {
        let value = sb.s_inodes_count.get();
        return Err(invalid!(
            SB,
            S,
            s_inodes_count,
            value,
            "exceeds s_inode_table_entries"
        ));
    }
    Ok(entries)
}

/// Every present table lies in the file after the superblock, 8-aligned, apart from the
/// tables before it.
fn check_tables(l: &Layout, len: u64) -> Result<()> {
    let mut seen: Vec<Table> = Vec::new();
    let present = [
        (l.inode_table, true),
        (l.blob_table, true),
        (l.ext_blob_table, l.ext_entries > 0),
        (l.prefetch, l.prefetch.size > 0),
    ];
    for (t, is_present) in present {
        if is_present {
            check_range(t, len, &seen)?;
            seen.push(t);
        }
    }
    Ok(())
}

/// One table's range against the file and the `others`; reported at its offset field.
fn check_range(t: Table, len: u64, others: &[Table]) -> Result<()> {
    let bad = |other| {
        SB.err(
            t.field_at,
            K::BadRange {
                field: t.name,
                start: t.offset,
                end: t.end(),
                other,
            },
        )
    };
    if t.offset % 8 != 0 || t.offset < raw::SUPERBLOCK_SIZE as u64 || t.end() > len {
        return Err(bad("the file"));
    }
    for o in others {
        if t.size > 0 && o.size > 0 && t.offset < o.end() && o.offset < t.end() {
            return Err(bad(o.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testing::*;

    #[test]
    fn a_wrong_superblock_size_is_reported_at_s_sb_size() {
        let e = decode_corrupted(FsVersion::V5, |b| b[8] = 1);
        assert_eq!((e.structure, e.offset), ("v5 superblock", 8));
        assert!(matches!(
            e.kind,
            K::InvalidField {
                field: "s_sb_size",
                ..
            }
        ));
    }
}
