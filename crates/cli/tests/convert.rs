//! `rafs convert` end to end: files byte-identical to the reference's, from a file or from
//! standard input, gzip'ed or not; a JSON summary; and on bad input a typed message, a failure
//! status and no file left behind.

#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "tests: fixture offsets and sizes are small known values, and a scenario reads \
              best top to bottom in one function"
)]

use rafs_testkit::corpus;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn rafs(args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rafs"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rafs");
    if let Some(data) = stdin {
        let mut s = child.stdin.take().unwrap();
        // The child may stop reading early on bad input.
        let _ = s.write_all(data);
    }
    child.wait_with_output().unwrap()
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rafs-cli-convert-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn reference(case: &str) -> PathBuf {
    corpus().join("nydus-image").join(case)
}

fn ref_blob(id: &str) -> Vec<u8> {
    std::fs::read(rafs_testkit::blob_path(id).unwrap()).unwrap()
}

#[test]
fn converts_to_the_reference_bytes_from_a_file_and_from_stdin() {
    let tmp = tempdir("identical");
    let l2 = corpus().join("layers/L2.tar");
    let case = reference("L2-v6-zstd-sha256");
    let id = std::fs::read_to_string(case.join("blobs.txt")).unwrap();
    let id = id.split_whitespace().next().unwrap().to_string();
    let out = rafs(
        &[
            "convert",
            l2.to_str().unwrap(),
            "--compressor",
            "zstd",
            "--digester",
            "sha256",
            "-D",
            tmp.join("blobs").to_str().unwrap(),
            "-B",
            tmp.join("boot").to_str().unwrap(),
            "--json",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["blob_id"], id.as_str());
    assert_eq!(v["entries"], 20);
    assert_eq!(
        std::fs::read(tmp.join("boot")).unwrap(),
        std::fs::read(case.join("bootstrap")).unwrap()
    );
    assert_eq!(
        std::fs::read(tmp.join("blobs").join(&id)).unwrap(),
        ref_blob(&id)
    );

    // The gzip'ed layer through standard input, blob to a named file.
    let gz = std::fs::read(corpus().join("layers/L2.tar.gz")).unwrap();
    let out = rafs(
        &[
            "convert",
            "-",
            "--compressor",
            "zstd",
            "--digester",
            "sha256",
            "--blob",
            tmp.join("b2").to_str().unwrap(),
            "-B",
            tmp.join("boot2").to_str().unwrap(),
            "-q",
        ],
        Some(&gz),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "--quiet prints nothing: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(tmp.join("boot2")).unwrap(),
        std::fs::read(case.join("bootstrap")).unwrap()
    );
    assert_eq!(std::fs::read(tmp.join("b2")).unwrap(), ref_blob(&id));

    // tarfs: a bootstrap only.
    let out = rafs(
        &[
            "convert",
            l2.to_str().unwrap(),
            "--type",
            "tar-tarfs",
            "-B",
            tmp.join("tarfs").to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(tmp.join("tarfs")).unwrap(),
        std::fs::read(reference("L2-v6-tarfs").join("bootstrap")).unwrap()
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn inline_blob_with_toc_is_a_nydus_layer() {
    let tmp = tempdir("inline");
    let l3 = corpus().join("layers/L3.tar");
    let out = rafs(
        &[
            "convert",
            l3.to_str().unwrap(),
            "--blob-inline-meta",
            "--features",
            "blob-toc",
            "-D",
            tmp.to_str().unwrap(),
            "--json",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let blob = std::fs::read(v["blob"].as_str().unwrap()).unwrap();
    // The blob id is the sha256 of the file minus its digest array (blob.md §9); the corpus'
    // own Python reader finds every section.
    let layout = rafs_testkit::run(
        "python3",
        &[
            corpus().join("tools/blobinfo.py").to_str().unwrap(),
            "blob",
            v["blob"].as_str().unwrap(),
        ],
    )
    .unwrap();
    for name in [
        "image.blob",
        "blob.meta",
        "blob.digest",
        "image.boot",
        "rafs.blob.toc",
    ] {
        assert!(layout.contains(name), "{name} missing from:\n{layout}");
    }
    assert!(layout.contains("bytes before first entry: 0"), "{layout}");
    assert_eq!(blob.len() as u64, v["blob_size"].as_u64().unwrap());
    let _ = std::fs::remove_dir_all(&tmp);
}

/// What follows the end marker (two zero blocks) is not part of the layer, as containerd
/// reads it: the same layer with junk appended converts to the same bootstrap.
#[test]
fn garbage_after_the_end_marker_is_not_part_of_the_layer() {
    let good = std::fs::read(corpus().join("layers/L1.tar")).unwrap();
    let mut junk = good.clone();
    junk.extend_from_slice(&[0x5a; 4096]);
    let mut boots = Vec::new();
    for (tag, bytes) in [("good", good), ("junk", junk)] {
        let tmp = tempdir(&format!("after-end-{tag}"));
        let layer = tmp.join("layer.tar");
        std::fs::write(&layer, &bytes).unwrap();
        let boot = tmp.join("boot");
        let blobs = tmp.join("blobs");
        let out = rafs(
            &[
                "convert",
                layer.to_str().unwrap(),
                "-B",
                boot.to_str().unwrap(),
                "-D",
                blobs.to_str().unwrap(),
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        boots.push(std::fs::read(&boot).unwrap());
        let _ = std::fs::remove_dir_all(&tmp);
    }
    assert_eq!(boots[0], boots[1]);
}

#[test]
fn bad_input_fails_and_leaves_no_file() {
    let good = std::fs::read(corpus().join("layers/L1.tar")).unwrap();
    let mut checksum = good.clone();
    checksum[512 * 3 + 20] ^= 0x11;
    // Garbage after one zero block: Go's archive/tar (containerd) refuses the tar. (After
    // the full end marker it is not part of the layer: see garbage_after_the_end_marker.)
    let mut end = 0;
    for e in tar::Archive::new(good.as_slice()).entries().unwrap() {
        let e = e.unwrap();
        end = (e.raw_file_position() + e.size()).next_multiple_of(512);
    }
    let mut garbage = good[..usize::try_from(end).unwrap()].to_vec();
    garbage.extend_from_slice(&[0; 512]);
    garbage.extend_from_slice(&[0x5a; 512]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", good[..good.len() / 2].to_vec(), "ends"),
        ("checksum", checksum, "checksum"),
        ("garbage", garbage, "a zero block followed by a header"),
        (
            "dotdot",
            std::fs::read(corpus().join("layers/edge/E6-dotdot-path.tar")).unwrap(),
            "..",
        ),
        (
            "missing-link",
            std::fs::read(corpus().join("layers/edge/E3-hardlink-missing-target.tar")).unwrap(),
            "hard link target",
        ),
    ];
    for (tag, bytes, expect) in cases {
        let tmp = tempdir(tag);
        let layer = tmp.join("layer.tar");
        std::fs::write(&layer, &bytes).unwrap();
        let out_dir = tmp.join("out");
        std::fs::create_dir_all(&out_dir).unwrap();
        for extra in [
            &[][..],
            &["--blob-inline-meta", "--features", "blob-toc"][..],
        ] {
            let mut args = vec![
                "convert",
                layer.to_str().unwrap(),
                "-D",
                out_dir.to_str().unwrap(),
            ];
            let boot = out_dir.join("boot");
            args.extend(["-B", boot.to_str().unwrap()]);
            args.extend_from_slice(extra);
            let out = rafs(&args, None);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{tag}: accepted");
            assert!(err.contains(expect), "{tag}: {err}");
            let left = rafs_testkit::files_under(&out_dir);
            assert!(left.is_empty(), "{tag}: left behind {left:?}");
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
}

/// Removes what a different LZ4 encoder changes: compressed sizes and offsets, and what they
/// feed (blob ids, blob sizes, the chunk-info array's location).
fn strip_compressed_layout(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for k in ["compressed_size", "compressed_offset", "blob_id", "meta"] {
                m.remove(k);
            }
            for (_, x) in m.iter_mut() {
                strip_compressed_layout(x);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_compressed_layout),
        _ => {}
    }
}

#[test]
fn lz4_images_inspect_like_the_reference_but_for_compressed_layout() {
    let tmp = tempdir("lz4");
    let mut compared = 0;
    for (layer, version) in [("L2", "5"), ("L2", "6"), ("L3", "5"), ("L3", "6")] {
        let case = reference(&format!("{layer}-v{version}-lz4_block-sha256"));
        let boot = tmp.join(format!("{layer}-{version}.boot"));
        let out = rafs(
            &[
                "convert",
                corpus()
                    .join(format!("layers/{layer}.tar"))
                    .to_str()
                    .unwrap(),
                "--fs-version",
                version,
                "--compressor",
                "lz4_block",
                "--digester",
                "sha256",
                "-D",
                tmp.join("blobs").to_str().unwrap(),
                "-B",
                boot.to_str().unwrap(),
                "-q",
            ],
            None,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let inspect = |p: &Path| -> serde_json::Value {
            let o = rafs(&["inspect", "--json", p.to_str().unwrap()], None);
            assert!(o.status.success());
            let mut v = serde_json::from_slice(&o.stdout).unwrap();
            strip_compressed_layout(&mut v);
            v
        };
        assert_eq!(
            inspect(&boot),
            inspect(&case.join("bootstrap")),
            "{layer} v{version}"
        );
        compared += 1;
    }
    assert_eq!(compared, 4);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn merge_honours_the_whiteout_spec_it_is_given() {
    let dir = tempdir("merge-whiteout-spec");
    let layers = corpus().join("layers");
    let boot = |name: &str| dir.join(format!("{name}.boot"));
    for l in ["L1", "L2"] {
        let tar = layers.join(format!("{l}.tar"));
        let out = rafs(
            &[
                "convert",
                "-q",
                "-D",
                dir.join("blobs").to_str().unwrap(),
                "-B",
                boot(l).to_str().unwrap(),
                tar.to_str().unwrap(),
            ],
            None,
        );
        assert!(out.status.success(), "{out:?}");
    }
    let listing = |spec: &str| {
        let merged = dir.join(format!("merged-{spec}.boot"));
        let out = rafs(
            &[
                "merge",
                "--whiteout-spec",
                spec,
                "-B",
                merged.to_str().unwrap(),
                boot("L1").to_str().unwrap(),
                boot("L2").to_str().unwrap(),
            ],
            None,
        );
        assert!(out.status.success(), "{out:?}");
        let ls = rafs(&["ls", merged.to_str().unwrap()], None);
        String::from_utf8(ls.stdout).unwrap()
    };
    // OCI: L2's `etc/.wh.passwd` removes L1's passwd; with none it is an ordinary file.
    let (oci, none) = (listing("oci"), listing("none"));
    assert!(
        !oci.contains(".wh.passwd") && !oci.contains("/etc/passwd"),
        "{oci}"
    );
    assert!(
        none.contains(".wh.passwd") && none.contains("/etc/passwd"),
        "{none}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
