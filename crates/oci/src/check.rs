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
use crate::fs_rule::filesystem_rule;
use crate::layout::{sha256_hex, Layout};
use crate::limits::ImageLimits;
use crate::pack::MEDIA_TYPE_NYDUS_BLOB;
use oci_spec::image::{Descriptor, ImageIndex};
use serde_json::Value;

/// The outcome of one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleResult {
    /// `"manifest"`, `"bootstrap"` or `"filesystem"`.
    pub rule: &'static str,
    /// What does not hold; empty when the rule holds.
    pub problems: Vec<String>,
}

/// The outcome of checking one Nydus manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// The manifest checked.
    pub manifest: String,
    /// Its platform in an index (`os/arch[/variant]`); `None` for a lone manifest.
    pub platform: Option<String>,
    /// Each rule, in order.
    pub rules: Vec<RuleResult>,
}

impl CheckReport {
    /// Whether every rule holds.
    pub fn ok(&self) -> bool {
        self.rules.iter().all(|r| r.problems.is_empty())
    }
}

/// Checks the Nydus image `reference` of `layout`, and with `source` its filesystem against
/// the source image's, within the default [`ImageLimits`]. An index must hold exactly one
/// Nydus manifest; [`check_images`] checks every one.
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
    let mut reports = check_images(layout, reference, source, &[], limits)?;
    match reports.len() {
        1 => Ok(reports.remove(0)),
        n => Err(unsupported(
            format!("image {}", reference.unwrap_or("(the only one)")),
            format!("an index of {n} Nydus manifests; check them with check_images"),
        )),
    }
}

/// Checks every Nydus manifest `reference` names: itself, or each Nydus entry of an index
/// (only those of `platforms`, as `os/arch[/variant]`, when some are named), each against
/// the source manifest of the same platform. A merge-platform index's Nydus entries are
/// those marked with the Nydus artifact type; its OCI entries can serve as the source.
pub fn check_images(
    layout: &Layout,
    reference: Option<&str>,
    source: Option<(&Layout, Option<&str>)>,
    platforms: &[String],
    limits: &ImageLimits,
) -> Result<Vec<CheckReport>> {
    let desc = layout.resolve(reference)?;
    let entries = if desc.media_type().to_string() == MEDIA_TYPE_OCI_INDEX {
        nydus_entries(layout, &desc, platforms)?
    } else {
        vec![desc]
    };
    let mut reports = Vec::with_capacity(entries.len());
    for entry in entries {
        let platform = entry.platform().as_ref().map(platform_name);
        let source_image = match source {
            Some((l, r)) => Some(source_manifest(l, r, platform.as_deref())?),
            None => None,
        };
        let mut report = check_manifest(layout, &entry, source_image.as_ref(), limits)?;
        report.platform = platform;
        reports.push(report);
    }
    Ok(reports)
}

/// Checks one manifest against the source's (layout, manifest, config).
fn check_manifest(
    layout: &Layout,
    desc: &Descriptor,
    source_image: Option<&(Layout, Value, Value)>,
    limits: &ImageLimits,
) -> Result<CheckReport> {
    let digest = desc.digest().to_string();
    let media = desc.media_type().to_string();
    if media != MEDIA_TYPE_OCI_MANIFEST && media != MEDIA_TYPE_DOCKER_MANIFEST {
        return Err(unsupported(
            format!("image {digest}"),
            format!("{media} is not an image manifest"),
        ));
    }
    let manifest: Value = layout.read_json(&digest, "manifest")?;
    limits.check_layers(layers(&manifest).len(), &format!("manifest {digest}"))?;
    fetch_layers(layout, &manifest);
    let config: Value = layout.read_json(
        manifest["config"]["digest"].as_str().unwrap_or_default(),
        "config",
    )?;
    let boot_layer = bootstrap_layer_of(layout, &manifest);
    let mut rules = vec![manifest_rule(
        boot_layer.as_ref(),
        &manifest,
        &config,
        source_image.map(|s| &s.2),
    )];
    let bootstrap = boot_layer.as_ref().map(|l| l.bootstrap.as_slice());
    rules.push(bootstrap_rule(layout, &manifest, bootstrap));
    if let (Some((src_layout, src_manifest, _)), Ok(boot)) = (source_image, bootstrap) {
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
        platform: None,
        rules,
    })
}

