//! The tree: nodes (one per path), inodes (one per file), and walking it.

use super::*;

/// An extended attribute: full name (with namespace prefix) and value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Xattr {
    /// Full name, e.g. `user.comment`.
    pub name: Vec<u8>,
    /// Value (any bytes, may be empty).
    pub value: Vec<u8>,
}

/// File type bits of `st_mode`.
pub mod mode {
    /// Mask of the type bits.
    pub const S_IFMT: u32 = 0o170000;
    /// Socket.
    pub const S_IFSOCK: u32 = 0o140000;
    /// Symlink.
    pub const S_IFLNK: u32 = 0o120000;
    /// Regular file.
    pub const S_IFREG: u32 = 0o100000;
    /// Block device.
    pub const S_IFBLK: u32 = 0o060000;
    /// Directory.
    pub const S_IFDIR: u32 = 0o040000;
    /// Character device.
    pub const S_IFCHR: u32 = 0o020000;
    /// FIFO.
    pub const S_IFIFO: u32 = 0o010000;
}

/// Index of a [`Node`] in [`Tree::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub u32);

/// Index of an [`Inode`] in [`Tree::inodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InodeId(pub u32);

impl NodeId {
    /// The id of position `index` of [`Tree::nodes`].
    pub fn at(index: usize) -> Self {
        NodeId(id_at(index))
    }
}

impl InodeId {
    /// The id of position `index` of [`Tree::inodes`].
    pub fn at(index: usize) -> Self {
        InodeId(id_at(index))
    }
}

/// One path of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Name bytes (`/` for the root).
    pub name: Vec<u8>,
    /// Parent directory (`None` for the root).
    pub parent: Option<NodeId>,
    /// Children, sorted by name bytes (directories only).
    pub children: Vec<NodeId>,
    /// The inode this path names.
    pub inode: InodeId,
}

/// A file: attributes, xattrs and data references, shared by all its paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    /// Full `st_mode`.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds.
    pub mtime: u64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u32,
    /// Device number in the 32-bit glibc `makedev` encoding for devices, FIFOs and sockets.
    /// For other inodes: the value v5 stores in `i_rdev` (the tar builder writes 0xFFFF_FFFF,
    /// the directory builder 0), which v6 cannot store; the v6 decoder fills
    /// [`NON_DEVICE_RDEV`].
    pub rdev: u32,
    /// Size: file size for regular files, target length for symlinks, 0 for directories
    /// (each format derives its own directory size).
    pub size: u64,
    /// Link count as stored.
    pub nlink: u32,
    /// Symlink target (symlinks only).
    pub symlink: Vec<u8>,
    /// Extended attributes, in the order they are written.
    pub xattrs: Vec<Xattr>,
    /// Chunks of a regular file, in file order.
    pub chunks: Vec<ChunkInfo>,
    /// v5 `HARDLINK` inode flag, which the tar builder sets on hard-linked files and merge
    /// keeps; v6 cannot store it and its decoder derives it from `nlink > 1`.
    pub v5_hardlink_flag: bool,
}

/// `rdev` the v6 decoder gives inodes that are not devices (what the tar builder writes).
pub const NON_DEVICE_RDEV: u32 = u32::MAX;

impl Inode {
    /// A new inode of the given mode with every other attribute zero.
    pub fn new(mode: u32) -> Self {
        Inode {
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            mtime_nsec: 0,
            rdev: NON_DEVICE_RDEV,
            size: 0,
            nlink: 1,
            symlink: Vec::new(),
            xattrs: Vec::new(),
            chunks: Vec::new(),
            v5_hardlink_flag: false,
        }
    }

    /// File type bits.
    pub fn file_type(&self) -> u32 {
        self.mode & mode::S_IFMT
    }
    /// Is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == mode::S_IFDIR
    }
    /// Is a regular file.
    pub fn is_reg(&self) -> bool {
        self.file_type() == mode::S_IFREG
    }
    /// Is a symlink.
    pub fn is_symlink(&self) -> bool {
        self.file_type() == mode::S_IFLNK
    }
    /// Is a character or block device, FIFO or socket.
    pub fn is_special(&self) -> bool {
        matches!(
            self.file_type(),
            mode::S_IFCHR | mode::S_IFBLK | mode::S_IFIFO | mode::S_IFSOCK
        )
    }
}

/// The tree: an arena of nodes and inodes; node 0 is the root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    /// Every path; `nodes[0]` is the root.
    pub nodes: Vec<Node>,
    /// Every inode.
    pub inodes: Vec<Inode>,
}

