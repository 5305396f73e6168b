//! Batch chunks (`--batch-size`, issue 13): the reference's batch images, which its own
//! `unpack` aborts on and its `export --block` refuses, unpack through our reader to the
//! ground-truth listings made without nydus; ours unpack to them exactly and mount in the
//! kernel as them. (Byte identity with the reference's batch bootstraps and blobs is in
//! `rafs-tar-build`'s and `rafs-chunker`'s reference tests.)

use rafs_testkit::{assert_listing, corpus, mount_erofs, mount_unavailable, treelist_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

fn ok(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_rafs"))
        .args(args)
        .output()
        .expect("run rafs");
    assert!(
        out.status.success(),
        "rafs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rafs-batch-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn expected(list: &str) -> String {
    std::fs::read_to_string(corpus().join(format!("expected/{list}.list"))).unwrap()
}

/// The reference stores 0 for an mtime given only by a PAX record (corpus README), and its
/// merge gives a directory an upper layer leaves out the builder's defaults (`etc`).
fn reference_fault(got: &str, want: &str) -> bool {
    let pax_only =
        want.starts_with("/data/future-mtime ") && got == want.replace(" 10000000000 ", " 0 ");
    let implied =
        got.split(' ').next() == want.split(' ').next() && got.contains(" dir 0755 0:0 0 ");
    pax_only || implied
}

#[test]
fn the_references_batch_images_unpack_to_the_ground_truth() {
    let blobs = corpus().join("nydus-image/blobs");
    let mut checked = 0;
    for case in rafs_testkit::corpus_cases() {
        if !case.name.contains("batch") {
            continue;
        }
        // An inlined bootstrap is read from its packed blob.
        let image = if case.flag("--blob-inline-meta") {
            blobs.join(&case.blob_ids[0])
        } else {
            case.dir.join("bootstrap")
        };
        let list = if case.name.starts_with("merge-") {
            "oci-L1-L2-L3"
        } else {
            &case.name[..2]
        };
        let dir = tempdir(&case.name);
        let out = dir.join("unpacked");
        ok(&[
            "unpack",
            "--verify",
            "-D",
            s(&blobs),
            "--dir",
            s(&out),
            s(&image),
        ]);
        let got = treelist_dir(&out).unwrap();
        let allowed = assert_listing(&case.name, &got, &expected(list), &reference_fault);
        println!(
            "{}: {} paths, {allowed} reference fault(s)",
            case.name,
            got.lines().count()
        );
        checked += 1;
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(checked >= 9, "only {checked} batch cases");
}

#[test]
fn our_batch_images_unpack_and_mount_as_the_ground_truth() {
    let dir = tempdir("ours");
    let blobs = dir.join("blobs");
    for (layer, batch) in [("L1", "0x10000"), ("L2", "0x1000"), ("L3", "0x40000")] {
        let boot = dir.join(format!("{layer}.boot"));
        let tar = corpus().join(format!("layers/{layer}.tar"));
        ok(&[
            "convert",
            "-q",
            "--batch-size",
            batch,
            "-D",
            s(&blobs),
            "-B",
            s(&boot),
            s(&tar),
        ]);
        let out = dir.join(format!("unpacked-{layer}"));
        ok(&[
            "unpack",
            "--verify",
            "-D",
            s(&blobs),
            "--dir",
            s(&out),
            s(&boot),
        ]);
        let want = expected(layer);
        assert_listing(layer, &treelist_dir(&out).unwrap(), &want, &|_, _| false);
        if let Some(why) = mount_unavailable() {
            println!("SKIPPED: kernel mount of a batch image: {why}");
            continue;
        }
        let img = dir.join(format!("{layer}.img"));
        ok(&[
            "export",
            "--block",
            "-D",
            s(&blobs),
            "-o",
            s(&img),
            s(&boot),
        ]);
        let mounted = mount_erofs(&img, &[], &dir.join(format!("mnt-{layer}"))).unwrap();
        let listing = treelist_dir(mounted.dir()).unwrap();
        drop(mounted);
        assert_listing(&format!("{layer} mounted"), &listing, &want, &|_, _| false);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
