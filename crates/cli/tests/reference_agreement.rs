//! The CLI against the reference tool's own outputs in the corpus: `rafs check` passes every
//! reference bootstrap except the ones the corpus names as broken, `rafs rewrite` reproduces
//! each one, and `rafs inspect --json` agrees with `nydus-image inspect`/`check -v`.

#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "tests: fixture offsets and sizes are small known values, and a scenario reads \
              best top to bottom in one function"
)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance")
}

fn rafs(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rafs"))
        .args(args)
        .output()
        .expect("run rafs")
}

/// Successful reference cases with a bootstrap file.
fn cases() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(corpus().join("nydus-image")).unwrap() {
        let dir = e.unwrap().path();
        let rc = std::fs::read_to_string(dir.join("rc")).unwrap_or_default();
        if rc.trim() == "0" && dir.join("bootstrap").exists() {
            out.push((dir.file_name().unwrap().to_string_lossy().into_owned(), dir));
        }
    }
    out.sort();
    assert!(out.len() >= 60, "corpus missing: {} cases", out.len());
    out
}

/// Reference outputs that are wrong (corpus README, "Findings"): layered builds reference the
/// wrong blob for the new layer's chunks, and a merge without blob ids folds three blobs into
/// one bogus blob. `nydus-image check` passes them because it validates metadata only; ours
/// checks chunk references against the blob table and must reject them.
const BROKEN_BY_REFERENCE: &[&str] = &[
    "L2-v6-zstd-sha256-layered",
    "L2-v6-zstd-sha256-layered-wsnone",
    "L2-v6-zstd-sha256-layered-wsoverlayfs",
    "L3-v6-zstd-sha256-layered",
    "merge-v6-zstd-sha256-nodigests",
];

#[test]
fn check_passes_reference_bootstraps_and_rejects_the_broken_ones() {
    for (case, dir) in cases() {
        let out = rafs(&["check", "--json", dir.join("bootstrap").to_str().unwrap()]);
        let v: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{case}: bad JSON: {e}"));
        if BROKEN_BY_REFERENCE.contains(&case.as_str()) {
            assert!(
                !out.status.success(),
                "{case}: check should reject the reference's broken chunk references"
            );
            let errors = v["errors"].as_array().unwrap();
            assert!(
                errors.iter().any(|e| e.as_str().unwrap().contains("chunk")),
                "{case}: {errors:?}"
            );
        } else {
            assert!(out.status.success(), "{case}: check failed: {v}");
            assert_eq!(v["valid"], true);
        }
    }
}

#[test]
fn rewrite_to_the_same_version_reproduces_every_bootstrap() {
    let tmp = tempdir("rewrite");
    for (case, dir) in cases() {
        let input = dir.join("bootstrap");
        let out = tmp.join(&case);
        let r = rafs(&[
            "rewrite",
            input.to_str().unwrap(),
            "--bootstrap",
            out.to_str().unwrap(),
        ]);
        assert!(
            r.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert!(
            std::fs::read(&out).unwrap() == std::fs::read(&input).unwrap(),
            "{case}: rewrite differs from the reference"
        );
    }
}

/// `inspect-stats.json` counts paths for v6 and distinct inodes for v5; `inspect-blobs.json`
/// lists the blob table.
#[test]
fn inspect_agrees_with_reference_inspect() {
    for (case, dir) in cases() {
        let ours = inspect(&dir.join("bootstrap"));
        let stats: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("inspect-stats.json")).unwrap())
                .unwrap();
        let count = if ours["fs_version"] == 5 {
            &ours["unique_inodes"]
        } else {
            &ours["inode_count"]
        };
        assert_eq!(count, &stats["inodes_count"], "{case}: inode count");
        let blobs: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("inspect-blobs.json")).unwrap())
                .unwrap();
        let theirs = blobs.as_array().unwrap();
        let mine = ours["blobs"].as_array().unwrap();
        assert_eq!(mine.len(), theirs.len(), "{case}: blob count");
        for (m, t) in mine.iter().zip(theirs) {
            assert_eq!(m["blob_id"], t["blob_id"], "{case}");
            assert_eq!(m["compressed_size"], t["compressed_size"], "{case}");
            assert_eq!(m["uncompressed_size"], t["decompressed_size"], "{case}");
        }
    }
}

/// `check -v` prints every inode with its type, nlink, size, symlink target, mtime and chunk
/// digests; ours must say the same for every path.
#[test]
fn inspect_agrees_with_reference_verbose_check() {
    let mut compared = 0;
    for (case, dir) in cases() {
        let verbose = dir.join("check-verbose.txt");
        if !verbose.exists() {
            continue;
        }
        let theirs = parse_verbose(&std::fs::read_to_string(&verbose).unwrap());
        let report = inspect(&dir.join("bootstrap"));
        let ours = inodes_by_path(&report);
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>(),
            "{case}: paths"
        );
        for (path, t) in &theirs {
            let o = ours[path];
            assert_eq!(
                o["nlink"].as_u64().unwrap(),
                t.nlink,
                "{case} {path}: nlink"
            );
            assert_eq!(
                o["mtime"].as_u64().unwrap(),
                t.mtime,
                "{case} {path}: mtime"
            );
            let kind = o["type"].as_str().unwrap();
            match t.kind.as_str() {
                "dir" => assert_eq!(kind, "dir", "{case} {path}"),
                "file" | "hardlink" => assert_eq!(kind, "reg", "{case} {path}"),
                "symlink" => assert_eq!(kind, "sym", "{case} {path}"),
                _ => assert!(
                    ["chr", "blk", "fifo", "sock"].contains(&kind),
                    "{case} {path}: {kind}"
                ),
            }
            if kind != "dir" {
                assert_eq!(o["size"].as_u64().unwrap(), t.size, "{case} {path}: size");
            }
            assert_eq!(
                o["symlink"].as_str().map(str::to_owned),
                t.link,
                "{case} {path}: symlink"
            );
            let digests: Vec<String> = o["chunks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["digest"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(digests, t.chunks, "{case} {path}: chunks");
        }
        compared += 1;
    }
    assert!(compared >= 8, "only {compared} verbose checks compared");
}

