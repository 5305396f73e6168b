//! The tree as the tar stream builds it: paths inserted in stream order, implicit parents,
//! last entry wins, hard links sharing an inode. Turned into the `rafs-format` model at the end.
//!
//! Unlike the reference, an entry whose parents the tar leaves out lands under those parents
//! (the reference can misplace it under a sibling, build.md §4.2), and a non-directory that
//! replaces a directory drops the directory's children.

use crate::error::EntryErrorKind as K;
use rafs_format::model::{mode, ChunkInfo, Inode, InodeId, NodeId, Tree, Xattr, ROOT};
use std::collections::{BTreeMap, VecDeque};

/// Where a regular file's chunks come from.
#[derive(Debug, Clone)]
pub enum Data {
    /// No data (empty files and non-regular inodes).
    None,
    /// A file of the blob writer, by its index.
    Blob(u32),
    /// Chunks pointing into the layer tar (tarfs).
    Tarfs(Box<[ChunkInfo]>),
}

/// Attributes a tar header gives each name (the last name of a hard-link group in
/// breadth-first order decides the shared inode's, as the reference writes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAttrs {
    /// Full mode.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time.
    pub mtime: u64,
    /// Nanoseconds of the modification time.
    pub mtime_nsec: u32,
}

/// An inode as the build keeps it until the end: the model's [`Inode`] without what the end
/// derives (link counts, chunk lists), its rare parts boxed. A layer's metadata lives in these
/// while the data streams, so their size is most of the build's memory besides the chunk
/// buffers.
struct BuildInode {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime_nsec: u32,
    rdev: u32,
    v5_hardlink_flag: bool,
    mtime: u64,
    size: u64,
    /// Symlink target and xattrs, when there are any (most inodes have neither).
    extra: Option<Box<(Vec<u8>, Vec<Xattr>)>>,
    data: Data,
}

impl BuildInode {
    /// Keeps `inode` (its chunks and link count are the end's to set).
    fn new(inode: Inode, data: Data) -> Self {
        let extra = (!inode.symlink.is_empty() || !inode.xattrs.is_empty())
            .then(|| Box::new((inode.symlink, inode.xattrs)));
        BuildInode {
            mode: inode.mode,
            uid: inode.uid,
            gid: inode.gid,
            mtime_nsec: inode.mtime_nsec,
            rdev: inode.rdev,
            v5_hardlink_flag: inode.v5_hardlink_flag,
            mtime: inode.mtime,
            size: inode.size,
            extra,
            data,
        }
    }

    fn is_dir(&self) -> bool {
        self.mode & mode::S_IFMT == mode::S_IFDIR
    }

    fn attrs(&self) -> NameAttrs {
        NameAttrs {
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            mtime: self.mtime,
            mtime_nsec: self.mtime_nsec,
        }
    }

    /// Sets these xattrs on the inode, replacing ones of the same name (as `setxattr` does).
    fn set_xattrs(&mut self, xattrs: Vec<Xattr>) {
        let extra = self
            .extra
            .get_or_insert_with(|| Box::new((Vec::new(), Vec::new())));
        for x in xattrs {
            match extra.1.iter_mut().find(|old| old.name == x.name) {
                Some(old) => old.value = x.value,
                None => extra.1.push(x),
            }
        }
    }

    /// The model inode, moving out the boxed parts.
    fn take_inode(&mut self) -> Inode {
        let mut inode = Inode::new(self.mode);
        inode.uid = self.uid;
        inode.gid = self.gid;
        inode.mtime = self.mtime;
        inode.mtime_nsec = self.mtime_nsec;
        inode.rdev = self.rdev;
        inode.size = self.size;
        inode.v5_hardlink_flag = self.v5_hardlink_flag;
        if let Some(extra) = self.extra.take() {
            (inode.symlink, inode.xattrs) = *extra;
        }
        inode
    }
}

struct BuildNode {
    children: BTreeMap<Vec<u8>, usize>,
    inode: u32,
    /// Whether the tar listed this path (false for the implicit root and parents).
    listed: bool,
}

/// The tree under construction.
pub struct BuildTree {
    nodes: Vec<BuildNode>,
    inodes: Vec<BuildInode>,
    /// Whether a hard link sets the v5 `HARDLINK` flag on its inode: the reference's tar
    /// build sets it, its directory build does not.
    pub(crate) v5_link_flag: bool,
}

