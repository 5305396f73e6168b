//! The Linux EROFS driver, a reader nobody here wrote, mounts our rewrite of every tarfs
//! bootstrap in the corpus with the layer tars as its devices, and the mounted tree equals the
//! ground-truth listing made from the tars without nydus.
//!
//! Needs root, loop devices and EROFS. Where any is missing the test prints SKIPPED and why.

use rafs_testkit::{corpus, mount_erofs, mount_unavailable, run, treelist_dir};
use std::path::PathBuf;

/// The file behind a blob id: the corpus stores tarfs blobs as pointer files naming the tar.
fn blob_file(id: &str) -> PathBuf {
    rafs_testkit::blob_path(id).unwrap_or_else(|| panic!("blob {id} missing"))
}

#[test]
fn kernel_mounts_our_tarfs_rewrites() {
    if let Some(why) = mount_unavailable() {
        rafs_testkit::skipped(format!("kernel EROFS mount test: {why}"));
        return;
    }
    let tmp = std::env::temp_dir().join(format!("rafs-kernel-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let cases = [
        ("L1-v6-tarfs", "L1"),
        ("L2-v6-tarfs", "L2"),
        ("L3-v6-tarfs", "L3"),
        ("merge-v6-tarfs", "oci-L1-L2-L3"),
    ];
    for (case, list) in cases {
        let ours = tmp.join(format!("{case}.bootstrap"));
        run(
            env!("CARGO_BIN_EXE_rafs"),
            &[
                "rewrite",
                corpus()
                    .join("nydus-image")
                    .join(case)
                    .join("bootstrap")
                    .to_str()
                    .unwrap(),
                "--bootstrap",
                ours.to_str().unwrap(),
            ],
        )
        .unwrap();
        // Devices in blob-table order, as `rafs inspect` lists them.
        let report: serde_json::Value = serde_json::from_str(
            &run(
                env!("CARGO_BIN_EXE_rafs"),
                &["inspect", "--json", ours.to_str().unwrap()],
            )
            .unwrap(),
        )
        .unwrap();
        let devices: Vec<PathBuf> = report["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| blob_file(b["blob_id"].as_str().unwrap()))
            .collect();
        let mnt = tmp.join(format!("mnt-{case}"));
        let guard = mount_erofs(&ours, &devices, &mnt)
            .unwrap_or_else(|e| panic!("{case}: mount failed: {e}"));
        let listing = treelist_dir(guard.dir()).unwrap();
        drop(guard);
        let expected =
            std::fs::read_to_string(corpus().join(format!("expected/{list}.list"))).unwrap();
        let (mut same, mut allowed) = (0, 0);
        let got: Vec<&str> = listing.lines().collect();
        let want: Vec<&str> = expected.lines().collect();
        assert_eq!(
            got.len(),
            want.len(),
            "{case}: mounted tree has {} paths, expected {}",
            got.len(),
            want.len()
        );
        for (g, w) in got.iter().zip(&want) {
            if g == w {
                same += 1;
            } else if w.starts_with("/data/future-mtime ")
                && *g == w.replace(" 10000000000 ", " 0 ")
            {
                // The reference ignores PAX mtime records (corpus README): stored as 0.
                allowed += 1;
            } else {
                panic!("{case}: mounted tree differs:\n  kernel:   {g}\n  expected: {w}");
            }
        }
        println!("{case}: {same} paths identical, {allowed} known reference difference(s)");
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
