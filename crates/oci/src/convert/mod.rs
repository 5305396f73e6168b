//! Whole images (Go `Convert` with its post-convert hook, spec image.md §1-§3): every layer of
//! a source manifest packed into a Nydus blob layer, the bootstraps merged into a bootstrap
//! layer, the config's `diff_ids` and history and the manifest rewritten, the target layout's
//! `index.json` updated last, atomically. Documents are edited as JSON values, so fields this
//! converter does not know are kept.

mod layers;
mod rewrite;

use layers::convert_layers;
use rewrite::{rewrite_config, rewrite_manifest};

use crate::bootstrap_layer::{blob_meta_file, empty_image_layer, merge_layers, MergeInput};
use crate::dict::ChunkDictionary;
use crate::error::{json, unsupported, Error, Result};
use crate::layout::{Layout, REF_NAME};
use crate::pack::{pack_options, MEDIA_TYPE_NYDUS_BLOB};
use oci_spec::image::Descriptor;
use rafs_format::model::FsVersion;
use serde_json::{json, Map, Value};

/// Manifest media types.
pub const MEDIA_TYPE_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker's manifest media type.
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// OCI index media type.
pub const MEDIA_TYPE_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker manifest list media type.
pub const MEDIA_TYPE_DOCKER_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// Marks a Nydus blob layer.
pub const ANNOTATION_NYDUS_BLOB: &str = "containerd.io/snapshot/nydus-blob";
/// Marks the bootstrap layer.
pub const ANNOTATION_NYDUS_BOOTSTRAP: &str = "containerd.io/snapshot/nydus-bootstrap";
/// The filesystem version, on the bootstrap layer and the manifest.
pub const ANNOTATION_FS_VERSION: &str = "containerd.io/snapshot/nydus-fs-version";
/// The config media type of a Nydus manifest in a merge-platform index.
pub const MEDIA_TYPE_NYDUS_CONFIG: &str = "application/vnd.nydus.image.config.v1+json";
/// The `artifactType` of a Nydus manifest's entry in a merge-platform index.
pub const ARTIFACT_TYPE_NYDUS_IMAGE: &str = "application/vnd.nydus.image.manifest.v1+json";
/// The source manifest's digest, on the manifest.
pub const ANNOTATION_SOURCE_DIGEST: &str = "containerd.io/snapshot/nydus-source-digest";
/// On an OCI-ref (zran) Nydus blob layer: the original layer whose data it indexes.
pub const ANNOTATION_NYDUS_REF: &str = "containerd.io/snapshot/nydus-ref";

/// How to convert.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConvertOptions {
    /// The options each layer is packed with ([`pack_options`] by default).
    pub build: rafs_tar_build::BuildOptions,
    /// Platforms of an index to convert, as `os/architecture[/variant]`; empty: all of them.
    pub platforms: Vec<String>,
    /// Chunks of an existing Nydus image that layers reference instead of storing again.
    pub chunk_dict: Option<ChunkDictionary>,
    /// Write one index holding the source manifests (each with an empty layer prepended, so
    /// containerd never shares their layers with the unconverted image) and then the Nydus
    /// manifests marked by `artifactType` (spec image.md §3.5, `nydusify --merge-platform`).
    pub merge_platform: bool,
    /// OCI ref (zran, `nydusify --oci-ref`): the original gzip layers stay the data; each Nydus
    /// blob layer holds only metadata and names its layer (`containerd.io/snapshot/nydus-ref`).
    /// The original layers are copied into the target unreferenced, as nydusd fetches them by
    /// digest from the same repository. Set by [`ConvertOptions::oci_ref`].
    pub oci_ref: bool,
    /// Budgets of the image (layers, index entries, file bytes) and of each layer; the
    /// per-layer ones replace `build.limits`.
    pub limits: crate::ImageLimits,
    /// Layers converted at once (each streaming its source); 0: one per core, at most 8.
    pub layer_jobs: usize,
}

impl ConvertOptions {
    /// The Go converter's defaults for `fs_version`: zstd, blake3, 1 MiB chunks.
    pub fn new(fs_version: FsVersion) -> Self {
        ConvertOptions {
            build: pack_options(fs_version),
            platforms: Vec::new(),
            chunk_dict: None,
            merge_platform: false,
            oci_ref: false,
            limits: crate::ImageLimits::default(),
            layer_jobs: 0,
        }
    }

