//! The config and manifest rewritten for the Nydus layers: diff_ids, history, annotations.

use super::*;

/// The config with the Nydus blob layers' diff_ids (each its own digest), the bootstrap
/// layer's, and the converter's history entry; every other field kept. Returns its descriptor.
pub(super) fn rewrite_config(
    source: &Layout,
    manifest: &Value,
    blobs: &[(String, u64)],
    boot_diff_id: &str,
    target: &Layout,
) -> Result<Value> {
    let mut desc = manifest["config"].clone();
    let digest = desc["digest"].as_str().unwrap_or_default().to_owned();
    let mut config: Value = source.read_json(&digest, "config")?;
    let what = format!("config {digest}");
    let obj = config
        .as_object_mut()
        .ok_or_else(|| json(&what, "not an object"))?;
    let mut diff_ids: Vec<Value> = blobs.iter().map(|(d, _)| Value::from(d.clone())).collect();
    diff_ids.push(Value::from(boot_diff_id));
    let rootfs = obj
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers"}));
    rootfs["diff_ids"] = Value::Array(diff_ids);
    let history = obj
        .entry("history")
        .or_insert_with(|| Value::Array(Vec::new()));
    history
        .as_array_mut()
        .ok_or_else(|| json(&what, "history is not a list"))?
        .push(json!({"created_by": "Nydus Converter", "comment": "Nydus Bootstrap Layer"}));
    let (new_digest, size) = target.write_json(&config)?;
    desc["digest"] = Value::from(new_digest);
    desc["size"] = Value::from(size);
    Ok(desc)
}

/// The Nydus manifest: the source's fields, the new config, the blob layers (one per source
/// layer, then the chunk dictionary's referenced blobs) and the bootstrap layer, and the
/// converter's annotations.
pub(super) fn rewrite_manifest(
    manifest: &Value,
    source_digest: &str,
    config: Value,
    blobs: &[(String, u64)],
    (boot_digest, boot_size): (&str, u64),
    options: &ConvertOptions,
    reports: &[LayerReport],
) -> Value {
    let version = options.build.fs_version.number().to_string();
    let docker = manifest["mediaType"].as_str() == Some(MEDIA_TYPE_DOCKER_MANIFEST);
    let boot_media = if docker {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    } else {
        "application/vnd.oci.image.layer.v1.tar+gzip"
    };
    let mut new_layers: Vec<Value> = blobs
        .iter()
        .enumerate()
        .map(|(i, (digest, size))| {
            let mut l = json!({ "mediaType": MEDIA_TYPE_NYDUS_BLOB, "digest": digest, "size": size, "annotations": { ANNOTATION_NYDUS_BLOB: "true" } });
            // OCI ref: each blob layer names the original layer holding its data.
            if let (true, Some(r)) = (options.oci_ref, reports.get(i)) {
                l["annotations"][ANNOTATION_NYDUS_REF] = Value::from(r.source_digest.clone());
            }
            l
        })
        .collect();
    new_layers.push(json!({
        "mediaType": boot_media,
        "digest": boot_digest,
        "size": boot_size,
        "annotations": { ANNOTATION_NYDUS_BOOTSTRAP: "true", ANNOTATION_FS_VERSION: version },
    }));
    let mut m = manifest.clone();
    m["config"] = config;
    if options.merge_platform {
        // So that a plain containerd never unpacks the Nydus entry (spec §3.1).
        m["config"]["mediaType"] = Value::from(MEDIA_TYPE_NYDUS_CONFIG);
    }
    m["layers"] = Value::Array(new_layers);
    let annotations = m.as_object_mut().map(|o| {
        o.entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()))
    });
    if let Some(Value::Object(a)) = annotations {
        a.insert(ANNOTATION_SOURCE_DIGEST.into(), Value::from(source_digest));
        a.insert(ANNOTATION_FS_VERSION.into(), Value::from(version));
    }
    m
}
