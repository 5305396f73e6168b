//! The version-independent model of a RAFS image.
//!
//! One [`Image`] holds everything a v5 or v6 bootstrap stores: superblock settings, the blob
//! table, the tree of nodes (an arena: a [`Node`] per path, an [`Inode`] per file, hard links
//! being several nodes of one inode), each file's chunk references and the prefetch list.
//! Values that each format derives from the tree (directory sizes, inode numbers, v6 nids and
//! placement, v5 digests and record offsets) are not stored: the codecs compute them.

use serde::{Deserialize, Serialize};

/// RAFS format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FsVersion {
    /// RAFS v5 (FUSE only).
    V5,
    /// RAFS v6 (an EROFS image).
    V6,
}

impl FsVersion {
    /// `5` or `6`.
    pub fn number(self) -> u8 {
        match self {
            FsVersion::V5 => 5,
            FsVersion::V6 => 6,
        }
    }
}

/// Chunk compression algorithm; the discriminant is the v6 on-disk value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compressor {
    /// Stored as is.
    None = 0,
    /// Raw LZ4 blocks.
    Lz4Block = 1,
    /// gzip (stargz and zran images).
    Gzip = 2,
    /// zstd frames.
    Zstd = 3,
}

impl Compressor {
    /// The v6 on-disk value.
    pub fn to_u32(self) -> u32 {
        self as u32
    }

    /// Parses the v6 on-disk value.
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => Compressor::None,
            1 => Compressor::Lz4Block,
            2 => Compressor::Gzip,
            3 => Compressor::Zstd,
            _ => return None,
        })
    }

    /// The name `nydus-image` uses.
    pub fn name(self) -> &'static str {
        match self {
            Compressor::None => "none",
            Compressor::Lz4Block => "lz4_block",
            Compressor::Gzip => "gzip",
            Compressor::Zstd => "zstd",
        }
    }
}

/// Digest algorithm of chunks (and of v5 inodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Digester {
    /// BLAKE3-256 (the reference's default).
    Blake3 = 0,
    /// SHA-256.
    Sha256 = 1,
}

impl Digester {
    /// The v6 on-disk value.
    pub fn to_u32(self) -> u32 {
        self as u32
    }

    /// Parses the v6 on-disk value.
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            0 => Some(Digester::Blake3),
            1 => Some(Digester::Sha256),
            _ => None,
        }
    }

    /// The name `nydus-image` uses.
    pub fn name(self) -> &'static str {
        match self {
            Digester::Blake3 => "blake3",
            Digester::Sha256 => "sha256",
        }
    }
}

/// How whiteouts are marked in a layer (`--whiteout-spec`), one type for the builder (which
/// keeps markers as entries of a single layer, dropping only those a replaced directory made
/// redundant) and for merging (which applies them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WhiteoutSpec {
    /// `.wh.<name>` removes a lower entry, `.wh..wh..opq` hides a lower directory's children.
    #[default]
    Oci,
    /// A char device 0:0 removes the lower entry of its name; a directory with
    /// `trusted.overlay.opaque=y` hides the lower directory's children.
    Overlayfs,
    /// No markers: every entry is an ordinary entry.
    None,
}

