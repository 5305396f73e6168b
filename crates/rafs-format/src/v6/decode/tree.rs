//! Phase 4: the directory tree, walked from the root with an explicit stack.

use super::inode::read_inode;
use super::{Ctx, DataLoc};
use crate::error::{derr, with_path, DecodeErrorKind as K, Result};
use crate::model::*;
use crate::ondisk::v6 as raw;
use crate::read::{check_name, invalid, record, slice, At};
use std::collections::HashMap;

/// A directory waiting to be read: its nid, node, parent's nid, data and depth.
struct PendingDir {
    nid: u64,
    node: NodeId,
    parent_nid: u64,
    data: DataLoc,
    depth: u32,
}

/// The tree being built and what the walk knows of each nid.
struct Walker<'c, 'a> {
    ctx: &'c Ctx<'a>,
    tree: Tree,
    inode_of_nid: HashMap<u64, InodeId>,
    node_of_nid: HashMap<u64, NodeId>,
    /// The most paths the image may have: `s_inos`, capped by the limits.
    max_paths: u64,
}

/// Walks the tree from `root_nid`; returns it with the node each nid was first seen at.
pub(super) fn walk(
    ctx: &Ctx<'_>,
    root_nid: u64,
    inos: u64,
) -> Result<(Tree, HashMap<u64, NodeId>)> {
    let (root_inode, root) = read_inode(ctx, root_nid).map_err(|e| with_path(e, || "/".into()))?;
    if !root_inode.is_dir() {
        let at = At::new("v6 inode", root.offset);
        return Err(at.invalid(0, "root", root_nid, "root is not a directory"));
    }
    let mut w = Walker {
        ctx,
        tree: Tree::default(),
        inode_of_nid: HashMap::from([(root_nid, InodeId(0))]),
        node_of_nid: HashMap::from([(root_nid, ROOT)]),
        max_paths: inos.min(ctx.limits.max_nodes),
    };
    w.tree.nodes.push(Node {
        name: b"/".to_vec(),
        parent: None,
        children: Vec::new(),
        inode: InodeId(0),
    });
    w.tree.inodes.push(root_inode);
    let mut stack = vec![PendingDir {
        nid: root_nid,
        node: ROOT,
        parent_nid: root_nid,
        data: root,
        depth: 0,
    }];
    while let Some(dir) = stack.pop() {
        let dir_path = w.tree.path(dir.node);
        let subdirs = w
            .visit_dir(&dir, &dir_path)
            .map_err(|e| with_path(e, || dir_path.clone()))?;
        stack.extend(subdirs.into_iter().rev());
    }
    Ok((w.tree, w.node_of_nid))
}

impl Walker<'_, '_> {
    /// Reads one directory's entries into the tree; returns its subdirectories to visit.
    fn visit_dir(&mut self, dir: &PendingDir, dir_path: &str) -> Result<Vec<PendingDir>> {
        let entries = read_dirents(self.ctx, &dir.data)?;
        // Children sit one level deeper; a directory at the limit may exist if it is empty
        // (the rule the builders and the v5 decoder follow).
        let max_depth = self.ctx.limits.max_depth;
        if dir.depth >= max_depth && entries.iter().any(|e| !is_dot(e.name)) {
            let kind = K::LimitExceeded {
                limit: "max_depth",
                value: u64::from(dir.depth) + 1,
                max: u64::from(max_depth),
            };
            return Err(derr("v6 inode", dir.data.offset, kind));
        }
        let mut prev: Option<&[u8]> = None;
        let mut subdirs = Vec::new();
        for e in &entries {
            let child_path = || {
                format!(
                    "{}/{}",
                    dir_path.trim_end_matches('/'),
                    String::from_utf8_lossy(e.name)
                )
            };
            if is_dot(e.name) {
                // Errors in `.` and `..` belong to the directory, whose path the caller adds.
                self.check_entry(dir, e, prev)?;
            } else {
                self.check_entry(dir, e, prev)
                    .map_err(|err| with_path(err, child_path))?;
                let sub = self
                    .add_entry(dir, e)
                    .map_err(|err| with_path(err, child_path))?;
                subdirs.extend(sub);
            }
            prev = Some(e.name);
        }
        Ok(subdirs)
    }

