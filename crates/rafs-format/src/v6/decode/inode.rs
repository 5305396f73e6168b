//! Phase 3: one inode: its attributes, inline xattrs, and symlink target or chunk index.

use super::super::xattr;
use super::{Ctx, DataLoc};
use crate::align_up;
use crate::error::{derr, DecodeErrorKind as K, Result};
use crate::model::*;
use crate::ondisk::v6 as raw;
use crate::read::{invalid, offset_in, record, slice, At};

/// The head both inode forms share, at the same offsets (checked below), so errors in it are
/// located through [`raw::InodeCompact`].
type Head = raw::InodeCompact;
const _: () = {
    use core::mem::offset_of as o;
    assert!(o!(Head, i_format) == o!(raw::InodeExtended, i_format));
    assert!(o!(Head, i_mode) == o!(raw::InodeExtended, i_mode));
    assert!(o!(Head, i_size) == o!(raw::InodeExtended, i_size));
    assert!(o!(Head, i_u) == o!(raw::InodeExtended, i_u));
};

/// What the inode's on-disk form says beyond the model's attributes.
struct Form {
    i_format: u16,
    xattr_icount: u16,
    raw_u: u32,
    inode_size: u64,
    size: u64,
}

/// Reads the inode at `nid`: attributes, xattrs, and symlink target or chunks.
pub(super) fn read_inode(ctx: &Ctx<'_>, nid: u64) -> Result<(Inode, DataLoc)> {
    let offset = nid
        .checked_mul(32)
        .and_then(|o| o.checked_add(ctx.meta_addr))
        .unwrap_or(u64::MAX);
    let at = At::new("v6 inode", offset);
    let (mut inode, form) = read_attributes(ctx, at)?;
    let mut body_end = offset + form.inode_size;
    if form.xattr_icount > 0 {
        let (xattrs, area) = read_xattrs(ctx, body_end, form.xattr_icount)?;
        inode.xattrs = xattrs;
        body_end += area;
    }
    let d = DataLoc {
        offset,
        layout: (form.i_format >> 1) & 7,
        body_end,
        raw_u: form.raw_u,
        size: form.size,
    };
    read_body(ctx, at, &mut inode, &d, form.i_format)?;
    Ok((inode, d))
}

/// The inode's format, attributes, link count and file type.
fn read_attributes(ctx: &Ctx<'_>, at: At) -> Result<(Inode, Form)> {
    let fmt_bytes = slice(ctx.data, at.base, 2, at.structure)?;
    let i_format = u16::from_le_bytes([fmt_bytes[0], fmt_bytes[1]]);
    if i_format & !0xF != 0 {
        return Err(invalid!(at, Head, i_format, i_format, "unknown bits"));
    }
    let layout = (i_format >> 1) & 7;
    if !matches!(
        layout,
        raw::LAYOUT_FLAT_PLAIN | raw::LAYOUT_FLAT_INLINE | raw::LAYOUT_CHUNK_BASED
    ) {
        return Err(invalid!(
            at,
            Head,
            i_format,
            i_format,
            "compressed layouts are not RAFS"
        ));
    }
    let (inode, form) = if i_format & 1 == 1 {
        read_extended(ctx, at, i_format)?
    } else {
        read_compact(ctx, at, i_format)?
    };
    if !matches!(
        inode.file_type(),
        mode::S_IFDIR
            | mode::S_IFREG
            | mode::S_IFLNK
            | mode::S_IFCHR
            | mode::S_IFBLK
            | mode::S_IFIFO
            | mode::S_IFSOCK
    ) {
        return Err(invalid!(at, Head, i_mode, inode.mode, "unknown file type"));
    }
    Ok((inode, form))
}

/// The 64-byte form.
fn read_extended(ctx: &Ctx<'_>, at: At, i_format: u16) -> Result<(Inode, Form)> {
    type X = raw::InodeExtended;
    let r: X = record(ctx.data, at.base, at.structure)?;
    let mut i = Inode::new(u32::from(r.i_mode.get()));
    i.uid = r.i_uid.get();
    i.gid = r.i_gid.get();
    i.mtime = r.i_mtime.get();
    i.mtime_nsec = r.i_mtime_nsec.get();
    if i.mtime_nsec > crate::rules::MAX_MTIME_NSEC {
        return Err(invalid!(
            at,
            X,
            i_mtime_nsec,
            i.mtime_nsec,
            "must be below 10^9"
        ));
    }
    i.nlink = r.i_nlink.get();
    if i.nlink == 0 {
        return Err(invalid!(at, X, i_nlink, 0u8, "must not be 0"));
    }
    let form = Form {
        i_format,
        xattr_icount: r.i_xattr_icount.get(),
        raw_u: r.i_u.get(),
        inode_size: raw::INODE_EXTENDED_SIZE as u64,
        size: r.i_size.get(),
    };
    Ok((i, form))
}

