//! Overlaying per-layer images into one, as `nydus-image merge` does (build.md §9).

use crate::error::{Error, Result};
use rafs_format::model::{
    Blob, BlobFeatures, FsVersion, Image, Inode, InodeId, NodeId, Superblock, Tree, WhiteoutSpec,
    ROOT,
};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// The placeholder id an inlined bootstrap records for its own blob.
const PLACEHOLDER_PREFIX: &str = "xxxxxxxx";

/// One layer to merge.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The layer's image (its bootstrap, decoded).
    pub image: Image,
    /// Id of the layer's own blob, replacing the one its bootstrap records (the reference's
    /// `--blob-digests`, or the bootstrap's file name). Needed when the bootstrap was inlined
    /// (it records a placeholder); ignored for tarfs layers, which keep theirs.
    pub blob_id: Option<String>,
}

/// What the reference's per-layer merge arguments say about a layer's own blob, beyond its
/// id (`--blob-digests`, `--blob-sizes`, `--blob-toc-digests`, `--blob-toc-sizes`, one value
/// per layer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerBlobArgs {
    /// `--blob-digests`: for a separate-metadata (zran) blob, the metadata blob's sha256;
    /// otherwise the blob id.
    pub digest: Option<[u8; 32]>,
    /// `--blob-sizes`: for a separate-metadata blob, the metadata blob's size; otherwise the
    /// blob's.
    pub size: Option<u64>,
    /// `--blob-toc-digests`: the ToC digest recorded for the blob.
    pub toc_digest: Option<[u8; 32]>,
    /// `--blob-toc-sizes`: the ToC size recorded for the blob.
    pub toc_size: Option<u32>,
}

impl Layer {
    /// Applies the reference's per-layer merge arguments to the layer's own blobs (those not
    /// in `dict_blob_ids`): a zran blob (`SEPARATE`) keeps its id (the gzip layer's) and gets
    /// its metadata blob's digest and size, as nydusd fetches it; any other blob takes the
    /// digest as its id and the size as its size.
    pub fn apply_blob_args(&mut self, args: LayerBlobArgs, dict_blob_ids: &[String]) {
        for b in &mut self.image.blobs {
            if dict_blob_ids.contains(&b.blob_id) {
                continue;
            }
            if b.features.contains(BlobFeatures::SEPARATE) {
                if let Some(d) = args.digest {
                    b.meta_digest = d;
                }
                if let Some(s) = args.size {
                    b.meta_size = s;
                }
            } else {
                if let Some(d) = args.digest {
                    self.blob_id = Some(rafs_format::hex(&d));
                }
                if let Some(s) = args.size {
                    b.compressed_size = s;
                }
            }
            if let Some(t) = args.toc_digest {
                b.toc_digest = t;
            }
            if let Some(t) = args.toc_size {
                b.toc_size = t;
            }
        }
    }
}

/// How to merge.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MergeOptions {
    /// An image the layers go on top of (`--parent-bootstrap`); its markers were applied
    /// when it was built, and the lowest layer's markers are then applied to it.
    pub parent: Option<Image>,
    /// Blob ids of a chunk dictionary (`--chunk-dict`): blobs with these ids are not a
    /// layer's own blob.
    pub dict_blob_ids: Vec<String>,
    /// Prefetch patterns (`--prefetch-policy fs`).
    pub prefetch_patterns: Option<Vec<String>>,
    /// Output version; `None` = the layers' (which must all be the same).
    pub fs_version: Option<FsVersion>,
    /// Which whiteout markers upper layers carry (the reference's merge always uses OCI).
    pub whiteout_spec: WhiteoutSpec,
    /// Keep every blob in the order collected (the parent's table, then each layer's), as
    /// `create --parent-bootstrap` writes its table; `false` (the reference's merge): blobs in
    /// order of first use, unused ones dropped.
    pub keep_blob_order: bool,
    /// Most paths the merged image may have; `None` = what a decoder accepts by default
    /// ([`rafs_format::Limits`]), so every merged image reads back.
    pub max_paths: Option<u64>,
    /// Drop the lowest layer's whiteout and opaque markers (OCI spelling) instead of keeping
    /// them as files, as the reference does: containerd's applier creates neither, so a
    /// whole image converted from layers shows no such file.
    pub drop_base_markers: bool,
}

/// A node of the tree being overlaid; its inode is (layer, inode in that layer's image).
struct MNode {
    children: BTreeMap<Vec<u8>, usize>,
    inode: (usize, InodeId),
}

