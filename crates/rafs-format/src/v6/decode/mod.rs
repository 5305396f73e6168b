//! v6 decoding, in phases: [`superblock`] checks both superblocks into a layout, [`blobs`]
//! reads the blob and chunk tables, [`tree`] walks the directories reading each [`inode`], and
//! this module reads the prefetch table and assembles the model. Every error is raised through
//! an [`At`] that knows its structure's offset, so field offsets come from the raw structs.

mod blobs;
mod inode;
mod superblock;
mod tree;

use crate::common::flags;
use crate::error::{DecodeErrorKind as K, Result};
use crate::model::*;
use crate::ondisk::ChunkInfoRecord;
use crate::read::{slice, At};
use crate::Limits;
use blobs::{ChunkAddress, ChunkTable};
use std::cell::Cell;
use std::collections::HashMap;
use superblock::{Layout, Range};

/// Decodes a v6 bootstrap with default [`Limits`].
pub fn decode(data: &[u8]) -> Result<Image> {
    decode_with_limits(data, &Limits::default())
}

/// Decodes a v6 bootstrap.
pub fn decode_with_limits(data: &[u8], limits: &Limits) -> Result<Image> {
    let layout = superblock::read_layout(data, limits)?;
    let tarfs = layout.flags & flags::TARFS_MODE != 0;
    let blobs = blobs::read_blob_table(data, &layout)?;
    let mut chunks = blobs::read_chunk_table(data, &layout, tarfs)?;
    let by_address = std::mem::take(&mut chunks.by_address);
    let ctx = Ctx {
        data,
        block: layout.block,
        meta_addr: layout.meta_addr,
        chunk_size: layout.chunk_size,
        build_time: layout.sb.s_build_time.get(),
        tarfs,
        nblobs: layout.nblobs,
        used: (0..chunks.records.len())
            .map(|_| Cell::new(false))
            .collect(),
        chunk_table: &by_address,
        limits,
    };
    let root_nid = u64::from(layout.sb.s_root_nid.get());
    let (tree, node_of_nid) = tree::walk(&ctx, root_nid, layout.inos)?;
    let prefetch = match layout.prefetch {
        Some(range) => read_prefetch(data, range, &node_of_nid)?,
        None => Vec::new(),
    };
    let v6_chunk_table = kept_chunk_table(&ctx, &tree, chunks);
    Ok(Image {
        superblock: superblock_of(&layout, &tree),
        blobs,
        tree,
        prefetch,
        v6_chunk_table,
    })
}

/// Everything the tree walk needs from the earlier phases.
struct Ctx<'a> {
    data: &'a [u8],
    block: u64,
    meta_addr: u64,
    chunk_size: u64,
    build_time: u64,
    tarfs: bool,
    nblobs: usize,
    chunk_table: &'a HashMap<ChunkAddress, (usize, ChunkInfoRecord)>,
    /// Which on-disk records some chunk resolved to.
    used: Vec<Cell<bool>>,
    limits: &'a Limits,
}

impl Ctx<'_> {
    /// The chunk a chunk index at `at` addresses, from the on-disk table. The record's own
    /// file_offset is kept: for a chunk shared by several files it is that of the file the
    /// builder met last, and merges carry it over unchanged.
    fn resolve_chunk(&self, at: At, address: ChunkAddress) -> Result<ChunkInfo> {
        let (blob_index, chunk_index, blkaddr) = address;
        let (pos, r) = self.chunk_table.get(&address).ok_or_else(|| {
            at.err(
                0,
                K::ChunkNotFound {
                    blob_index,
                    chunk_index,
                    blkaddr,
                },
            )
        })?;
        self.used[*pos].set(true);
        Ok(crate::common::chunk_from_record(r))
    }
}

/// Where an inode's pieces are; kept apart from the decoded [`Inode`] so that walking a
/// directory needs no copy of the inode itself.
#[derive(Clone, Copy)]
struct DataLoc {
    offset: u64,
    layout: u16,
    /// Offset right after the inode and its xattrs.
    body_end: u64,
    raw_u: u32,
    size: u64,
}

/// The prefetch table: nids up to the first 0, each naming an inode of the tree.
fn read_prefetch(
    data: &[u8],
    range: Range,
    node_of_nid: &HashMap<u64, NodeId>,
) -> Result<Vec<NodeId>> {
    let table = slice(data, range.offset, range.size, "v6 prefetch table")?;
    let mut prefetch = Vec::new();
    for (i, c) in table.chunks_exact(4).enumerate() {
        let nid = u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        if nid == 0 {
            break;
        }
        let at = At::new("v6 prefetch table", range.offset + 4 * i as u64);
        let node = node_of_nid
            .get(&nid)
            .ok_or_else(|| at.invalid(0, "nid", nid, "no such inode in the tree"))?;
        prefetch.push(*node);
    }
    Ok(prefetch)
}

/// The model's superblock from the on-disk one.
fn superblock_of(layout: &Layout, tree: &Tree) -> Superblock {
    let f = layout.flags;
    Superblock {
        tarfs: f & flags::TARFS_MODE != 0,
        encrypted: f & flags::ENCRYPTION_AES_128_XTS != 0,
        build_time: layout.sb.s_build_time.get(),
        build_time_nsec: layout.sb.s_build_time_nsec.get(),
        uuid: layout.sb.s_uuid,
        volume_name: layout.sb.s_volume_name,
        ..crate::common::superblock_from_flags(FsVersion::V6, f, layout.sb_chunk_size, tree)
    }
}

/// The on-disk chunk table, kept only when the tree does not imply it. Every chunk was resolved
/// from that table by address, so it is the implied one exactly when its keys are unique and
/// sorted, no address is ambiguous, and every record is used. tarfs chunks are synthesized
/// instead, so their (one record per blob) table is compared with the derived one.
fn kept_chunk_table(ctx: &Ctx<'_>, tree: &Tree, table: ChunkTable) -> Option<Vec<ChunkInfo>> {
    let implied = if ctx.tarfs {
        let sorted = super::sorted_chunks(tree, &tree.index_order().order);
        let derived = super::derive_chunk_table(&sorted);
        derived.iter().map(|c| c.info).eq(table.records.iter())
    } else {
        table.sorted_unique && !table.ambiguous && ctx.used.iter().all(Cell::get)
    };
    (!implied).then_some(table.records)
}
