//! `check-image` (spec image.md §5.1, what `nydusify check` verifies, done in-process):
//! the manifest rule, the bootstrap rule (every blob id a layer of the manifest, every chunk
//! read back and verified), and, given the source image, the filesystem rule (every path's
//! type, mode, owner, size, device, link target, xattrs and content equal to the overlay of
//! the source's layers).

use crate::bootstrap_read::{read_bootstrap_layer, BootstrapLayerContents};
use crate::convert::{
    ANNOTATION_NYDUS_BLOB, ANNOTATION_NYDUS_BOOTSTRAP, ARTIFACT_TYPE_NYDUS_IMAGE,
    MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST,
};
use crate::error::{json, unsupported, Result};
use crate::layout::{sha256_hex, Layout};
use crate::limits::ImageLimits;
use crate::pack::MEDIA_TYPE_NYDUS_BLOB;
use oci_spec::image::{Descriptor, ImageIndex};
use serde_json::Value;
use std::collections::BTreeMap;

/// The outcome of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleResult {
    /// `"manifest"`, `"bootstrap"` or `"filesystem"`.
    pub rule: &'static str,
    /// What does not hold; empty when the rule holds.
    pub problems: Vec<String>,
}

/// The outcome of [`check_image`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// The manifest checked.
    pub manifest: String,
    /// Each rule, in order.
    pub rules: Vec<RuleResult>,
}

impl CheckReport {
    /// Whether every rule holds.
    pub fn ok(&self) -> bool {
        self.rules.iter().all(|r| r.problems.is_empty())
    }
}

/// Checks the Nydus image `reference` of `layout` (a single manifest), and with `source` its
/// filesystem against the source image's, within the default [`ImageLimits`].
pub fn check_image(
    layout: &Layout,
    reference: Option<&str>,
    source: Option<(&Layout, Option<&str>)>,
) -> Result<CheckReport> {
    check_image_with_limits(layout, reference, source, &ImageLimits::default())
}

/// [`check_image`] within `limits` (the same budgets a conversion of the source spends).
pub fn check_image_with_limits(
    layout: &Layout,
    reference: Option<&str>,
    source: Option<(&Layout, Option<&str>)>,
    limits: &ImageLimits,
) -> Result<CheckReport> {
    let desc = nydus_entry(layout, layout.resolve(reference)?)?;
    let digest = desc.digest().to_string();
    let media = desc.media_type().to_string();
    if media != MEDIA_TYPE_OCI_MANIFEST && media != MEDIA_TYPE_DOCKER_MANIFEST {
        return Err(unsupported(
            format!("image {digest}"),
            format!("{media}: check one platform's manifest"),
        ));
    }
    let manifest: Value = layout.read_json(&digest, "manifest")?;
    limits.check_layers(layers(&manifest).len(), &format!("manifest {digest}"))?;
    let config: Value = layout.read_json(
        manifest["config"]["digest"].as_str().unwrap_or_default(),
        "config",
    )?;
    let source_image = match source {
        Some((l, r)) => Some(source_manifest(l, r)?),
        None => None,
    };
    let boot_layer = bootstrap_layer_of(layout, &manifest);
    let mut rules = vec![manifest_rule(
        boot_layer.as_ref(),
        &manifest,
        &config,
        source_image.as_ref().map(|s| &s.2),
    )];
    let bootstrap = boot_layer.as_ref().map(|l| l.bootstrap.as_slice());
    rules.push(bootstrap_rule(layout, &manifest, bootstrap));
    if let (Some((src_layout, src_manifest, _)), Ok(boot)) = (&source_image, bootstrap) {
        rules.push(filesystem_rule(
            layout,
            boot,
            src_layout,
            src_manifest,
            limits,
        ));
    }
    Ok(CheckReport {
        manifest: digest,
        rules,
    })
}