    /// An entry's name, its order after `prev`, and where `.` and `..` point.
    fn check_entry(&self, dir: &PendingDir, e: &Dirent<'_>, prev: Option<&[u8]>) -> Result<()> {
        // A name is a slice of the bootstrap: its offset is where its bytes start.
        let name_at = (e.name.as_ptr() as usize - self.ctx.data.as_ptr() as usize) as u64;
        // Names are checked before order, so a bad byte is reported as what it is.
        if !is_dot(e.name) {
            check_name(e.name, self.ctx.limits.max_name_len)
                .map_err(|k| derr("v6 dirent name", name_at, k))?;
        }
        if prev.is_some_and(|p| p >= e.name) {
            let name = String::from_utf8_lossy(e.name).into_owned();
            return Err(derr("v6 dirent", name_at, K::UnsortedDirectory { name }));
        }
        if is_dot(e.name) {
            let want = if e.name == b"." {
                dir.nid
            } else {
                dir.parent_nid
            };
            if e.nid != want {
                return Err(invalid!(
                    e.at,
                    raw::Dirent,
                    e_nid,
                    e.nid,
                    "'.' or '..' names the wrong directory"
                ));
            }
        }
        Ok(())
    }

    /// Adds a named entry: a new inode, or a hard link to one already seen.
    fn add_entry(&mut self, dir: &PendingDir, e: &Dirent<'_>) -> Result<Option<PendingDir>> {
        if self.tree.nodes.len() as u64 >= self.max_paths {
            let value = self.tree.nodes.len() as u64 + 1;
            return Err(e.at.invalid(0, "entries", value, "more paths than s_inos"));
        }
        if let Some(existing) = self.inode_of_nid.get(&e.nid).copied() {
            // A second path to an inode: only non-directories may be hard linked.
            let inode = self.tree.inode(existing);
            if inode.is_dir() || e.file_type == raw::file_type::DIR {
                return Err(e.at.err(0, K::DirectoryCycle { inode: e.nid }));
            }
            check_file_type(e, inode.mode)?;
            self.tree.push_child(dir.node, e.name.to_vec(), existing);
            return Ok(None);
        }
        let (child_inode, data) = read_inode(self.ctx, e.nid)?;
        check_file_type(e, child_inode.mode)?;
        let is_dir = child_inode.is_dir();
        let inode_id = self.tree.add_inode(child_inode);
        let node = self.tree.push_child(dir.node, e.name.to_vec(), inode_id);
        self.inode_of_nid.insert(e.nid, inode_id);
        self.node_of_nid.insert(e.nid, node);
        Ok(is_dir.then_some(PendingDir {
            nid: e.nid,
            node,
            parent_nid: dir.nid,
            data,
            depth: dir.depth + 1,
        }))
    }
}

fn is_dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

/// A dirent's file type agrees with the inode's mode (or is UNKNOWN).
fn check_file_type(e: &Dirent<'_>, mode: u32) -> Result<()> {
    let want = super::super::dirent_file_type(mode);
    if e.file_type != want && e.file_type != raw::file_type::UNKNOWN {
        return Err(e.at.invalid(
            0,
            "e_file_type",
            u64::from(e.file_type),
            "differs from the inode's mode",
        ));
    }
    Ok(())
}

/// Block `k` of a directory's or symlink's data (the last one may be the inline tail).
pub(super) fn data_block<'a>(ctx: &Ctx<'a>, d: &DataLoc, k: u64) -> Result<&'a [u8]> {
    let b = ctx.block;
    let len = (d.size - k * b).min(b);
    let tail = d.size % b;
    let last = d.size.div_ceil(b) - 1;
    if d.layout == raw::LAYOUT_FLAT_INLINE && tail != 0 && k == last {
        return slice(ctx.data, d.body_end, len, "v6 inline tail");
    }
    let at = u64::from(d.raw_u)
        .checked_mul(b)
        .and_then(|a| a.checked_add(k * b))
        .unwrap_or(u64::MAX);
    slice(ctx.data, at, len, "v6 data block")
}