/// `os/arch[/variant]`.
fn platform_name(p: &oci_spec::image::Platform) -> String {
    let base = format!("{}/{}", p.os(), p.architecture());
    match p.variant() {
        Some(v) => format!("{base}/{v}"),
        None => base,
    }
}

/// Whether an index entry is marked as a Nydus image (merge-platform, spec §3.5).
fn marked_nydus(d: &Descriptor) -> bool {
    d.artifact_type()
        .as_ref()
        .is_some_and(|t| t.to_string() == ARTIFACT_TYPE_NYDUS_IMAGE)
}

/// The Nydus entries of an index, of `platforms` when some are named: the marked ones of a
/// merge-platform index, else every entry whose manifest is a Nydus image.
pub(crate) fn nydus_entries(
    layout: &Layout,
    desc: &Descriptor,
    platforms: &[String],
) -> Result<Vec<Descriptor>> {
    let digest = desc.digest().to_string();
    let index: ImageIndex = layout.read_json(&digest, "index")?;
    ImageLimits::default().check_manifests(index.manifests().len(), &format!("index {digest}"))?;
    let wanted: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| crate::convert::wanted(d, platforms))
        .collect();
    let mut found: Vec<Descriptor> = wanted
        .iter()
        .filter(|d| marked_nydus(d))
        .map(|d| (*d).clone())
        .collect();
    if found.is_empty() {
        for d in wanted {
            let manifest: Value = layout.read_json(d.digest().as_ref(), "manifest")?;
            if crate::convert::is_nydus(&manifest) {
                found.push(d.clone());
            }
        }
    }
    if found.is_empty() {
        let which = if platforms.is_empty() {
            String::new()
        } else {
            format!(" for {}", platforms.join(", "))
        };
        return Err(unsupported(
            format!("index {digest}"),
            format!("no Nydus manifest{which}"),
        ));
    }
    Ok(found)
}

/// The source's layout, manifest and config: the manifest `reference` names, or in an index
/// the (non-Nydus) entry of `platform`.
fn source_manifest(
    layout: &Layout,
    reference: Option<&str>,
    platform: Option<&str>,
) -> Result<(Layout, Value, Value)> {
    let mut desc = layout.resolve(reference)?;
    if desc.media_type().to_string() == MEDIA_TYPE_OCI_INDEX {
        let digest = desc.digest().to_string();
        let index: ImageIndex = layout.read_json(&digest, "source index")?;
        let name = platform.unwrap_or("(none: the Nydus image is a lone manifest)");
        let same = |d: &&Descriptor| {
            !marked_nydus(d) && d.platform().as_ref().map(platform_name).as_deref() == Some(name)
        };
        desc = index
            .manifests()
            .iter()
            .find(same)
            .cloned()
            .ok_or_else(|| {
                unsupported(
                    format!("source index {digest}"),
                    format!("no manifest for platform {name}"),
                )
            })?;
    }
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

/// A registry image's layers, downloaded (verified) into its cache, where the Nydus image
/// reader opens them as files. One that fails to arrive is reported by the rules that read it.
fn fetch_layers(layout: &Layout, manifest: &Value) {
    if layout.registry().is_none() {
        return;
    }
    for l in layers(manifest) {
        if let (Some(d), Some(size)) = (l["digest"].as_str(), l["size"].as_u64()) {
            let _ = layout.ensure_local(d, size);
        }
        if let Some(original) = l["annotations"][crate::convert::ANNOTATION_NYDUS_REF].as_str() {
            let _ = layout.ensure_local_unsized(original);
        }
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