struct MTree {
    nodes: Vec<MNode>,
}

impl MTree {
    /// Removes every OCI whiteout and opaque marker name (and what is below it).
    fn drop_markers(&mut self) {
        let mut stack = vec![0usize];
        while let Some(n) = stack.pop() {
            self.nodes[n]
                .children
                .retain(|name, _| matches!(marker(name), Marker::None));
            stack.extend(self.nodes[n].children.values().copied());
        }
    }

    fn from_tree(tree: &Tree, layer: usize) -> Self {
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        // Node ids of the model are dense; children lists map one to one.
        for n in &tree.nodes {
            let _ = &n.name;
            nodes.push(MNode {
                children: BTreeMap::new(),
                inode: (layer, n.inode),
            });
        }
        for (i, n) in tree.nodes.iter().enumerate() {
            for c in &n.children {
                let name = tree.node(*c).name.clone();
                nodes[i].children.insert(name, c.0 as usize);
            }
        }
        MTree { nodes }
    }
}

/// What an upper entry is under the OCI whiteout spec (the only one merge applies).
enum Marker<'a> {
    Opaque,
    Remove(&'a [u8]),
    None,
}

fn marker(name: &[u8]) -> Marker<'_> {
    // Names that are not UTF-8 are never markers (as in the reference).
    if std::str::from_utf8(name).is_err() {
        return Marker::None;
    }
    if name == b".wh..wh..opq" {
        Marker::Opaque
    } else if let Some(victim) = name.strip_prefix(b".wh.") {
        Marker::Remove(victim)
    } else {
        Marker::None
    }
}

struct Overlay<'a> {
    tree: MTree,
    layers: &'a [Vec<Inode>],
    spec: WhiteoutSpec,
    /// overlayfs opaque directories of upper layers (their marker xattr already removed).
    opaque: std::collections::HashSet<(usize, InodeId)>,
}

impl Overlay<'_> {
    fn is_dir(&self, node: usize) -> bool {
        let (l, i) = self.tree.nodes[node].inode;
        self.layers[l][i.0 as usize].is_dir()
    }

    /// `merge_children(lower, upper)`: whiteouts first, then replacements and additions, then
    /// the same for each upper directory (build.md §9.2).
    fn merge_children(&mut self, lower: usize, upper: &MTree, up: usize) {
        let mut pass2 = Vec::new();
        for (name, &u) in &upper.nodes[up].children {
            let (l, i) = upper.nodes[u].inode;
            let inode = &self.layers[l][i.0 as usize];
            match self.spec {
                WhiteoutSpec::Oci => match marker(name) {
                    Marker::Opaque => self.tree.nodes[lower].children.clear(),
                    Marker::Remove(victim) => {
                        self.tree.nodes[lower].children.remove(victim);
                    }
                    Marker::None => pass2.push((name.clone(), u)),
                },
                WhiteoutSpec::Overlayfs => {
                    // A char device 0:0 removes the lower entry; an opaque directory hides
                    // the lower directory's children and then merges like any directory.
                    if inode.file_type() == rafs_format::model::mode::S_IFCHR && inode.rdev == 0 {
                        self.tree.nodes[lower].children.remove(name);
                        continue;
                    }
                    if self.opaque.contains(&(l, i)) {
                        if let Some(&low) = self.tree.nodes[lower].children.get(name) {
                            self.tree.nodes[low].children.clear();
                        }
                    }
                    pass2.push((name.clone(), u));
                }
                WhiteoutSpec::None => pass2.push((name.clone(), u)),
            }
        }
        let mut dirs = Vec::new();
        for (name, u) in pass2 {
            let up_inode = upper.nodes[u].inode;
            match self.tree.nodes[lower].children.get(&name).copied() {
                Some(l) => {
                    self.tree.nodes[l].inode = up_inode;
                    // An upper non-directory drops the lower subtree; an upper directory
                    // merges with it (a lower file had no children to keep).
                    if !self.is_dir(l) {
                        self.tree.nodes[l].children.clear();
                    }
                    if self.is_dir(l) {
                        dirs.push((l, u));
                    }
                }
                None => {
                    let n = self.tree.nodes.len();
                    self.tree.nodes.push(MNode {
                        children: BTreeMap::new(),
                        inode: up_inode,
                    });
                    self.tree.nodes[lower].children.insert(name, n);
                    if self.is_dir(n) {
                        dirs.push((n, u));
                    }
                }
            }
        }
        // An explicit stack would only matter for trees deeper than `Limits::max_depth`,
        // which decoding already refused.
        for (l, u) in dirs {
            self.merge_children(l, upper, u);
        }
    }
}