/// `desc`, or for an index with exactly one entry marked as a Nydus image (merge-platform,
/// spec §3.5), that entry: the one nydus-snapshotter's index detection runs.
fn nydus_entry(layout: &Layout, desc: Descriptor) -> Result<Descriptor> {
    if desc.media_type().to_string() != MEDIA_TYPE_OCI_INDEX {
        return Ok(desc);
    }
    let digest = desc.digest().to_string();
    let index: ImageIndex = layout.read_json(&digest, "index")?;
    ImageLimits::default().check_manifests(index.manifests().len(), &format!("index {digest}"))?;
    let marked: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| {
            d.artifact_type()
                .as_ref()
                .is_some_and(|t| t.to_string() == ARTIFACT_TYPE_NYDUS_IMAGE)
        })
        .collect();
    match marked.as_slice() {
        [one] => Ok((*one).clone()),
        _ => Err(unsupported(
            format!("index {digest}"),
            format!(
                "{} entries marked as Nydus images; check one platform's manifest",
                marked.len()
            ),
        )),
    }
}

/// The source's layout, manifest and config.
fn source_manifest(layout: &Layout, reference: Option<&str>) -> Result<(Layout, Value, Value)> {
    let desc = layout.resolve(reference)?;
    let manifest: Value = layout.read_json(desc.digest().as_ref(), "source manifest")?;
    let config: Value = layout.read_json(
        manifest["config"]["digest"].as_str().unwrap_or_default(),
        "source config",
    )?;
    Ok((layout.clone(), manifest, config))
}

fn layers(manifest: &Value) -> &[Value] {
    manifest["layers"].as_array().map_or(&[][..], Vec::as_slice)
}

/// The manifest rule: the last layer the annotated gzip bootstrap layer, every other a Nydus
/// blob layer, one diff_id per layer (a blob layer's its digest, the bootstrap layer's its
/// uncompressed tar's), and with a source the same runtime config.
fn manifest_rule(
    boot_layer: std::result::Result<&BootstrapLayerContents, &crate::Error>,
    manifest: &Value,
    config: &Value,
    source_config: Option<&Value>,
) -> RuleResult {
    let mut p = Vec::new();
    let layers = layers(manifest);
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if diff_ids.len() != layers.len() {
        p.push(format!(
            "{} diff_ids for {} layers",
            diff_ids.len(),
            layers.len()
        ));
    }
    let Some((boot, blobs)) = layers.split_last() else {
        p.push("no layers".into());
        return RuleResult {
            rule: "manifest",
            problems: p,
        };
    };
    if boot["annotations"][ANNOTATION_NYDUS_BOOTSTRAP].as_str() != Some("true") {
        p.push(format!(
            "the last layer lacks {ANNOTATION_NYDUS_BOOTSTRAP}=true"
        ));
    }
    let boot_media = boot["mediaType"].as_str().unwrap_or_default();
    if !matches!(
        boot_media,
        "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
    ) {
        p.push(format!(
            "the bootstrap layer's media type {boot_media} is not a gzip layer type"
        ));
    }
    for (i, l) in blobs.iter().enumerate() {
        if l["mediaType"].as_str() != Some(MEDIA_TYPE_NYDUS_BLOB)
            || l["annotations"][ANNOTATION_NYDUS_BLOB].as_str() != Some("true")
        {
            p.push(format!(
                "layer {i} ({}) is not an annotated Nydus blob layer",
                l["digest"]
            ));
        }
        if diff_ids.get(i) != Some(&l["digest"]) {
            p.push(format!(
                "layer {i}: diff_id {} is not its digest {}",
                diff_ids.get(i).unwrap_or(&Value::Null),
                l["digest"]
            ));
        }
    }
    match boot_layer {
        Ok(l) if diff_ids.last() != Some(&Value::from(l.diff_id.as_str())) => {
            p.push(format!(
                "the bootstrap layer's diff_id is not the digest of its uncompressed tar ({})",
                l.diff_id
            ));
        }
        Ok(_) => {}
        Err(e) => p.push(format!("the bootstrap layer: {e}")),
    }
    if source_config.is_some_and(|src| runtime_config(config) != runtime_config(src)) {
        p.push("the runtime config (config.config) differs from the source's".into());
    }
    RuleResult {
        rule: "manifest",
        problems: p,
    }
}