fn implicit_dir() -> Inode {
    let mut d = Inode::new(mode::S_IFDIR | 0o755);
    d.nlink = 2;
    d
}

fn show(c: &[Vec<u8>]) -> String {
    let parts: Vec<String> = c
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    format!("/{}", parts.join("/"))
}

impl Default for BuildTree {
    fn default() -> Self {
        Self::new()
    }
}

impl BuildTree {
    /// A tree holding the implicit root (0755, 0:0, mtime 0).
    pub fn new() -> Self {
        BuildTree {
            nodes: vec![BuildNode {
                children: BTreeMap::new(),
                inode: 0,
                listed: false,
            }],
            inodes: vec![BuildInode::new(implicit_dir(), Data::None)],
            v5_link_flag: true,
        }
    }

    /// [`BuildTree::new`], with hard links setting the v5 `HARDLINK` flag or not.
    pub fn with_v5_link_flag(on: bool) -> Self {
        BuildTree {
            v5_link_flag: on,
            ..Self::new()
        }
    }

    fn is_dir(&self, node: usize) -> bool {
        self.inodes[self.nodes[node].inode as usize].is_dir()
    }

    /// Absolute paths of the directories the tar did not list (the root when it has no `./`
    /// entry, parents it left out), which the builder made with default attributes. At image
    /// level they stand for the lower layers' directories.
    pub fn implicit_dirs(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if !self.nodes[0].listed {
            out.push(b"/".to_vec());
        }
        // Depth first with one path buffer: each entry is a child and the length of its
        // parent's path, so only the paths listed out are allocated.
        let mut path = Vec::new();
        let mut stack: Vec<(usize, usize, &[u8])> = Vec::new();
        let push_children = |stack: &mut Vec<_>, n: usize, at: usize| {
            for (name, &c) in &self.nodes[n].children {
                stack.push((c, at, name.as_slice()));
            }
        };
        push_children(&mut stack, 0, 0);
        while let Some((n, parent_len, name)) = stack.pop() {
            path.truncate(parent_len);
            path.push(b'/');
            path.extend_from_slice(name);
            if !self.nodes[n].listed {
                out.push(path.clone());
            }
            push_children(&mut stack, n, path.len());
        }
        out.sort();
        out
    }

    /// Paths in the tree, the root and implicit parents included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether a parent of `path` exists and is not a directory (an earlier entry replaced
    /// it); missing parents are not (they will be made as implicit directories).
    pub fn parent_replaced(&self, path: &[Vec<u8>]) -> bool {
        let mut cur = 0;
        for c in &path[..path.len().saturating_sub(1)] {
            match self.nodes[cur].children.get(c) {
                Some(&n) if self.is_dir(n) => cur = n,
                Some(_) => return true,
                None => return false,
            }
        }
        false
    }

    /// The node at a path.
    pub fn lookup(&self, path: &[Vec<u8>]) -> Option<usize> {
        let mut cur = 0;
        for c in path {
            cur = *self.nodes[cur].children.get(c)?;
        }
        Some(cur)
    }

    /// The parent directory of `path`, creating missing ones as implicit directories.
    fn parent_of(&mut self, path: &[Vec<u8>]) -> Result<usize, K> {
        let mut cur = 0;
        for (i, c) in path[..path.len() - 1].iter().enumerate() {
            cur = match self.nodes[cur].children.get(c) {
                Some(&n) => {
                    if !self.is_dir(n) {
                        return Err(K::ParentNotDirectory(show(&path[..=i])));
                    }
                    n
                }
                None => {
                    let inode = self.push_inode(implicit_dir(), Data::None)?;
                    let n = self.nodes.len();
                    self.nodes.push(BuildNode {
                        children: BTreeMap::new(),
                        inode,
                        listed: false,
                    });
                    self.nodes[cur].children.insert(c.clone(), n);
                    n
                }
            };
        }
        Ok(cur)
    }

    fn push_inode(&mut self, inode: Inode, data: Data) -> Result<u32, K> {
        let index = u32::try_from(self.inodes.len()).map_err(|_| K::BadField {
            field: "path",
            reason: "more than 2^32 inodes in one layer".into(),
        })?;
        self.inodes.push(BuildInode::new(inode, data));
        Ok(index)
    }

