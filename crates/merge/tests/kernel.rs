//! Ground truth from the kernel, for merge, unpack and export.
//!
//! * `rafs export --block` output of every crafted layer and of the crafted stacks mounts with
//!   EROFS on its own (`-o loop,ro`) and equals the corpus' listing.
//! * overlayfs: each layer of a stack, unpacked by us and given overlayfs-style whiteouts, is
//!   mounted with `mount -t overlay` (lowerdir=upper:...:lowest); the tree equals our merged
//!   image unpacked into a directory.
//!
//! Needs root, loop devices, EROFS and overlayfs; where one is missing the test prints SKIPPED.

use rafs_format::model::FsVersion;
use rafs_merge::{merge, Layer, MergeOptions};
use rafs_reader::{export_block, unpack_to_dir, BlobSource, ImageReader};
use rafs_tar_build::{build_layer, BuildOptions};
use rafs_testkit::{
    assert_listing, corpus, mount_unavailable, overlay_listing, overlayfs_unavailable, run,
    treelist_dir, without_nlink_marks,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A converted layer: image and blob bytes.
struct Built {
    image: rafs_format::model::Image,
    blob: Arc<Vec<u8>>,
}

fn build(tar: &Path, opts: &BuildOptions) -> Built {
    let bytes = std::fs::read(tar).unwrap();
    let out = build_layer(bytes.as_slice(), opts, Vec::new()).unwrap();
    let blob = if out.image.superblock.tarfs {
        bytes
    } else {
        out.sink
    };
    Built {
        image: out.image,
        blob: Arc::new(blob),
    }
}

/// A reader over an image whose blobs are in memory, by id.
fn reader(image: rafs_format::model::Image, blobs: &HashMap<String, Arc<Vec<u8>>>) -> ImageReader {
    let blobs = blobs.clone();
    ImageReader::open_with(image, move |b| {
        Ok(blobs
            .get(&b.blob_id)
            .map(|v| Box::new(v.as_ref().clone()) as BlobSource))
    })
    .unwrap()
}

fn tmpdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("rafs-merge-kernel-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Mounts an exported block image by itself and lists it.
fn mount_export_and_list(img: &Path, mnt: &Path) -> String {
    std::fs::create_dir_all(mnt).unwrap();
    run(
        "mount",
        &[
            "-t",
            "erofs",
            "-o",
            "loop,ro",
            img.to_str().unwrap(),
            mnt.to_str().unwrap(),
        ],
    )
    .unwrap_or_else(|e| panic!("{}: {e}", img.display()));
    let listing = treelist_dir(mnt);
    let _ = run("umount", &[mnt.to_str().unwrap()]);
    listing.unwrap()
}

#[test]
fn exported_images_mount_and_match_the_ground_truth() {
    if let Some(why) = mount_unavailable() {
        rafs_testkit::skipped(format!("export mount test: {why}"));
        return;
    }
    let tmp = tmpdir().join("export");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut blobs = HashMap::new();
    let mut built = HashMap::new();
    let mut count = 0;
    for (name, tar) in rafs_testkit::crafted_layers() {
        let expected =
            std::fs::read_to_string(corpus().join(format!("expected/{name}.list"))).unwrap();
        for (label, opts) in [
            ("v6", BuildOptions::new(FsVersion::V6)),
            ("v5", BuildOptions::new(FsVersion::V5)),
            ("tarfs", BuildOptions::tarfs()),
        ] {
            if label == "tarfs" && name == "edge-E7-gnu-sparse" {
                continue;
            }
            let b = build(&tar, &opts);
            for blob in &b.image.blobs {
                blobs.insert(blob.blob_id.clone(), b.blob.clone());
            }
            let r = reader(b.image.clone(), &blobs);
            let img = tmp.join(format!("{name}-{label}.img"));
            let (bytes, _) = export_block(&r, Vec::new()).unwrap();
            std::fs::write(&img, bytes).unwrap();
            let got = mount_export_and_list(&img, &tmp.join(format!("mnt-{name}-{label}")));
            assert_listing(&format!("{name} {label}"), &got, &expected, &|_, _| false);
            count += 1;
            if label == "v6" {
                built.insert(name.clone(), b);
            }
        }
    }
    // The stacks, merged.
    for (stack, list) in [
        (vec!["L1", "L2"], "oci-L1-L2"),
        (vec!["L1", "L2", "L3"], "oci-L1-L2-L3"),
    ] {
        let layers = stack
            .iter()
            .map(|l| Layer {
                image: built[*l].image.clone(),
                blob_id: None,
            })
            .collect();
        let merged = merge(layers, &MergeOptions::default()).unwrap();
        let (bytes, _) = export_block(&reader(merged, &blobs), Vec::new()).unwrap();
        let img = tmp.join(format!("{list}.img"));
        std::fs::write(&img, bytes).unwrap();
        let got = mount_export_and_list(&img, &tmp.join(format!("mnt-{list}")));
        let expected =
            std::fs::read_to_string(corpus().join(format!("expected/{list}.list"))).unwrap();
        // Where overlay semantics (the listing's model) and the reference's merge differ, we
        // follow the reference: a directory the upper layer's tar leaves out (implied by a
        // child) replaces the lower directory's attributes with the implied ones.
        let implied = |got: &str, want: &str| {
            got.split(' ').next() == want.split(' ').next() && got.contains(" dir 0755 0:0 0 ")
        };
        let n = assert_listing(list, &got, &expected, &implied);
        println!(
            "{list}: {} paths, {n} implied-directory difference(s)",
            expected.lines().count()
        );
        count += 1;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    println!("exported and mounted {count} images");
    assert!(count >= 40);
}

/// overlayfs-style whiteouts in an unpacked layer: `.wh.X` becomes a char device 0:0 named X
/// (unless the layer itself has X), `.wh..wh..opq` the xattr `trusted.overlay.opaque=y`.
fn to_overlayfs_whiteouts(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        // Changing a directory's entries changes its mtime; the layer's own time is put back.
        let st = rustix::fs::lstat(&d).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap()).collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(path.clone());
            }
            if name == ".wh..wh..opq" {
                std::fs::remove_file(&path).unwrap();
                rustix::fs::lsetxattr(
                    &d,
                    "trusted.overlay.opaque",
                    b"y",
                    rustix::fs::XattrFlags::empty(),
                )
                .unwrap();
            } else if let Some(victim) = name.strip_prefix(".wh.") {
                std::fs::remove_file(&path).unwrap();
                let target = d.join(victim);
                if std::fs::symlink_metadata(&target).is_err() {
                    rustix::fs::mknodat(
                        rustix::fs::CWD,
                        &target,
                        rustix::fs::FileType::CharacterDevice,
                        rustix::fs::Mode::from_raw_mode(0o644),
                        0,
                    )
                    .unwrap();
                }
            }
        }
        let t = rustix::fs::Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        };
        let times = rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &d,
            &times,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }
}

