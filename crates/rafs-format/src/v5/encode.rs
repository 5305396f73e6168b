//! v5 encoding, laid out exactly as the reference's `Bootstrap::v5_dump`, as plan then write:
//! [`Plan`] places the tables and every record (in depth-first pre-order) and computes the
//! inode digests; the writers fill the superblock, tables and records.

use crate::align_up;
use crate::common::{encode_chunk_record, flags};
use crate::digest::{digest, Hasher};
use crate::error::{Error, Result};
use crate::model::*;
use crate::ondisk::v5 as raw;
use crate::ondisk::{U16, U32, U64};
use zerocopy::{FromZeros, IntoBytes};

fn a8(x: usize) -> usize {
    x.next_multiple_of(8)
}

fn err(reason: impl Into<String>) -> Error {
    Error::encode("v5", reason)
}

/// `value` in the type of the on-disk field `field`.
fn fit<T: TryFrom<U>, U: Copy + std::fmt::Display>(field: &'static str, value: U) -> Result<T> {
    crate::common::fit("v5", field, value)
}

/// Bytes of the xattr pair list (`Σ 4 + name + 1 + value`); `check_encodable` has bounded it
/// to what a reader accepts, far below `usize`.
fn xattr_pairs_size(x: &[Xattr]) -> usize {
    crate::common::index(crate::rules::v5_xattr_pairs(x))
}

/// Encodes the model as a v5 bootstrap.
pub fn encode(image: &Image) -> Result<Vec<u8>> {
    let plan = Plan::new(image)?;
    let mut out = vec![0u8; plan.total];
    write_tables(&mut out, image, &plan)?;
    let mut has_xattr = false;
    for id in &plan.pre {
        has_xattr |= write_record(&mut out, image, &plan, *id)?;
    }
    let sb = superblock(image, &plan, has_xattr)?;
    out[..raw::SUPERBLOCK_SIZE].copy_from_slice(sb.as_bytes());
    Ok(out)
}

/// Where everything goes; every length checked to fit its on-disk field.
struct Plan {
    order: IndexOrder,
    /// Nodes in record (depth-first pre-) order.
    pre: Vec<NodeId>,
    /// Per node: its record's offset.
    record_at: Vec<usize>,
    /// Per node: its inode digest.
    digests: Vec<[u8; 32]>,
    inode_table: usize,
    prefetch_table: usize,
    blob_table: usize,
    blob_table_size: usize,
    ext_blob_table: usize,
    total: usize,
}

impl Plan {
    fn new(image: &Image) -> Result<Self> {
        let order = check_image(image)?;
        let n = image.tree.nodes.len();
        let inode_table = raw::SUPERBLOCK_SIZE;
        let prefetch_table = inode_table + a8(4 * n);
        let blob_table = prefetch_table + a8(4 * image.prefetch.len());
        let blob_table_size = blob_table_size(image)?;
        let ext_blob_table = blob_table + blob_table_size;
        let pre = image.tree.dfs_preorder();
        let mut record_at = vec![0usize; n];
        let mut cur = ext_blob_table + raw::EXT_BLOB_ENTRY_SIZE * image.blobs.len();
        for id in &pre {
            record_at[id.0 as usize] = cur;
            cur += record_size(&image.tree, *id)?;
        }
        if cur as u64 > 0x8000_0000 {
            return Err(err("bootstrap would exceed 2 GiB"));
        }
        let digests = inode_digests(image, &pre);
        Ok(Plan {
            order,
            pre,
            record_at,
            digests,
            inode_table,
            prefetch_table,
            blob_table,
            blob_table_size,
            ext_blob_table,
            total: cur,
        })
    }
}

/// The image-wide rules; returns the inode numbering.
fn check_image(image: &Image) -> Result<IndexOrder> {
    let (tree, sb) = (&image.tree, &image.superblock);
    if tree.nodes.is_empty() || !tree.inode_of(ROOT).is_dir() {
        return Err(err("the root must be a directory"));
    }
    if !crate::common::valid_chunk_size(u64::from(sb.chunk_size)) {
        return Err(err(format!(
            "chunk size {:#x} is not a power of two in 4 KiB..=16 MiB",
            sb.chunk_size
        )));
    }
    crate::rules::check_encodable(image, FsVersion::V5).map_err(err)?;
    if tree.nodes.len() > u32::MAX as usize - 1 {
        return Err(err("too many nodes"));
    }
    if image
        .prefetch
        .iter()
        .any(|id| id.0 as usize >= tree.nodes.len())
    {
        return Err(err("prefetch names a missing node"));
    }
    let order = tree.index_order();
    if order.order.len() != tree.nodes.len() {
        return Err(err("nodes unreachable from the root"));
    }
    Ok(order)
}