/// The part of a config `nydusify check` compares: `config`, without `ArgsEscaped`.
fn runtime_config(v: &Value) -> Value {
    let mut c = v["config"].clone();
    if let Some(o) = c.as_object_mut() {
        o.remove("ArgsEscaped");
    }
    c
}

/// The bootstrap layer of a Nydus manifest (its last layer), read strictly and verified
/// against its descriptor's digest and size as it streams.
pub fn bootstrap_layer_of(layout: &Layout, manifest: &Value) -> Result<BootstrapLayerContents> {
    let boot = layers(manifest)
        .last()
        .ok_or_else(|| json("manifest", "no layers"))?;
    let digest = boot["digest"].as_str().unwrap_or_default();
    let size = boot["size"]
        .as_u64()
        .ok_or_else(|| json("manifest", "the bootstrap layer has no size"))?;
    let mut blob = layout.open_blob(digest, size)?;
    let contents = read_bootstrap_layer(&mut blob, size)
        .map_err(|e| json(format!("bootstrap layer {digest}"), e))?;
    // The gzip reader stops at the end of its data; the rest must still be read to be verified.
    std::io::copy(&mut blob, &mut std::io::sink())
        .map_err(|e| json(format!("bootstrap layer {digest}"), e))?;
    Ok(contents)
}

/// `image/image.boot` of a Nydus manifest's bootstrap layer.
pub fn bootstrap_of_manifest(layout: &Layout, manifest: &Value) -> Result<Vec<u8>> {
    Ok(bootstrap_layer_of(layout, manifest)?.bootstrap)
}

/// The bootstrap rule: a valid bootstrap whose every blob id is a blob layer of the manifest,
/// and whose every chunk reads back from those layers and matches its digest.
fn bootstrap_rule(
    layout: &Layout,
    manifest: &Value,
    bootstrap: std::result::Result<&[u8], &crate::Error>,
) -> RuleResult {
    let mut p = Vec::new();
    let image = match bootstrap
        .map_err(ToString::to_string)
        .and_then(|b| rafs_format::decode(b).map_err(|e| e.to_string()))
    {
        Ok(i) => i,
        Err(e) => {
            p.push(e);
            return RuleResult {
                rule: "bootstrap",
                problems: p,
            };
        }
    };
    let layers = layers(manifest);
    let blob_layers = &layers[..layers.len().saturating_sub(1)];
    p.extend(blob_layers.iter().filter_map(|l| blob_problem(layout, l)));
    // An OCI-ref blob layer holds metadata; its data blob is the original layer it names.
    let hexes: Vec<&str> = blob_layers
        .iter()
        .filter_map(|l| sha256_hex(l["digest"].as_str().unwrap_or_default()))
        .chain(blob_layers.iter().filter_map(|l| {
            sha256_hex(l["annotations"][crate::convert::ANNOTATION_NYDUS_REF].as_str()?)
        }))
        .collect();
    for b in &image.blobs {
        if !hexes.contains(&b.blob_id.as_str()) {
            p.push(format!(
                "blob id {} is not a layer of the manifest",
                b.blob_id
            ));
        }
    }
    if p.is_empty() {
        match rafs_reader::ImageReader::open_dir(image, &layout.root().join("blobs").join("sha256"))
            .and_then(|r| r.verify_digests(true).verify_all())
        {
            Ok(_) => {}
            Err(e) => p.push(format!("reading the chunks back: {e}")),
        }
    }
    RuleResult {
        rule: "bootstrap",
        problems: p,
    }
}