/// Converts each layer tar (v6), unpacks it with overlayfs whiteouts, mounts the stack with
/// overlayfs, and asserts that the tree equals our merge of the layers unpacked; returns the
/// number of paths.
fn assert_merge_equals_overlayfs(
    name: &str,
    tars: &[PathBuf],
    opts: &BuildOptions,
    tmp: &Path,
) -> usize {
    let mut blobs = HashMap::new();
    let mut built = Vec::new();
    for (i, tar) in tars.iter().enumerate() {
        let b = build(tar, opts);
        for blob in &b.image.blobs {
            blobs.insert(blob.blob_id.clone(), b.blob.clone());
        }
        let dir = tmp.join(format!("{name}-layer-{i}"));
        unpack_to_dir(&reader(b.image.clone(), &blobs), &dir).unwrap();
        to_overlayfs_whiteouts(&dir);
        built.push((b, dir));
    }
    let layers = built
        .iter()
        .map(|(b, _)| Layer {
            image: b.image.clone(),
            blob_id: None,
        })
        .collect();
    let merged = merge(layers, &MergeOptions::default()).unwrap();
    let ours = tmp.join(format!("{name}-merged"));
    unpack_to_dir(&reader(merged, &blobs), &ours).unwrap();
    let ours_list = treelist_dir(&ours).unwrap();
    let lower: Vec<PathBuf> = built.iter().map(|(_, d)| d.clone()).collect();
    let overlay_list = overlay_listing(&lower, &tmp.join(format!("{name}-mnt"))).unwrap();
    let normal = without_nlink_marks;
    let n = assert_listing(
        name,
        &normal(&ours_list),
        &normal(&overlay_list),
        &|_, _| false,
    );
    assert_eq!(n, 0);
    ours_list.lines().count()
}

#[test]
fn merged_images_equal_overlayfs_of_their_layers() {
    if let Some(why) = overlayfs_unavailable() {
        rafs_testkit::skipped(format!("overlayfs comparison: {why}"));
        return;
    }
    let tmp = tmpdir().join("overlay");
    std::fs::create_dir_all(&tmp).unwrap();
    let tars: Vec<PathBuf> = ["L1", "L2", "L3"]
        .iter()
        .map(|l| rafs_testkit::layer_tar(l))
        .collect();
    for depth in [2, 3] {
        let paths = assert_merge_equals_overlayfs(
            &format!("L1..L{depth}"),
            &tars[..depth],
            &BuildOptions::new(FsVersion::V6),
            &tmp,
        );
        println!("L1..L{depth}: {paths} paths, overlayfs and our merge agree");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Hardening item 19: umoci's layer that replaces a directory by a symlink and whiteouts the
/// old children under it converts (v5 and v6) and merges to what overlayfs shows.
#[test]
fn umoci_directory_to_symlink_layers_merge_as_overlayfs_shows() {
    if let Some(why) = overlayfs_unavailable() {
        rafs_testkit::skipped(format!("overlayfs comparison of the umoci layers: {why}"));
        return;
    }
    let tmp = tmpdir().join("umoci");
    std::fs::create_dir_all(&tmp).unwrap();
    let dir = corpus().join("../umoci");
    let tars = [dir.join("zoneinfo-L1.tar"), dir.join("zoneinfo-L2.tar")];
    for (label, opts) in [
        ("v6", BuildOptions::new(FsVersion::V6)),
        ("v5", BuildOptions::new(FsVersion::V5)),
    ] {
        let paths = assert_merge_equals_overlayfs(&format!("zoneinfo-{label}"), &tars, &opts, &tmp);
        println!("umoci zoneinfo {label}: {paths} paths, overlayfs and our merge agree");
        assert_eq!(paths, 7);
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
