//! v5 encoding, laid out exactly as the reference's `Bootstrap::v5_dump`.

use crate::align_up;
use crate::common::{encode_chunk_record, flags};
use crate::digest::{digest, Hasher};
use crate::error::{Error, Result};
use crate::model::*;
use crate::ondisk::v5 as raw;
use crate::ondisk::{U16, U32, U64};
use zerocopy::{FromZeros, IntoBytes};

fn a8(x: usize) -> usize {
    align_up(x as u64, 8) as usize
}

/// Bytes of the xattr pair list (`Σ 4 + name + 1 + value`); `check_encodable` has bounded it
/// to what a reader accepts, far below `usize`.
fn xattr_pairs_size(x: &[Xattr]) -> usize {
    crate::rules::v5_xattr_pairs(x) as usize
}

/// Encodes the model as a v5 bootstrap.
pub fn encode(image: &Image) -> Result<Vec<u8>> {
    let tree = &image.tree;
    let sb = &image.superblock;
    let err = |r: String| Error::encode("v5", r);
    if tree.nodes.is_empty() || !tree.inode_of(ROOT).is_dir() {
        return Err(err("the root must be a directory".into()));
    }
    if !crate::common::valid_chunk_size(sb.chunk_size as u64) {
        return Err(err(format!(
            "chunk size {:#x} is not a power of two in 4 KiB..=16 MiB",
            sb.chunk_size
        )));
    }
    crate::rules::check_encodable(image, FsVersion::V5).map_err(err)?;
    let n = tree.nodes.len();
    if n > u32::MAX as usize - 1 {
        return Err(err("too many nodes".into()));
    }
    let io = tree.index_order();
    if io.order.len() != n {
        return Err(err("nodes unreachable from the root".into()));
    }

    // Record sizes and offsets in physical (pre-order) order.
    let pre = tree.dfs_preorder();
    let record_size = |id: NodeId| -> Result<usize> {
        let node = tree.node(id);
        let inode = tree.inode(node.inode);
        if node.name.len() > u16::MAX as usize || inode.symlink.len() > u16::MAX as usize {
            return Err(err(format!(
                "{}: name or symlink longer than 65535 bytes",
                tree.path(id)
            )));
        }
        let mut s = raw::INODE_SIZE + a8(node.name.len()) + a8(inode.symlink.len());
        if !inode.xattrs.is_empty() {
            s += 8 + a8(xattr_pairs_size(&inode.xattrs));
        }
        if inode.is_reg() {
            s += 80 * inode.chunks.len();
        }
        Ok(s)
    };
    let it_entries = n;
    let it_size = a8(4 * it_entries);
    let pf_entries = image.prefetch.len();
    let pf_size = a8(4 * pf_entries);
    let bt_raw: usize = image
        .blobs
        .iter()
        .map(|b| 8 + b.blob_id.len())
        .sum::<usize>()
        + image.blobs.len().saturating_sub(1);
    let bt_size = if image.blobs.is_empty() {
        0
    } else {
        a8(bt_raw)
    };
    let it_off = raw::SUPERBLOCK_SIZE;
    let pf_off = it_off + it_size;
    let bt_off = pf_off + pf_size;
    let ext_off = bt_off + bt_size;
    let first_record = ext_off + raw::EXT_BLOB_ENTRY_SIZE * image.blobs.len();
    let mut offset_of = vec![0usize; n];
    let mut cur = first_record;
    for id in &pre {
        offset_of[id.0 as usize] = cur;
        cur += record_size(*id)?;
    }
    let total = cur;
    if total as u64 > 0x8000_0000 {
        return Err(err("bootstrap would exceed 2 GiB".into()));
    }

    // Inode digests, bottom-up.
    let d = sb.digester;
    let mut digests = vec![[0u8; 32]; n];
    for id in pre.iter().rev() {
        let node = tree.node(*id);
        let inode = tree.inode(node.inode);
        digests[id.0 as usize] = if inode.is_dir() {
            let mut h = Hasher::new(d);
            for c in &node.children {
                h.update(&digests[c.0 as usize]);
            }
            h.finish()
        } else if inode.is_reg() {
            let mut h = Hasher::new(d);
            for c in &inode.chunks {
                h.update(&c.digest);
            }
            h.finish()
        } else if inode.is_symlink() {
            digest(d, &inode.symlink)
        } else {
            digest(d, b"")
        };
    }

    let mut out = vec![0u8; total];
    // Superblock.
    let mut has_xattr = false;
    let mut s = raw::SuperBlock::new_zeroed();
    s.s_magic = U32::new(raw::MAGIC);
    s.s_fs_version = U32::new(raw::VERSION);
    s.s_sb_size = U32::new(raw::SUPERBLOCK_SIZE as u32);
    s.s_block_size = U32::new(sb.chunk_size);
    let unique = (0..n).filter(|i| io.ino[*i] == io.index[*i]).count();
    s.s_inodes_count = U64::new(unique as u64);
    s.s_inode_table_offset = U64::new(it_off as u64);
    s.s_prefetch_table_offset = U64::new(pf_off as u64);
    s.s_blob_table_offset = U64::new(bt_off as u64);
    s.s_inode_table_entries = U32::new(it_entries as u32);
    s.s_prefetch_table_entries = U32::new(pf_entries as u32);
    s.s_blob_table_size = U32::new(bt_size as u32);
    s.s_extended_blob_table_entries = U32::new(image.blobs.len() as u32);
    s.s_extended_blob_table_offset = U64::new(ext_off as u64);

    // Inode table.
    for id in &io.order {
        let index = io.index[id.0 as usize] as usize;
        let v = (offset_of[id.0 as usize] >> 3) as u32;
        out[it_off + 4 * (index - 1)..][..4].copy_from_slice(&v.to_le_bytes());
    }
    // Prefetch table: inode numbers.
    for (i, id) in image.prefetch.iter().enumerate() {
        let ino = *io
            .ino
            .get(id.0 as usize)
            .ok_or_else(|| err("prefetch names a missing node".into()))?;
        out[pf_off + 4 * i..][..4].copy_from_slice(&ino.to_le_bytes());
    }
    // Blob table and extended blob table.
    let mut p = bt_off;
    for (i, b) in image.blobs.iter().enumerate() {
        if b.blob_id.is_empty() || b.blob_id.as_bytes().contains(&0) {
            return Err(err(format!(
                "blob {i} has an empty id or one containing NUL"
            )));
        }
        out[p..p + 4].copy_from_slice(&b.readahead_offset.to_le_bytes());
        out[p + 4..p + 8].copy_from_slice(&b.readahead_size.to_le_bytes());
        p += 8;
        out[p..p + b.blob_id.len()].copy_from_slice(b.blob_id.as_bytes());
        p += b.blob_id.len() + 1;
        let mut e = raw::ExtBlobEntry::new_zeroed();
        e.chunk_count = U32::new(b.chunk_count);
        e.features = U32::new(b.features.bits());
        e.uncompressed_size = U64::new(b.uncompressed_size);
        e.compressed_size = U64::new(b.compressed_size);
        out[ext_off + i * raw::EXT_BLOB_ENTRY_SIZE..][..raw::EXT_BLOB_ENTRY_SIZE]
            .copy_from_slice(e.as_bytes());
    }

    // Records.
    for id in &pre {
        let node = tree.node(*id);
        let inode = tree.inode(node.inode);
        let i = id.0 as usize;
        let mut h = raw::Inode::new_zeroed();
        h.i_digest = digests[i];
        h.i_parent = U64::new(node.parent.map_or(0, |p| io.ino[p.0 as usize] as u64));
        h.i_ino = U64::new(io.ino[i] as u64);
        h.i_uid = U32::new(inode.uid);
        h.i_gid = U32::new(inode.gid);
        h.i_mode = U32::new(inode.mode);
        let size = if inode.is_dir() {
            let d: u64 = node
                .children
                .iter()
                .map(|c| tree.node(*c).name.len() as u64 + 8)
                .sum();
            if d == 0 {
                4096
            } else {
                align_up(d, 4096)
            }
        } else {
            inode.size
        };
        h.i_size = U64::new(size);
        let xsize = if inode.xattrs.is_empty() {
            0
        } else {
            xattr_pairs_size(&inode.xattrs)
        };
        h.i_blocks = U64::new((size + a8(xsize) as u64).div_ceil(512));
        let mut f = 0;
        if inode.is_symlink() {
            f |= raw::INODE_FLAG_SYMLINK;
        }
        if inode.v5_hardlink_flag {
            f |= raw::INODE_FLAG_HARDLINK;
        }
        if !inode.xattrs.is_empty() {
            f |= raw::INODE_FLAG_XATTR;
            has_xattr = true;
        }
        h.i_flags = U64::new(f);
        h.i_nlink = U32::new(inode.nlink);
        if inode.is_dir() {
            h.i_child_index = U32::new(io.first_child[i]);
            h.i_child_count = U32::new(node.children.len() as u32);
        } else if inode.is_reg() {
            h.i_child_count = U32::new(inode.chunks.len() as u32);
        }
        h.i_name_size = U16::new(node.name.len() as u16);
        h.i_symlink_size = U16::new(inode.symlink.len() as u16);
        h.i_rdev = U32::new(inode.rdev);
        h.i_mtime_nsec = U32::new(inode.mtime_nsec);
        h.i_mtime = U64::new(inode.mtime);
        let mut p = offset_of[i];
        out[p..p + raw::INODE_SIZE].copy_from_slice(h.as_bytes());
        p += raw::INODE_SIZE;
        out[p..p + node.name.len()].copy_from_slice(&node.name);
        p += a8(node.name.len());
        out[p..p + inode.symlink.len()].copy_from_slice(&inode.symlink);
        p += a8(inode.symlink.len());
        if !inode.xattrs.is_empty() {
            out[p..p + 8].copy_from_slice(&(xsize as u64).to_le_bytes());
            let mut q = p + 8;
            for x in &inode.xattrs {
                let pair = (x.name.len() + 1 + x.value.len()) as u32;
                out[q..q + 4].copy_from_slice(&pair.to_le_bytes());
                q += 4;
                out[q..q + x.name.len()].copy_from_slice(&x.name);
                q += x.name.len() + 1;
                out[q..q + x.value.len()].copy_from_slice(&x.value);
                q += x.value.len();
            }
            p += 8 + a8(xsize);
        }
        if inode.is_reg() {
            for c in &inode.chunks {
                out[p..p + 80].copy_from_slice(encode_chunk_record(c).as_bytes());
                p += 80;
            }
        }
    }

    let fl = flags::common(sb, has_xattr || sb.xattr_flag_without_xattrs);
    s.s_flags = U64::new(fl);
    out[..raw::SUPERBLOCK_SIZE].copy_from_slice(s.as_bytes());
    Ok(out)
}