/// Image-wide settings kept in the superblock(s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Superblock {
    /// The format this image was decoded from or is meant for.
    pub fs_version: FsVersion,
    /// Chunk size in bytes (power of two, 4 KiB ..= 16 MiB).
    pub chunk_size: u32,
    /// Chunk compressor.
    pub compressor: Compressor,
    /// Chunk digester.
    pub digester: Digester,
    /// Inodes carry real uid/gid (`EXPLICIT_UID_GID`); cleared by `--repeatable`.
    pub explicit_uid_gid: bool,
    /// v6 tarfs mode: 512-byte blocks, files point into the layer tar.
    pub tarfs: bool,
    /// v6 `ENCRYPTION_ASE_128_XTS` was set.
    pub encrypted: bool,
    /// `PRESERVED_COMPAT_*` bits found in the flags (accepted, written back).
    pub preserved_flags: u64,
    /// v6 `s_build_time` (seconds); the reference writes 0.
    pub build_time: u64,
    /// v6 `s_build_time_nsec`.
    pub build_time_nsec: u32,
    /// v6 `s_uuid`.
    pub uuid: [u8; 16],
    /// v6 `s_volume_name`.
    pub volume_name: [u8; 16],
    /// `HAS_XATTR` is set although no inode has xattrs (the reference's v6 merge always sets
    /// it). Encoders set the flag when an inode has xattrs or when this is true; decoders set
    /// this only for such an image, so that it round-trips.
    pub xattr_flag_without_xattrs: bool,
}

impl Superblock {
    /// Defaults of `nydus-image create` for the given version: 1 MiB chunks, zstd, blake3,
    /// explicit uid/gid.
    pub fn new(fs_version: FsVersion) -> Self {
        Superblock {
            fs_version,
            chunk_size: 0x10_0000,
            compressor: Compressor::Zstd,
            digester: Digester::Blake3,
            explicit_uid_gid: true,
            tarfs: false,
            encrypted: false,
            preserved_flags: 0,
            build_time: 0,
            build_time_nsec: 0,
            uuid: [0; 16],
            volume_name: [0; 16],
            xattr_flag_without_xattrs: false,
        }
    }
}

bitflags::bitflags! {
    /// `BlobFeatures` bits (shared by v5's extended blob table and v6's blob table).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
    #[serde(transparent)]
    pub struct BlobFeatures: u32 {
        /// Uncompressed chunks are 4 KiB aligned.
        const ALIGNED = 0x0000_0001;
        /// The bootstrap is inlined in the data blob.
        const INLINED_FS_META = 0x0000_0002;
        /// Blob meta uses 24-byte v2 chunk infos.
        const CHUNK_INFO_V2 = 0x0000_0004;
        /// zran (gzip random access) context present.
        const ZRAN = 0x0000_0008;
        /// Blob meta and data in separate blobs.
        const SEPARATE = 0x0000_0010;
        /// Chunk digest array inlined in the data blob.
        const INLINED_CHUNK_DIGEST = 0x0000_0020;
        /// The blob is a layer tar (tarfs).
        const TARFS = 0x0000_0040;
        /// Batch chunks.
        const BATCH = 0x0000_0080;
        /// Encrypted blob.
        const ENCRYPTED = 0x0000_0100;
        /// Produced by chunk-dict generation.
        const IS_CHUNKDICT_GENERATED = 0x0000_0200;
        /// Prefetch blob.
        const IS_SEPARATED_WITH_PREFETCH_FILES = 0x0000_0400;
        /// External blob.
        const EXTERNAL = 0x0000_0800;
        /// Data sections are followed by 512-byte tar headers.
        const HAS_TAR_HEADER = 0x1000_0000;
        /// A ToC sits at the blob's tail.
        const HAS_TOC = 0x2000_0000;
        /// Built by nydus-image 2.2 or later.
        const CAP_TAR_TOC = 0x4000_0000;
    }
}

