//! Phase 4: the directory tree, walked from the root through each directory's contiguous run
//! of child records, every index met at most once.

use super::inode::{read_record, to_inode, Record};
use super::superblock::Layout;
use crate::common::index as idx;
use crate::error::{derr, with_path, DecodeErrorKind as K, Result};
use crate::model::*;
use crate::ondisk::v5 as raw;
use crate::read::{check_name, invalid, offset_in, At};
use crate::Limits;

/// Marks an index not yet placed in the tree.
const UNSEEN: u32 = u32::MAX;

/// A directory waiting to be read: its index, i_ino, children run and depth.
struct PendingDir {
    index: u64,
    ino: u64,
    first_child: u64,
    child_count: u64,
    depth: u32,
}

/// The tree being built and where each inode table index landed in it.
pub(super) struct Walker<'a> {
    data: &'a [u8],
    layout: &'a Layout,
    limits: &'a Limits,
    blobs: &'a [Blob],
    inode_table: &'a [u8],
    pub tree: Tree,
    /// Per index (1-based): its node, or [`UNSEEN`].
    pub node_of_index: Vec<u32>,
    inode_of_index: Vec<u32>,
}

impl<'a> Walker<'a> {
    pub(super) fn new(
        data: &'a [u8],
        layout: &'a Layout,
        limits: &'a Limits,
        blobs: &'a [Blob],
    ) -> Result<Self> {
        let it = layout.inode_table;
        let inode_table = crate::read::slice(data, it.offset, it.size, "v5 inode table")?;
        // Entries are at most `Limits::max_nodes`, checked with the superblock.
        let slots = idx(layout.entries).saturating_add(1);
        Ok(Self {
            data,
            layout,
            limits,
            blobs,
            inode_table,
            tree: Tree::default(),
            node_of_index: vec![UNSEEN; slots],
            inode_of_index: vec![UNSEEN; slots],
        })
    }

    /// Walks every directory from the root; then every index must have been reached.
    pub(super) fn walk(&mut self) -> Result<()> {
        let root = self.read(1)?;
        let mut stack = vec![self.add_root(&root)?];
        while let Some(dir) = stack.pop() {
            let subdirs = self.visit_dir(&dir)?;
            stack.extend(subdirs.into_iter().rev());
        }
        if let Some(index) =
            (1..=self.layout.entries).find(|i| self.node_of_index[idx(*i)] == UNSEEN)
        {
            return Err(derr(
                "v5 inode table",
                self.table_slot(index),
                K::Unreachable { index },
            ));
        }
        Ok(())
    }

    /// Offset of index `index`'s slot in the inode table.
    fn table_slot(&self, index: u64) -> u64 {
        self.layout.inode_table.offset + (index - 1) * 4
    }

    /// Offset of the record of index `index`, checked to lie in the inode area.
    fn offset_of(&self, index: u64) -> Result<u64> {
        let at = idx((index - 1) * 4);
        let t = self.inode_table;
        let v = u64::from(u32::from_le_bytes([t[at], t[at + 1], t[at + 2], t[at + 3]]));
        let off = v << 3;
        let len = self.data.len() as u64;
        if off <= raw::SUPERBLOCK_SIZE as u64 || v >= 1 << 29 || off + raw::INODE_SIZE as u64 > len
        {
            let at = At::new("v5 inode table", self.table_slot(index));
            return Err(at.invalid(0, "inode offset", off, "outside the inode area"));
        }
        Ok(off)
    }

