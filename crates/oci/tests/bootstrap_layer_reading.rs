//! Bootstrap layers read as containerd applies them (issue 21 item 2): a second
//! `image.boot`, stray members, bombs, data after the end marker, junk after the gzip.
//! Every image starts from the demo image in `testdata/` or is built here, so no tool is needed.

#![allow(
    unused_imports,
    reason = "each file uses its own part of the shared helpers"
)]

mod common;
use common::*;
use rafs_format::model::FsVersion;
use rafs_oci::layout::Layout;
use rafs_oci::{convert_image, ConvertOptions};
use serde_json::Value;
use std::io::Write;
use std::path::Path;

#[test]
fn a_bootstrap_layer_with_a_second_bootstrap_or_a_stray_member_is_refused() {
    let (dir, target) = converted("bootstrap-layer-members");
    assert_eq!(problems(&target, "good"), "");
    let good = the_bootstrap(&target);
    // A second bootstrap, valid and different (a file's mode changed): containerd would mount
    // the second, a first-wins reader would check the first.
    let mut image = rafs_format::decode(&good).unwrap();
    let n = image.tree.lookup_components([b"etc".as_slice()]).unwrap();
    let ino = image.tree.node(n).inode.0 as usize;
    image.tree.inodes[ino].mode ^= 0o022;
    let evil = rafs_format::encode(&image).unwrap();
    let reg = tar::EntryType::Regular;
    let cases: [(&str, Vec<u8>, &str); 6] = [
        (
            "two-boots",
            tar_of(&[
                ("image/image.boot", reg, &good),
                ("image/image.boot", reg, &evil),
            ]),
            "image/image.boot appears twice",
        ),
        (
            "two-boots-other-spelling",
            tar_of(&[
                ("image/image.boot", reg, &good),
                ("./image//image.boot", reg, &evil),
            ]),
            "image/image.boot appears twice",
        ),
        (
            "stray-file",
            tar_of(&[
                ("image/image.boot", reg, &good),
                ("image/run.sh", reg, b"x"),
            ]),
            "unexpected member image/run.sh (a regular file)",
        ),
        (
            "symlink",
            tar_of(&[
                ("image/image.boot", reg, &good),
                ("image/x.boot", tar::EntryType::Symlink, b""),
            ]),
            "unexpected member image/x.boot (a symlink)",
        ),
        (
            "global-pax",
            tar_of(&[
                ("pax", tar::EntryType::XGlobalHeader, b"9 a=bcd\n"),
                ("image/image.boot", reg, &good),
            ]),
            "a PAX global header",
        ),
        (
            "boot-is-a-dir",
            tar_of(&[("image/image.boot", tar::EntryType::Directory, b"")]),
            "unexpected member image/image.boot (a directory)",
        ),
    ];
    for (tag, tar, why) in &cases {
        with_bootstrap_tar(&target, "good", tag, tar);
        let p = problems(&target, tag);
        assert!(p.contains(why), "{tag}: {p}");
        assert!(
            p.contains("bootstrap:"),
            "{tag}: the bootstrap rule must fail too: {p}"
        );
    }
    // The same layer with one bootstrap passes: the check is on the members, not the writer.
    with_bootstrap_tar(
        &target,
        "good",
        "rewritten",
        &tar_of(&[
            ("image", tar::EntryType::Directory, b""),
            ("image/image.boot", reg, &good),
        ]),
    );
    assert_eq!(problems(&target, "rewritten"), "");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_small_gzip_claiming_a_huge_bootstrap_is_refused_without_inflating_it() {
    let (dir, target) = converted("bootstrap-bomb");
    // 1 GiB of zeros as image.boot: about 1 MiB of gzip. Streamed through a gzip encoder so
    // the test itself never holds the tar.
    let size: u64 = 1 << 30;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut h = tar::Header::new_ustar();
    h.set_path("image/image.boot").unwrap();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o444);
    h.set_size(size);
    h.set_cksum();
    gz.write_all(h.as_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(size >> 20) {
        gz.write_all(&zeros).unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 2 << 20, "{}", gz.len());
    let digest = target.write_blob(&gz).unwrap();
    edited(&target, "good", "bomb", |m, _| {
        let last = m["layers"].as_array_mut().unwrap().last_mut().unwrap();
        last["digest"] = Value::from(digest);
        last["size"] = Value::from(gz.len());
    });
    let started = std::time::Instant::now();
    let p = problems(&target, "bomb");
    assert!(p.contains("larger than") && p.contains("budget"), "{p}");
    // Refused from the header, before inflating: well under the time 1 GiB takes.
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn junk_appended_to_the_bootstrap_layer_or_data_after_one_zero_block_fails_the_check() {
    let (dir, target) = converted("bootstrap-junk");
    let good = the_bootstrap(&target);
    let reg = tar::EntryType::Regular;
    // One zero block, then a header: Go's archive/tar (containerd) fails on this tar.
    let mut tar = tar_of(&[("image/image.boot", reg, &good)]);
    let end = tar.len() - 1024;
    tar.truncate(end + 512);
    tar.extend_from_slice(&tar_of(&[("image/image.boot", reg, b"evil")]));
    with_bootstrap_tar(&target, "good", "after-one-zero", &tar);
    let p = problems(&target, "after-one-zero");
    assert!(p.contains("one zero block followed by data"), "{p}");
    // Two zero blocks, then anything: not part of the layer (its diff_id covers it).
    let mut tar = tar_of(&[("image/image.boot", reg, &good)]);
    tar.extend_from_slice(&tar_of(&[("image/image.boot", reg, b"evil")]));
    with_bootstrap_tar(&target, "good", "after-end", &tar);
    assert_eq!(problems(&target, "after-end"), "");
    // Bytes appended to the gzip blob, its descriptor unchanged: the blob is not the layer.
    let (manifest, _) = documents(&target, "good");
    let boot = manifest["layers"].as_array().unwrap().last().unwrap();
    let path = target.blob_path(boot["digest"].as_str().unwrap()).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"junk");
    std::fs::write(&path, &bytes).unwrap();
    let p = problems(&target, "good");
    assert!(
        p.contains("manifest:") && p.contains("longer than its descriptor"),
        "{p}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