/// The 32-byte form; its mtime is the image's build time.
fn read_compact(ctx: &Ctx<'_>, at: At, i_format: u16) -> Result<(Inode, Form)> {
    let r: Head = record(ctx.data, at.base, at.structure)?;
    let mut i = Inode::new(u32::from(r.i_mode.get()));
    i.uid = u32::from(r.i_uid.get());
    i.gid = u32::from(r.i_gid.get());
    i.mtime = ctx.build_time;
    i.nlink = u32::from(r.i_nlink.get());
    if i.nlink == 0 {
        return Err(invalid!(at, Head, i_nlink, 0u8, "must not be 0"));
    }
    let form = Form {
        i_format,
        xattr_icount: r.i_xattr_icount.get(),
        raw_u: r.i_u.get(),
        inode_size: raw::INODE_COMPACT_SIZE as u64,
        size: u64::from(r.i_size.get()),
    };
    Ok((i, form))
}

/// The inline xattr area at `start`, `icount` slots long; returns the xattrs and its size.
fn read_xattrs(ctx: &Ctx<'_>, start: u64, icount: u16) -> Result<(Vec<Xattr>, u64)> {
    let area = 12 + (u64::from(icount) - 1) * 4;
    let max = ctx.limits.max_xattr_bytes as u64;
    if area > max {
        let kind = K::LimitExceeded {
            limit: "max_xattr_bytes",
            value: area,
            max,
        };
        return Err(derr("v6 xattr", start, kind));
    }
    let bytes = slice(ctx.data, start, area, "v6 xattr")?;
    let xattrs = parse_xattrs(bytes).map_err(|(off, k)| derr("v6 xattr", start + off, k))?;
    Ok((xattrs, area))
}

/// What follows the attributes, by file type: chunks, a symlink target, a device number.
fn read_body(ctx: &Ctx<'_>, at: At, inode: &mut Inode, d: &DataLoc, i_format: u16) -> Result<()> {
    let chunk_based = d.layout == raw::LAYOUT_CHUNK_BASED;
    match inode.file_type() {
        mode::S_IFREG => {
            if !chunk_based {
                return Err(invalid!(
                    at,
                    Head,
                    i_format,
                    i_format,
                    "regular files must be chunk-based"
                ));
            }
            if d.raw_u & raw::CHUNK_FORMAT_INDEXES == 0 {
                return Err(invalid!(
                    at,
                    Head,
                    i_u,
                    d.raw_u,
                    "chunk format lacks INDEXES"
                ));
            }
            inode.size = d.size;
            inode.chunks = read_chunks(ctx, d)?;
            inode.v5_hardlink_flag = inode.nlink > 1;
        }
        mode::S_IFDIR => {
            if chunk_based {
                return Err(invalid!(
                    at,
                    Head,
                    i_format,
                    i_format,
                    "directories cannot be chunk-based"
                ));
            }
            if d.size > ctx.data.len() as u64 {
                return Err(invalid!(
                    at,
                    Head,
                    i_size,
                    d.size,
                    "directory larger than the bootstrap"
                ));
            }
        }
        mode::S_IFLNK => inode.symlink = read_symlink(ctx, at, d)?,
        _ => {
            if chunk_based {
                return Err(invalid!(
                    at,
                    Head,
                    i_format,
                    i_format,
                    "special files cannot be chunk-based"
                ));
            }
            inode.rdev = d.raw_u;
        }
    }
    if inode.is_symlink() {
        inode.size = d.size;
    }
    Ok(())
}

/// A symlink's target: 1..=4096 bytes of flat data, by the rules of [`crate::rules`].
fn read_symlink(ctx: &Ctx<'_>, at: At, d: &DataLoc) -> Result<Vec<u8>> {
    let size = d.size;
    if d.layout == raw::LAYOUT_CHUNK_BASED || size == 0 || size > 4096 {
        return Err(invalid!(
            at,
            Head,
            i_size,
            size,
            "symlink target must be 1..=4096 bytes, flat"
        ));
    }
    let mut target = Vec::with_capacity(crate::common::index(size));
    for k in 0..size.div_ceil(ctx.block) {
        target.extend_from_slice(super::tree::data_block(ctx, d, k)?);
    }
    if let Err(reason) = crate::rules::check_symlink_target(&target) {
        return Err(at.invalid(offset_in!(Head, i_size), "symlink target", size, reason));
    }
    Ok(target)
}