    /// Puts `name` at `path`, replacing what is there (its children are kept when both are
    /// directories, dropped otherwise).
    fn put(&mut self, path: &[Vec<u8>], inode: u32) -> Result<(), K> {
        if path.is_empty() {
            // The root entry replaces the implicit root's attributes.
            self.nodes[0].inode = inode;
            self.nodes[0].listed = true;
            if !self.inodes[inode as usize].is_dir() {
                return Err(K::BadField {
                    field: "type",
                    reason: "the root must be a directory".into(),
                });
            }
            return Ok(());
        }
        let Some(name) = path.last().cloned() else {
            return Err(K::EmptyPath);
        };
        let parent = self.parent_of(path)?;
        let new_is_dir = self.inodes[inode as usize].is_dir();
        match self.nodes[parent].children.get(&name).copied() {
            Some(n) => {
                let keep_children = new_is_dir && self.is_dir(n);
                let node = &mut self.nodes[n];
                node.inode = inode;
                node.listed = true;
                if !keep_children {
                    node.children.clear();
                }
            }
            None => {
                let n = self.nodes.len();
                self.nodes.push(BuildNode {
                    children: BTreeMap::new(),
                    inode,
                    listed: true,
                });
                self.nodes[parent].children.insert(name, n);
            }
        }
        Ok(())
    }

    /// Adds an entry with its own inode. Its chunks come from `data` (`inode.chunks` and
    /// `inode.nlink` are ignored: the end derives them).
    pub fn add(&mut self, path: &[Vec<u8>], inode: Inode, data: Data) -> Result<(), K> {
        let i = self.push_inode(inode, data)?;
        self.put(path, i)
    }

    /// Adds a hard link at `path` to the inode the earlier entry at `target` has now, as
    /// containerd's applier does: `link(2)`, then the link header's owner, times and xattrs
    /// set on the new name, which is the shared inode (`Lchown`, `chtimes`, `setxattr`). Its
    /// mode is not: containerd changes a link's mode only when the link's target path happens
    /// to resolve from its own working directory, which no layer can count on.
    pub fn link(
        &mut self,
        path: &[Vec<u8>],
        target: &[Vec<u8>],
        attrs: NameAttrs,
        xattrs: Vec<Xattr>,
    ) -> Result<(), K> {
        if path == target {
            return Err(K::LinkToItself);
        }
        let t = self
            .lookup(target)
            .ok_or_else(|| K::LinkTargetMissing(show(target)))?;
        if self.is_dir(t) {
            return Err(K::LinkToDirectory(show(target)));
        }
        let inode = self.nodes[t].inode;
        let shared = &mut self.inodes[inode as usize];
        shared.v5_hardlink_flag |= self.v5_link_flag;
        shared.uid = attrs.uid;
        shared.gid = attrs.gid;
        shared.mtime = attrs.mtime;
        shared.mtime_nsec = attrs.mtime_nsec;
        if !xattrs.is_empty() {
            shared.set_xattrs(xattrs);
        }
        self.put(path, inode)
    }

    /// The model tree: nodes in breadth-first order, children by name bytes, shared inodes
    /// for hard links (every name has its inode's attributes), `nlink`
    /// computed as the reference computes it. `chunks_of` gives each regular file's chunks.
    pub fn into_model(self, mut chunks_of: impl FnMut(&mut Data) -> Vec<ChunkInfo>) -> Tree {
        // Names and inodes move into the model as it grows, so the two trees do not both
        // hold them at the end (peak memory follows one copy of the metadata).
        let BuildTree {
            mut nodes,
            mut inodes,
            ..
        } = self;
        let order = breadth_first(&nodes);
        let names = NamesOfInodes::count(&nodes, &inodes, &order);
        let mut model_inode: Vec<Option<InodeId>> = vec![None; inodes.len()];
        // Each build inode is made once (`model_inode` remembers it).
        let mut make = |b: usize| names.model_inode(&mut inodes[b], b, &mut chunks_of);
        let root_inode = nodes[0].inode as usize;
        let mut tree = Tree::with_root(make(root_inode));
        // Exact room: the model is built while the build tree still exists.
        tree.nodes.reserve_exact(nodes.len());
        tree.inodes.reserve_exact(names.reachable());
        model_inode[root_inode] = Some(tree.node(ROOT).inode);
        let mut model_node: Vec<Option<NodeId>> = vec![None; nodes.len()];
        model_node[0] = Some(ROOT);
        for &n in &order {
            // Breadth-first: a node's parent was placed before it.
            let Some(parent) = model_node[n] else {
                continue;
            };
            let children = std::mem::take(&mut nodes[n].children);
            tree.nodes[parent.0 as usize]
                .children
                .reserve_exact(children.len());
            for (name, c) in children {
                let b = nodes[c].inode as usize;
                let id = *model_inode[b].get_or_insert_with(|| tree.add_inode(make(b)));
                model_node[c] = Some(tree.push_child(parent, name, id));
            }
        }
        set_dir_nlinks(&mut tree);
        tree
    }
}