/// One data blob of the blob table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    /// Blob id (normally the hex sha256 of the blob file).
    pub blob_id: String,
    /// Chunks allocated in the blob.
    pub chunk_count: u32,
    /// Feature bits.
    pub features: BlobFeatures,
    /// Compressor of the blob's chunks (v5: the superblock's).
    pub compressor: Compressor,
    /// Digester of the blob's chunks (v5: the superblock's).
    pub digester: Digester,
    /// Chunk size (v5: the superblock's).
    pub chunk_size: u32,
    /// Size of the blob file.
    pub compressed_size: u64,
    /// Size of the uncompressed data.
    pub uncompressed_size: u64,
    /// v5 `readahead_offset`.
    pub readahead_offset: u32,
    /// v5 `readahead_size`.
    pub readahead_size: u32,
    /// v6 location of the chunk-info array (blob meta) in the blob.
    pub meta: BlobMetaLocation,
    /// v6 size of the ToC including its tar header.
    pub toc_size: u32,
    /// v6 sha256 of the ToC.
    pub toc_digest: [u8; 32],
    /// v6 digest of a separate meta blob (or the cipher key).
    pub meta_digest: [u8; 32],
    /// v6 size of a separate meta blob (or the first half of the cipher IV).
    pub meta_size: u64,
    /// v6 second half of the cipher IV.
    pub cipher_iv: [u8; 8],
    /// v6 cipher algorithm.
    pub cipher_algo: u32,
}

impl Blob {
    /// A blob with the given id and settings and every other field zero.
    pub fn new(
        blob_id: impl Into<String>,
        compressor: Compressor,
        digester: Digester,
        chunk_size: u32,
    ) -> Self {
        Blob {
            blob_id: blob_id.into(),
            chunk_count: 0,
            features: BlobFeatures::CAP_TAR_TOC,
            compressor,
            digester,
            chunk_size,
            compressed_size: 0,
            uncompressed_size: 0,
            readahead_offset: 0,
            readahead_size: 0,
            meta: BlobMetaLocation::default(),
            toc_size: 0,
            toc_digest: [0; 32],
            meta_digest: [0; 32],
            meta_size: 0,
            cipher_iv: [0; 8],
            cipher_algo: 0,
        }
    }
}

/// Where a blob's chunk-info array lives (v6 `ci_*` fields).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMetaLocation {
    /// Compressor of the array (raw v6 value; tarfs keeps the header default 1).
    pub compressor: u32,
    /// Offset in the blob.
    pub offset: u64,
    /// Stored size.
    pub compressed_size: u64,
    /// Size after decompression.
    pub uncompressed_size: u64,
}

bitflags::bitflags! {
    /// `BlobChunkFlags` of a chunk record.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
    #[serde(transparent)]
    pub struct ChunkFlags: u32 {
        /// Stored compressed.
        const COMPRESSED = 0x01;
        /// Reserved (hole chunk).
        const HOLECHUNK = 0x02;
        /// Encrypted.
        const ENCRYPTED = 0x04;
        /// Batch chunk.
        const BATCH = 0x08;
        /// `crc32` is valid.
        const HAS_CRC32 = 0x10;
        // Readers must not reject bits they do not know.
        const _ = !0;
    }
}

/// One chunk of a regular file: where its data lives and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkInfo {
    /// Digest of the uncompressed data (all zero in tarfs).
    #[serde(with = "hex32")]
    pub digest: [u8; 32],
    /// Index into the blob table.
    pub blob_index: u32,
    /// Chunk index within the blob.
    pub index: u32,
    /// Flags.
    pub flags: ChunkFlags,
    /// Offset of the stored bytes in the blob file.
    pub compressed_offset: u64,
    /// Stored size.
    pub compressed_size: u32,
    /// Offset in the uncompressed blob.
    pub uncompressed_offset: u64,
    /// Size of the chunk's data.
    pub uncompressed_size: u32,
    /// Offset of the chunk within its file.
    pub file_offset: u64,
    /// CRC-32C of the uncompressed data (when `HAS_CRC32`).
    pub crc32: u32,
}

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

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::hex(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        crate::unhex32(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
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

/// The id of the element at `position` of a tree's node or inode table.
#[allow(
    clippy::cast_possible_truncation,
    reason = "ids are u32 by design: a tree of 2^32 nodes needs hundreds of GiB, and every \
              producer stops far below (decoding at Limits::max_nodes, 2^24 by default; \
              building at BuildLimits::max_entries)"
)]
fn id_at(position: usize) -> u32 {
    position as u32
}