    /// The Go converter's OCI-ref mode (`packRef`: `targz-ref --blob-inline-meta --features
    /// blob-toc`), v6 only.
    pub fn oci_ref() -> Self {
        let mut build = rafs_tar_build::BuildOptions::targz_ref().with_inline_bootstrap(true, true);
        build.whiteout_spec = rafs_tar_build::WhiteoutSpec::None;
        ConvertOptions {
            oci_ref: true,
            build,
            ..Self::new(FsVersion::V6)
        }
    }
}

/// What one converted layer was and became.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LayerReport {
    /// The source layer's digest.
    pub source_digest: String,
    /// Its size.
    pub source_size: u64,
    /// The Nydus blob layer's digest (`nydus_digest` in `rafs convert-image --json`; every
    /// other field of these reports has its Rust name there).
    pub digest: String,
    /// Its size (`nydus_size` in `rafs convert-image --json`).
    pub size: u64,
    /// Seconds spent converting it.
    pub seconds: f64,
    /// Bytes of file contents in it (a sparse file's real size).
    pub file_bytes: u64,
}

/// What converting one manifest did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ManifestReport {
    /// The source manifest's digest.
    pub source_manifest: String,
    /// The target manifest's digest.
    pub target_manifest: String,
    /// Per converted layer, in manifest order.
    pub layers: Vec<LayerReport>,
    /// The bootstrap layer's digest.
    pub bootstrap_layer: String,
    /// Whether the source already was a Nydus image, copied unchanged.
    pub already_nydus: bool,
    /// The chunk dictionary's blobs the image references (listed after its layer blobs).
    pub dict_blobs: Vec<String>,
}

/// What [`convert_image`] did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ConvertReport {
    /// The source's digest (a manifest or an index).
    pub source: String,
    /// The target's digest (a manifest, or an index for several platforms).
    pub target: String,
    /// Per converted manifest, in index order.
    pub manifests: Vec<ManifestReport>,
}

/// Converts the image `source_ref` (tag or digest; `None`: the only one) of `source` into a
/// Nydus image tagged `target_tag` in `target`. Blobs are written as they are made; the
/// target's `index.json` changes only at the very end, so a failure leaves the target's
/// images as they were.
pub fn convert_image(
    source: &Layout,
    source_ref: Option<&str>,
    target: &Layout,
    target_tag: &str,
    options: &ConvertOptions,
) -> Result<ConvertReport> {
    convert_image_with_progress(source, source_ref, target, target_tag, options, &|_| {})
}

/// A step of a conversion, for progress displays. Layer steps come from the threads that
/// convert the layers, so the callback must be `Sync`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// Layer `index` of `total` is starting; `size` is its stored size.
    LayerStarted {
        /// Position in the manifest.
        index: usize,
        /// Layers in the manifest.
        total: usize,
        /// The source layer's size.
        size: u64,
    },
    /// `read` bytes of layer `index` have been read (reported about every MiB).
    LayerRead {
        /// Position in the manifest.
        index: usize,
        /// Bytes of the source layer read so far.
        read: u64,
    },
    /// `written` bytes of layer `index`'s Nydus blob have been written (about every MiB); a
    /// registry target receives them as they are written.
    LayerWritten {
        /// Position in the manifest.
        index: usize,
        /// Bytes of the Nydus blob so far.
        written: u64,
    },
    /// Layer `index` is done.
    LayerDone {
        /// Position in the manifest.
        index: usize,
        /// What it became.
        report: &'a LayerReport,
    },
    /// The layers' bootstraps are being merged.
    Merging,
}

