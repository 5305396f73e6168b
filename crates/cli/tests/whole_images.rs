//! `rafs convert-image` and `rafs check-image` end to end (issue 12): the README's demo image,
//! the `--json` report against the layouts it names, a chunk-dictionary image, and peak
//! memory on an image far larger than the bound.

mod common;

use rafs_oci::Layout;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn rafs(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rafs"))
        .args(args)
        .output()
        .expect("run rafs")
}

fn ok_json(args: &[&str]) -> Value {
    let out = rafs(args);
    assert!(
        out.status.success(),
        "rafs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on standard output")
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rafs-cli-whole-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn demo() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/images/demo");
    format!("oci:{}:v1", dir.display())
}

fn manifest(layout: &Layout, tag: &str) -> Value {
    let d = layout.resolve(Some(tag)).unwrap();
    layout.read_json(d.digest().as_ref(), "manifest").unwrap()
}

#[test]
fn the_json_report_names_what_was_written_and_check_image_accepts_it() {
    let dir = tempdir("report");
    let out = format!("oci:{}", dir.join("out").display());
    let report = ok_json(&["convert-image", &demo(), &format!("{out}:v1"), "--json"]);
    let target = Layout::open(dir.join("out")).unwrap();
    let m = manifest(&target, "v1");
    assert_eq!(
        report["target"],
        target.resolve(Some("v1")).unwrap().digest().to_string()
    );
    let layers = report["manifests"][0]["layers"].as_array().unwrap();
    let demo_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/images/demo");
    let source = manifest(&Layout::open(demo_dir).unwrap(), "v1");
    assert_eq!(layers.len(), source["layers"].as_array().unwrap().len());
    for (i, l) in layers.iter().enumerate() {
        assert_eq!(l["source_digest"], source["layers"][i]["digest"]);
        assert_eq!(l["source_size"], source["layers"][i]["size"]);
        assert_eq!(l["nydus_digest"], m["layers"][i]["digest"]);
        assert_eq!(l["nydus_size"], m["layers"][i]["size"]);
    }
    let checked = ok_json(&[
        "check-image",
        &format!("{out}:v1"),
        "--source",
        &demo(),
        "--json",
    ]);
    assert_eq!(checked["ok"], true, "{checked}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_chunk_dictionary_image_on_the_command_line_shares_its_chunks() {
    let dir = tempdir("dict");
    let out = format!("oci:{}", dir.join("out").display());
    let first = ok_json(&["convert-image", &demo(), &format!("{out}:base"), "--json"]);
    let stored: Vec<&Value> = first["manifests"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["nydus_digest"])
        .collect();
    let again = ok_json(&[
        "convert-image",
        &demo(),
        &format!("{out}:d"),
        "--chunk-dict",
        &format!("{out}:base"),
        "--json",
    ]);
    // The same files again: every chunk is the dictionary's, so its blobs are listed.
    let dict_blobs = again["manifests"][0]["dict_blobs"].as_array().unwrap();
    assert!(!dict_blobs.is_empty());
    assert!(dict_blobs.iter().all(|b| stored.contains(&b)), "{again}");
    let checked = ok_json(&[
        "check-image",
        &format!("{out}:d"),
        "--source",
        &demo(),
        "--json",
    ]);
    assert_eq!(checked["ok"], true, "{checked}");
    let missing = rafs(&[
        "convert-image",
        &demo(),
        &format!("{out}:x"),
        "--chunk-dict",
        "bootstrap=/nonexistent/dict.boot",
    ]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/dict.boot"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn converting_a_300_mb_image_stays_under_128_mib_of_memory() {
    let dir = tempdir("memory");
    let (layers, files, file_size) = (3, 4, 25 << 20);
    common::large_image(&dir.join("src"), layers, files, file_size);
    let src = format!("oci:{}:v1", dir.join("src").display());
    let dst = format!("oci:{}:v1", dir.join("out").display());
    let m = rafs_testkit::layer::run_measured(
        Path::new(env!("CARGO_BIN_EXE_rafs")),
        &[
            "convert-image".as_ref(),
            src.as_ref(),
            dst.as_ref(),
            "-q".as_ref(),
        ],
    );
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    let source_bytes = layers * files * file_size;
    println!(
        "convert-image of {} MiB in {:.2} s, peak {} KiB",
        source_bytes >> 20,
        m.seconds,
        m.peak_kib
    );
    assert!(
        m.peak_kib < 128 * 1024,
        "peak {} KiB for {} MiB of layers",
        m.peak_kib,
        source_bytes >> 20
    );
    // It converted all of it: the blobs hold every (incompressible) byte.
    let target = Layout::open(dir.join("out")).unwrap();
    let stored: u64 = manifest(&target, "v1")["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    assert!(stored > source_bytes, "{stored} of {source_bytes}");
    let _ = std::fs::remove_dir_all(&dir);
}
