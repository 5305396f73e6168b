//! The chunk table (rafs-v6.md §12): one record per distinct (digest, blob), derived from the
//! tree, or a verbatim table kept from a decoded image while it still covers the tree.

use super::super::{derive_chunk_table, key_runs, sorted_chunks, ChunkAt, ChunkRef};
use crate::error::{Error, Result};
use crate::model::*;
use std::collections::HashSet;

/// Where the chunk table's records come from: named, not copied (a copy of every record would
/// add a tenth of the bootstrap's size to the encoder's peak memory).
#[derive(Debug, Clone)]
pub(super) enum ChunkRecords {
    /// Chunks of the tree, in table order.
    Derived(Vec<ChunkAt>),
    /// The image's kept table ([`Image::v6_chunk_table`]), verbatim.
    Kept,
}

impl ChunkRecords {
    /// Records in the table.
    pub(super) fn len(&self, image: &Image) -> usize {
        match self {
            ChunkRecords::Derived(at) => at.len(),
            ChunkRecords::Kept => image.v6_chunk_table.as_ref().map_or(0, Vec::len),
        }
    }

    /// The `i`th record (`image` is the one the table was planned for).
    pub(super) fn record<'i>(&self, image: &'i Image, i: usize) -> Option<&'i ChunkInfo> {
        match self {
            ChunkRecords::Derived(at) => at.get(i).map(|at| at.get(&image.tree)),
            ChunkRecords::Kept => image.v6_chunk_table.as_ref()?.get(i),
        }
    }
}

fn err(reason: String) -> Error {
    Error::encode("v6", reason)
}

/// The records of the chunk table for `image`, whose nodes in numbering order are `order`.
pub(super) fn chunk_table(image: &Image, order: &[NodeId], block: u64) -> Result<ChunkRecords> {
    check_addresses(image, order, block)?;
    let tree = &image.tree;
    let sorted = sorted_chunks(tree, order);
    let derived = derive_chunk_table(&sorted);
    if let Some(verbatim) = &image.v6_chunk_table {
        if covers(verbatim, &derived) {
            return Ok(ChunkRecords::Kept);
        }
    }
    check_unambiguous(&derived, block)?;
    if !image.superblock.tarfs {
        check_one_record_per_digest(image, order, &sorted, block)?;
    }
    Ok(ChunkRecords::Derived(
        derived.iter().map(|c| c.at).collect(),
    ))
}

/// Every chunk names a blob of the table, a 24-bit index and a 32-bit block address.
fn check_addresses(image: &Image, order: &[NodeId], block: u64) -> Result<()> {
    let tree = &image.tree;
    let nblobs = image.blobs.len();
    for id in order {
        let inode = tree.inode_of(*id);
        if !inode.is_reg() {
            continue;
        }
        for c in &inode.chunks {
            if c.blob_index as usize >= nblobs {
                return Err(err(format!(
                    "{}: chunk names blob {} of {nblobs}",
                    tree.path(*id),
                    c.blob_index
                )));
            }
            if c.index >= 1 << 24 {
                return Err(err(format!(
                    "{}: chunk index {} exceeds 24 bits",
                    tree.path(*id),
                    c.index
                )));
            }
            if c.uncompressed_offset / block > u64::from(u32::MAX) {
                return Err(err(format!(
                    "{}: chunk offset beyond 32-bit block addresses",
                    tree.path(*id)
                )));
            }
        }
    }
    Ok(())
}

/// v6 files name chunks by (blob, index, block); two different chunks under one address would
/// make the image read back wrong data.
fn check_unambiguous(derived: &[ChunkRef<'_>], block: u64) -> Result<()> {
    // Sorted by address, chunks sharing one are neighbours (a sort, not a hash table: a few
    // bytes per chunk).
    let address = |c: &ChunkRef<'_>| {
        (
            c.info.blob_index,
            c.info.index,
            c.info.uncompressed_offset / block,
        )
    };
    let mut by_address: Vec<ChunkRef<'_>> = derived.to_vec();
    by_address.sort_unstable_by_key(address);
    for pair in by_address.windows(2) {
        let addr = address(&pair[0]);
        if address(&pair[1]) == addr && pair[0].info.digest != pair[1].info.digest {
            return Err(err(format!(
                "two different chunks share blob {} index {} block {}; v6 cannot tell them apart",
                addr.0, addr.1, addr.2
            )));
        }
    }
    Ok(())
}

/// The table keeps one record per (digest, blob), the last of its key in `sorted`; a chunk
/// with the same key at another address could not be found again.
fn check_one_record_per_digest(
    image: &Image,
    order: &[NodeId],
    sorted: &[ChunkRef<'_>],
    block: u64,
) -> Result<()> {
    let address = |c: &ChunkInfo| (c.index, c.uncompressed_offset / block);
    for run in key_runs(sorted) {
        let Some((kept, others)) = run.split_last() else {
            continue;
        };
        if let Some(other) = others
            .iter()
            .find(|c| address(c.info) != address(kept.info))
        {
            let tree = &image.tree;
            let path = order
                .iter()
                .find(|id| tree.node(**id).inode == other.at.inode)
                .map_or_else(|| "?".to_string(), |id| tree.path(*id));
            return Err(err(format!(
                "{path}: two different chunks of blob {} share digest {}; v6 keeps one record per digest",
                other.info.blob_index,
                crate::hex(&other.info.digest)
            )));
        }
    }
    Ok(())
}

/// Whether a verbatim chunk table still holds a record for every distinct chunk of the tree.
fn covers(verbatim: &[ChunkInfo], derived: &[ChunkRef<'_>]) -> bool {
    let have: HashSet<([u8; 32], u32)> =
        verbatim.iter().map(|c| (c.digest, c.blob_index)).collect();
    derived
        .iter()
        .all(|c| have.contains(&(c.info.digest, c.info.blob_index)))
}
