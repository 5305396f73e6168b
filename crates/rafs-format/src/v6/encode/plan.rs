//! Planning: where every inode, table and blob goes (rafs-v6.md §9), decided before a byte is
//! written, and checked against what v6 can address.

use super::alloc::{Allocator, Placed};
use super::dirent::{dir_entries, dirent_size};
use crate::align_up;
use crate::error::{Error, Result};
use crate::model::*;
use crate::ondisk::v6 as raw;

/// Where a blob's uncompressed data is mapped in a block image: its device slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSpan {
    /// First block of the blob in the image (`mapped_blkaddr`).
    pub mapped_blkaddr: u32,
    /// Blocks the blob occupies (`blocks`).
    pub blocks: u32,
}

/// The layout of a v6 bootstrap for one image, as [`plan`] decides it and
/// [`encode_with_plan`](super::encode_with_plan) writes it: every node's nid, every blob's device
/// slot, every table's place. Export uses it to find blobs' places without re-reading bytes.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(super) block: u64,
    pub(super) meta_addr: u64,
    /// Per inode: its place, relative to `meta_addr`.
    pub(super) placed: Vec<Placed>,
    /// Per inode: inode plus xattr area size.
    pub(super) inode_size: Vec<u64>,
    /// Per node: its nid.
    pub(super) nids: Vec<u64>,
    pub(super) order: IndexOrder,
    pub(super) devices: Vec<DeviceSpan>,
    pub(super) blob_table: u64,
    pub(super) prefetch_table: u64,
    pub(super) chunk_table: u64,
    /// The chunk table's records, in order.
    pub(super) chunks: super::chunks::ChunkRecords,
    pub(super) len: u64,
}

impl Plan {
    /// Block size: 512 for tarfs images, else 4096.
    pub fn block_size(&self) -> u64 {
        self.block
    }

    /// The nid of `node`, if the image has such a node.
    pub fn nid(&self, node: NodeId) -> Option<u64> {
        self.nids.get(node.0 as usize).copied()
    }

    /// Each blob's device slot, in blob order.
    pub fn devices(&self) -> &[DeviceSpan] {
        &self.devices
    }

    /// Size of the bootstrap in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the bootstrap is empty (never: it holds at least the superblocks).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn err(reason: impl Into<String>) -> Error {
    Error::encode("v6", reason)
}

/// Plans the v6 bootstrap of `image`, refusing what v6 cannot store.
pub fn plan(image: &Image) -> Result<Plan> {
    let (block, order) = check_image(image)?;
    let tree = &image.tree;
    let inode_size = inode_sizes(image)?;
    let (placed, metadata_end) = place_inodes(tree, &inode_size, block)?;
    let nids: Vec<u64> = (0..tree.nodes.len())
        .map(|n| placed[tree.nodes[n].inode.0 as usize].off / 32)
        .collect();
    if nids[ROOT.0 as usize] > u64::from(u16::MAX) {
        return Err(err("root nid does not fit"));
    }
    let nblobs = image.blobs.len();
    let devt_end = raw::DEVICE_TABLE_OFFSET as u64 + (raw::DEVICE_SLOT_SIZE * nblobs) as u64;
    let blob_table = align_up(devt_end, raw::META_ALIGNMENT);
    let prefetch_table = blob_table + (raw::BLOB_RECORD_SIZE * nblobs) as u64;
    let prefetch_len = if nblobs > 0 {
        4 * image.prefetch.len() as u64
    } else {
        0
    };
    let meta_addr = if nblobs > 0 {
        align_up(prefetch_table + prefetch_len, raw::META_ALIGNMENT)
    } else {
        0
    };
    if meta_addr % block != 0 {
        return Err(err("metadata start is not block aligned"));
    }
    let chunk_table = align_up(meta_addr + metadata_end, raw::META_ALIGNMENT);
    let chunks = super::chunks::chunk_table(image, &order.order, block)?;
    let len = align_up(
        chunk_table + 80 * chunks.len(image) as u64,
        raw::META_ALIGNMENT,
    );
    if len > u64::from(u32::MAX) * block {
        return Err(err("image too large"));
    }
    let devices = device_spans(image, len, block)?;
    Ok(Plan {
        block,
        meta_addr,
        placed,
        inode_size,
        nids,
        order,
        devices,
        blob_table,
        prefetch_table,
        chunk_table,
        chunks,
        len,
    })
}

