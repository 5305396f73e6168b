//! The library's read-back path (issue 24, item 8): a converted image opens with
//! `NydusImage::open` and its files read back verified; an index opens when it holds one
//! Nydus manifest, and any entry opens by its digest.

use rafs_format::model::FsVersion;
use rafs_oci::{convert_image, ConvertOptions, Layout, NydusImage};
use std::path::PathBuf;

fn images() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/images")
}

#[test]
fn a_converted_image_opens_and_its_files_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let target = Layout::create(dir.path()).unwrap();
    let options = ConvertOptions::new(FsVersion::V6);
    let demo = Layout::open(images().join("demo")).unwrap();
    let report = convert_image(&demo, Some("v1"), &target, "demo", &options).unwrap();
    let image = NydusImage::open(&target, Some("demo")).unwrap();
    assert_eq!(image.manifest(), report.target);
    assert_eq!(
        image.read_file("/etc/app/app.conf").unwrap(),
        b"listen 9090\n"
    );
    assert!(image.read_file("/no/such/file").is_err());

    let real = Layout::open(images().join("real")).unwrap();
    let multi = convert_image(&real, Some("multi"), &target, "multi", &options).unwrap();
    let err = NydusImage::open(&target, Some("multi")).err().unwrap();
    assert!(err.to_string().contains("2 Nydus manifests"), "{err}");
    let arm = &multi.manifests[1].target_manifest;
    let image = NydusImage::open_manifest(&target, arm).unwrap();
    assert_eq!(image.read_file("/data/high").unwrap(), b"three\n");
    let xattrs = &image.reader().image().tree;
    let high = xattrs.entries().find(|e| e.path == b"/data/high").unwrap();
    assert_eq!(high.inode.xattrs[0].value, b"\xff\xfe\x80");
}
