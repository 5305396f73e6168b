//! The umoci-made layers of `testdata/umoci/` against the reference's outputs: v6 builds and
//! the v6 merge byte for byte (the merge sets `HAS_XATTR` with no xattr anywhere, hardening
//! item 20), and the v5 build of the layer the reference refuses (item 19), which we convert
//! to the same tree as v6.

use rafs_format::model::FsVersion;
use rafs_merge::{merge, Layer, MergeOptions};
use rafs_tar_build::{build_layer, BuildOptions};
use std::path::PathBuf;

fn dir() -> PathBuf {
    rafs_testkit::corpus().join("../umoci")
}

fn convert(layer: &str, version: FsVersion) -> rafs_tar_build::BuildOutput<Vec<u8>> {
    let tar = std::fs::read(dir().join(format!("zoneinfo-{layer}.tar"))).unwrap();
    build_layer(tar.as_slice(), &BuildOptions::new(version), Vec::new()).unwrap()
}

fn reference(case: &str) -> Vec<u8> {
    std::fs::read(dir().join("ref").join(case).join("bootstrap")).unwrap()
}

#[test]
fn umoci_layers_convert_and_merge_to_the_reference_bytes() {
    let l1 = convert("L1", FsVersion::V6);
    let l2 = convert("L2", FsVersion::V6);
    assert!(l1.bootstrap == reference("L1-v6"), "L1 v6 bootstrap");
    assert!(l2.bootstrap == reference("L2-v6"), "L2 v6 bootstrap");
    let id = l1.report.blob_id.clone().unwrap();
    let ref_blob = std::fs::read(dir().join("ref/L1-v6/blobs").join(&id)).unwrap();
    assert!(l1.sink == ref_blob, "L1 v6 blob");
    assert_eq!(l2.report.whiteouts_dropped, 2);

    let cmd = std::fs::read_to_string(dir().join("ref/merge-v6/cmd.txt")).unwrap();
    let digests: Vec<String> = cmd
        .split_whitespace()
        .skip_while(|w| *w != "--blob-digests")
        .nth(1)
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    let layers = vec![
        Layer {
            image: l1.image.clone(),
            blob_id: Some(digests[0].clone()),
        },
        Layer {
            image: l2.image.clone(),
            blob_id: Some(digests[1].clone()),
        },
    ];
    let merged = merge(layers, &MergeOptions::default()).unwrap();
    assert!(merged.tree.inodes.iter().all(|i| i.xattrs.is_empty()));
    let bytes = rafs_format::encode(&merged).unwrap();
    assert!(
        bytes == reference("merge-v6"),
        "merge v6 bootstrap (HAS_XATTR)"
    );
}

#[test]
fn the_layer_the_reference_refuses_in_v5_converts_to_the_v6_tree() {
    let rc = std::fs::read_to_string(dir().join("ref/L2-v5/rc")).unwrap();
    assert_eq!(rc.trim(), "1", "the reference's v5 build of L2 fails");
    let v5 = convert("L2", FsVersion::V5);
    let v6 = convert("L2", FsVersion::V6);
    let back = rafs_format::decode(&v5.bootstrap).unwrap();
    assert_eq!(
        back.tree_difference(&v6.image.converted_to(FsVersion::V5)),
        None
    );
    let l1 = convert("L1", FsVersion::V5);
    assert!(l1.bootstrap == reference("L1-v5"), "L1 v5 bootstrap");
}
