//! The Go tool chain on our `nydus-image` (issue 22): nydus-snapshotter's real `pkg/converter`
//! (`goconverter`, from `../shared/goconverter`) packs, merges and unpacks the cases of
//! `testdata/goconverter/reference.json` with our binary as its builder, and everything it
//! reports (feature detection, packed blob digests, the bootstrap layer, the merged bootstrap,
//! Merge's blob list, the Unpack tar) must equal what it reported with the reference builder,
//! but where the reference is wrong, and there ours must succeed and be right.

mod common;
use common::{s, tempdir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$GOCONVERTER`, else `goconverter` on `PATH` (`.ci/run` installs it).
fn goconverter() -> Option<PathBuf> {
    let bin = std::env::var_os("GOCONVERTER").map_or_else(|| "goconverter".into(), PathBuf::from);
    let ok = Command::new(&bin).arg("-h").output().is_ok();
    ok.then_some(bin)
}

/// Runs goconverter with `builder` on a case; its JSON summary (without the builder's path)
/// and the output directory.
fn run(bin: &Path, builder: &Path, case: &Value, out: &Path) -> Value {
    let args: Vec<&str> = case["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let layers: Vec<&str> = case["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let o = Command::new(bin)
        .current_dir(repo())
        .arg("--builder")
        .arg(builder)
        .args(&args)
        .arg("--out")
        .arg(out)
        .args(&layers)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let mut summary: Value = serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: {stdout}{}",
            case["name"],
            String::from_utf8_lossy(&o.stderr)
        )
    });
    summary.as_object_mut().unwrap().remove("builder");
    summary
}

/// `treelist.py tar` of a tar, without the root's line.
fn tar_listing(tar: &Path) -> String {
    let script = rafs_testkit::corpus().join("tools/treelist.py");
    let listing = rafs_testkit::run("python3", &[s(&script), "tar", s(tar)]).unwrap();
    listing
        .lines()
        .filter(|l| !l.starts_with("/ "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Where the reference is wrong: what ours must show instead. Returns the fields not to
/// compare with the reference's.
fn where_the_reference_is_wrong(case: &Value, out: &Path) -> &'static [&'static str] {
    match case["name"].as_str().unwrap_or_default() {
        // The reference keeps the ustar mtime of a file whose PAX record gives another (its
        // blob, and what follows from it, differ), and its unpack panics on L1's FIFO. Ours
        // unpacks to the ground truth, made without nydus.
        "L1-v6" => {
            let want = common::expected("L1");
            let want: String = want
                .lines()
                .filter(|l| !l.starts_with("/ "))
                .map(|l| format!("{l}\n"))
                .collect();
            rafs_testkit::assert_listing(
                "L1 unpacked by the Go converter",
                &tar_listing(&out.join("unpack.tar")),
                &want,
                &|_, _| false,
            );
            &[
                "blobs",
                "merge_blobs",
                "bootstrap_tar",
                "merged_boot",
                "unpack_tar",
                "unpack_error",
            ]
        }
        // The reference cannot read PAX xattr values that are not UTF-8 or hold a newline, and
        // fails the pack; ours packs, and unpacks to the layer as it was.
        "xattrs-v6" => {
            let layer = repo().join(case["layers"][0].as_str().unwrap());
            let got = tar_listing(&out.join("unpack.tar"));
            assert!(
                got.contains(" user.v=ff fe80") || got.contains("user.v="),
                "{got}"
            );
            rafs_testkit::assert_listing(
                "xattrs unpacked by the Go converter",
                &got,
                &tar_listing(&layer),
                &|_, _| false,
            );
            &[
                "blobs",
                "merge_blobs",
                "bootstrap_tar",
                "merged_boot",
                "unpack_tar",
                "errors",
                "features",
            ]
        }
        _ => &[],
    }
}

#[test]
fn the_go_converter_gets_the_references_results_from_our_builder() {
    let Some(bin) = goconverter() else {
        println!("SKIPPED: goconverter is not installed (.ci/run installs it from ../shared/goconverter)");
        return;
    };
    let builder = PathBuf::from(env!("CARGO_BIN_EXE_nydus-image"));
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("testdata/goconverter/reference.json")).unwrap(),
    )
    .unwrap();
    let dir = tempdir("go-converter");
    let mut table = Vec::new();
    for case in reference["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let out = dir.join(name);
        let ours = run(&bin, &builder, case, &out);
        assert!(ours.get("errors").is_none(), "{name}: {ours}");
        let theirs = &case["reference"];
        let skip = where_the_reference_is_wrong(case, &out);
        let keys: std::collections::BTreeSet<&String> = ours
            .as_object()
            .unwrap()
            .keys()
            .chain(theirs.as_object().unwrap().keys())
            .collect();
        let mut compared = Vec::new();
        for k in keys {
            if skip.contains(&k.as_str()) {
                continue;
            }
            // An error message names a temporary directory; that the step failed is compared.
            let (a, b) = if k.ends_with("error") {
                (
                    Value::Bool(ours.get(k).is_some()),
                    Value::Bool(theirs.get(k).is_some()),
                )
            } else {
                (
                    ours.get(k).cloned().unwrap_or(Value::Null),
                    theirs.get(k).cloned().unwrap_or(Value::Null),
                )
            };
            assert_eq!(a, b, "{name}: {k}");
            compared.push(k.as_str());
        }
        table.push(format!(
            "{name}: equal {compared:?}; reference wrong: {skip:?}"
        ));
    }
    println!("{}", table.join("\n"));
    let _ = std::fs::remove_dir_all(&dir);
}
