//! The chunk table (rafs-v6.md §12): one record per distinct (digest, blob), derived from the
//! tree, or a verbatim table kept from a decoded image while it still covers the tree.

use crate::error::{Error, Result};
use crate::model::*;
use std::collections::{BTreeMap, HashMap, HashSet};

fn err(reason: String) -> Error {
    Error::encode("v6", reason)
}

/// The records of the chunk table for `image`, whose nodes in numbering order are `order`.
pub(super) fn chunk_table(image: &Image, order: &[NodeId], block: u64) -> Result<Vec<ChunkInfo>> {
    check_addresses(image, order, block)?;
    let derived = super::super::derive_chunk_table(&image.tree, order);
    if let Some(verbatim) = &image.v6_chunk_table {
        if covers(verbatim, &derived) {
            return Ok(verbatim.clone());
        }
    }
    check_unambiguous(&derived, block)?;
    if !image.superblock.tarfs {
        check_one_record_per_digest(image, order, &derived, block)?;
    }
    Ok(derived.into_values().collect())
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
fn check_unambiguous(derived: &BTreeMap<([u8; 32], u32), ChunkInfo>, block: u64) -> Result<()> {
    let mut by_address = HashMap::new();
    for c in derived.values() {
        let addr = (c.blob_index, c.index, c.uncompressed_offset / block);
        if by_address
            .insert(addr, c.digest)
            .is_some_and(|other| other != c.digest)
        {
            return Err(err(format!(
                "two different chunks share blob {} index {} block {}; v6 cannot tell them apart",
                addr.0, addr.1, addr.2
            )));
        }
    }
    Ok(())
}

/// The table keeps one record per (digest, blob); a file chunk with the same key at another
/// address could not be found again.
fn check_one_record_per_digest(
    image: &Image,
    order: &[NodeId],
    derived: &BTreeMap<([u8; 32], u32), ChunkInfo>,
    block: u64,
) -> Result<()> {
    let tree = &image.tree;
    for id in order {
        let inode = tree.inode_of(*id);
        if !inode.is_reg() {
            continue;
        }
        for c in &inode.chunks {
            let kept = &derived[&(c.digest, c.blob_index)];
            if (kept.index, kept.uncompressed_offset / block)
                != (c.index, c.uncompressed_offset / block)
            {
                return Err(err(format!(
                    "{}: two different chunks of blob {} share digest {}; v6 keeps one record per digest",
                    tree.path(*id),
                    c.blob_index,
                    crate::hex(&c.digest)
                )));
            }
        }
    }
    Ok(())
}

/// Whether a verbatim chunk table still holds a record for every distinct chunk of the tree.
fn covers(verbatim: &[ChunkInfo], derived: &BTreeMap<([u8; 32], u32), ChunkInfo>) -> bool {
    let have: HashSet<([u8; 32], u32)> =
        verbatim.iter().map(|c| (c.digest, c.blob_index)).collect();
    derived.keys().all(|k| have.contains(k))
}