fn incompatible(layer: usize, reason: impl Into<String>) -> Error {
    Error::Incompatible {
        layer,
        reason: reason.into(),
    }
}

/// Merges `layers` (lowest first) into one image.
pub fn merge(layers: Vec<Layer>, options: &MergeOptions) -> Result<Image> {
    let Some(lowest) = options.parent.as_ref().or(layers.first().map(|l| &l.image)) else {
        return Err(incompatible(0, "nothing to merge"));
    };
    let first = lowest.superblock.clone();
    let mut table = BlobTable::default();
    let mut layer_inodes: Vec<Vec<Inode>> = Vec::new();
    let mut trees: Vec<MTree> = Vec::new();
    let mut last_sb = first.clone();
    // The reference's merge: the image is encrypted if any source is.
    let mut encrypted = false;
    let sources = options
        .parent
        .iter()
        .map(|p| (p.clone(), None, true))
        .chain(layers.into_iter().map(|l| (l.image, l.blob_id, false)));
    for (pos, (image, explicit_id, is_parent)) in sources.enumerate() {
        // Errors count layers from 0; a parent image is reported as layer 0 too.
        let layer = if options.parent.is_some() {
            pos.saturating_sub(1)
        } else {
            pos
        };
        check_compatible(layer, &image.superblock, &first)?;
        let own = OwnBlob {
            layer,
            explicit_id: explicit_id.as_deref(),
            is_parent,
        };
        let remap = table.take(&image, &own, &first, options)?;
        layer_inodes.push(repoint_chunks(&image, &remap, layer)?);
        trees.push(MTree::from_tree(&image.tree, layer_inodes.len() - 1));
        last_sb = image.superblock.clone();
        encrypted |= image.superblock.encrypted;
    }
    // Overlay: the lowest tree as is (its markers stay, as in the reference), then each upper.
    let mut trees = trees.into_iter();
    let Some(base) = trees.next() else {
        return Err(incompatible(0, "nothing to merge"));
    };
    let opaque = take_opaque_markers(&mut layer_inodes, options.whiteout_spec);
    let mut ov = Overlay {
        tree: base,
        layers: &layer_inodes,
        spec: options.whiteout_spec,
        opaque,
    };
    if options.drop_base_markers && options.whiteout_spec == WhiteoutSpec::Oci {
        ov.tree.drop_markers();
    }
    for upper in trees {
        ov.tree.nodes[0].inode = upper.nodes[0].inode;
        ov.merge_children(0, &upper, 0);
    }
    let mut tree = to_model(&ov.tree, &layer_inodes);
    check_path_budget(&tree, options)?;
    let blobs = if options.keep_blob_order {
        table.blobs
    } else {
        blobs_in_order_of_use(&mut tree, &table.blobs)
    };
    let superblock = Superblock {
        fs_version: first.fs_version,
        compressor: last_sb.compressor,
        digester: last_sb.digester,
        encrypted,
        ..first
    };
    Ok(finish_image(superblock, blobs, tree, options))
}

/// A layer's superblock against the lowest layer's: what a merge cannot reconcile.
fn check_compatible(layer: usize, sb: &Superblock, first: &Superblock) -> Result<()> {
    if sb.chunk_size != first.chunk_size {
        return Err(incompatible(
            layer,
            format!(
                "chunk size {:#x}, the first layer's {:#x}",
                sb.chunk_size, first.chunk_size
            ),
        ));
    }
    if sb.explicit_uid_gid != first.explicit_uid_gid {
        return Err(incompatible(
            layer,
            "explicit uid/gid differs from the first layer's",
        ));
    }
    if sb.fs_version != first.fs_version {
        return Err(incompatible(
            layer,
            format!(
                "RAFS v{}, the first layer is v{}",
                sb.fs_version.number(),
                first.fs_version.number()
            ),
        ));
    }
    if sb.fs_version == FsVersion::V5 && sb.digester != first.digester {
        return Err(incompatible(layer, "v5 layers must share a digester"));
    }
    if sb.tarfs != first.tarfs {
        return Err(incompatible(
            layer,
            "tarfs and non-tarfs layers cannot be merged",
        ));
    }
    Ok(())
}

/// How a layer's own blob is named.
struct OwnBlob<'a> {
    layer: usize,
    explicit_id: Option<&'a str>,
    is_parent: bool,
}