/// The image-wide rules; returns the block size and the inode numbering.
fn check_image(image: &Image) -> Result<(u64, IndexOrder)> {
    let (tree, sb) = (&image.tree, &image.superblock);
    if tree.nodes.is_empty() || !tree.inode_of(ROOT).is_dir() {
        return Err(err("the root must be a directory"));
    }
    crate::rules::check_encodable(image, FsVersion::V6).map_err(err)?;
    if !crate::common::valid_chunk_size(u64::from(sb.chunk_size)) {
        return Err(err(format!(
            "chunk size {:#x} is not a power of two in 4 KiB..=16 MiB",
            sb.chunk_size
        )));
    }
    let nblobs = image.blobs.len();
    if nblobs > 254 {
        return Err(err(format!("{nblobs} blobs; v6 addresses at most 254")));
    }
    if image
        .prefetch
        .iter()
        .any(|id| id.0 as usize >= tree.nodes.len())
    {
        return Err(err("prefetch names a missing node"));
    }
    let block = if sb.tarfs {
        super::super::TARFS_BLOCK_SIZE
    } else {
        super::super::BLOCK_SIZE
    };
    let order = tree.index_order();
    if order.order.len() != tree.nodes.len() {
        return Err(err("nodes unreachable from the root"));
    }
    Ok((block, order))
}

/// Per inode: the extended inode plus its xattr area; checks symlink and chunk counts.
fn inode_sizes(image: &Image) -> Result<Vec<u64>> {
    let chunk_size = u64::from(image.superblock.chunk_size);
    let mut sizes = Vec::with_capacity(image.tree.inodes.len());
    for inode in &image.tree.inodes {
        let area = crate::rules::v6_xattr_area(&inode.xattrs)
            .ok_or_else(|| err("an xattr name has no v6 prefix or is too long"))?;
        sizes.push(raw::INODE_EXTENDED_SIZE as u64 + area);
        if inode.is_symlink() && (inode.symlink.is_empty() || inode.symlink.len() > 4096) {
            return Err(err(format!(
                "symlink target of {} bytes (v6 stores 1..=4096)",
                inode.symlink.len()
            )));
        }
        if inode.is_reg() && inode.chunks.len() as u64 != inode.size.div_ceil(chunk_size) {
            let (size, n) = (inode.size, inode.chunks.len());
            return Err(err(format!(
                "a {size}-byte file has {n} chunks, not ceil(size / chunk size)"
            )));
        }
    }
    Ok(sizes)
}

/// Places every inode in the reference's walk order: each directory, then its non-directory
/// children, then its subdirectories depth first. Returns the places and the metadata's end.
fn place_inodes(tree: &Tree, inode_size: &[u64], block: u64) -> Result<(Vec<Placed>, u64)> {
    let mut alloc = Allocator::new(block);
    let mut placed: Vec<Option<Placed>> = vec![None; tree.inodes.len()];
    let mut stack = vec![ROOT];
    while let Some(dir) = stack.pop() {
        let node = tree.node(dir);
        let di = node.inode.0 as usize;
        if placed[di].is_some() {
            return Err(err(format!(
                "{}: directory reached twice (hard-linked directory)",
                tree.path(dir)
            )));
        }
        if let Some(c) = node
            .children
            .iter()
            .find(|c| !valid_name(&tree.node(**c).name))
        {
            return Err(err(format!("{}: invalid entry name", tree.path(*c))));
        }
        let dir_size = dirent_size(&dir_entries(tree, dir), block);
        placed[di] = Some(Placed {
            dir_size,
            ..alloc.place_with_tail(inode_size[di], dir_size)
        });
        alloc.align(32);
        for c in &node.children {
            let ci = tree.node(*c).inode.0 as usize;
            if !tree.inodes[ci].is_dir() && placed[ci].is_none() {
                placed[ci] = Some(place_leaf(&mut alloc, &tree.inodes[ci], inode_size[ci]));
                alloc.align(32);
            }
        }
        stack.extend(
            node.children
                .iter()
                .rev()
                .copied()
                .filter(|c| tree.inode_of(*c).is_dir()),
        );
    }
    Ok((
        placed.into_iter().map(Option::unwrap_or_default).collect(),
        alloc.cur,
    ))
}