/// One directory entry, its name borrowed from the bootstrap.
struct Dirent<'a> {
    /// The dirent record.
    at: At,
    name: &'a [u8],
    nid: u64,
    file_type: u8,
}

/// Every entry of a directory, block by block.
fn read_dirents<'a>(ctx: &Ctx<'a>, d: &DataLoc) -> Result<Vec<Dirent<'a>>> {
    let mut out = Vec::new();
    for k in 0..d.size.div_ceil(ctx.block) {
        let blk = data_block(ctx, d, k)?;
        let blk_at = blk.as_ptr() as u64 - ctx.data.as_ptr() as u64;
        read_block_dirents(ctx, blk, blk_at, &mut out)?;
    }
    Ok(out)
}

/// The entries of one directory block at `blk_at`: records first, then their names.
fn read_block_dirents<'a>(
    ctx: &Ctx<'a>,
    blk: &'a [u8],
    blk_at: u64,
    out: &mut Vec<Dirent<'a>>,
) -> Result<()> {
    type D = raw::Dirent;
    let first_at = At::new("v6 dirent", blk_at);
    if blk.len() < raw::DIRENT_SIZE {
        // The record itself is cut short: reported at its start.
        let reason = "directory block shorter than one entry";
        return Err(first_at.invalid(0, "e_nameoff", blk.len() as u64, reason));
    }
    let first: D = record(blk, 0, first_at.structure)?;
    let nameoff0 = usize::from(first.e_nameoff.get());
    if nameoff0 % raw::DIRENT_SIZE != 0
        || nameoff0 == 0
        || nameoff0 as u64 >= ctx.block
        || nameoff0 > blk.len()
    {
        let reason = "first name offset must be a positive multiple of 12 inside the block";
        return Err(invalid!(
            first_at,
            D,
            e_nameoff,
            first.e_nameoff.get(),
            reason
        ));
    }
    let n = nameoff0 / raw::DIRENT_SIZE;
    for i in 0..n {
        let at = At::new("v6 dirent", blk_at + (i * raw::DIRENT_SIZE) as u64);
        let e: D = record(blk, (i * raw::DIRENT_SIZE) as u64, at.structure)?;
        let start = usize::from(e.e_nameoff.get());
        let end = if i + 1 < n {
            let next: D = record(blk, ((i + 1) * raw::DIRENT_SIZE) as u64, at.structure)?;
            usize::from(next.e_nameoff.get())
        } else {
            blk.len()
        };
        if start < nameoff0 || start > end || end > blk.len() {
            return Err(invalid!(
                at,
                D,
                e_nameoff,
                e.e_nameoff.get(),
                "names overlap or leave the block"
            ));
        }
        let mut name = &blk[start..end];
        if i + 1 == n {
            // The last name of a block ends at the block's end or at the first NUL.
            if let Some(p) = name.iter().position(|b| *b == 0) {
                name = &name[..p];
            }
        }
        out.push(Dirent {
            at,
            name,
            nid: e.e_nid.get(),
            file_type: e.e_file_type,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::model::FsVersion;
    use crate::{DecodeErrorKind as K, Error, Limits};

    #[test]
    fn children_below_the_depth_limit_are_refused_at_their_directory() {
        let bytes = crate::encode(&crate::testing::sample(FsVersion::V6)).unwrap();
        let limits = Limits {
            max_depth: 0,
            ..Limits::default()
        };
        let Err(Error::Decode(e)) = super::super::decode_with_limits(&bytes, &limits) else {
            panic!("a root with children exceeds depth 0");
        };
        assert_eq!((e.structure, e.path.as_deref()), ("v6 inode", Some("/")));
        assert!(matches!(
            e.kind,
            K::LimitExceeded {
                limit: "max_depth",
                value: 1,
                max: 0
            }
        ));
    }
}
