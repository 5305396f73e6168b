//! Filesystem truth for whole images: the converted image, exported as one EROFS block image
//! and mounted by the kernel, lists exactly as the kernel's overlayfs mount of the source
//! layers, each extracted by GNU tar (not by us) with its OCI whiteouts turned into
//! overlayfs ones. Needs root, loop devices, EROFS, overlayfs, umoci and GNU tar; where one
//! is missing the test prints SKIPPED.

mod common;
use common::{sh, tempdir};
use rafs_format::model::FsVersion;
use rafs_oci::layout::Layout;
use rafs_oci::{convert_image, ChunkDictionary, ConvertOptions};
use rafs_testkit::{
    assert_listing, mount_erofs, overlay_listing, overlayfs_unavailable, run, treelist_dir,
    without_nlink_marks,
};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why the comparison cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    if let Some(why) = overlayfs_unavailable() {
        return Some(why);
    }
    if run("umoci", &["--version"]).is_err() {
        return Some("umoci is not installed".into());
    }
    None
}

/// Source layers with OCI whiteouts, extracted by GNU tar, whiteouts made overlayfs ones.
fn extract_layers(layout: &Layout, tag: &str, dir: &Path) -> Vec<PathBuf> {
    let d = layout.resolve(Some(tag)).unwrap();
    let manifest: serde_json::Value = layout.read_json(d.digest().as_ref(), "manifest").unwrap();
    let mut dirs = Vec::new();
    for (i, l) in manifest["layers"].as_array().unwrap().iter().enumerate() {
        let blob = layout.blob_path(l["digest"].as_str().unwrap()).unwrap();
        let out = dir.join(format!("layer{i}"));
        std::fs::create_dir_all(&out).unwrap();
        sh(
            dir,
            &format!(
                "tar -xpzf {} --xattrs --xattrs-include='*' --numeric-owner -C {}",
                blob.display(),
                out.display()
            ),
        );
        let listed = Command::new("tar")
            .args(["-tzf", blob.to_str().unwrap()])
            .output()
            .unwrap();
        let listed_file = dir.join(format!("layer{i}.listed"));
        std::fs::write(&listed_file, listed.stdout).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/as_overlay_layer.py");
        let mut args = vec![
            script.display().to_string(),
            listed_file.display().to_string(),
            out.display().to_string(),
        ];
        args.extend(dirs.iter().map(|d: &PathBuf| d.display().to_string()));
        let o = Command::new("python3").args(&args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        dirs.push(out);
    }
    dirs
}

/// A one-layer image `img:base` whose only file is a copy of `img:v1`'s `/data/big`.
const DICT_BASE: &str = "umoci new --image img:base
umoci unpack --image img:base c >/dev/null
cp b/rootfs/data/big c/rootfs/big-copy
umoci repack --image img:base c";

/// The converted image `tag`, exported whole as one EROFS image and listed through the
/// kernel's mount of it.
fn kernel_listing(target: &Layout, tag: &str, dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let d = target.resolve(Some(tag)).unwrap();
    let manifest: serde_json::Value = target.read_json(d.digest().as_ref(), "manifest").unwrap();
    let boot = rafs_oci::check::bootstrap_of_manifest(target, &manifest).unwrap();
    let image = rafs_format::decode(&boot).unwrap();
    let reader =
        rafs_reader::ImageReader::open_dir(image, &target.root().join("blobs/sha256")).unwrap();
    let exported = dir.join("export.img");
    rafs_reader::export_block(&reader, std::fs::File::create(&exported).unwrap()).unwrap();
    let erofs = mount_erofs(&exported, &[], &dir.join("erofs")).unwrap();
    treelist_dir(erofs.dir()).unwrap()
}

#[test]
fn the_exported_image_mounted_by_the_kernel_lists_as_overlayfs_of_the_source_layers() {
    if let Some(why) = unavailable() {
        rafs_testkit::skipped(format!("kernel comparison of whole images: {why}"));
        return;
    }
    let dir = tempdir("kernel");
    sh(&dir, include_str!("umoci_image.sh"));
    sh(&dir, DICT_BASE);
    let source = Layout::open(dir.join("img")).unwrap();
    let target = Layout::create(dir.join("out")).unwrap();
    let options = ConvertOptions::new(FsVersion::V6);
    convert_image(&source, Some("v1"), &target, "n", &options).unwrap();
    let ours = kernel_listing(&target, "n", &dir.join("plain"));
    // The same image built against a chunk dictionary: /data/big's chunks are in the
    // dictionary image's blob, which the export reads as one more device.
    convert_image(&source, Some("base"), &target, "dict", &options).unwrap();
    let mut with_dict = options.clone();
    with_dict.chunk_dict = Some(ChunkDictionary::from_image(&target, Some("dict")).unwrap());
    convert_image(&source, Some("v1"), &target, "d", &with_dict).unwrap();
    let ours_with_dict = kernel_listing(&target, "d", &dir.join("dict"));
    // OCI ref (zran): the data read out of the original gzip layers.
    convert_image(
        &source,
        Some("v1"),
        &target,
        "ref",
        &ConvertOptions::oci_ref(),
    )
    .unwrap();
    let ours_oci_ref = without_nlink_marks(&kernel_listing(&target, "ref", &dir.join("ref")));
    // The source layers stacked by overlayfs.
    let layers = extract_layers(&source, "v1", &dir);
    let theirs = without_nlink_marks(&overlay_listing(&layers, &dir.join("overlay")).unwrap());
    let (ours, ours_with_dict) = (
        without_nlink_marks(&ours),
        without_nlink_marks(&ours_with_dict),
    );
    assert!(ours.lines().count() > 10, "{ours}");
    assert_listing("converted image", &ours, &theirs, &|_, _| false);
    assert_listing(
        "with a chunk dictionary",
        &ours_with_dict,
        &theirs,
        &|_, _| false,
    );
    assert_listing("OCI ref (zran)", &ours_oci_ref, &theirs, &|_, _| false);
    println!(
        "{} paths: the kernel's EROFS mount of the converted image equals overlayfs of the source",
        ours.lines().count()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