fn valid_name(name: &[u8]) -> bool {
    !(name.is_empty()
        || name.len() > 255
        || name.contains(&b'/')
        || name.contains(&0)
        || name == b"."
        || name == b"..")
}

/// A non-directory: a file with its chunk indexes, a symlink with its target, or a bare inode.
fn place_leaf(alloc: &mut Allocator, inode: &Inode, inode_size: u64) -> Placed {
    if inode.is_reg() {
        let total = align_up(inode_size, 8) + 8 * inode.chunks.len() as u64;
        Placed {
            off: alloc.take_or_bump(total),
            layout: raw::LAYOUT_CHUNK_BASED,
            ..Default::default()
        }
    } else if inode.is_symlink() {
        alloc.place_with_tail(inode_size, inode.symlink.len() as u64)
    } else {
        Placed {
            off: alloc.bump(inode_size),
            layout: raw::LAYOUT_FLAT_PLAIN,
            ..Default::default()
        }
    }
}

/// Each blob's device slot: mapped after the bootstrap and the blobs before it, 512 KiB aligned.
fn device_spans(image: &Image, bootstrap_len: u64, block: u64) -> Result<Vec<DeviceSpan>> {
    let mut pos = bootstrap_len;
    let mut spans = Vec::with_capacity(image.blobs.len());
    for (k, b) in image.blobs.iter().enumerate() {
        if b.blob_id.is_empty() || b.blob_id.len() > 64 {
            return Err(err(format!("blob {k}: id must be 1..=64 bytes")));
        }
        let blocks = b.uncompressed_size / block;
        let mapped = align_up(pos, 0x80000) / block;
        pos = (mapped + blocks) * block;
        let too_far = || {
            err(format!(
                "blob {k}: its data lies beyond 32-bit block addresses"
            ))
        };
        spans.push(DeviceSpan {
            mapped_blkaddr: u32::try_from(mapped).map_err(|_| too_far())?,
            blocks: u32::try_from(blocks).map_err(|_| too_far())?,
        });
    }
    let total: u64 = spans.iter().map(|s| u64::from(s.blocks)).sum();
    if total > u64::from(u32::MAX) {
        return Err(err(format!(
            "the blobs hold {total} blocks; s_blocks counts at most 2^32 - 1"
        )));
    }
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use crate::model::FsVersion;

    #[test]
    fn a_blob_beyond_32_bit_block_addresses_is_refused_not_wrapped() {
        let mut image = crate::testing::sample(FsVersion::V6);
        image.superblock.tarfs = true;
        image.blobs[0].features = crate::model::BlobFeatures::TARFS;
        image.blobs[0].uncompressed_size = 1 << 44; // 2^35 blocks of 512 bytes
        let e = super::plan(&image).unwrap_err().to_string();
        assert!(e.contains("beyond 32-bit block addresses"), "{e}");
    }

    #[test]
    fn the_plan_gives_the_root_nid_and_device_slots_the_bytes_hold() {
        let image = crate::testing::sample(FsVersion::V6);
        let (bytes, plan) = super::super::encode_with_plan(&image).unwrap();
        assert_eq!(plan.len(), bytes.len() as u64);
        let root_nid = u16::from_le_bytes([bytes[1024 + 14], bytes[1024 + 15]]);
        assert_eq!(plan.nid(crate::model::ROOT), Some(u64::from(root_nid)));
        let slot = crate::ondisk::v6::DEVICE_TABLE_OFFSET;
        let blocks = u32::from_le_bytes(bytes[slot + 64..slot + 68].try_into().unwrap());
        let mapped = u32::from_le_bytes(bytes[slot + 68..slot + 72].try_into().unwrap());
        assert_eq!(plan.devices()[0].blocks, blocks);
        assert_eq!(plan.devices()[0].mapped_blkaddr, mapped);
        assert_eq!(blocks, 1, "a 4 KiB blob is one block");
    }
}
