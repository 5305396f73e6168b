//! Directory data (rafs-v6.md §10): `.`, `..` and the children in byte order of names,
//! greedily packed into blocks of dirent records followed by their names.

use crate::align_up;
use crate::model::*;
use crate::ondisk::v6 as raw;
use crate::ondisk::{U16, U64};
use zerocopy::IntoBytes;

/// One entry: its name and node (`None` for `.` and `..`).
pub(super) type Entry<'t> = (&'t [u8], Option<NodeId>);

/// A directory's entries, `.` and `..` included, in byte order of names.
pub(super) fn dir_entries(tree: &Tree, dir: NodeId) -> Vec<Entry<'_>> {
    let mut v: Vec<Entry<'_>> = Vec::with_capacity(tree.node(dir).children.len() + 2);
    v.push((b".", None));
    v.push((b"..", None));
    for c in &tree.node(dir).children {
        v.push((&tree.node(*c).name, Some(*c)));
    }
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// Byte size of a directory's dirent data with blocks of `b` bytes.
pub(super) fn dirent_size(entries: &[Entry<'_>], b: u64) -> u64 {
    let mut s = 0u64;
    for (name, _) in entries {
        let need = raw::DIRENT_SIZE as u64 + name.len() as u64;
        if s % b + need > b {
            s = align_up(s, b);
        }
        s += need;
    }
    s
}

/// A directory's dirent blocks, concatenated (the last block unpadded).
pub(super) fn dirent_data(
    tree: &Tree,
    dir: NodeId,
    b: u64,
    nid_of: &dyn Fn(NodeId) -> u64,
) -> crate::Result<Vec<u8>> {
    let entries = dir_entries(tree, dir);
    let self_nid = nid_of(dir);
    let parent_nid = tree.node(dir).parent.map_or(self_nid, nid_of);
    let mut out = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        let j = block_end(&entries, i, b);
        let start = out.len();
        // Names follow the block's records.
        let mut nameoff = raw::DIRENT_SIZE * (j - i);
        for (name, node) in &entries[i..j] {
            let (nid, ft) = match node {
                Some(c) => (
                    nid_of(*c),
                    super::super::dirent_file_type(tree.inode_of(*c).mode),
                ),
                None if *name == b"." => (self_nid, raw::file_type::DIR),
                None => (parent_nid, raw::file_type::DIR),
            };
            let d = raw::Dirent {
                e_nid: U64::new(nid),
                e_nameoff: U16::new(crate::common::fit("v6", "e_nameoff", nameoff)?),
                e_file_type: ft,
                e_reserved: 0,
            };
            out.extend_from_slice(d.as_bytes());
            nameoff += name.len();
        }
        for (name, _) in &entries[i..j] {
            out.extend_from_slice(name);
        }
        if j < entries.len() {
            out.resize(start + crate::common::index(b), 0);
        }
        i = j;
    }
    Ok(out)
}

/// The end of the block of entries starting at `i`: as many as fit in `b` bytes, at least one
/// (names are at most 255 bytes, so one always fits; this only guarantees progress).
fn block_end(entries: &[Entry<'_>], i: usize, b: u64) -> usize {
    let mut used = 0u64;
    let mut j = i;
    while j < entries.len() && used + raw::DIRENT_SIZE as u64 + entries[j].0.len() as u64 <= b {
        used += raw::DIRENT_SIZE as u64 + entries[j].0.len() as u64;
        j += 1;
    }
    j.max(i + 1)
}
