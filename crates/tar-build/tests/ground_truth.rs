//! Our image of each crafted layer, listed through our own readers (`rafs-format` for the
//! tree, `rafs-chunker` for file bytes), equals the corpus' ground-truth listing
//! (`expected/<layer>.list`, made by `tools/treelist.py tar` from the tar without nydus).
//!
//! This includes the layers the reference refuses or gets wrong: a hard link to a symlink, a
//! PAX global header, an old-GNU sparse file, a FIFO with empty device fields, and entries
//! whose parent directories the tar leaves out. A `..` path and a hard link to a missing
//! target are typed errors.

use rafs_chunker::BlobReader;
use rafs_format::model::{Compressor, FsVersion};
use rafs_tar_build::{build_layer, BuildOptions, EntryErrorKind, Error};
use rafs_testkit::{listing, Data};
use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance")
}

/// Layers with a listing, and the tar each comes from.

#[test]
fn every_layer_lists_as_its_ground_truth() {
    let mut checked = Vec::new();
    for (name, tar) in rafs_testkit::crafted_layers() {
        let expected =
            std::fs::read_to_string(corpus().join(format!("expected/{name}.list"))).unwrap();
        let tar_bytes = std::fs::read(&tar).unwrap();
        if name == "edge-E6-dotdot-path" {
            continue; // a typed error instead, below
        }
        for (label, opts) in [
            ("v6-zstd", BuildOptions::new(FsVersion::V6)),
            ("v5-lz4", {
                let mut o = BuildOptions::new(FsVersion::V5);
                o.compressor = Compressor::Lz4Block;
                o
            }),
            ("v6-none-inline-toc", {
                let mut o = BuildOptions::go_converter();
                o.compressor = Compressor::None;
                o
            }),
            ("tarfs", BuildOptions::tarfs()),
        ] {
            if label == "tarfs" && name == "edge-E7-gnu-sparse" {
                // A sparse file's data is not contiguous in the tar: tarfs cannot point at it.
                let e = build_layer(tar_bytes.as_slice(), &opts, Vec::new())
                    .err()
                    .unwrap();
                assert_eq!(e.as_entry().unwrap().kind.name(), "Unrepresentable", "{e}");
                continue;
            }
            let out = build_layer(tar_bytes.as_slice(), &opts, Vec::new())
                .unwrap_or_else(|e| panic!("{name} {label}: {e}"));
            // Read back what we wrote, not the model we hold.
            let image = if opts.inline_bootstrap && !out.sink.is_empty() {
                rafs_format::decode(
                    &BlobReader::open(out.sink.as_slice())
                        .unwrap()
                        .bootstrap()
                        .unwrap(),
                )
                .unwrap()
            } else {
                rafs_format::decode(&out.bootstrap).unwrap()
            };
            let data = if label == "tarfs" {
                Data::Tar(&tar_bytes)
            } else {
                Data::Blob(&out.sink, opts.compressor)
            };
            let got = listing(&image, &data);
            if got != expected {
                let diff: Vec<_> = expected
                    .lines()
                    .zip(got.lines())
                    .filter(|(a, b)| a != b)
                    .take(5)
                    .collect();
                panic!(
                    "{name} {label}: listing differs ({} vs {} lines): {diff:#?}",
                    expected.lines().count(),
                    got.lines().count()
                );
            }
            checked.push(format!("{name} {label}"));
        }
    }
    assert!(checked.len() >= 50, "{checked:?}");
}

fn entry_kind(e: &Error) -> &'static str {
    e.as_entry()
        .unwrap_or_else(|| panic!("not an entry error: {e}"))
        .kind
        .name()
}

#[test]
fn layers_the_reference_panics_or_fails_on_give_typed_errors() {
    let e6 = std::fs::read(corpus().join("layers/edge/E6-dotdot-path.tar")).unwrap();
    let e = build_layer(e6.as_slice(), &BuildOptions::new(FsVersion::V6), Vec::new())
        .err()
        .unwrap();
    assert_eq!(entry_kind(&e), "DotDot");
    assert!(e.as_entry().unwrap().path.contains(".."), "{e}");
    let e3 = std::fs::read(corpus().join("layers/edge/E3-hardlink-missing-target.tar")).unwrap();
    let e = build_layer(e3.as_slice(), &BuildOptions::new(FsVersion::V6), Vec::new())
        .err()
        .unwrap();
    assert!(
        matches!(&e.as_entry().unwrap().kind, EntryErrorKind::LinkTargetMissing(t) if t == "/absent"),
        "{e}"
    );
}