/// One path of an image, as [`Tree::entries`] yields it.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// The node.
    pub node: NodeId,
    /// Its absolute path, bytes.
    pub path: Vec<u8>,
    /// Its inode (attributes, xattrs, symlink target, chunks).
    pub inode: &'a Inode,
}

/// The iterator of [`Tree::entries`]: an explicit stack, never recursion.
#[derive(Debug)]
pub struct Entries<'a> {
    tree: &'a Tree,
    stack: Vec<(NodeId, Vec<u8>)>,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        let (node, path) = self.stack.pop()?;
        let n = self.tree.nodes.get(node.0 as usize)?;
        for &c in n.children.iter().rev() {
            let name = &self.tree.nodes.get(c.0 as usize)?.name;
            let mut p = path.clone();
            if p.len() > 1 {
                p.push(b'/');
            }
            p.extend_from_slice(name);
            self.stack.push((c, p));
        }
        let inode = self.tree.inodes.get(n.inode.0 as usize)?;
        Some(Entry { node, path, inode })
    }
}

/// The root's node id.
pub const ROOT: NodeId = NodeId(0);

impl Tree {
    /// A tree holding only a root directory with the given inode.
    pub fn with_root(root: Inode) -> Self {
        Tree {
            nodes: vec![Node {
                name: b"/".to_vec(),
                parent: None,
                children: Vec::new(),
                inode: InodeId(0),
            }],
            inodes: vec![root],
        }
    }

    /// The node.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    /// The inode of a node.
    pub fn inode_of(&self, id: NodeId) -> &Inode {
        &self.inodes[self.node(id).inode.0 as usize]
    }

    /// The inode.
    pub fn inode(&self, id: InodeId) -> &Inode {
        &self.inodes[id.0 as usize]
    }

    /// Adds an inode and returns its id.
    pub fn add_inode(&mut self, inode: Inode) -> InodeId {
        self.inodes.push(inode);
        InodeId(id_at(self.inodes.len() - 1))
    }

    /// Appends a child to `parent` without re-sorting (callers add children in name order,
    /// or call [`Tree::sort_children`]).
    pub fn push_child(&mut self, parent: NodeId, name: Vec<u8>, inode: InodeId) -> NodeId {
        let id = NodeId(id_at(self.nodes.len()));
        self.nodes.push(Node {
            name,
            parent: Some(parent),
            children: Vec::new(),
            inode,
        });
        self.nodes[parent.0 as usize].children.push(id);
        id
    }

    /// Sorts every directory's children by name bytes.
    pub fn sort_children(&mut self) {
        for i in 0..self.nodes.len() {
            let mut children = std::mem::take(&mut self.nodes[i].children);
            children.sort_by(|a, b| {
                self.nodes[a.0 as usize]
                    .name
                    .cmp(&self.nodes[b.0 as usize].name)
            });
            self.nodes[i].children = children;
        }
    }

    /// The child of `parent` named `name`, found by binary search (children are sorted by
    /// name bytes: the decoders check it, the builders and merge keep it).
    pub fn child(&self, parent: NodeId, name: &[u8]) -> Option<NodeId> {
        let children = &self.node(parent).children;
        children
            .binary_search_by(|c| self.node(*c).name.as_slice().cmp(name))
            .ok()
            .map(|i| children[i])
    }

    /// The node at a path of components below the root.
    pub fn lookup_components<'a>(
        &self,
        components: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<NodeId> {
        let mut cur = ROOT;
        for c in components {
            cur = self.child(cur, c)?;
        }
        Some(cur)
    }

    /// The absolute path of a node for messages and listings shown to people: control
    /// characters and bytes that are not UTF-8 escaped as `\xNN`
    /// ([`escape_bytes`](crate::rules::escape_bytes)).
    pub fn display_path(&self, id: NodeId) -> String {
        crate::rules::escape_bytes(&self.path_bytes(id))
    }