/// Modes, owners, symlink targets, xattrs and hard-link counts of single-layer images equal
/// the ground-truth listing made from the tar without nydus (`expected/L?.list`, xattr values
/// in hex). mtime is
/// compared too, except where the reference drops a PAX-only mtime (it stores 0).
#[test]
fn inspect_agrees_with_ground_truth_listing() {
    for (case, dir) in cases() {
        let layer = &case[..2];
        if !["L1", "L2", "L3"].contains(&layer)
            || case.contains("layered")
            || case.contains("repeatable")
        {
            continue;
        }
        let list =
            std::fs::read_to_string(corpus().join(format!("expected/{layer}.list"))).unwrap();
        let report = inspect(&dir.join("bootstrap"));
        let ours = inodes_by_path(&report);
        let mut n = 0;
        for line in list.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            // Paths may contain spaces: fields are counted from the end.
            let k = f.len();
            let path = f[..k - 7].join(" ");
            let (kind, mode, owner, mtime, extra, xattrs, links) = (
                f[k - 7],
                f[k - 6],
                f[k - 5],
                f[k - 4],
                f[k - 3],
                f[k - 2],
                f[k - 1],
            );
            let o = ours
                .get(&path)
                .unwrap_or_else(|| panic!("{case}: {path} missing"));
            assert_eq!(o["type"].as_str().unwrap(), kind, "{case} {path}");
            assert_eq!(
                format!("{:04o}", o["mode"].as_u64().unwrap() & 0o7777),
                mode,
                "{case} {path}"
            );
            assert_eq!(format!("{}:{}", o["uid"], o["gid"]), owner, "{case} {path}");
            if path != "/data/future-mtime" {
                assert_eq!(
                    o["mtime"].as_u64().unwrap().to_string(),
                    mtime,
                    "{case} {path}"
                );
            } else {
                assert_eq!(
                    o["mtime"], 0,
                    "the reference ignores PAX mtime: future-mtime is stored as 0"
                );
            }
            if kind == "sym" {
                assert_eq!(
                    format!("->{}", o["symlink"].as_str().unwrap()),
                    extra,
                    "{case} {path}"
                );
            }
            if kind == "reg" {
                let size: u64 = extra.split(':').next().unwrap().parse().unwrap();
                assert_eq!(o["size"].as_u64().unwrap(), size, "{case} {path}");
            }
            if kind == "chr" || kind == "blk" {
                let rdev = o["rdev"].as_u64().unwrap();
                let (major, minor) = (
                    ((rdev >> 8) & 0xfff),
                    ((rdev & 0xff) | ((rdev >> 12) & 0xfff00)),
                );
                assert_eq!(format!("{major},{minor}"), extra, "{case} {path}");
            }
            let mut xs: Vec<String> = o["xattrs"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect();
            xs.sort();
            let want = if xattrs == "-" {
                String::new()
            } else {
                xattrs.to_owned()
            };
            assert_eq!(xs.join(","), want, "{case} {path}: xattrs");
            if let Some(l) = links.strip_prefix("links=") {
                assert_eq!(
                    o["nlink"].as_u64().unwrap().to_string(),
                    l,
                    "{case} {path}: nlink"
                );
            }
            n += 1;
        }
        assert_eq!(
            n,
            ours.len(),
            "{case}: listing and image have different path counts"
        );
    }
}

/// `rafs inspect --json`'s inodes, keyed by path.
fn inodes_by_path(report: &Value) -> BTreeMap<String, &Value> {
    report["inodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["path"].as_str().unwrap().to_owned(), i))
        .collect()
}

fn inspect(bootstrap: &Path) -> Value {
    let out = rafs(&["inspect", "--json", bootstrap.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

struct Verbose {
    kind: String,
    nlink: u64,
    size: u64,
    mtime: u64,
    link: Option<String>,
    chunks: Vec<String>,
}

fn parse_verbose(text: &str) -> BTreeMap<String, Verbose> {
    let mut out = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("inode: ") {
            let q1 = rest.find('"').unwrap();
            let q2 = rest[q1 + 1..].find("\": ").unwrap() + q1 + 1;
            let kind = rest[..q1].trim().to_owned();
            let path = rest[q1 + 1..q2].to_owned();
            let field = |name: &str| -> u64 {
                let at = rest.find(&format!(" {name} ")).unwrap() + name.len() + 2;
                rest[at..].split(' ').next().unwrap().parse().unwrap()
            };
            let link = rest.find("link Some(\"").map(|at| {
                let s = &rest[at + 11..];
                s[..s.rfind("\") i_mtime").unwrap()].to_owned()
            });
            out.insert(
                path.clone(),
                Verbose {
                    kind,
                    nlink: field("i_nlink"),
                    size: field("i_size"),
                    mtime: field("i_mtime"),
                    link,
                    chunks: vec![],
                },
            );
            last = Some(path);
        } else if let Some(rest) = line.trim_start().strip_prefix("chunk: id ") {
            let id = rest.split(',').next().unwrap().to_owned();
            out.get_mut(last.as_ref().unwrap()).unwrap().chunks.push(id);
        }
    }
    out
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rafs-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