/// Parses an inline xattr area; an error carries the offset in the area of the byte at fault.
fn parse_xattrs(area: &[u8]) -> std::result::Result<Vec<Xattr>, (u64, K)> {
    let at = |p: usize, reason| (p as u64, K::BadXattr { reason });
    if area[offset_in!(raw::XattrIbodyHeader, h_shared_count)] != 0 {
        return Err(at(4, "shared xattrs are not supported"));
    }
    let mut out = Vec::new();
    let mut p = raw::XATTR_IBODY_HEADER_SIZE;
    while p < area.len() {
        if area.len() - p < raw::XATTR_ENTRY_SIZE {
            return Err(at(p, "entry header runs past the xattr area"));
        }
        let name_len = usize::from(area[p]);
        let index = area[p + 1];
        let value_len = usize::from(u16::from_le_bytes([area[p + 2], area[p + 3]]));
        let size = xattr::entry_size(name_len, value_len);
        if area.len() - p < size {
            return Err(at(p + 2, "entry runs past the xattr area"));
        }
        let prefix = xattr::prefix(index).ok_or(at(p + 1, "unknown name index"))?;
        let body = &area[p + 4..p + 4 + name_len + value_len];
        let mut name = prefix.to_vec();
        name.extend_from_slice(&body[..name_len]);
        out.push(Xattr {
            name,
            value: body[name_len..].to_vec(),
        });
        p += size;
    }
    Ok(out)
}

/// Reads a regular file's chunk indexes and resolves them to full chunk infos.
fn read_chunks(ctx: &Ctx<'_>, d: &DataLoc) -> Result<Vec<ChunkInfo>> {
    let count = d.size.div_ceil(ctx.chunk_size);
    let start = align_up(d.body_end, 8);
    let bytes = slice(ctx.data, start, count.saturating_mul(8), "v6 chunk index")?;
    let mut out = Vec::with_capacity(bytes.len() / 8);
    for (k, c) in bytes.chunks_exact(8).enumerate() {
        let at = At::new("v6 chunk index", start + 8 * k as u64);
        let a: raw::ChunkAddr = record(c, 0, at.structure)?;
        let hi = a.c_blob_addr_hi.get();
        let device = u32::from(hi & 0xff);
        if device == 0 || device as usize > ctx.nblobs {
            let field_at = offset_in!(raw::ChunkAddr, c_blob_addr_hi);
            return Err(at.invalid(field_at, "device_id", u64::from(device), "names no blob"));
        }
        let blob_index = device - 1;
        let index = (u32::from(hi >> 8) << 16) | u32::from(a.c_blob_addr_lo.get());
        let file_offset = k as u64 * ctx.chunk_size;
        let chunk = if ctx.tarfs {
            // At most the chunk size, 16 MiB.
            let size =
                u32::try_from((d.size - file_offset).min(ctx.chunk_size)).unwrap_or(u32::MAX);
            tarfs_chunk(
                ctx,
                blob_index,
                index,
                a.c_blk_addr.get(),
                size,
                file_offset,
            )
        } else {
            ctx.resolve_chunk(at, (blob_index, index, a.c_blk_addr.get()))?
        };
        out.push(chunk);
    }
    Ok(out)
}

/// A tarfs chunk: its data sits uncompressed at its block address in the layer tar.
fn tarfs_chunk(
    ctx: &Ctx<'_>,
    blob_index: u32,
    index: u32,
    blkaddr: u32,
    size: u32,
    file_offset: u64,
) -> ChunkInfo {
    let offset = u64::from(blkaddr) * ctx.block;
    ChunkInfo {
        digest: [0; 32],
        blob_index,
        index,
        flags: ChunkFlags::empty(),
        compressed_offset: offset,
        compressed_size: size,
        uncompressed_offset: offset,
        uncompressed_size: size,
        file_offset,
        crc32: 0,
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::*;

    #[test]
    fn unknown_format_bits_are_reported_at_the_root_inodes_i_format() {
        let mut root = 0;
        let e = decode_corrupted(FsVersion::V6, |b| {
            let nid = u16::from_le_bytes([b[1024 + 14], b[1024 + 15]]) as usize;
            let meta = u32::from_le_bytes(b[1024 + 40..1024 + 44].try_into().unwrap()) as usize;
            root = meta * 4096 + nid * 32;
            b[root] |= 0x10;
        });
        assert_eq!(
            (e.structure, e.offset, e.path.as_deref()),
            ("v6 inode", root as u64, Some("/"))
        );
        assert!(matches!(
            e.kind,
            K::InvalidField {
                field: "i_format",
                ..
            }
        ));
    }
}
