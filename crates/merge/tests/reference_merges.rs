//! Merges of the corpus' per-layer bootstraps against the reference's merged bootstraps: byte
//! identical for v5 and v6 (`cmd.txt` of each `merge-*` case gives the inputs and blob ids),
//! and typed errors where the reference refuses (or, merging without blob ids, silently folds
//! three blobs into one).

#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "tests: fixture offsets and sizes are small known values, and a scenario reads \
              best top to bottom in one function"
)]

use rafs_merge::{merge, Error, Layer, LayerBlobArgs, MergeOptions};
use rafs_testkit::{corpus, CorpusCase};
use std::path::{Path, PathBuf};

/// A `merge-*` case of the corpus, its command line read into sources and blob ids.
struct Case {
    corpus: CorpusCase,
    digests: Option<Vec<String>>,
    sizes: Option<Vec<u64>>,
    sources: Vec<PathBuf>,
}

impl std::ops::Deref for Case {
    type Target = CorpusCase;
    fn deref(&self) -> &CorpusCase {
        &self.corpus
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for corpus in rafs_testkit::corpus_cases() {
        if !corpus.name.starts_with("merge-") {
            continue;
        }
        let (cmd, dir) = (&corpus.cmd, &corpus.dir);
        let mut digests = None;
        let mut sizes: Option<Vec<u64>> = None;
        let mut sources = Vec::new();
        let mut i = 2;
        while i < cmd.len() {
            match cmd[i].as_str() {
                "--blob-digests" => {
                    digests = cmd
                        .get(i + 1)
                        .map(|d| d.split(',').map(String::from).collect());
                    i += 2;
                }
                "--blob-sizes" => {
                    sizes = cmd
                        .get(i + 1)
                        .map(|d| d.split(',').map(|s| s.parse().unwrap()).collect());
                    i += 2;
                }
                "-B" | "-J" => i += 2,
                src => {
                    sources.push(dir.join(src));
                    i += 1;
                }
            }
        }
        out.push(Case {
            corpus,
            digests,
            sizes,
            sources,
        });
    }
    assert!(out.len() >= 14, "{}", out.len());
    out
}

/// The reference derives a layer's blob id from its bootstrap's file name, extensions
/// stripped, when no `--blob-digests` are given.
fn id_from_file_name(p: &Path) -> String {
    let name = p.file_name().unwrap().to_string_lossy();
    name.split('.').next().unwrap().to_string()
}

fn layers(case: &Case) -> Vec<Layer> {
    case.sources
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut layer = Layer {
                image: rafs_format::decode(&std::fs::read(p).unwrap()).unwrap(),
                blob_id: Some(id_from_file_name(p)),
            };
            let args = LayerBlobArgs {
                digest: case
                    .digests
                    .as_ref()
                    .map(|d| rafs_format::unhex32(&d[i]).unwrap()),
                size: case.sizes.as_ref().map(|s| s[i]),
                toc_digest: None,
                toc_size: None,
            };
            layer.apply_blob_args(args, &[]);
            layer
        })
        .collect()
}

#[test]
fn merges_equal_the_reference_byte_for_byte() {
    let mut identical = Vec::new();
    let mut refused = Vec::new();
    for case in cases() {
        let result = merge(layers(&case), &MergeOptions::default());
        if case.rc != 0 {
            let e = result
                .err()
                .unwrap_or_else(|| panic!("{}: the reference refuses, we accepted", case.name));
            assert!(
                matches!(e, Error::Incompatible { .. }),
                "{}: {e}",
                case.name
            );
            refused.push(format!("{}: {e}", case.name));
            continue;
        }
        if case.name.ends_with("nodigests") {
            // Every source is named `bootstrap`, so the reference gives the three layers' blobs
            // one id and keeps only the first: chunks of L2 and L3 then point into L1's blob.
            let e = result
                .err()
                .unwrap_or_else(|| panic!("{}: accepted three blobs under one id", case.name));
            assert!(e.to_string().contains("names a different blob"), "{e}");
            refused.push(format!("{}: {e}", case.name));
            continue;
        }
        let image = result.unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let ours = rafs_format::encode(&image).unwrap();
        let theirs = std::fs::read(case.dir.join("bootstrap")).unwrap();
        if ours != theirs {
            let reference = rafs_format::decode(&theirs).unwrap();
            panic!(
                "{}: merged bootstrap differs ({} vs {} bytes); tree: {:?}; blobs equal: {}; superblock {:?} vs {:?}",
                case.name,
                ours.len(),
                theirs.len(),
                image.tree_difference(&reference),
                image.blobs == reference.blobs,
                image.superblock,
                reference.superblock
            );
        }
        identical.push(case.name.clone());
    }
    eprintln!("identical: {identical:#?}\nrefused: {refused:#?}");
    assert!(identical.len() >= 10, "{identical:?}");
    assert_eq!(refused.len(), 3, "{refused:?}");
}