/// The build nodes in breadth-first order, children by name bytes.
fn breadth_first(nodes: &[BuildNode]) -> Vec<usize> {
    let mut order = Vec::with_capacity(nodes.len());
    let mut queue = VecDeque::from([0usize]);
    while let Some(n) = queue.pop_front() {
        order.push(n);
        queue.extend(nodes[n].children.values().copied());
    }
    order
}

/// Per build inode, what its names decide: whether a name reaches it (its attributes, then:
/// every name has its inode's, a hard link's header having set them on the inode), and how
/// many names it has. Build indexes are dense, so these are vectors (a few
/// bytes per entry, not a hash table's).
struct NamesOfInodes {
    last_attrs: Vec<Option<NameAttrs>>,
    count: Vec<u32>,
}

impl NamesOfInodes {
    fn count(nodes: &[BuildNode], inodes: &[BuildInode], order: &[usize]) -> Self {
        let mut names = NamesOfInodes {
            last_attrs: vec![None; inodes.len()],
            count: vec![0; inodes.len()],
        };
        for &n in order {
            let node = &nodes[n];
            let b = node.inode as usize;
            names.last_attrs[b] = Some(inodes[b].attrs());
            names.count[b] += 1;
        }
        names
    }

    /// Inodes some name reaches.
    fn reachable(&self) -> usize {
        self.last_attrs.iter().flatten().count()
    }

    /// The model inode of build inode `b`, moved out of `bi`: attributes from its last name,
    /// chunks from `chunks_of`, a non-directory's link count from its names.
    fn model_inode(
        &self,
        bi: &mut BuildInode,
        b: usize,
        chunks_of: &mut impl FnMut(&mut Data) -> Vec<ChunkInfo>,
    ) -> Inode {
        let mut inode = bi.take_inode();
        if let Some(a) = self.last_attrs[b] {
            inode.mode = a.mode;
            inode.uid = a.uid;
            inode.gid = a.gid;
            inode.mtime = a.mtime;
            inode.mtime_nsec = a.mtime_nsec;
        }
        if inode.is_reg() {
            inode.chunks = chunks_of(&mut bi.data);
        }
        if !inode.is_dir() {
            inode.nlink = self.count[b];
        }
        inode
    }
}

/// A directory's link count: 2 + its subdirectories (the reference leaves out the parent's
/// link).
fn set_dir_nlinks(tree: &mut Tree) {
    let mut subdirs = vec![0u32; tree.inodes.len()];
    for node in &tree.nodes {
        if let Some(p) = node.parent {
            if tree.inode(node.inode).is_dir() {
                let parent = tree.node(p).inode.0 as usize;
                if let Some(count) = subdirs.get_mut(parent) {
                    *count += 1;
                }
            }
        }
    }
    for (inode, count) in tree.inodes.iter_mut().zip(subdirs) {
        if inode.is_dir() {
            inode.nlink = 2 + count;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Vec<Vec<u8>> {
        p.split('/').map(|c| c.as_bytes().to_vec()).collect()
    }

    #[test]
    fn implicit_dirs_are_the_unlisted_directories_sorted() {
        let mut tree = BuildTree::new();
        let file = || Inode::new(mode::S_IFREG | 0o644);
        let dir = || Inode::new(mode::S_IFDIR | 0o755);
        tree.add(&path("a/b/c"), file(), Data::None).unwrap();
        tree.add(&path("x"), dir(), Data::None).unwrap();
        tree.add(&path("x/y/z/f"), file(), Data::None).unwrap();
        tree.add(&path("x/y/z"), dir(), Data::None).unwrap();
        tree.add(&path("a/b2"), dir(), Data::None).unwrap();
        let got: Vec<String> = tree
            .implicit_dirs()
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        assert_eq!(got, ["/", "/a", "/a/b", "/x/y"]);
        tree.add(&[], dir(), Data::None).unwrap();
        assert_eq!(tree.implicit_dirs()[0], b"/a");
    }
}