/// The merged blob table, one entry per distinct blob id.
#[derive(Default)]
struct BlobTable {
    blobs: Vec<Blob>,
    index: HashMap<String, usize>,
}

impl BlobTable {
    /// Adds a layer's blobs (its own renamed by `own`) and returns where each landed.
    fn take(
        &mut self,
        image: &Image,
        own: &OwnBlob<'_>,
        first: &Superblock,
        options: &MergeOptions,
    ) -> Result<Vec<u32>> {
        let layer = own.layer;
        let mut owned = 0;
        let mut remap = Vec::with_capacity(image.blobs.len());
        for b in &image.blobs {
            if b.chunk_size != first.chunk_size && b.chunk_size != 0 {
                return Err(incompatible(
                    layer,
                    format!("blob {} has chunk size {:#x}", b.blob_id, b.chunk_size),
                ));
            }
            let mut b = b.clone();
            if !own.is_parent && !options.dict_blob_ids.contains(&b.blob_id) {
                owned += 1;
                if owned > 1 {
                    return Err(incompatible(
                        layer,
                        "more than one blob of its own (not from the chunk dictionary)",
                    ));
                }
                name_own_blob(&mut b, own, image.superblock.tarfs)?;
            }
            // The merged blob table holds at most 255 blobs, checked as it grows.
            remap.push(u32::try_from(self.insert(b, layer)?).unwrap_or(u32::MAX));
        }
        Ok(remap)
    }

    fn insert(&mut self, b: Blob, layer: usize) -> Result<usize> {
        if let Some(&i) = self.index.get(&b.blob_id) {
            if !same_blob(&self.blobs[i], &b) {
                return Err(incompatible(
                    layer,
                    format!(
                        "blob id {} names a different blob in an earlier layer",
                        b.blob_id
                    ),
                ));
            }
            return Ok(i);
        }
        self.index.insert(b.blob_id.clone(), self.blobs.len());
        self.blobs.push(b);
        Ok(self.blobs.len() - 1)
    }
}

/// A layer's own blob takes the id given for the layer; an inlined bootstrap's placeholder
/// id must not survive.
fn name_own_blob(b: &mut Blob, own: &OwnBlob<'_>, tarfs: bool) -> Result<()> {
    if !tarfs {
        if let Some(id) = own.explicit_id {
            b.blob_id = id.to_string();
        }
    }
    if b.blob_id.starts_with(PLACEHOLDER_PREFIX) {
        return Err(incompatible(
            own.layer,
            "its bootstrap was inlined (placeholder blob id): give the layer's blob id",
        ));
    }
    b.features.remove(BlobFeatures::INLINED_FS_META);
    Ok(())
}

/// The layer's inodes with their chunks pointing into the merged blob table.
fn repoint_chunks(image: &Image, remap: &[u32], layer: usize) -> Result<Vec<Inode>> {
    let mut inodes = image.tree.inodes.clone();
    for inode in &mut inodes {
        for c in &mut inode.chunks {
            c.blob_index = *remap.get(c.blob_index as usize).ok_or_else(|| {
                incompatible(
                    layer,
                    format!("a chunk names blob {} of {}", c.blob_index, remap.len()),
                )
            })?;
        }
    }
    Ok(inodes)
}

/// overlayfs opaque markers of upper layers: noted, and the xattr dropped (build.md §9.2).
fn take_opaque_markers(
    layer_inodes: &mut [Vec<Inode>],
    spec: WhiteoutSpec,
) -> std::collections::HashSet<(usize, InodeId)> {
    let mut opaque = std::collections::HashSet::new();
    if spec != WhiteoutSpec::Overlayfs {
        return opaque;
    }
    for (l, inodes) in layer_inodes.iter_mut().enumerate().skip(1) {
        for (i, inode) in inodes.iter_mut().enumerate() {
            let before = inode.xattrs.len();
            inode
                .xattrs
                .retain(|x| !(x.name == b"trusted.overlay.opaque" && x.value == b"y"));
            if inode.is_dir() && inode.xattrs.len() != before {
                opaque.insert((l, InodeId::at(i)));
            }
        }
    }
    opaque
}

/// The image must read back: a decoder accepts at most this many paths by default.
fn check_path_budget(tree: &Tree, options: &MergeOptions) -> Result<()> {
    let max = options
        .max_paths
        .unwrap_or(rafs_format::Limits::default().max_nodes);
    if tree.nodes.len() as u64 > max {
        return Err(Error::LimitExceeded {
            what: "paths in the merged image",
            value: tree.nodes.len() as u64,
            limit: max,
        });
    }
    Ok(())
}

