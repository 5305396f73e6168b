//! The whole image: settings, blobs, tree, prefetch list, and what codecs ask of it.

use super::*;

/// Result of [`Tree::index_order`].
#[derive(Debug, Clone)]
pub struct IndexOrder {
    /// Nodes in numbering order (`order[i]` has index `i + 1`).
    pub order: Vec<NodeId>,
    /// Index of each node (by `NodeId`).
    pub index: Vec<u32>,
    /// For directories: the number handed out next when the directory was visited, i.e. its
    /// first child's index (also set for empty directories).
    pub first_child: Vec<u32>,
    /// Inode number of each node: its index, or the first path's index for a shared inode.
    pub ino: Vec<u32>,
}

/// A whole image: settings, blobs, tree and prefetch list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Superblock settings.
    pub superblock: Superblock,
    /// Blob table, in blob-index order.
    pub blobs: Vec<Blob>,
    /// The tree.
    pub tree: Tree,
    /// Nodes to prefetch, in pattern order.
    pub prefetch: Vec<NodeId>,
    /// A v6 chunk table kept verbatim because it is not the one the tree implies: the
    /// reference's layered builds and merges without blob ids write tables in which one chunk
    /// address names several records. `None` for every well-formed image; the v6 encoder
    /// writes it only while every chunk of the tree is still found in it.
    pub v6_chunk_table: Option<Vec<ChunkInfo>>,
}

impl Image {
    /// Compares the parts of two images that both formats store: the tree (names, inode
    /// sharing, attributes, xattrs, chunks), the blob identities and the main settings.
    /// Ignores the fields only one format can hold (v5 `HARDLINK` flag, v5 `i_rdev` of
    /// non-devices, v6-only blob-table fields, build time), which a v5 <-> v6 rewrite cannot
    /// carry. Returns a description of the first difference.
    pub fn tree_difference(&self, other: &Image) -> Option<String> {
        let (a, b) = (&self.superblock, &other.superblock);
        if (a.chunk_size, a.compressor, a.digester, a.explicit_uid_gid)
            != (b.chunk_size, b.compressor, b.digester, b.explicit_uid_gid)
        {
            return Some(format!("superblock settings differ: {a:?} vs {b:?}"));
        }
        if self.blobs.len() != other.blobs.len() {
            return Some(format!(
                "blob count {} vs {}",
                self.blobs.len(),
                other.blobs.len()
            ));
        }
        for (i, (x, y)) in self.blobs.iter().zip(&other.blobs).enumerate() {
            if (
                &x.blob_id,
                x.chunk_count,
                x.compressed_size,
                x.uncompressed_size,
            ) != (
                &y.blob_id,
                y.chunk_count,
                y.compressed_size,
                y.uncompressed_size,
            ) {
                return Some(format!("blob {i} differs: {x:?} vs {y:?}"));
            }
        }
        let (ta, tb) = (&self.tree, &other.tree);
        let (oa, ob) = (ta.dfs_preorder(), tb.dfs_preorder());
        if oa.len() != ob.len() {
            return Some(format!("node count {} vs {}", oa.len(), ob.len()));
        }
        // Inode sharing must correspond one to one.
        let mut map_a = std::collections::HashMap::new();
        let mut map_b = std::collections::HashMap::new();
        for (na, nb) in oa.iter().zip(&ob) {
            let (x, y) = (ta.node(*na), tb.node(*nb));
            let path = ta.path(*na);
            if x.name != y.name || x.children.len() != y.children.len() {
                return Some(format!("{path}: name or child count differs"));
            }
            let ia = *map_a.entry(x.inode).or_insert(y.inode);
            let ib = *map_b.entry(y.inode).or_insert(x.inode);
            if ia != y.inode || ib != x.inode {
                return Some(format!("{path}: hard-link grouping differs"));
            }
            let (p, q) = (ta.inode(x.inode), tb.inode(y.inode));
            let rdev_matters = p.is_special() || q.is_special();
            if p.mode != q.mode
                || p.uid != q.uid
                || p.gid != q.gid
                || p.mtime != q.mtime
                || p.mtime_nsec != q.mtime_nsec
                || (rdev_matters && p.rdev != q.rdev)
                || p.size != q.size
                || p.nlink != q.nlink
                || p.symlink != q.symlink
                || p.xattrs != q.xattrs
                || !same_chunks(&p.chunks, &q.chunks)
            {
                return Some(format!("{path}: inode differs:\n  {p:?}\n  {q:?}"));
            }
        }
        None
    }
}

