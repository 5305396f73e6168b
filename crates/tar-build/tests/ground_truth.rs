//! Our image of each crafted layer, listed through our own readers (`rafs-format` for the
//! tree, `rafs-chunker` for file bytes), equals the corpus' ground-truth listing
//! (`expected/<layer>.list`, made by `tools/treelist.py tar` from the tar without nydus).
//!
//! This includes the layers the reference refuses or gets wrong: a hard link to a symlink, a
//! PAX global header, an old-GNU sparse file, a FIFO with empty device fields, and entries
//! whose parent directories the tar leaves out. A `..` path and a hard link to a missing
//! target are typed errors.

use rafs_chunker::{BlobReader, Verify};
use rafs_format::model::{mode, Compressor, FsVersion, Image, NodeId};
use rafs_tar_build::{build_layer, BuildOptions, EntryErrorKind, Error};
use sha2::Digest as _;
use std::collections::HashMap;
use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance")
}

/// Where the file bytes of an image live.
enum Data<'a> {
    Blob(&'a [u8], Compressor),
    Tar(&'a [u8]),
}

/// `treelist.py` format: `path type mode uid:gid mtime extra xattrs links=N`, sorted by path
/// bytes.
fn listing(image: &Image, data: &Data<'_>) -> String {
    let tree = &image.tree;
    let mut names: HashMap<rafs_format::model::InodeId, usize> = HashMap::new();
    for n in &tree.nodes {
        *names.entry(n.inode).or_insert(0) += 1;
    }
    let reader = match data {
        Data::Blob(b, _) if !b.is_empty() => Some(BlobReader::open(*b).unwrap()),
        _ => None,
    };
    let mut lines = Vec::new();
    for i in 0..tree.nodes.len() {
        let id = NodeId(i as u32);
        let node = tree.node(id);
        let inode = tree.inode(node.inode);
        let path = tree.path(id);
        let (typ, extra) = match inode.file_type() {
            mode::S_IFDIR => ("dir", "-".to_string()),
            mode::S_IFREG => {
                let mut h = sha2::Sha256::new();
                let mut len = 0u64;
                for c in &inode.chunks {
                    let bytes = match data {
                        Data::Blob(_, comp) => reader
                            .as_ref()
                            .unwrap()
                            .read_chunk(
                                c,
                                *comp,
                                Verify {
                                    digest: Some(image.superblock.digester),
                                    crc32: true,
                                },
                            )
                            .unwrap(),
                        Data::Tar(t) => t[c.uncompressed_offset as usize..]
                            [..c.uncompressed_size as usize]
                            .to_vec(),
                    };
                    len += bytes.len() as u64;
                    h.update(&bytes);
                }
                assert_eq!(len, inode.size, "{path}");
                (
                    "reg",
                    format!("{}:{}", inode.size, &rafs_format::hex(&h.finalize())[..16]),
                )
            }
            mode::S_IFLNK => (
                "sym",
                format!("->{}", String::from_utf8_lossy(&inode.symlink)),
            ),
            t @ (mode::S_IFCHR | mode::S_IFBLK) => {
                let r = inode.rdev;
                let major = (r >> 8) & 0xfff;
                let minor = (r & 0xff) | ((r >> 12) & !0xff);
                (
                    if t == mode::S_IFCHR { "chr" } else { "blk" },
                    format!("{major},{minor}"),
                )
            }
            mode::S_IFIFO => ("fifo", "-".to_string()),
            _ => ("other", "-".to_string()),
        };
        let mut xattrs: Vec<_> = inode.xattrs.iter().collect();
        xattrs.sort_by(|a, b| a.name.cmp(&b.name));
        let xs = if xattrs.is_empty() {
            "-".to_string()
        } else {
            xattrs
                .iter()
                .map(|x| {
                    format!(
                        "{}={}",
                        String::from_utf8_lossy(&x.name),
                        rafs_format::hex(&x.value)
                    )
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let links = if typ == "dir" {
            "-".to_string()
        } else {
            format!("links={}", names[&node.inode])
        };
        assert_eq!(
            inode.nlink as usize,
            if typ == "dir" {
                inode.nlink as usize
            } else {
                names[&node.inode]
            },
            "{path}: nlink"
        );
        lines.push((
            path.clone().into_bytes(),
            format!(
                "{path} {typ} {:04o} {}:{} {} {extra} {xs} {links}",
                inode.mode & 0o7777,
                inode.uid,
                inode.gid,
                inode.mtime
            ),
        ));
    }
    lines.sort();
    lines.into_iter().map(|(_, l)| l + "\n").collect()
}

/// Layers with a listing, and the tar each comes from.
fn layers() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(corpus().join("expected")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        if name.starts_with("oci-") {
            continue; // stacks of layers: the merge's business
        }
        let tar = match name.strip_prefix("edge-") {
            Some(edge) => corpus().join(format!("layers/edge/{edge}.tar")),
            None => corpus().join(format!("layers/{name}.tar")),
        };
        out.push((name, tar));
    }
    out.sort();
    out
}

#[test]
fn every_layer_lists_as_its_ground_truth() {
    let mut checked = Vec::new();
    for (name, tar) in layers() {
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
