//! What the CLI tests of the issue-13 build modes (batch, zran) share: running `rafs`, the
//! corpus' ground truth and the reference's known faults, and the kernel's view of an image.

#![allow(dead_code, reason = "each test binary uses its own part")]

use rafs_testkit::{corpus, mount_erofs, mount_unavailable, treelist_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `rafs args`, requiring success; returns its standard output.
pub fn ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rafs"))
        .args(args)
        .output()
        .expect("run rafs");
    assert!(
        out.status.success(),
        "rafs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh directory for one test.
pub fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rafs-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A path as an argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The ground-truth listing `expected/<list>.list` (made without nydus).
pub fn expected(list: &str) -> String {
    std::fs::read_to_string(corpus().join(format!("expected/{list}.list"))).unwrap()
}

/// The reference stores 0 for an mtime given only by a PAX record (corpus README), and its
/// merge gives a directory an upper layer leaves out the builder's defaults.
pub fn reference_fault(got: &str, want: &str) -> bool {
    let pax_only =
        want.starts_with("/data/future-mtime ") && got == want.replace(" 10000000000 ", " 0 ");
    let implied =
        got.split(' ').next() == want.split(' ').next() && got.contains(" dir 0755 0:0 0 ");
    pax_only || implied
}

/// The image `boot` (blobs in `blobs`) exported with `export --block` and listed through the
/// kernel's EROFS mount; `None`, after saying SKIPPED, where the kernel cannot mount it.
pub fn mounted_listing(blobs: &Path, boot: &Path, dir: &Path, tag: &str) -> Option<String> {
    if let Some(why) = mount_unavailable() {
        println!("SKIPPED: kernel mount of {tag}: {why}");
        return None;
    }
    let img = dir.join(format!("{tag}.img"));
    ok(&["export", "--block", "-D", s(blobs), "-o", s(&img), s(boot)]);
    let mounted = mount_erofs(&img, &[], &dir.join(format!("mnt-{tag}"))).unwrap();
    let listing = treelist_dir(mounted.dir()).unwrap();
    drop(mounted);
    Some(listing)
}

/// `rafs unpack --verify` of `image` (blobs in `blobs`) into `out`, listed.
pub fn unpacked_listing(blobs: &Path, image: &Path, out: &Path) -> String {
    ok(&[
        "unpack",
        "--verify",
        "-D",
        s(blobs),
        "--dir",
        s(out),
        s(image),
    ]);
    treelist_dir(out).unwrap()
}

/// A reference case's image unpacks to its layer's ground truth (`L1`..`L3` by the case's
/// name, the three-layer OCI model for a merge), allowing only the reference's known faults.
pub fn assert_reference_unpacks(
    case: &rafs_testkit::CorpusCase,
    blobs: &Path,
    image: &Path,
    out: &Path,
) {
    let list = if case.name.starts_with("merge-") {
        "oci-L1-L2-L3"
    } else {
        &case.name[..2]
    };
    let got = unpacked_listing(blobs, image, out);
    let allowed = rafs_testkit::assert_listing(&case.name, &got, &expected(list), &reference_fault);
    println!(
        "{}: {} paths, {allowed} reference fault(s)",
        case.name,
        got.lines().count()
    );
}