/// Whether the blob a layer descriptor names is in the layout with that digest and size (read
/// whole and hashed: junk appended to a blob, or a blob cut short, is not the layer). For an
/// OCI-ref layer, the original layer it names is checked against its digest too.
fn blob_problem(layout: &Layout, layer: &Value) -> Option<String> {
    let digest = layer["digest"].as_str().unwrap_or_default();
    let verify = |digest: &str, size: u64| -> Result<()> {
        let mut blob = layout.open_blob(digest, size)?;
        std::io::copy(&mut blob, &mut std::io::sink()).map_err(|e| crate::Error::Blob {
            digest: digest.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(())
    };
    let size = layer["size"].as_u64();
    let own = match size {
        Some(size) => verify(digest, size),
        None => Err(json(format!("layer {digest}"), "no size")),
    };
    let original = layer["annotations"][crate::convert::ANNOTATION_NYDUS_REF]
        .as_str()
        .map(|d| layout.blob_size(d).and_then(|size| verify(d, size)));
    match (own, original) {
        (Err(e), _) | (Ok(()), Some(Err(e))) => Some(format!("layer {digest}: {e}")),
        _ => None,
    }
}

/// One path's attributes as both sides list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attrs {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub rdev: u32,
    pub link: Vec<u8>,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    pub sha256: String,
}

/// The filesystem rule: the Nydus image's tree against the overlay of the source's layers.
fn filesystem_rule(
    layout: &Layout,
    bootstrap: &[u8],
    source: &Layout,
    source_manifest: &Value,
    limits: &ImageLimits,
) -> RuleResult {
    let mut p = Vec::new();
    let ours = match nydus_listing(layout, bootstrap) {
        Ok(l) => l,
        Err(e) => {
            return RuleResult {
                rule: "filesystem",
                problems: vec![e],
            }
        }
    };
    let theirs = match crate::overlay::overlay_listing(source, layers(source_manifest), limits) {
        Ok(l) => l,
        Err(e) => {
            return RuleResult {
                rule: "filesystem",
                problems: vec![format!("the source: {e}")],
            }
        }
    };
    for (path, a) in &theirs {
        match ours.get(path) {
            None => p.push(format!("{} is missing", String::from_utf8_lossy(path))),
            Some(b) if b != a => p.push(format!(
                "{} differs: ours {b:?}, the source's {a:?}",
                String::from_utf8_lossy(path)
            )),
            Some(_) => {}
        }
    }
    for path in ours.keys().filter(|k| !theirs.contains_key(*k)) {
        p.push(format!(
            "{} is not in the source",
            String::from_utf8_lossy(path)
        ));
    }
    p.truncate(50);
    RuleResult {
        rule: "filesystem",
        problems: p,
    }
}

/// Every path of the Nydus image, the root included, read through the layout's blobs.
fn nydus_listing(
    layout: &Layout,
    bootstrap: &[u8],
) -> std::result::Result<BTreeMap<Vec<u8>, Attrs>, String> {
    use rafs_format::model::mode;
    let image = rafs_format::decode(bootstrap).map_err(|e| e.to_string())?;
    let reader =
        rafs_reader::ImageReader::open_dir(image, &layout.root().join("blobs").join("sha256"))
            .map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    // The root too: containerd's is the snapshot's directory (0755, root's), whatever the
    // layers say; nydusify does not compare it, we do.
    for e in reader.image().tree.entries() {
        let i = e.inode;
        let kind = crate::overlay::kind_of_mode(i.mode);
        let sha256 = if i.file_type() == mode::S_IFREG {
            let file = reader.file_reader(e.node).map_err(|err| err.to_string())?;
            crate::overlay::stream_digest(file)
                .map_err(|err| err.to_string())?
                .1
        } else {
            String::new()
        };
        let attrs = Attrs {
            kind,
            mode: i.mode & 0o7777,
            uid: i.uid,
            gid: i.gid,
            size: if i.is_reg() { i.size } else { 0 },
            rdev: if matches!(kind, "chr" | "blk") {
                i.rdev
            } else {
                0
            },
            link: i.symlink.clone(),
            xattrs: i
                .xattrs
                .iter()
                .map(|x| (x.name.clone(), x.value.clone()))
                .collect(),
            sha256,
        };
        out.insert(e.path, attrs);
    }
    Ok(out)
}
