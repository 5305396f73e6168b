//! A registry as a conversion source through the library (issue 23): layers stream from the
//! registry into the conversion, so the source's cache holds only the JSON documents (the
//! manifest and config), never a layer; the result is the layout conversion's image.

use rafs_oci::registry::RegistryOptions;
use rafs_oci::{ConvertOptions, ImageRef, Layout};
use rafs_testkit::registry::{start_registry, RegistrySetup};
use std::path::PathBuf;
use std::process::Command;

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/images/demo")
}

#[test]
fn layers_stream_from_the_registry_and_only_json_is_cached() {
    let dir = std::env::temp_dir().join(format!("rafs-oci-registry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let Some(reg) = start_registry(&dir.join("registry"), &RegistrySetup::default()) else {
        return;
    };
    let src = format!("docker://{}/demo:v1", reg.host());
    let st = Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", demo().display()))
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success());

    let image: ImageRef = src.parse().unwrap();
    let cache = dir.join("cache");
    let (source, reference) = image
        .open_with(&cache, &RegistryOptions::default())
        .unwrap();
    assert!(source.registry().is_some());
    let target = Layout::create(dir.join("out")).unwrap();
    let options = ConvertOptions::new(rafs_format::model::FsVersion::V6);
    let report =
        rafs_oci::convert_image(&source, reference.as_deref(), &target, "nydus", &options).unwrap();

    let local = Layout::create(dir.join("local")).unwrap();
    let from_layout = rafs_oci::convert_image(
        &Layout::open(demo()).unwrap(),
        Some("v1"),
        &local,
        "nydus",
        &options,
    )
    .unwrap();
    assert_eq!(report.target, from_layout.target);

    // The cache: the manifest and the config, both JSON; no layer.
    let blobs: Vec<_> = std::fs::read_dir(cache.join("blobs/sha256"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    let layers = report.manifests[0].layers.len();
    assert!(layers >= 2, "the demo has several layers");
    assert_eq!(blobs.len(), 2, "cached: manifest and config only");
    for b in &blobs {
        serde_json::from_slice::<serde_json::Value>(b).expect("a cached blob is JSON");
    }
    drop(reg);
    let _ = std::fs::remove_dir_all(&dir);
}
