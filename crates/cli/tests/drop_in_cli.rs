//! The drop-in `nydus-image`'s command line as the Go tool chain probes it (issue 22): `create
//! -h` names exactly what we support (the converter searches it for `--type`, `tar-rafs`,
//! `--batch-size` and `--encrypt`), `--version` has the reference's shape, and every option or
//! command we do not support is a usage error that names it.

use std::process::{Command, Output};

fn nydus_image(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nydus-image"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn create_help_names_what_the_converter_detects_and_nothing_we_lack() {
    let help = String::from_utf8(nydus_image(&["create", "-h"]).stdout).unwrap();
    for wanted in [
        "--type",
        "tar-rafs",
        "--batch-size",
        "--blob-inline-meta",
        "--features",
        "blob-toc",
        "--encrypt",
    ] {
        assert!(help.contains(wanted), "{wanted} missing from create -h");
    }
    for missing in ["estargz", "--blob-cache-dir", "--attributes"] {
        assert!(!help.contains(missing), "{missing} shown but not supported");
    }
    let merge = String::from_utf8(nydus_image(&["merge", "-h"]).stdout).unwrap();
    for wanted in [
        "--blob-digests",
        "--blob-sizes",
        "--blob-toc-digests",
        "--output-json",
        "--prefetch-policy",
    ] {
        assert!(merge.contains(wanted), "{wanted} missing from merge -h");
    }
}

#[test]
fn version_has_the_references_shape() {
    let out = String::from_utf8(nydus_image(&["--version"]).stdout).unwrap();
    // acceleration-service records what `Version:\s*(v.*)` captures.
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("Version:"))
        .unwrap();
    assert!(
        line.split_once(':')
            .unwrap()
            .1
            .trim_start()
            .starts_with('v'),
        "{out}"
    );
    assert!(
        out.contains("Git Commit:") && out.contains("Build Time:"),
        "{out}"
    );
}

#[test]
fn unsupported_options_and_commands_are_usage_errors_naming_them() {
    for (args, named) in [
        (
            &["create", "--type", "estargz-rafs", "x.tar"][..],
            "estargz-rafs",
        ),
        (
            &[
                "create",
                "--prefetch-policy",
                "blob",
                "-t",
                "tar-rafs",
                "x.tar",
            ],
            "blob",
        ),
        (&["merge", "-C", "config.json", "-B", "b", "c"], "-C"),
        (&["compact", "--bootstrap", "b"], "compact"),
        (
            &["create", "--log-level", "loud", "-t", "tar-rafs", "x.tar"],
            "loud",
        ),
    ] {
        let out = nydus_image(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(named), "{args:?}: {err}");
    }
    // The reference's default type is a directory build: a file given without --type is
    // refused in words, not read as a tar.
    let out = nydus_image(&["create", "-B", "/dev/null", "/etc/hostname"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a directory"));
}

/// `merge --original-blob-ids` names the blobs of inlined bootstraps (which record a
/// placeholder) and `--blob-toc-sizes` sets each ToC size; `-J` lists the blobs.
#[test]
fn merge_takes_original_blob_ids_and_toc_sizes() {
    let dir = std::env::temp_dir().join(format!("rafs-drop-in-merge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = |n: &str| dir.join(n).to_str().unwrap().to_owned();
    let mut boots = Vec::new();
    for layer in ["L2", "L3"] {
        let src = rafs_testkit::corpus().join(format!("layers/{layer}.tar"));
        let blob = d(&format!("{layer}.blob"));
        let args = [
            "create",
            "-t",
            "tar-rafs",
            "--blob-inline-meta",
            "--features",
            "blob-toc",
            "-b",
            &blob,
            src.to_str().unwrap(),
        ];
        assert!(nydus_image(&args).status.success());
        let boot = d(&format!("{layer}.boot"));
        let out = Command::new(env!("CARGO_BIN_EXE_rafs"))
            .args(["rewrite", &blob, "-B", &boot])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        boots.push(boot);
    }
    let ids = ["a".repeat(64), "b".repeat(64)];
    let (merged, json) = (d("merged.boot"), d("merge.json"));
    let id_list = ids.join(",");
    let out = nydus_image(&[
        "merge",
        "--original-blob-ids",
        &id_list,
        "--blob-toc-sizes",
        "1024,2048",
        "-J",
        &json,
        "-B",
        &merged,
        &boots[0],
        &boots[1],
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    // Blob-table order (the reference's merge lists the upper layer's blob first).
    let image = rafs_format::decode(&std::fs::read(&merged).unwrap()).unwrap();
    let listed: Vec<String> = image.blobs.iter().map(|b| b.blob_id.clone()).collect();
    assert_eq!(report["blobs"], serde_json::json!(listed));
    let mut by_id: Vec<(String, u32)> = image
        .blobs
        .iter()
        .map(|b| (b.blob_id.clone(), b.toc_size))
        .collect();
    by_id.sort();
    assert_eq!(by_id, [(ids[0].clone(), 1024), (ids[1].clone(), 2048)]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `inspect -R blobs|stats` (nydusify's checker reads the blobs) prints what the reference
/// printed for every corpus case (`inspect-*.json`).
#[test]
fn inspect_requests_print_what_the_reference_printed() {
    let mut compared = 0;
    for case in rafs_testkit::corpus_cases() {
        let boot = case.dir.join("bootstrap");
        if !boot.exists() {
            continue;
        }
        for request in ["blobs", "stats"] {
            let Ok(want) =
                std::fs::read_to_string(case.dir.join(format!("inspect-{request}.json")))
            else {
                continue;
            };
            if want.starts_with("rc=") {
                continue;
            }
            let out = nydus_image(&["inspect", "-R", request, boot.to_str().unwrap()]);
            assert!(out.status.success(), "{}: {out:?}", case.name);
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                want.trim(),
                "{} {request}",
                case.name
            );
            compared += 1;
        }
    }
    assert!(compared >= 150, "only {compared}");
}