    fn read(&self, index: u64) -> Result<Record<'a>> {
        read_record(
            self.data,
            self.offset_of(index)?,
            self.layout.chunk_size,
            self.limits,
        )
    }

    /// The root: index 1, a directory whose i_ino is 1.
    fn add_root(&mut self, root: &Record<'_>) -> Result<PendingDir> {
        if root.head.i_ino.get() != 1 || root.file_type() != mode::S_IFDIR {
            let reason = "index 1 must be the root directory with i_ino 1";
            return Err(root.at.invalid(0, "root", root.head.i_ino.get(), reason));
        }
        let root_inode = to_inode(root, self.blobs)?;
        self.tree.nodes.push(Node {
            name: b"/".to_vec(),
            parent: None,
            children: Vec::new(),
            inode: InodeId(0),
        });
        self.tree.inodes.push(root_inode);
        self.node_of_index[1] = 0;
        self.inode_of_index[1] = 0;
        Ok(pending(1, root, 0))
    }

    /// Reads one directory's children into the tree; returns its subdirectories to visit.
    fn visit_dir(&mut self, dir: &PendingDir) -> Result<Vec<PendingDir>> {
        let dir_node = NodeId(self.node_of_index[idx(dir.index)]);
        if dir.child_count == 0 {
            return Ok(Vec::new());
        }
        let dir_path = self.tree.path(dir_node);
        self.check_children_run(dir)
            .map_err(|e| with_path(e, || dir_path.clone()))?;
        let mut prev: Option<&[u8]> = None;
        let mut subdirs = Vec::new();
        for index in dir.first_child..dir.first_child + dir.child_count {
            if self.node_of_index[idx(index)] != UNSEEN {
                let e = derr(
                    "v5 inode table",
                    self.table_slot(index),
                    K::DirectoryCycle { inode: index },
                );
                return Err(with_path(e, || dir_path.clone()));
            }
            let rec = self.read(index)?;
            let child_path = || {
                format!(
                    "{}/{}",
                    dir_path.trim_end_matches('/'),
                    String::from_utf8_lossy(rec.name)
                )
            };
            self.check_child(dir, &rec, prev)
                .map_err(|e| with_path(e, child_path))?;
            prev = Some(rec.name);
            let sub = self
                .add_child(dir_node, index, dir, &rec)
                .map_err(|e| with_path(e, child_path))?;
            subdirs.extend(sub);
        }
        Ok(subdirs)
    }

    /// The directory's depth and children run [first, first + count) within the table.
    fn check_children_run(&self, dir: &PendingDir) -> Result<()> {
        let max_depth = self.limits.max_depth;
        if dir.depth >= max_depth {
            let kind = K::LimitExceeded {
                limit: "max_depth",
                value: u64::from(dir.depth) + 1,
                max: u64::from(max_depth),
            };
            return Err(derr("v5 inode", self.offset_of(dir.index)?, kind));
        }
        let (first, count) = (dir.first_child, dir.child_count);
        if first < 2
            || first
                .checked_add(count)
                .is_none_or(|end| end - 1 > self.layout.entries)
        {
            let at = At::new("v5 inode", self.offset_of(dir.index)?);
            return Err(invalid!(
                at,
                raw::Inode,
                i_child_index,
                first,
                "children outside the inode table"
            ));
        }
        Ok(())
    }

    /// A child's name, its order after `prev`, and its parent pointer.
    fn check_child(&self, dir: &PendingDir, rec: &Record<'_>, prev: Option<&[u8]>) -> Result<()> {
        check_name(rec.name, self.limits.max_name_len)
            .map_err(|k| derr("v5 inode name", rec.name_at(), k))?;
        if prev.is_some_and(|p| p >= rec.name) {
            let name = String::from_utf8_lossy(rec.name).into_owned();
            return Err(rec.at.err(0, K::UnsortedDirectory { name }));
        }
        if rec.head.i_parent.get() != dir.ino {
            let reason = "does not name the containing directory";
            return Err(invalid!(
                rec.at,
                raw::Inode,
                i_parent,
                rec.head.i_parent.get(),
                reason
            ));
        }
        Ok(())
    }

    /// Places the record at `index` under `dir_node`: a new inode, or a later path of a hard
    /// link sharing the first path's inode.
    fn add_child(
        &mut self,
        dir_node: NodeId,
        index: u64,
        dir: &PendingDir,
        rec: &Record<'_>,
    ) -> Result<Option<PendingDir>> {
        let ino = rec.head.i_ino.get();
        let inode_id = if ino == index {
            self.tree.add_inode(to_inode(rec, self.blobs)?)
        } else {
            self.shared_inode(rec, index)?
        };
        let node = self.tree.push_child(dir_node, rec.name.to_vec(), inode_id);
        self.node_of_index[idx(index)] = node.0;
        self.inode_of_index[idx(index)] = inode_id.0;
        if rec.file_type() != mode::S_IFDIR {
            return Ok(None);
        }
        if ino != index {
            return Err(rec.at.err(0, K::DirectoryCycle { inode: index }));
        }
        Ok(Some(pending(index, rec, dir.depth + 1)))
    }

    /// The inode a hard link's later path shares: an earlier non-directory with equal attributes.
    fn shared_inode(&self, rec: &Record<'_>, index: u64) -> Result<InodeId> {
        let ino = rec.head.i_ino.get();
        let is_primary = ino >= 1 && ino < index && self.inode_of_index[idx(ino)] != UNSEEN;
        if rec.file_type() == mode::S_IFDIR || !is_primary {
            let reason = "neither the record's own index nor an earlier hard-linked file";
            return Err(rec
                .at
                .invalid(offset_in!(raw::Inode, i_ino), "i_ino", ino, reason));
        }
        let id = InodeId(self.inode_of_index[idx(ino)]);
        if &to_inode(rec, self.blobs)? != self.tree.inode(id) {
            return Err(rec.at.err(0, K::HardLinkMismatch { ino }));
        }
        Ok(id)
    }
}

fn pending(index: u64, rec: &Record<'_>, depth: u32) -> PendingDir {
    PendingDir {
        index,
        ino: rec.head.i_ino.get(),
        first_child: u64::from(rec.head.i_child_index.get()),
        child_count: u64::from(rec.head.i_child_count.get()),
        depth,
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::*;

    #[test]
    fn a_child_naming_another_parent_is_reported_at_its_i_parent() {
        let mut child = 0;
        let e = decode_corrupted(FsVersion::V5, |b| {
            let table = usize::try_from(u64_at(b, 32)).unwrap();
            // Index 2 is the root's first child, `/f`.
            child = (u32::from_le_bytes(b[table + 4..table + 8].try_into().unwrap()) as usize) << 3;
            b[child + 32..child + 40].copy_from_slice(&5u64.to_le_bytes());
        });
        assert_eq!(
            (e.structure, e.offset, e.path.as_deref()),
            ("v5 inode", child as u64 + 32, Some("/f"))
        );
        assert!(matches!(
            e.kind,
            K::InvalidField {
                field: "i_parent",
                value: 5,
                ..
            }
        ));
    }
}
