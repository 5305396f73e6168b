//! `rafs merge`, `unpack`, `ls`, `cat`, `export` and `check --blob-dir` end to end.

use rafs_testkit::corpus;
use std::path::PathBuf;
use std::process::Command;

fn rafs(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rafs"))
        .args(args)
        .output()
        .expect("run rafs")
}

fn ok(args: &[&str]) -> Vec<u8> {
    let out = rafs(args);
    assert!(
        out.status.success(),
        "rafs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rafs-cli-images-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn case(name: &str) -> PathBuf {
    corpus().join("nydus-image").join(name)
}

#[test]
fn merge_reproduces_the_reference_and_reports_blobs() {
    let tmp = tempdir("merge");
    let out = tmp.join("merged");
    let ids = "1f2cdf4374cdefc3d109d9e5d0ba8cfc2011e2203ac11c2b061808a316b4e1cf,ea9a2097e84c6eb4e403b786716db78efad3288592a7ef2df9636b3d7b7f430f,9a5dadc60549af8d4f63d628452745ecd39c142a2acffd620cafe143ca43877c";
    let json = ok(&[
        "merge",
        case("L1-v6-zstd-sha256")
            .join("bootstrap")
            .to_str()
            .unwrap(),
        case("L2-v6-zstd-sha256")
            .join("bootstrap")
            .to_str()
            .unwrap(),
        case("L3-v6-zstd-sha256")
            .join("bootstrap")
            .to_str()
            .unwrap(),
        "--blob-digests",
        ids,
        "-B",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(case("merge-v6-zstd-sha256").join("bootstrap")).unwrap()
    );
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let reference: serde_json::Value = serde_json::from_slice(
        &std::fs::read(case("merge-v6-zstd-sha256").join("result.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(v["blobs"], reference["blobs"]);
    // Every chunk of the merged image reads back through the corpus' blobs.
    let blobs = corpus().join("nydus-image/blobs");
    let check: serde_json::Value = serde_json::from_slice(&ok(&[
        "check",
        out.to_str().unwrap(),
        "-D",
        blobs.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    assert_eq!(check["valid"], true);
    assert!(check["chunks_verified"].as_u64().unwrap() > 100);
    // ls and cat.
    let ls = String::from_utf8(ok(&["ls", out.to_str().unwrap(), "/etc", "-l"])).unwrap();
    assert!(ls.lines().any(|l| l.ends_with(" hostname")), "{ls}");
    let hostname = ok(&[
        "cat",
        out.to_str().unwrap(),
        "-D",
        blobs.to_str().unwrap(),
        "/etc/hostname",
        "--verify",
    ]);
    assert_eq!(hostname, b"l3-host\n");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn check_with_blobs_finds_corrupt_data() {
    let tmp = tempdir("corrupt");
    let id = "ea9a2097e84c6eb4e403b786716db78efad3288592a7ef2df9636b3d7b7f430f";
    let mut blob = std::fs::read(corpus().join("nydus-image/blobs").join(id)).unwrap();
    blob[100] ^= 0x40;
    std::fs::write(tmp.join(id), &blob).unwrap();
    let out = rafs(&[
        "check",
        case("L2-v6-zstd-sha256")
            .join("bootstrap")
            .to_str()
            .unwrap(),
        "-D",
        tmp.to_str().unwrap(),
        "--json",
    ]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let errors = v["errors"].to_string();
    assert!(
        errors.contains("mismatch") || errors.contains("corrupt"),
        "{errors}"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn unpack_and_export_write_complete_files() {
    let tmp = tempdir("unpack");
    let blobs = corpus().join("nydus-image/blobs");
    let boot = case("L2-v6-zstd-sha256").join("bootstrap");
    let tar = tmp.join("l2.tar");
    ok(&[
        "unpack",
        boot.to_str().unwrap(),
        "-D",
        blobs.to_str().unwrap(),
        "-o",
        tar.to_str().unwrap(),
    ]);
    let mut ar = tar::Archive::new(std::fs::File::open(&tar).unwrap());
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert_eq!(names[0], "./", "the root comes first, with its attributes");
    assert!(names.iter().any(|n| n == "etc/hostname-link"), "{names:?}");
    let dir = tmp.join("tree");
    ok(&[
        "unpack",
        boot.to_str().unwrap(),
        "-D",
        blobs.to_str().unwrap(),
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read(dir.join("etc/hostname")).unwrap(),
        std::fs::read(dir.join("etc/hostname-link")).unwrap()
    );
    let img = tmp.join("l2.img");
    ok(&[
        "export",
        "--block",
        boot.to_str().unwrap(),
        "-D",
        blobs.to_str().unwrap(),
        "-O",
        img.to_str().unwrap(),
    ]);
    let len = std::fs::metadata(&img).unwrap().len();
    assert_eq!(len % 4096, 0);
    // Nothing but the outputs in the directory (no temporary files left).
    let mut left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["l2.img", "l2.tar", "tree"]);
    let _ = std::fs::remove_dir_all(&tmp);
}
