//! Issue 24's real images (`testdata/images/real`, made by umoci): each converts, v5 and v6,
//! and passes `check-image --source`; the replaced-directory image packs the reference's
//! bytes; the image with no layers becomes an empty root; `check-image` on an index checks
//! every platform (a merge-platform index too) and says what differs in words.
//! (nydusd and the kernel read the same conversions in `nydusd_matrix.rs`.)

mod common;
use common::{s, tempdir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn real() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/images/real")
}

fn rafs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rafs"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = rafs(args);
    assert!(
        out.status.success(),
        "rafs {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn oci(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

/// The manifest `tag` names in a layout.
fn manifest(layout: &Path, tag: &str) -> serde_json::Value {
    let l = rafs_oci::Layout::open(layout).unwrap();
    let desc = l.resolve(Some(tag)).unwrap();
    l.read_json(desc.digest().as_ref(), "manifest").unwrap()
}

#[test]
fn each_real_image_converts_and_passes_check_image_against_its_source() {
    let dir = tempdir("real-images");
    let out = dir.join("out");
    for v in ["5", "6"] {
        for tag in ["replaced-dir", "xattrs", "empty", "multi"] {
            let name = format!("{tag}-v{v}");
            ok(&[
                "convert-image",
                "--fs-version",
                v,
                &oci(&real(), tag),
                &oci(&out, &name),
            ]);
            let json = ok(&[
                "check-image",
                "--json",
                &oci(&out, &name),
                "--source",
                &oci(&real(), tag),
            ]);
            let verdict: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert_eq!(verdict["ok"], true, "{name}: {json}");
        }
    }
    // Item 1: the blob layers are the reference's packed blobs, byte for byte.
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(real().with_file_name("real-reference.json")).unwrap(),
    )
    .unwrap();
    let want = &reference["images"]["replaced-dir"]["v6"]["blob_layers"];
    let layers = manifest(&out, "replaced-dir-v6")["layers"].clone();
    let got: Vec<&serde_json::Value> = layers
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["digest"])
        .collect();
    assert_eq!(got.len(), 3, "two blob layers and the bootstrap layer");
    assert_eq!(
        &got[..2],
        want.as_array().unwrap().iter().collect::<Vec<_>>()
    );
    // Item 5: no layers: the bootstrap layer alone, an empty root.
    for v in ["5", "6"] {
        let m = manifest(&out, &format!("empty-v{v}"));
        assert_eq!(m["layers"].as_array().unwrap().len(), 1);
        let l = rafs_oci::Layout::open(&out).unwrap();
        let boot = rafs_oci::check::bootstrap_of_manifest(&l, &m).unwrap();
        let image = rafs_format::decode(&boot).unwrap();
        let paths: Vec<Vec<u8>> = image.tree.entries().map(|e| e.path).collect();
        assert_eq!(paths, [b"/".to_vec()]);
        assert_eq!(
            image.tree.inode_of(rafs_format::model::ROOT).mode & 0o7777,
            0o755
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A copy of the real layout whose `xattrs` image has `data/nul` made 0755, by umoci.
fn chmodded_source(dir: &Path) -> Option<PathBuf> {
    if rafs_testkit::run("umoci", &["--version"]).is_err() {
        rafs_testkit::skipped(
            "the changed-mode source: umoci is not installed (.ci/run installs it)",
        );
        return None;
    }
    let copy = dir.join("source");
    let st = Command::new("cp")
        .args(["-r", s(&real()), s(&copy)])
        .status()
        .unwrap();
    assert!(st.success());
    let bundle = dir.join("bundle");
    let image = format!("{}:xattrs", copy.display());
    rafs_testkit::run("umoci", &["unpack", "--image", &image, s(&bundle)]).unwrap();
    let file = bundle.join("rootfs/data/nul");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let new = format!("{}:xattrs-chmod", copy.display());
    rafs_testkit::run("umoci", &["repack", "--image", &new, s(&bundle)]).unwrap();
    Some(copy)
}

#[test]
fn check_image_on_an_index_checks_each_platform_and_says_what_differs_in_words() {
    let dir = tempdir("real-index");
    let out = dir.join("out");
    ok(&["convert-image", &oci(&real(), "multi"), &oci(&out, "multi")]);
    let json = ok(&[
        "check-image",
        "--json",
        &oci(&out, "multi"),
        "--source",
        &oci(&real(), "multi"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let platforms: Vec<&str> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    assert_eq!(v["ok"], true, "{json}");
    let text = ok(&[
        "check-image",
        &oci(&out, "multi"),
        "--platform",
        "linux/arm64",
        "--source",
        &oci(&real(), "multi"),
    ]);
    assert!(
        text.starts_with("linux/arm64 (sha256:") && !text.contains("amd64"),
        "{text}"
    );

    // A merge-platform index: its Nydus entries, each against its own OCI entry.
    ok(&[
        "convert-image",
        "--merge-platform",
        &oci(&real(), "multi"),
        &oci(&out, "merged"),
    ]);
    let json = ok(&[
        "check-image",
        "--json",
        &oci(&out, "merged"),
        "--source",
        &oci(&out, "merged"),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 2, "{json}");
    assert_eq!(v["ok"], true, "{json}");

    // The wrong source for one platform: missing paths and differing fields, in words.
    let wrong = rafs(&[
        "check-image",
        &oci(&out, "multi"),
        "--platform",
        "linux/amd64",
        "--source",
        &oci(&real(), "xattrs"),
    ]);
    assert_eq!(wrong.status.code(), Some(1));
    let said = String::from_utf8_lossy(&wrong.stdout);
    assert!(
        said.contains("filesystem rule: FAILED") && said.contains("/data/nul is missing"),
        "{said}"
    );
    if let Some(source) = chmodded_source(&dir) {
        ok(&[
            "convert-image",
            &oci(&real(), "xattrs"),
            &oci(&out, "xattrs"),
        ]);
        let r = rafs(&[
            "check-image",
            &oci(&out, "xattrs"),
            "--source",
            &oci(&source, "xattrs-chmod"),
        ]);
        let said = String::from_utf8_lossy(&r.stdout);
        assert_eq!(r.status.code(), Some(1), "{said}");
        assert!(said.contains("/data/nul: mode 0644 ≠ 0755"), "{said}");
        assert!(!said.contains("Attrs") && !said.contains("{"), "{said}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
