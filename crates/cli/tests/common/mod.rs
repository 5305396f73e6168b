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
        rafs_testkit::skipped(format!("kernel mount of {tag}: {why}"));
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

/// `len` bytes that do not compress (xorshift), streamed.
struct Noise {
    state: u64,
    left: u64,
}

impl std::io::Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX))
            & !7;
        for word in buf[..n].chunks_exact_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            word.copy_from_slice(&self.state.to_le_bytes());
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A layout holding `img:v1`: `layers` plain tar layers of `files` files of `file_size`
/// incompressible bytes each, written as they are made.
pub fn large_image(root: &Path, layers: u64, files: u64, file_size: u64) -> rafs_oci::Layout {
    let layout = rafs_oci::Layout::create(root).unwrap();
    let mut descs = Vec::new();
    for l in 0..layers {
        let mut tar = tar::Builder::new(layout.blob_writer().unwrap());
        for f in 0..files {
            let mut h = tar::Header::new_ustar();
            h.set_size(file_size);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            let data = Noise {
                state: 0x9e37_79b9_7f4a_7c15 ^ (l * 1000 + f + 1),
                left: file_size,
            };
            tar.append_data(&mut h, format!("layer{l}/file{f}"), data)
                .unwrap();
        }
        let (digest, size) = tar.into_inner().unwrap().commit().unwrap();
        descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size}));
    }
    let diff_ids: Vec<&serde_json::Value> = descs.iter().map(|d| &d["digest"]).collect();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let (config_digest, config_size) = layout.write_json(&config).unwrap();
    let m = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": descs});
    let (digest, size) = layout.write_json(&m).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest, "size": size, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    layout
        .write_index(&serde_json::from_value(index).unwrap())
        .unwrap();
    layout
}