    /// Every path of the tree with its inode, depth first, children in name order (the
    /// order `rafs ls` and unpack use); paths are absolute bytes (`/` for the root). Hard
    /// links appear once per name, sharing the inode.
    ///
    /// ```
    /// use rafs_format::model::{mode, Inode, Tree, ROOT};
    /// let mut root = Inode::new(mode::S_IFDIR | 0o755);
    /// root.nlink = 2;
    /// let mut tree = Tree::with_root(root);
    /// let f = tree.add_inode(Inode::new(mode::S_IFREG | 0o644));
    /// tree.push_child(ROOT, b"hello".to_vec(), f);
    /// let paths: Vec<Vec<u8>> = tree.entries().map(|e| e.path).collect();
    /// assert_eq!(paths, [b"/".to_vec(), b"/hello".to_vec()]);
    /// ```
    pub fn entries(&self) -> Entries<'_> {
        Entries {
            tree: self,
            stack: vec![(ROOT, b"/".to_vec())],
        }
    }

    /// The absolute path of a node, lossily decoded (for messages and listings).
    pub fn path(&self, id: NodeId) -> String {
        String::from_utf8_lossy(&self.path_bytes(id)).into_owned()
    }

    /// The absolute path of a node as bytes.
    pub fn path_bytes(&self, id: NodeId) -> Vec<u8> {
        let mut parts = Vec::new();
        let mut cur = Some(id);
        while let Some(c) = cur {
            let n = self.node(c);
            if n.parent.is_some() {
                parts.push(&n.name[..]);
            }
            cur = n.parent;
        }
        if parts.is_empty() {
            return b"/".to_vec();
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        out
    }

    /// Nodes in depth-first pre-order (node, then each child subtree in order); iterative.
    pub fn dfs_preorder(&self) -> Vec<NodeId> {
        let mut out = Vec::with_capacity(self.nodes.len());
        if self.nodes.is_empty() {
            return out;
        }
        let mut stack = vec![ROOT];
        while let Some(id) = stack.pop() {
            out.push(id);
            for c in self.node(id).children.iter().rev() {
                stack.push(*c);
            }
        }
        out
    }

    /// The reference's inode numbering: the root is 1; each time a directory is visited all
    /// its children get consecutive numbers in name order, then its subdirectories are visited
    /// in name order (depth first). A path of an inode met earlier shares that path's number.
    pub fn index_order(&self) -> IndexOrder {
        let n = self.nodes.len();
        let mut io = IndexOrder {
            order: Vec::with_capacity(n),
            index: vec![0; n],
            first_child: vec![0; n],
            ino: vec![0; n],
        };
        if n == 0 {
            return io;
        }
        let mut first_index_of_inode = vec![0u32; self.inodes.len()];
        let mut assign = |io: &mut IndexOrder, id: NodeId| {
            let index = id_at(io.order.len()) + 1;
            io.order.push(id);
            io.index[id.0 as usize] = index;
            let slot = &mut first_index_of_inode[self.node(id).inode.0 as usize];
            if *slot == 0 {
                *slot = index;
            }
            io.ino[id.0 as usize] = *slot;
        };
        assign(&mut io, ROOT);
        let mut stack = vec![ROOT];
        while let Some(dir) = stack.pop() {
            io.first_child[dir.0 as usize] = id_at(io.order.len()) + 1;
            let children = &self.node(dir).children;
            for c in children {
                assign(&mut io, *c);
            }
            for c in children.iter().rev() {
                if self.inode_of(*c).is_dir() {
                    stack.push(*c);
                }
            }
        }
        io
    }
}

/// The id of the element at `position` of a tree's node or inode table.
#[allow(
    clippy::cast_possible_truncation,
    reason = "ids are u32 by design: a tree of 2^32 nodes needs hundreds of GiB, and every \
              producer stops far below (decoding at Limits::max_nodes, 2^24 by default; \
              building at BuildLimits::max_entries)"
)]
pub(super) fn id_at(position: usize) -> u32 {
    position as u32
}

/// Device numbers as RAFS stores them: glibc's `makedev` encoding truncated to 32 bits (the
/// reference's), and its split back into major and minor. The one home of the encoding.
pub mod dev {
    /// glibc `makedev`, truncated to the 32 bits RAFS stores.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "truncating to the 32 bits RAFS stores is the point, as the reference does"
    )]
    pub fn makedev(major: u64, minor: u64) -> u32 {
        ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)) as u32
    }

    /// The major number of a stored `rdev`.
    pub fn major(rdev: u32) -> u32 {
        (rdev >> 8) & 0xfff
    }

    /// The minor number of a stored `rdev`.
    pub fn minor(rdev: u32) -> u32 {
        (rdev & 0xff) | ((rdev >> 12) & !0xff)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn makedev_and_its_split_agree() {
            assert_eq!(makedev(1, 3), 0x103);
            assert_eq!(makedev(259, 1_048_575), 0xfff1_03ff);
            let r = makedev(259, 1_048_575);
            assert_eq!((major(r), minor(r)), (259, 1_048_575));
        }
    }
}
