//! The bootstrap layer (Go `Merge` with `WithTar`, spec image.md §2): the layers' bootstraps
//! merged with each layer's blob id set to its Nydus blob layer's digest, in a gzip tar holding
//! `image/image.boot` and, for v6, each layer's `image/<hex>.blob.meta`.

use crate::error::{json, Result};
use rafs_format::model::FsVersion;
use rafs_merge::{merge, Layer, MergeOptions};
use sha2::{Digest as _, Sha256};
use std::io::Write;

/// Where consumers look for the merged bootstrap in the layer.
pub const BOOTSTRAP_PATH: &str = "image/image.boot";

/// One Nydus blob layer as the merge sees it.
#[derive(Debug, Clone)]
pub struct MergeInput {
    /// `sha256:` digest of the Nydus blob layer; its hex becomes the blob id (OCI-ref: the
    /// blob id stays the original layer's, and this names the metadata blob).
    pub digest: String,
    /// Size of the Nydus blob layer.
    pub size: u64,
    /// The layer's own bootstrap.
    pub bootstrap: Vec<u8>,
    /// Its `.blob.meta` file (v6; `None` when the layer stores no chunk).
    pub blob_meta: Option<Vec<u8>>,
    /// Directories its tar left out, which take the attributes of the same directory in the
    /// layers below (as containerd's overlay unpack shows them), not the builder's defaults.
    pub implicit_dirs: Vec<Vec<u8>>,
}

/// The bootstrap layer [`merge_layers`] made.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BootstrapLayer {
    /// The merged bootstrap.
    pub bootstrap: Vec<u8>,
    /// The gzip-compressed tar: the layer's bytes.
    pub gzip: Vec<u8>,
    /// `sha256:` of the uncompressed tar: the layer's diff_id.
    pub diff_id: String,
    /// `sha256:` of `gzip`: the layer's digest.
    pub digest: String,
    /// Ids of the chunk dictionary's blobs the merged bootstrap references, in its blob table
    /// order: the manifest lists them after the layer blobs.
    pub dict_blobs: Vec<String>,
}

/// Merges the layers (lowest first) and packs the result as the bootstrap layer.
/// `dict_blob_ids` are the blobs of the chunk dictionary the layers were built with (empty:
/// none); each layer's other blob is its own.
pub fn merge_layers(
    layers: &[MergeInput],
    fs_version: FsVersion,
    dict_blob_ids: &[String],
) -> Result<BootstrapLayer> {
    let mut inputs = Vec::with_capacity(layers.len());
    let mut images = Vec::with_capacity(layers.len());
    for l in layers {
        let hex = crate::layout::sha256_hex(&l.digest)
            .ok_or_else(|| json("layer digest", format!("{} is not sha256", l.digest)))?;
        let image = rafs_format::decode(&l.bootstrap)?;
        inputs.push(merge_layer(image.clone(), hex, l.size, dict_blob_ids)?);
        images.push(image);
    }
    let mut options = MergeOptions::default();
    options.prefetch_patterns = Some(vec!["/".into()]);
    options.fs_version = Some(fs_version);
    options.dict_blob_ids = dict_blob_ids.to_vec();
    options.drop_base_markers = true;
    let mut image = merge(inputs, &options)?;
    let dict_blobs = image
        .blobs
        .iter()
        .filter(|b| dict_blob_ids.contains(&b.blob_id))
        .map(|b| b.blob_id.clone())
        .collect();
    let implicit: Vec<&[Vec<u8>]> = layers.iter().map(|l| l.implicit_dirs.as_slice()).collect();
    rafs_merge::implicit_dirs_as_containerd(&mut image, &images, &implicit, options.whiteout_spec);
    pack_bootstrap_layer(image, layers, fs_version, dict_blobs)
}

/// The bootstrap layer of an image with no layers: an empty root (what containerd unpacks for
/// it), built with the conversion's options so that its settings are those a layer would have.
pub fn empty_image_layer(build: &rafs_tar_build::BuildOptions) -> Result<BootstrapLayer> {
    // Two zero blocks: a tar with no entries.
    let empty_tar = [0u8; 1024];
    let built =
        rafs_tar_build::build_layer(&empty_tar[..], build, std::io::sink()).map_err(|source| {
            crate::error::Error::Layer {
                index: 0,
                digest: "(none: the image has no layers)".into(),
                source,
            }
        })?;
    let image = rafs_format::decode(&built.bootstrap)?;
    pack_bootstrap_layer(image, &[], build.fs_version, Vec::new())
}

