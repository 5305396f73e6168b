//! Overlaying per-layer images into one, as `nydus-image merge` does (build.md §9).

mod blobs;
mod overlay;

use blobs::*;
use overlay::*;

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
