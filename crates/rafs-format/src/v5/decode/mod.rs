//! v5 decoding, in phases: [`superblock`] checks the superblock into a layout of tables,
//! [`blobs`] reads the blob tables, [`tree`] walks the directories reading each [`inode`]
//! record, and this module reads the prefetch table and assembles the model. Every error is
//! raised through an `At` that knows its structure's offset, so field offsets come from the
//! raw structs.

mod blobs;
mod inode;
mod superblock;
mod tree;

use crate::error::Result;
use crate::model::*;
use crate::read::{slice, At};
use crate::Limits;
use superblock::Layout;

/// Decodes a v5 bootstrap with default [`Limits`].
pub fn decode(data: &[u8]) -> Result<Image> {
    decode_with_limits(data, &Limits::default())
}

/// Decodes a v5 bootstrap.
pub fn decode_with_limits(data: &[u8], limits: &Limits) -> Result<Image> {
    let layout = superblock::read_layout(data, limits)?;
    let blobs = blobs::read_blobs(data, &layout)?;
    let mut walker = tree::Walker::new(data, &layout, limits, &blobs)?;
    walker.walk()?;
    let prefetch = read_prefetch(data, &layout, &walker.node_of_index)?;
    let tree = walker.tree;
    Ok(Image {
        superblock: superblock_of(&layout, &tree),
        blobs,
        tree,
        prefetch,
        v6_chunk_table: None,
    })
}

/// The prefetch table: inode numbers up to the first 0, each an index of the table.
fn read_prefetch(data: &[u8], layout: &Layout, node_of_index: &[u32]) -> Result<Vec<NodeId>> {
    let pf = layout.prefetch;
    let mut prefetch = Vec::new();
    if pf.size == 0 {
        return Ok(prefetch);
    }
    let table = slice(data, pf.offset, pf.size, "v5 prefetch table")?;
    for (i, c) in table.chunks_exact(4).enumerate() {
        let ino = u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        if ino == 0 {
            break;
        }
        if ino > layout.entries {
            let at = At::new("v5 prefetch table", pf.offset + 4 * i as u64);
            return Err(at.invalid(0, "inode number", ino, "no such inode"));
        }
        prefetch.push(NodeId(node_of_index[crate::common::index(ino)]));
    }
    Ok(prefetch)
}

/// The model's superblock; v5 stores no build time, uuid or volume name.
fn superblock_of(layout: &Layout, tree: &Tree) -> Superblock {
    crate::common::superblock_from_flags(FsVersion::V5, layout.flags, layout.chunk_size, tree)
}
