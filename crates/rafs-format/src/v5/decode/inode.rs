//! Phase 3: one inode record: its head, name, symlink target, xattr table and chunk infos.

use crate::common::chunk_from_record;
use crate::error::{derr, DecodeErrorKind as K, Result};
use crate::model::*;
use crate::ondisk::v5 as raw;
use crate::ondisk::ChunkInfoRecord;
use crate::read::{invalid, offset_in, record, slice, At};
use crate::{align_up, Limits};

type I = raw::Inode;

/// An inode record with its variable parts borrowed from the bootstrap.
pub(super) struct Record<'a> {
    pub at: At,
    pub head: raw::Inode,
    pub name: &'a [u8],
    pub symlink: &'a [u8],
    pub xattrs: Vec<Xattr>,
    pub chunks: &'a [u8],
    /// Offset of the first chunk record.
    pub chunks_at: u64,
}

impl Record<'_> {
    pub(super) fn file_type(&self) -> u32 {
        self.head.i_mode.get() & mode::S_IFMT
    }

    /// Offset of its name, which follows the fixed head.
    pub(super) fn name_at(&self) -> u64 {
        self.at.base + raw::INODE_SIZE as u64
    }
}

/// Reads the record at `offset`.
pub(super) fn read_record<'a>(
    data: &'a [u8],
    offset: u64,
    chunk_size: u32,
    limits: &Limits,
) -> Result<Record<'a>> {
    let at = At::new("v5 inode", offset);
    let head: I = record(data, offset, at.structure)?;
    let name_size = u64::from(head.i_name_size.get());
    if name_size == 0 || name_size > 256 {
        return Err(invalid!(at, I, i_name_size, name_size, "must be 1..=256"));
    }
    let mut pos = offset + raw::INODE_SIZE as u64;
    let name = slice(data, pos, name_size, "v5 inode name")?;
    pos += align_up(name_size, 8);
    let symlink = read_symlink(data, at, &head, pos)?;
    pos += align_up(symlink.len() as u64, 8);
    let nsec = head.i_mtime_nsec.get();
    if nsec > crate::rules::MAX_MTIME_NSEC {
        return Err(invalid!(at, I, i_mtime_nsec, nsec, "must be below 10^9"));
    }
    let mut xattrs = Vec::new();
    if head.i_flags.get() & raw::INODE_FLAG_XATTR != 0 {
        let (parsed, size) = read_xattrs(data, pos, limits)?;
        xattrs = parsed;
        pos += size;
    }
    let chunks = read_chunk_bytes(data, at, &head, pos, chunk_size)?;
    check_nlink_and_flags(at, &head)?;
    Ok(Record {
        at,
        head,
        name,
        symlink,
        xattrs,
        chunks,
        chunks_at: pos,
    })
}

/// The symlink target at `pos`: present exactly for symlinks, as the mode and flags agree.
fn read_symlink<'a>(data: &'a [u8], at: At, head: &I, pos: u64) -> Result<&'a [u8]> {
    let size = u64::from(head.i_symlink_size.get());
    let is_symlink = head.i_mode.get() & mode::S_IFMT == mode::S_IFLNK;
    if is_symlink != (size > 0) {
        return Err(invalid!(
            at,
            I,
            i_symlink_size,
            size,
            "symlinks, and only symlinks, have a target"
        ));
    }
    if is_symlink != (head.i_flags.get() & raw::INODE_FLAG_SYMLINK != 0) {
        return Err(invalid!(
            at,
            I,
            i_flags,
            head.i_flags.get(),
            "SYMLINK flag disagrees with the mode"
        ));
    }
    let target = slice(data, pos, size, "v5 symlink")?;
    if is_symlink {
        if let Err(reason) = crate::rules::check_symlink_target(target) {
            return Err(at.invalid(
                offset_in!(I, i_symlink_size),
                "symlink target",
                size,
                reason,
            ));
        }
    }
    Ok(target)
}

/// The xattr table at `pos` (`u64 size`, then pairs); returns the xattrs and its full size.
fn read_xattrs(data: &[u8], pos: u64, limits: &Limits) -> Result<(Vec<Xattr>, u64)> {
    let size_bytes = slice(data, pos, 8, "v5 xattr table")?;
    let size = u64::from_le_bytes(size_bytes.try_into().unwrap_or_default());
    let max = limits.max_xattr_bytes as u64;
    if size > max {
        return Err(derr(
            "v5 xattr table",
            pos,
            K::LimitExceeded {
                limit: "max_xattr_bytes",
                value: size,
                max,
            },
        ));
    }
    let pairs = slice(data, pos + 8, size, "v5 xattr table")?;
    let xattrs = parse_xattr_pairs(pairs).map_err(|k| derr("v5 xattr table", pos, k))?;
    Ok((xattrs, 8 + align_up(size, 8)))
}