/// Encodes the merged image and packs it as the bootstrap layer's gzip tar.
fn pack_bootstrap_layer(
    mut image: rafs_format::model::Image,
    layers: &[MergeInput],
    fs_version: FsVersion,
    dict_blobs: Vec<String>,
) -> Result<BootstrapLayer> {
    root_as_containerd(&mut image);
    let bootstrap = rafs_format::encode(&image)?;
    let tar = layer_tar(&bootstrap, layers, fs_version)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar)
        .and_then(|()| gz.try_finish())
        .map_err(|e| json("bootstrap layer", e))?;
    let gzip = gz.finish().map_err(|e| json("bootstrap layer", e))?;
    Ok(BootstrapLayer {
        diff_id: crate::layout::digest_of(&tar),
        digest: format!("sha256:{}", rafs_format::hex(&Sha256::digest(&gzip))),
        bootstrap,
        gzip,
        dict_blobs,
    })
}

/// containerd's applier skips a layer's root entry ("resolved to root"): the root of an
/// unpacked image is the snapshot's own directory, mode 0755 and owned by root, whatever the
/// layers say of `./`. The merged root says the same (the reference keeps the top layer's).
fn root_as_containerd(image: &mut rafs_format::model::Image) {
    let id = image.tree.node(rafs_format::model::ROOT).inode;
    let root = &mut image.tree.inodes[id.0 as usize];
    root.mode = rafs_format::model::mode::S_IFDIR | 0o755;
    root.uid = 0;
    root.gid = 0;
    root.xattrs.clear();
}

/// A layer as the merge takes it. A zran (OCI-ref) layer's blob is the original layer, whose id
/// its bootstrap already records; its Nydus layer is the metadata blob nydusd fetches
/// (`blob_meta_digest`/`size`, as the Go converter passes `--blob-digests`/`--blob-sizes`).
fn merge_layer(
    image: rafs_format::model::Image,
    hex: &str,
    size: u64,
    dict: &[String],
) -> Result<Layer> {
    let zran = image
        .blobs
        .iter()
        .any(|b| b.features.contains(rafs_format::model::BlobFeatures::ZRAN));
    if !zran {
        return Ok(Layer {
            image,
            blob_id: Some(hex.to_owned()),
        });
    }
    let mut layer = Layer {
        image,
        blob_id: None,
    };
    let args = rafs_merge::LayerBlobArgs {
        digest: rafs_format::unhex32(hex),
        size: Some(size),
        ..Default::default()
    };
    layer.apply_blob_args(args, dict);
    Ok(layer)
}

/// The uncompressed tar: `image/`, `image/image.boot`, then the v6 `.blob.meta` files.
fn layer_tar(bootstrap: &[u8], layers: &[MergeInput], fs_version: FsVersion) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let fail = |e: std::io::Error| json("bootstrap layer tar", e);
    let mut dir = entry_header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut dir, "image", std::io::empty())
        .map_err(fail)?;
    let mut boot = entry_header(tar::EntryType::Regular, 0o444, bootstrap.len() as u64);
    tar.append_data(&mut boot, BOOTSTRAP_PATH, bootstrap)
        .map_err(fail)?;
    if fs_version == FsVersion::V6 {
        for l in layers {
            let (Some(meta), Some(hex)) = (&l.blob_meta, crate::layout::sha256_hex(&l.digest))
            else {
                continue;
            };
            let mut h = entry_header(tar::EntryType::Regular, 0o444, meta.len() as u64);
            tar.append_data(&mut h, format!("image/{hex}.blob.meta"), meta.as_slice())
                .map_err(fail)?;
        }
    }
    tar.into_inner().map_err(fail)
}

/// A USTAR header as Go's `archive/tar` writes for these entries: root-owned, mtime 0.
fn entry_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

/// A v6 layer's `.blob.meta` file, as nydusd caches it: the uncompressed chunk-info array
/// zero-padded to 4096 bytes, then the 4096-byte header; `None` when the layer stores no chunk.
pub fn blob_meta_file<S: rafs_chunker::ReadAt>(blob: S) -> Result<Option<Vec<u8>>> {
    use rafs_chunker::toc::{ENTRY_BLOB_META, ENTRY_BLOB_META_HEADER};
    let reader = rafs_chunker::BlobReader::open(blob)?;
    if reader.meta().is_none_or(|m| m.entries.is_empty()) {
        return Ok(None);
    }
    let mut file = reader.entry(ENTRY_BLOB_META)?;
    file.resize(file.len().next_multiple_of(4096), 0);
    file.extend_from_slice(&reader.entry(ENTRY_BLOB_META_HEADER)?);
    Ok(Some(file))
}