/// Chunks equal but for `file_offset`: v6 keeps one record per distinct chunk, so a chunk
/// shared by two files carries the file offset of one of them after a v6 round trip.
fn same_chunks(a: &[ChunkInfo], b: &[ChunkInfo]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            ChunkInfo {
                file_offset: 0,
                ..*x
            } == ChunkInfo {
                file_offset: 0,
                ..*y
            }
        })
}

impl Image {
    /// The same image prepared for encoding as `version`: a v5 <-> v6 rewrite. v5 has no
    /// tarfs mode, no per-blob meta location and no verbatim chunk table; v6 requires
    /// `ALIGNED` on non-tarfs blobs, which its encoder adds.
    pub fn converted_to(&self, version: FsVersion) -> Image {
        let mut out = self.clone();
        if version == self.superblock.fs_version {
            return out;
        }
        out.superblock.fs_version = version;
        out.v6_chunk_table = None;
        if version == FsVersion::V5 {
            out.superblock.tarfs = false;
            out.superblock.encrypted = false;
        }
        out
    }

    /// Number of distinct inodes (hard links counted once).
    pub fn unique_inodes(&self) -> usize {
        let mut seen = vec![false; self.tree.inodes.len()];
        self.tree
            .nodes
            .iter()
            .filter(|n| !std::mem::replace(&mut seen[n.inode.0 as usize], true))
            .count()
    }
}

/// Nodes named exactly by the patterns, in pattern order; a pattern under an earlier one is
/// dropped, relative patterns are ignored, empty regular files never match (build.md §10).
pub fn prefetch_targets(tree: &Tree, patterns: &[String]) -> Vec<NodeId> {
    let mut kept = PrefixSet::default();
    let mut out = Vec::new();
    for p in patterns {
        let p = p.trim();
        if !p.starts_with('/') {
            continue;
        }
        let c: Vec<&[u8]> = p
            .as_bytes()
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
            .collect();
        if c.contains(&&b".."[..]) || !kept.insert_unless_covered(&c) {
            continue;
        }
        let Some(node) = tree.lookup_components(c.iter().copied()) else {
            continue;
        };
        let inode = tree.inode_of(node);
        if !(inode.is_reg() && inode.size == 0) {
            out.push(node);
        }
    }
    out
}

/// Patterns kept so far, as a trie of components, so that telling whether an earlier pattern
/// covers a new one costs the new one's length, not the number of earlier patterns.
#[derive(Default)]
struct PrefixSet<'a> {
    edges: std::collections::HashMap<(usize, &'a [u8]), usize>,
    terminal: Vec<bool>,
}

impl<'a> PrefixSet<'a> {
    /// Inserts `path` unless it or one of its prefixes is already in; returns whether it was
    /// inserted.
    fn insert_unless_covered(&mut self, path: &[&'a [u8]]) -> bool {
        if self.terminal.is_empty() {
            self.terminal.push(false);
        }
        let mut node = 0;
        for c in path {
            if self.terminal[node] {
                return false;
            }
            node = match self.edges.get(&(node, *c)) {
                Some(&n) => n,
                None => {
                    self.terminal.push(false);
                    let n = self.terminal.len() - 1;
                    self.edges.insert((node, *c), n);
                    n
                }
            };
        }
        if self.terminal[node] {
            return false;
        }
        self.terminal[node] = true;
        true
    }
}
