//! Directory sources (issue 22, item 2): an unpacked root file system converts as the
//! reference's `dir-rafs` build converts it, byte for byte (digests it gave for corpus layers
//! unpacked by GNU tar, in `testdata/dir-rafs/reference.txt`), through `nydus-image create`
//! and `rafs convert DIR`; the Go converter's directory fallback (`NYDUS_DISABLE_TAR2RAFS`) runs
//! on our builder.

mod common;
use common::{s, tempdir};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Unpacks a corpus layer as the reference's digests were made: GNU tar as root, with
/// xattrs, devices and owners; directories the tar leaves out get mtime 1700000000.
fn unpack(layer: &str, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let tar = rafs_testkit::corpus().join(format!("layers/{layer}.tar"));
    let st = Command::new("tar")
        .args([
            "--xattrs",
            "--xattrs-include=*",
            "-xpf",
            s(&tar),
            "-C",
            s(dir),
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let fix = format!(
        "find '{}' -mindepth 1 -type d -newermt @1750000000 -exec touch -h -d @1700000000 {{}} +",
        dir.display()
    );
    assert!(Command::new("sh")
        .args(["-c", &fix])
        .status()
        .unwrap()
        .success());
}

#[test]
fn a_directory_converts_as_the_references_dir_build() {
    if rafs_testkit::run("id", &["-u"]).as_deref() != Ok("0") {
        rafs_testkit::skipped(
            "directory sources: unpacking devices, owners and trusted xattrs needs root",
        );
        return;
    }
    let dir = tempdir("dir-sources");
    let reference =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/dir-rafs/reference.txt");
    let mut checked = 0;
    for line in std::fs::read_to_string(reference).unwrap().lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (layer, version, whiteout, boot_digest, blob_id) = (f[0], f[1], f[2], f[3], f[4]);
        let src = dir.join(format!("{layer}-{version}-{whiteout}"));
        unpack(layer, &src);
        for front in ["nydus-image", "rafs"] {
            let out = dir.join(format!("out-{front}"));
            let _ = std::fs::remove_dir_all(&out);
            std::fs::create_dir_all(&out).unwrap();
            let boot = out.join("bootstrap");
            // The same options through both fronts: the drop-in names the type, rafs takes a
            // directory as one.
            let (bin, lead): (&str, &[&str]) = if front == "nydus-image" {
                (
                    env!("CARGO_BIN_EXE_nydus-image"),
                    &["create", "--type", "dir-rafs"],
                )
            } else {
                (env!("CARGO_BIN_EXE_rafs"), &["convert", "-q"])
            };
            let o = Command::new(bin)
                .args(lead)
                .args(["--fs-version", version, "--whiteout-spec", whiteout])
                .args(["-B", s(&boot), "-D", s(&out), s(&src)])
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{line} ({front}): {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert_eq!(
                hex(&std::fs::read(&boot).unwrap()),
                boot_digest,
                "{line} ({front}): bootstrap"
            );
            let blob = std::fs::read(out.join(blob_id))
                .unwrap_or_else(|e| panic!("{line} ({front}): blob {blob_id}: {e}"));
            assert_eq!(hex(&blob), blob_id, "{line} ({front}): blob");
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_socket_or_a_missing_directory_is_refused() {
    let dir = tempdir("dir-refused");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nydus-image"))
        .args(["create", "-B", s(&dir.join("b")), "-D", s(&dir), s(&src)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("socket"),
        "{out:?}"
    );
    assert!(!dir.join("b").exists());
    let out = Command::new(env!("CARGO_BIN_EXE_nydus-image"))
        .args([
            "create",
            "--type",
            "dir-rafs",
            "-B",
            s(&dir.join("b")),
            "-D",
            s(&dir),
            s(&dir.join("none")),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