/// A parent image takes the place of the layers below: L2 and L3 on the merged L1 give the
/// reference's three-layer merge.
#[test]
fn a_parent_image_stands_for_the_lower_layers() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "merge-v6-zstd-sha256")
        .unwrap();
    let mut ls = layers(&case);
    let l1 = ls.remove(0);
    let parent = merge(vec![l1], &MergeOptions::default()).unwrap();
    let mut opts = MergeOptions::default();
    opts.parent = Some(parent);
    let image = merge(ls, &opts).unwrap();
    let ours = rafs_format::encode(&image).unwrap();
    assert!(
        ours == std::fs::read(case.dir.join("bootstrap")).unwrap(),
        "differs from the three-layer merge"
    );
}

/// v5 layers merged into a v6 image: the same tree as the v5 merge.
#[test]
fn merging_into_the_other_version_keeps_the_tree() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "merge-v5-zstd-sha256")
        .unwrap();
    let v5 = merge(layers(&case), &MergeOptions::default()).unwrap();
    let mut opts = MergeOptions::default();
    opts.fs_version = Some(rafs_format::model::FsVersion::V6);
    let v6 = merge(layers(&case), &opts).unwrap();
    let decoded = rafs_format::decode(&rafs_format::encode(&v6).unwrap()).unwrap();
    assert_eq!(
        decoded.superblock.fs_version,
        rafs_format::model::FsVersion::V6
    );
    let d = decoded
        .converted_to(rafs_format::model::FsVersion::V5)
        .tree_difference(&v5);
    assert!(d.is_none(), "{d:?}");
}

/// The whiteout spec decides which entries of an upper layer are markers. The crafted E9 layer
/// holds both kinds: `.wh.*` files, a char device 0:0 `d/ovl-whiteout` and an opaque `o/`.
#[test]
fn whiteout_specs_choose_the_markers() {
    use rafs_merge::WhiteoutSpec;
    use rafs_tar_build::{build_layer, BuildOptions};
    // Lower: d/{keep,ovl-whiteout,x}, o/{old}.
    let mut b = tar::Builder::new(Vec::new());
    for (p, dir) in [
        ("d/", true),
        ("d/keep", false),
        ("d/ovl-whiteout", false),
        ("d/x", false),
        ("o/", true),
        ("o/old", false),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_path(p).unwrap();
        h.set_entry_type(if dir {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        h.set_mode(0o755);
        h.set_size(if dir { 0 } else { 3 });
        h.set_cksum();
        b.append(&h, if dir { &b""[..] } else { &b"low"[..] })
            .unwrap();
    }
    let lower = build_layer(
        b.into_inner().unwrap().as_slice(),
        &BuildOptions::new(rafs_format::model::FsVersion::V6),
        Vec::new(),
    )
    .unwrap()
    .image;
    let e9 = std::fs::read(corpus().join("layers/edge/E9-whiteouts-in-base.tar")).unwrap();
    let upper = build_layer(
        e9.as_slice(),
        &BuildOptions::new(rafs_format::model::FsVersion::V6),
        Vec::new(),
    )
    .unwrap()
    .image;
    let paths = |spec: WhiteoutSpec| -> Vec<String> {
        let mut o = MergeOptions::default();
        o.whiteout_spec = spec;
        let layers = vec![
            Layer {
                image: lower.clone(),
                blob_id: Some("a".repeat(64)),
            },
            Layer {
                image: upper.clone(),
                blob_id: Some("b".repeat(64)),
            },
        ];
        let m = merge(layers, &o).unwrap();
        let mut v: Vec<String> = (1..m.tree.nodes.len())
            .map(|i| m.tree.path(rafs_format::model::NodeId(i as u32)))
            .collect();
        v.sort();
        v
    };
    // OCI: the opaque marker empties d/ (then keep comes back from the upper layer); the
    // char device is an ordinary entry.
    assert_eq!(
        paths(WhiteoutSpec::Oci),
        ["/d", "/d/keep", "/d/ovl-whiteout", "/o", "/o/old"]
    );
    // overlayfs: the char device removes d/ovl-whiteout, opaque o/ hides o/old; .wh.* files
    // are ordinary entries.
    assert_eq!(
        paths(WhiteoutSpec::Overlayfs),
        [
            "/d",
            "/d/.wh..wh..opq",
            "/d/.wh.keep",
            "/d/keep",
            "/d/x",
            "/o"
        ]
    );
    // none: everything is an entry.
    assert_eq!(
        paths(WhiteoutSpec::None),
        [
            "/d",
            "/d/.wh..wh..opq",
            "/d/.wh.keep",
            "/d/keep",
            "/d/ovl-whiteout",
            "/d/x",
            "/o",
            "/o/old"
        ]
    );
}