/// Blobs in order of first use, breadth first; unused ones dropped and chunks renumbered.
fn blobs_in_order_of_use(tree: &mut Tree, blobs: &[Blob]) -> Vec<Blob> {
    let mut used: Vec<u32> = Vec::new();
    let mut new_index: HashMap<u32, u32> = HashMap::new();
    for id in bfs(tree) {
        let inode = tree.inode_of(id);
        if inode.is_reg() {
            for c in &inode.chunks {
                new_index.entry(c.blob_index).or_insert_with(|| {
                    used.push(c.blob_index);
                    // `used` holds distinct u32 values, so its last position fits a u32.
                    u32::try_from(used.len() - 1).unwrap_or(u32::MAX)
                });
            }
        }
    }
    for inode in &mut tree.inodes {
        for c in &mut inode.chunks {
            c.blob_index = new_index[&c.blob_index];
        }
    }
    used.iter().map(|&i| blobs[i as usize].clone()).collect()
}

/// The merged image: prefetch resolved, in the layers' version or the one asked for, with
/// v6's HAS_XATTR set as the reference's merge context starts with it.
fn finish_image(
    superblock: Superblock,
    blobs: Vec<Blob>,
    tree: Tree,
    options: &MergeOptions,
) -> Image {
    let layers_version = superblock.fs_version;
    let version = options.fs_version.unwrap_or(layers_version);
    let prefetch = match &options.prefetch_patterns {
        Some(p) if !blobs.is_empty() => rafs_format::model::prefetch_targets(&tree, p),
        _ => Vec::new(),
    };
    let image = Image {
        superblock,
        blobs,
        tree,
        prefetch,
        v6_chunk_table: None,
    };
    let mut image = if version == layers_version {
        image
    } else {
        image.converted_to(version)
    };
    image.superblock.xattr_flag_without_xattrs =
        version == FsVersion::V6 && image.tree.inodes.iter().all(|i| i.xattrs.is_empty());
    image
}

fn same_blob(a: &Blob, b: &Blob) -> bool {
    (
        a.chunk_count,
        a.compressed_size,
        a.uncompressed_size,
        a.compressor,
        a.digester,
    ) == (
        b.chunk_count,
        b.compressed_size,
        b.uncompressed_size,
        b.compressor,
        b.digester,
    )
}

/// Node ids breadth first, children in name order.
pub(crate) fn bfs(tree: &Tree) -> Vec<NodeId> {
    let mut out = Vec::with_capacity(tree.nodes.len());
    let mut queue = VecDeque::from([ROOT]);
    while let Some(n) = queue.pop_front() {
        out.push(n);
        queue.extend(tree.node(n).children.iter().copied());
    }
    out
}

/// The overlaid tree as a model tree: inodes shared by (layer, inode), `nlink` recomputed as
/// the reference computes it.
fn to_model(m: &MTree, layers: &[Vec<Inode>]) -> Tree {
    let get = |(l, i): (usize, InodeId)| layers[l][i.0 as usize].clone();
    let mut tree = Tree::with_root(get(m.nodes[0].inode));
    let mut ids: HashMap<(usize, InodeId), InodeId> = HashMap::new();
    ids.insert(m.nodes[0].inode, tree.node(ROOT).inode);
    let mut queue = VecDeque::from([(0usize, ROOT)]);
    while let Some((n, id)) = queue.pop_front() {
        for (name, &c) in &m.nodes[n].children {
            let key = m.nodes[c].inode;
            let ino = match ids.get(&key) {
                Some(&i) => i,
                None => {
                    let i = tree.add_inode(get(key));
                    ids.insert(key, i);
                    i
                }
            };
            let child = tree.push_child(id, name.clone(), ino);
            queue.push_back((c, child));
        }
    }
    let mut names: HashMap<InodeId, u32> = HashMap::new();
    let mut subdirs: HashMap<InodeId, u32> = HashMap::new();
    for node in &tree.nodes {
        *names.entry(node.inode).or_insert(0) += 1;
        if let Some(p) = node.parent {
            if tree.inode(node.inode).is_dir() {
                *subdirs.entry(tree.node(p).inode).or_insert(0) += 1;
            }
        }
    }
    for (i, inode) in tree.inodes.iter_mut().enumerate() {
        let id = InodeId::at(i);
        inode.nlink = if inode.is_dir() {
            2 + subdirs.get(&id).copied().unwrap_or(0)
        } else {
            names.get(&id).copied().unwrap_or(1)
        };
    }
    tree
}