/// A progress callback; called from the layer threads.
pub type ProgressFn<'f> = &'f (dyn Fn(Progress<'_>) + Sync);

/// [`convert_image`], calling `progress` at each step.
pub fn convert_image_with_progress(
    source: &Layout,
    source_ref: Option<&str>,
    target: &Layout,
    target_tag: &str,
    options: &ConvertOptions,
    progress: ProgressFn<'_>,
) -> Result<ConvertReport> {
    if !options.build.inline_bootstrap {
        return Err(unsupported(
            "convert options",
            "a Nydus blob layer inlines its bootstrap",
        ));
    }
    if options.oci_ref
        && (options.build.conversion != rafs_tar_build::ConversionType::TargzRef
            || options.chunk_dict.is_some()
            || options.merge_platform)
    {
        return Err(unsupported(
            "convert options",
            "OCI ref builds targz-ref layers (ConvertOptions::oci_ref), without a chunk \
             dictionary or merged platforms",
        ));
    }
    if options.build.chunk_dict.is_some() {
        // Built against it but not listed, its blobs would be missing from the image.
        return Err(unsupported(
            "convert options",
            "give a chunk dictionary as ConvertOptions::chunk_dict, which also lists its blobs",
        ));
    }
    let desc = source.resolve(source_ref)?;
    refuse_overwriting_the_source(source, &desc, target, target_tag)?;
    let media = desc.media_type().to_string();
    let digest = desc.digest().to_string();
    let (entries, platforms, index) =
        if media == MEDIA_TYPE_OCI_MANIFEST || media == MEDIA_TYPE_DOCKER_MANIFEST {
            (vec![desc], vec![None], None)
        } else if media == MEDIA_TYPE_OCI_INDEX || media == MEDIA_TYPE_DOCKER_LIST {
            let (entries, platforms, index) =
                index_entries(source, &digest, &options.platforms, &options.limits)?;
            (entries, platforms, Some(index))
        } else {
            return Err(unsupported(
                format!("image {digest}"),
                format!("media type {media} is not an image"),
            ));
        };
    let mut descs = Vec::with_capacity(entries.len());
    let mut manifests = Vec::with_capacity(entries.len());
    for (entry, platform) in entries.iter().zip(&platforms) {
        let (mut d, r) = convert_manifest(source, entry, target, options, progress)?;
        if let Some(p) = platform {
            d["platform"] = p.clone();
        }
        descs.push(d);
        manifests.push(r);
    }
    let new_desc = if options.merge_platform {
        crate::merge_platform::merged_index(source, &entries, &platforms, descs, target)?
    } else {
        target_descriptor(index, descs, target)?
    };
    let report = ConvertReport {
        source: digest,
        target: new_desc["digest"].as_str().unwrap_or_default().to_owned(),
        manifests,
    };
    tag(target, new_desc, target_tag)?;
    Ok(report)
}

/// Converting into the source's own layout under the source's own tag would replace the
/// source image by its conversion: refused, unless the source is already a Nydus manifest
/// (then the conversion is the identity).
fn refuse_overwriting_the_source(
    source: &Layout,
    desc: &Descriptor,
    target: &Layout,
    target_tag: &str,
) -> Result<()> {
    let same_layout = match (source.root().canonicalize(), target.root().canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let source_tag = desc.annotations().as_ref().and_then(|a| a.get(REF_NAME));
    if !same_layout || source_tag.map(String::as_str) != Some(target_tag) {
        return Ok(());
    }
    let digest = desc.digest().to_string();
    let media = desc.media_type().to_string();
    if media == MEDIA_TYPE_OCI_MANIFEST || media == MEDIA_TYPE_DOCKER_MANIFEST {
        let manifest: Value = source.read_json(&digest, "manifest")?;
        if is_nydus(&manifest) {
            return Ok(());
        }
    }
    Err(unsupported(
        format!("target tag {target_tag}"),
        "it names the source image in the same layout; the conversion would replace it \
         (name another tag)",
    ))
}

/// The entries of an index to convert: manifests of the wanted platforms, each with its
/// platform as the index spells it (`os.version`, `os.features`, `variant`, fields this
/// converter does not know); and the index.
fn index_entries(
    source: &Layout,
    digest: &str,
    platforms: &[String],
    limits: &crate::ImageLimits,
) -> Result<(Vec<Descriptor>, Vec<Option<Value>>, Value)> {
    let index: Value = source.read_json(digest, "index")?;
    let what = format!("index {digest}");
    let raw = index["manifests"].as_array().map_or(&[][..], Vec::as_slice);
    limits.check_manifests(raw.len(), &what)?;
    let mut entries = Vec::new();
    let mut raw_platforms = Vec::new();
    for r in raw {
        let d: Descriptor = serde_json::from_value(r.clone()).map_err(|e| json(&what, e))?;
        if wanted(&d, platforms) {
            entries.push(d);
            raw_platforms.push(Some(r["platform"].clone()).filter(Value::is_object));
        }
    }
    if entries.is_empty() {
        return Err(unsupported(
            &what,
            format!("no manifest for the platforms {platforms:?}"),
        ));
    }
    for entry in &entries {
        let media = entry.media_type().to_string();
        if media != MEDIA_TYPE_OCI_MANIFEST && media != MEDIA_TYPE_DOCKER_MANIFEST {
            return Err(unsupported(
                &what,
                format!(
                    "entry {} has media type {media}; nested indexes are not converted",
                    entry.digest()
                ),
            ));
        }
    }
    Ok((entries, raw_platforms, index))
}

/// What the target tag names: one converted manifest alone (as the Go converter does), or a
/// copy of the source index with each converted manifest under its platform.
fn target_descriptor(index: Option<Value>, descs: Vec<Value>, target: &Layout) -> Result<Value> {
    let (Some(index), false) = (index, descs.len() == 1) else {
        return descs
            .into_iter()
            .next()
            .ok_or_else(|| json("index", "no manifests"));
    };
    let mut new_index = index;
    let media = new_index["mediaType"]
        .as_str()
        .unwrap_or(MEDIA_TYPE_OCI_INDEX)
        .to_owned();
    new_index["manifests"] = Value::Array(descs);
    let (new_digest, size) = target.write_json(&new_index)?;
    Ok(json!({"mediaType": media, "digest": new_digest, "size": size}))
}

/// Points `tag` in `layout`'s index at `desc`, replacing an entry with that tag; every
/// other entry stays as it was, unknown fields and all (read-modify-write under the layout's
/// lock).
fn tag(layout: &Layout, desc: Value, tag: &str) -> Result<()> {
    let mut desc = desc;
    desc["annotations"] = json!({ REF_NAME: tag });
    layout.update_index(|index| {
        let manifests = index["manifests"]
            .as_array_mut()
            .ok_or_else(|| json("index.json", "no manifests"))?;
        manifests.retain(|d| d["annotations"][REF_NAME].as_str() != Some(tag));
        manifests.push(desc);
        Ok(())
    })
}

/// Converts one manifest; returns the new manifest's descriptor (as JSON) and the report.
fn convert_manifest(
    source: &Layout,
    desc: &Descriptor,
    target: &Layout,
    options: &ConvertOptions,
    progress: ProgressFn<'_>,
) -> Result<(Value, ManifestReport)> {
    let source_digest = desc.digest().to_string();
    let manifest: Value = source.read_json(&source_digest, "manifest")?;
    let what = format!("manifest {source_digest}");
    if is_nydus(&manifest) {
        return copy_unchanged(source, desc, &manifest, target);
    }
    let layers = manifest["layers"]
        .as_array()
        .ok_or_else(|| json(&what, "no layers"))?;
    options.limits.check_layers(layers.len(), &what)?;
    let (merge_inputs, reports) = convert_layers(source, target, layers, options, progress)?;
    let file_bytes = reports
        .iter()
        .fold(0u64, |sum, l| sum.saturating_add(l.file_bytes));
    if file_bytes > options.limits.max_image_bytes {
        return Err(unsupported(
            &what,
            format!(
                "{file_bytes} bytes of files; at most {} (max_image_bytes)",
                options.limits.max_image_bytes
            ),
        ));
    }
    progress(Progress::Merging);
    let boot = bootstrap_layer(&merge_inputs, options)?;
    let mut blobs: Vec<(String, u64)> =
        reports.iter().map(|l| (l.digest.clone(), l.size)).collect();
    if let Some(dict) = &options.chunk_dict {
        for id in &boot.dict_blobs {
            blobs.push(dict.provide(id, target)?);
        }
    }
    let boot_digest = target.write_blob(&boot.gzip)?;
    let config = rewrite_config(source, &manifest, &blobs, &boot.diff_id, target)?;
    let new_manifest = rewrite_manifest(
        &manifest,
        &source_digest,
        config,
        &blobs,
        (&boot_digest, boot.gzip.len() as u64),
        options,
        &reports,
    );
    let (digest, size) = target.write_json(&new_manifest)?;
    let media = manifest["mediaType"]
        .as_str()
        .unwrap_or(MEDIA_TYPE_OCI_MANIFEST);
    let mut new_desc = json!({ "mediaType": media, "digest": digest, "size": size });
    if let Some(p) = desc.platform() {
        new_desc["platform"] = serde_json::to_value(p).map_err(|e| json(&what, e))?;
    }
    let report = ManifestReport {
        source_manifest: source_digest,
        target_manifest: digest,
        layers: reports,
        bootstrap_layer: boot_digest,
        already_nydus: false,
        dict_blobs: blobs[layers.len()..]
            .iter()
            .map(|(d, _)| d.clone())
            .collect(),
    };
    Ok((new_desc, report))
}

/// The bootstrap layer: the layers merged, or for an image without layers an empty root.
fn bootstrap_layer(
    merge_inputs: &[MergeInput],
    options: &ConvertOptions,
) -> Result<crate::bootstrap_layer::BootstrapLayer> {
    if merge_inputs.is_empty() {
        return empty_image_layer(&options.build);
    }
    let dict_ids = options
        .chunk_dict
        .as_ref()
        .map(ChunkDictionary::blob_ids)
        .unwrap_or_default();
    merge_layers(merge_inputs, options.build.fs_version, &dict_ids)
}

/// Whether an index entry's platform is one of `platforms` (all are, when none is named).
pub(crate) fn wanted(d: &Descriptor, platforms: &[String]) -> bool {
    if platforms.is_empty() {
        return true;
    }
    let Some(p) = d.platform() else {
        return false;
    };
    // `os/arch` names every variant of it; `os/arch/variant` only that one.
    let base = format!("{}/{}", p.os(), p.architecture());
    let full = p.variant().as_ref().map(|v| format!("{base}/{v}"));
    platforms
        .iter()
        .any(|w| *w == base || Some(w) == full.as_ref())
}

/// Whether a manifest is already Nydus: its last layer is a bootstrap layer (`isNydusImage`).
pub(crate) fn is_nydus(manifest: &Value) -> bool {
    let last = manifest["layers"].as_array().and_then(|l| l.last());
    last.is_some_and(|l| l["annotations"][ANNOTATION_NYDUS_BOOTSTRAP].is_string())
}

/// A Nydus manifest passes unchanged: its blobs are copied (verified) into the target.
fn copy_unchanged(
    source: &Layout,
    desc: &Descriptor,
    manifest: &Value,
    target: &Layout,
) -> Result<(Value, ManifestReport)> {
    let digest = desc.digest().to_string();
    let config = &manifest["config"];
    let mut blobs: Vec<(&str, u64)> = vec![(
        config["digest"].as_str().unwrap_or_default(),
        config["size"].as_u64().unwrap_or(0),
    )];
    let layers = manifest["layers"].as_array().map_or(&[][..], Vec::as_slice);
    blobs.extend(layers.iter().map(|l| {
        (
            l["digest"].as_str().unwrap_or_default(),
            l["size"].as_u64().unwrap_or(0),
        )
    }));
    for (blob, size) in blobs {
        target.copy_blob_from(source, blob, size)?;
    }
    let bytes = source.read_blob(&digest, crate::layout::MAX_JSON)?;
    target.write_blob(&bytes)?;
    let mut d = serde_json::to_value(desc).map_err(|e| json("descriptor", e))?;
    if let Some(a) = d.get_mut("annotations").and_then(Value::as_object_mut) {
        a.remove(REF_NAME);
    }
    let boot = layers
        .last()
        .and_then(|l| l["digest"].as_str())
        .unwrap_or_default()
        .to_owned();
    let report = ManifestReport {
        source_manifest: digest.clone(),
        target_manifest: digest,
        layers: Vec::new(),
        bootstrap_layer: boot,
        already_nydus: true,
        dict_blobs: Vec::new(),
    };
    Ok((d, report))
}
