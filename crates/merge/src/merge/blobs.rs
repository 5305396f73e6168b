//! The merged blob table: each layer's blobs named, deduplicated and ordered by first use;
//! chunks pointed at them; the image finished.

use super::*;

/// How a layer's own blob is named.
pub(super) struct OwnBlob<'a> {
    pub(super) layer: usize,
    pub(super) explicit_id: Option<&'a str>,
    pub(super) is_parent: bool,
}

/// The merged blob table, one entry per distinct blob id.
#[derive(Default)]
pub(super) struct BlobTable {
    pub(super) blobs: Vec<Blob>,
    pub(super) index: HashMap<String, usize>,
}

impl BlobTable {
    /// Adds a layer's blobs (its own renamed by `own`) and returns where each landed.
    pub(super) fn take(
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

    pub(super) fn insert(&mut self, b: Blob, layer: usize) -> Result<usize> {
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
pub(super) fn name_own_blob(b: &mut Blob, own: &OwnBlob<'_>, tarfs: bool) -> Result<()> {
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
pub(super) fn repoint_chunks(image: &Image, remap: &[u32], layer: usize) -> Result<Vec<Inode>> {
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

/// The image must read back: a decoder accepts at most this many paths by default.
pub(super) fn check_path_budget(tree: &Tree, options: &MergeOptions) -> Result<()> {
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
pub(super) fn blobs_in_order_of_use(tree: &mut Tree, blobs: &[Blob]) -> Vec<Blob> {
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
pub(super) fn finish_image(
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

pub(super) fn same_blob(a: &Blob, b: &Blob) -> bool {
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