/// A regular file's chunk records at `pos`; without HAS_HOLE the reader indexes chunks by
/// offset / chunk_size, so their count must match the size.
fn read_chunk_bytes<'a>(
    data: &'a [u8],
    at: At,
    head: &I,
    pos: u64,
    chunk_size: u32,
) -> Result<&'a [u8]> {
    if head.i_mode.get() & mode::S_IFMT != mode::S_IFREG {
        return Ok(&[]);
    }
    let n = u64::from(head.i_child_count.get());
    let holes = head.i_flags.get() & raw::INODE_FLAG_HAS_HOLE != 0;
    if !holes && n != head.i_size.get().div_ceil(u64::from(chunk_size)) {
        return Err(invalid!(
            at,
            I,
            i_child_count,
            n,
            "must be ceil(i_size / chunk_size)"
        ));
    }
    slice(data, pos, n * 80, "v5 chunk info")
}

fn check_nlink_and_flags(at: At, head: &I) -> Result<()> {
    if head.i_nlink.get() == 0 {
        return Err(invalid!(at, I, i_nlink, 0u8, "must not be 0"));
    }
    let known = raw::INODE_FLAG_SYMLINK
        | raw::INODE_FLAG_HARDLINK
        | raw::INODE_FLAG_XATTR
        | raw::INODE_FLAG_HAS_HOLE;
    let unknown = head.i_flags.get() & !known;
    if unknown != 0 {
        return Err(at.err(
            offset_in!(I, i_flags),
            K::UnknownFlags {
                field: "i_flags",
                bits: unknown,
            },
        ));
    }
    Ok(())
}

/// Parses `{u32 size; name '\0' value}` pairs.
fn parse_xattr_pairs(mut pairs: &[u8]) -> std::result::Result<Vec<Xattr>, K> {
    let bad = |reason| Err(K::BadXattr { reason });
    let mut out = Vec::new();
    while !pairs.is_empty() {
        if pairs.len() < 4 {
            return bad("pair size runs past the table");
        }
        let size = u32::from_le_bytes([pairs[0], pairs[1], pairs[2], pairs[3]]) as usize;
        let Some(body) = pairs.get(4..4 + size) else {
            return bad("pair runs past the table");
        };
        let Some(nul) = body.iter().position(|b| *b == 0) else {
            return bad("name is not NUL-terminated");
        };
        if nul == 0 {
            return bad("empty name");
        }
        out.push(Xattr {
            name: body[..nul].to_vec(),
            value: body[nul + 1..].to_vec(),
        });
        pairs = &pairs[4 + size..];
    }
    Ok(out)
}

/// The model inode of a record, its chunks checked against the blob table.
pub(super) fn to_inode(rec: &Record<'_>, blobs: &[Blob]) -> Result<Inode> {
    let h = &rec.head;
    let fmt = rec.file_type();
    if !matches!(
        fmt,
        mode::S_IFDIR
            | mode::S_IFREG
            | mode::S_IFLNK
            | mode::S_IFCHR
            | mode::S_IFBLK
            | mode::S_IFIFO
            | mode::S_IFSOCK
    ) {
        return Err(invalid!(
            rec.at,
            I,
            i_mode,
            h.i_mode.get(),
            "unknown file type"
        ));
    }
    Ok(Inode {
        mode: h.i_mode.get(),
        uid: h.i_uid.get(),
        gid: h.i_gid.get(),
        mtime: h.i_mtime.get(),
        mtime_nsec: h.i_mtime_nsec.get(),
        rdev: h.i_rdev.get(),
        size: if fmt == mode::S_IFDIR {
            0
        } else {
            h.i_size.get()
        },
        nlink: h.i_nlink.get(),
        symlink: rec.symlink.to_vec(),
        xattrs: rec.xattrs.clone(),
        chunks: read_chunks(rec, blobs)?,
        v5_hardlink_flag: h.i_flags.get() & raw::INODE_FLAG_HARDLINK != 0,
    })
}

/// The record's chunk infos, each naming a blob of the table.
fn read_chunks(rec: &Record<'_>, blobs: &[Blob]) -> Result<Vec<ChunkInfo>> {
    let mut chunks = Vec::with_capacity(rec.chunks.len() / 80);
    for (k, c) in rec.chunks.chunks_exact(80).enumerate() {
        let at = At::new("v5 chunk info", rec.chunks_at + 80 * k as u64);
        let r: ChunkInfoRecord = record(c, 0, at.structure)?;
        if r.blob_index.get() as usize >= blobs.len() {
            return Err(invalid!(
                at,
                ChunkInfoRecord,
                blob_index,
                r.blob_index.get(),
                "no such blob"
            ));
        }
        chunks.push(chunk_from_record(&r));
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use crate::testing::*;

    #[test]
    fn a_zero_link_count_is_reported_at_i_nlink() {
        let mut root = 0;
        let e = decode_corrupted(FsVersion::V5, |b| {
            let table = usize::try_from(u64_at(b, 32)).unwrap();
            root = (u32::from_le_bytes(b[table..table + 4].try_into().unwrap()) as usize) << 3;
            b[root + 88..root + 92].fill(0);
        });
        assert_eq!((e.structure, e.offset), ("v5 inode", root as u64 + 88));
        assert!(matches!(
            e.kind,
            K::InvalidField {
                field: "i_nlink",
                value: 0,
                ..
            }
        ));
    }
}