/// The blob table's size: `u32, u32, id` per blob, NUL-separated, 8-aligned.
fn blob_table_size(image: &Image) -> Result<usize> {
    if let Some(i) = image
        .blobs
        .iter()
        .position(|b| b.blob_id.is_empty() || b.blob_id.as_bytes().contains(&0))
    {
        return Err(err(format!(
            "blob {i} has an empty id or one containing NUL"
        )));
    }
    if image.blobs.is_empty() {
        return Ok(0);
    }
    let records: usize = image.blobs.iter().map(|b| 8 + b.blob_id.len()).sum();
    Ok(a8(records + image.blobs.len() - 1))
}

/// A record's size: head, name, symlink target, xattr table, chunk records.
fn record_size(tree: &Tree, id: NodeId) -> Result<usize> {
    let node = tree.node(id);
    let inode = tree.inode(node.inode);
    if node.name.len() > usize::from(u16::MAX) || inode.symlink.len() > usize::from(u16::MAX) {
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
}

/// Inode digests, bottom-up: a directory's over its children's, a file's over its chunks'.
fn inode_digests(image: &Image, pre: &[NodeId]) -> Vec<[u8; 32]> {
    let (tree, d) = (&image.tree, image.superblock.digester);
    let mut digests = vec![[0u8; 32]; tree.nodes.len()];
    for id in pre.iter().rev() {
        let node = tree.node(*id);
        let inode = tree.inode(node.inode);
        digests[id.0 as usize] = if inode.is_dir() {
            let mut h = Hasher::new(d);
            node.children
                .iter()
                .for_each(|c| h.update(&digests[c.0 as usize]));
            h.finish()
        } else if inode.is_reg() {
            let mut h = Hasher::new(d);
            inode.chunks.iter().for_each(|c| h.update(&c.digest));
            h.finish()
        } else if inode.is_symlink() {
            digest(d, &inode.symlink)
        } else {
            digest(d, b"")
        };
    }
    digests
}

/// The superblock; table sizes and counts were bounded by [`Plan::new`] (at most 2 GiB).
fn superblock(image: &Image, plan: &Plan, has_xattr: bool) -> Result<raw::SuperBlock> {
    let (io, n) = (&plan.order, image.tree.nodes.len());
    let mut s = raw::SuperBlock::new_zeroed();
    s.s_magic = U32::new(raw::MAGIC);
    s.s_fs_version = U32::new(raw::VERSION);
    s.s_sb_size = U32::new(fit("s_sb_size", raw::SUPERBLOCK_SIZE)?);
    s.s_block_size = U32::new(image.superblock.chunk_size);
    s.s_flags = U64::new(flags::common(
        &image.superblock,
        has_xattr || image.superblock.xattr_flag_without_xattrs,
    ));
    let unique = (0..n).filter(|i| io.ino[*i] == io.index[*i]).count();
    s.s_inodes_count = U64::new(unique as u64);
    s.s_inode_table_offset = U64::new(plan.inode_table as u64);
    s.s_prefetch_table_offset = U64::new(plan.prefetch_table as u64);
    s.s_blob_table_offset = U64::new(plan.blob_table as u64);
    s.s_inode_table_entries = U32::new(fit("s_inode_table_entries", n)?);
    s.s_prefetch_table_entries = U32::new(fit("s_prefetch_table_entries", image.prefetch.len())?);
    s.s_blob_table_size = U32::new(fit("s_blob_table_size", plan.blob_table_size)?);
    s.s_extended_blob_table_entries =
        U32::new(fit("s_extended_blob_table_entries", image.blobs.len())?);
    s.s_extended_blob_table_offset = U64::new(plan.ext_blob_table as u64);
    Ok(s)
}

/// Inode table (record offsets / 8, by index), prefetch table (inode numbers), blob tables.
fn write_tables(out: &mut [u8], image: &Image, plan: &Plan) -> Result<()> {
    let io = &plan.order;
    for id in &io.order {
        let index = io.index[id.0 as usize] as usize;
        let v: u32 = fit("inode table entry", plan.record_at[id.0 as usize] >> 3)?;
        out[plan.inode_table + 4 * (index - 1)..][..4].copy_from_slice(&v.to_le_bytes());
    }
    for (i, id) in image.prefetch.iter().enumerate() {
        let ino = io.ino[id.0 as usize];
        out[plan.prefetch_table + 4 * i..][..4].copy_from_slice(&ino.to_le_bytes());
    }
    let mut p = plan.blob_table;
    for (i, b) in image.blobs.iter().enumerate() {
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
        out[plan.ext_blob_table + i * raw::EXT_BLOB_ENTRY_SIZE..][..raw::EXT_BLOB_ENTRY_SIZE]
            .copy_from_slice(e.as_bytes());
    }
    Ok(())
}

/// A directory's `i_size`: its names plus 8 bytes each, in 4 KiB units, at least one.
fn dir_size(tree: &Tree, node: &Node) -> u64 {
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
}

/// The record head of node `id`.
fn record_head(image: &Image, plan: &Plan, id: NodeId) -> Result<raw::Inode> {
    let (tree, io, i) = (&image.tree, &plan.order, id.0 as usize);
    let node = tree.node(id);
    let inode = tree.inode(node.inode);
    let size = if inode.is_dir() {
        dir_size(tree, node)
    } else {
        inode.size
    };
    let xsize = if inode.xattrs.is_empty() {
        0
    } else {
        a8(xattr_pairs_size(&inode.xattrs))
    };
    let mut h = raw::Inode::new_zeroed();
    h.i_digest = plan.digests[i];
    h.i_parent = U64::new(node.parent.map_or(0, |p| u64::from(io.ino[p.0 as usize])));
    h.i_ino = U64::new(u64::from(io.ino[i]));
    h.i_uid = U32::new(inode.uid);
    h.i_gid = U32::new(inode.gid);
    h.i_mode = U32::new(inode.mode);
    h.i_size = U64::new(size);
    h.i_blocks = U64::new((size + xsize as u64).div_ceil(512));
    let mut f = 0;
    if inode.is_symlink() {
        f |= raw::INODE_FLAG_SYMLINK;
    }
    if inode.v5_hardlink_flag {
        f |= raw::INODE_FLAG_HARDLINK;
    }
    if !inode.xattrs.is_empty() {
        f |= raw::INODE_FLAG_XATTR;
    }
    h.i_flags = U64::new(f);
    h.i_nlink = U32::new(inode.nlink);
    if inode.is_dir() {
        h.i_child_index = U32::new(io.first_child[i]);
        h.i_child_count = U32::new(fit("i_child_count", node.children.len())?);
    } else if inode.is_reg() {
        h.i_child_count = U32::new(fit("i_child_count", inode.chunks.len())?);
    }
    h.i_name_size = U16::new(fit("i_name_size", node.name.len())?);
    h.i_symlink_size = U16::new(fit("i_symlink_size", inode.symlink.len())?);
    h.i_rdev = U32::new(inode.rdev);
    h.i_mtime_nsec = U32::new(inode.mtime_nsec);
    h.i_mtime = U64::new(inode.mtime);
    Ok(h)
}

/// Node `id`'s record; returns whether it has xattrs.
fn write_record(out: &mut [u8], image: &Image, plan: &Plan, id: NodeId) -> Result<bool> {
    let node = image.tree.node(id);
    let inode = image.tree.inode(node.inode);
    let mut p = plan.record_at[id.0 as usize];
    out[p..p + raw::INODE_SIZE].copy_from_slice(record_head(image, plan, id)?.as_bytes());
    p += raw::INODE_SIZE;
    out[p..p + node.name.len()].copy_from_slice(&node.name);
    p += a8(node.name.len());
    out[p..p + inode.symlink.len()].copy_from_slice(&inode.symlink);
    p += a8(inode.symlink.len());
    if !inode.xattrs.is_empty() {
        p = write_xattr_table(out, p, &inode.xattrs)?;
    }
    if inode.is_reg() {
        for c in &inode.chunks {
            out[p..p + 80].copy_from_slice(encode_chunk_record(c).as_bytes());
            p += 80;
        }
    }
    Ok(!inode.xattrs.is_empty())
}

/// The xattr table at `p` (`u64 size`, then `u32 size, name, NUL, value` pairs); returns its end.
fn write_xattr_table(out: &mut [u8], p: usize, xattrs: &[Xattr]) -> Result<usize> {
    let xsize = xattr_pairs_size(xattrs);
    out[p..p + 8].copy_from_slice(&(xsize as u64).to_le_bytes());
    let mut q = p + 8;
    for x in xattrs {
        let pair: u32 = fit("xattr pair size", x.name.len() + 1 + x.value.len())?;
        out[q..q + 4].copy_from_slice(&pair.to_le_bytes());
        q += 4;
        out[q..q + x.name.len()].copy_from_slice(&x.name);
        q += x.name.len() + 1;
        out[q..q + x.value.len()].copy_from_slice(&x.value);
        q += x.value.len();
    }
    Ok(p + 8 + a8(xsize))
}
