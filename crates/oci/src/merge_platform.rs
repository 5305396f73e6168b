//! merge-platform (spec image.md §3.5, accel `makeManifestIndex`, `nydusify --merge-platform`):
//! one index holding every source manifest and then every Nydus manifest. containerd takes the
//! first entry of a matching platform, so a plain containerd runs the OCI entry and a Nydus
//! snapshotter with index detection finds the Nydus one by its `artifactType`. Each OCI entry
//! gets an empty first layer (a different chain id, so containerd never shares its snapshots
//! with the unconverted image) and names its original manifest.

use crate::convert::{
    ANNOTATION_SOURCE_DIGEST, ARTIFACT_TYPE_NYDUS_IMAGE, MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_OCI_INDEX,
};
use crate::error::{json, Result};
use crate::layout::Layout;
use oci_spec::image::Descriptor;
use serde_json::{json, Value};

/// The gzip of an empty tar (1024 zero bytes), as accel writes it.
pub const EMPTY_LAYER_GZIP: [u8; 32] = [
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x62, 0x18, 0x05, 0xa3, 0x60, 0x14,
    0x8c, 0x58, 0x00, 0x08, 0x00, 0x00, 0xff, 0xff, 0x2e, 0xaf, 0xb5, 0xef, 0x00, 0x04, 0x00, 0x00,
];
/// Its diff_id: `sha256` of 1024 zero bytes.
pub const EMPTY_LAYER_DIFF_ID: &str =
    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
/// Marks the prepended empty layer.
pub const ANNOTATION_EMPTY_LAYER: &str = "containerd.io/snapshot/nydus-empty-layer";

/// Writes the merge-platform index of the source `entries` and their converted `nydus`
/// descriptors; returns its descriptor.
pub(crate) fn merged_index(
    source: &Layout,
    entries: &[Descriptor],
    raw_platforms: &[Option<Value>],
    nydus: Vec<Value>,
    target: &Layout,
) -> Result<Value> {
    let mut oci = Vec::with_capacity(entries.len());
    let mut marked = Vec::with_capacity(nydus.len());
    for ((entry, mut desc), raw) in entries.iter().zip(nydus).zip(raw_platforms) {
        let manifest: Value = source.read_json(entry.digest().as_ref(), "manifest")?;
        let platform = match raw {
            Some(p) => p.clone(),
            None => platform_of(source, entry, &manifest)?,
        };
        // An entry that already was Nydus has no OCI form to keep.
        if !crate::convert::is_nydus(&manifest) {
            oci.push(with_empty_layer(
                source, entry, manifest, &platform, target,
            )?);
        }
        desc["platform"] = platform;
        desc["artifactType"] = Value::from(ARTIFACT_TYPE_NYDUS_IMAGE);
        marked.push(desc);
    }
    oci.extend(marked);
    let index = json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_OCI_INDEX, "manifests": oci});
    let (digest, size) = target.write_json(&index)?;
    Ok(json!({"mediaType": MEDIA_TYPE_OCI_INDEX, "digest": digest, "size": size}))
}

/// The entry's platform, or, for a manifest without one, its config's: every entry of the
/// index gets a real platform (accel's `{}` would match nothing).
fn platform_of(source: &Layout, entry: &Descriptor, manifest: &Value) -> Result<Value> {
    if let Some(p) = entry.platform() {
        return serde_json::to_value(p).map_err(|e| json("platform", e));
    }
    let digest = manifest["config"]["digest"].as_str().unwrap_or_default();
    let config: Value = source.read_json(digest, "config")?;
    let mut p = json!({"os": config["os"], "architecture": config["architecture"]});
    for key in ["os.version", "os.features", "variant"] {
        if !config[key].is_null() {
            p[key] = config[key].clone();
        }
    }
    if !p["os"].is_string() || !p["architecture"].is_string() {
        return Err(json(
            format!("config {digest}"),
            "no os and architecture to name its platform by",
        ));
    }
    Ok(p)
}

/// `entry`'s manifest (read by the caller) with the empty layer first (config: its diff_id
/// and a history entry first), its layers copied into the target; returns its index entry.
fn with_empty_layer(
    source: &Layout,
    entry: &Descriptor,
    mut manifest: Value,
    platform: &Value,
    target: &Layout,
) -> Result<Value> {
    let original = entry.digest().to_string();
    let what = format!("manifest {original}");
    let docker = manifest["mediaType"].as_str() == Some(MEDIA_TYPE_DOCKER_MANIFEST);
    let layers = manifest["layers"]
        .as_array_mut()
        .ok_or_else(|| json(&what, "no layers"))?;
    for l in layers.iter() {
        let digest = l["digest"].as_str().unwrap_or_default();
        target.copy_blob_from(source, digest, l["size"].as_u64().unwrap_or(0))?;
    }
    let empty = target.write_blob(&EMPTY_LAYER_GZIP)?;
    let media = if docker {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    } else {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    };
    layers.insert(
        0,
        json!({"mediaType": media, "digest": empty, "size": EMPTY_LAYER_GZIP.len(),
            "annotations": {ANNOTATION_EMPTY_LAYER: "true"}}),
    );
    manifest["config"] = with_empty_history(source, &manifest["config"], target)?;
    let annotations = manifest
        .as_object_mut()
        .ok_or_else(|| json(&what, "not an object"))?
        .entry("annotations")
        .or_insert_with(|| json!({}));
    annotations[ANNOTATION_SOURCE_DIGEST] = Value::from(original.as_str());
    let (digest, size) = target.write_json(&manifest)?;
    Ok(json!({
        "mediaType": manifest["mediaType"].as_str().unwrap_or(entry.media_type().to_string().as_str()),
        "digest": digest,
        "size": size,
        "platform": platform,
        "annotations": {ANNOTATION_SOURCE_DIGEST: original},
    }))
}

/// The config with the empty layer's diff_id and history entry first; returns its
/// descriptor.
fn with_empty_history(source: &Layout, desc: &Value, target: &Layout) -> Result<Value> {
    let digest = desc["digest"].as_str().unwrap_or_default();
    let mut config: Value = source.read_json(digest, "config")?;
    let what = format!("config {digest}");
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array_mut()
        .ok_or_else(|| json(&what, "no rootfs.diff_ids"))?;
    diff_ids.insert(0, Value::from(EMPTY_LAYER_DIFF_ID));
    let entry = json!({"created_by": "Nydus Converter", "comment": "Nydus Empty Layer"});
    match config["history"].as_array_mut() {
        Some(h) => h.insert(0, entry),
        None => config["history"] = json!([entry]),
    }
    let (new_digest, size) = target.write_json(&config)?;
    let mut d = desc.clone();
    d["digest"] = Value::from(new_digest);
    d["size"] = Value::from(size);
    Ok(d)
}
