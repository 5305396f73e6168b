//! The spec's worked examples of real reference output (blob.md §12), reproduced exactly.

#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "tests: fixture offsets and sizes are small known values, and a scenario reads \
              best top to bottom in one function"
)]

use rafs_format::model::FsVersion;
use rafs_tar_build::{build_layer, BuildOptions};
use sha2::{Digest, Sha256};

/// `tiny.tar`: one ustar entry `a.txt`, mode 0644, uid/gid 0, mtime 0, content `hello\n`.
fn tiny_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("a.txt").unwrap();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, &b"hello\n"[..]).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn go_converter_layer_of_tiny_tar() {
    // blob.md §12.2: `create --type tar-rafs --blob-inline-meta --features blob-toc
    // --whiteout-spec none --prefetch-policy fs` with `/` on stdin.
    let out = build_layer(
        tiny_tar().as_slice(),
        &BuildOptions::go_converter(),
        Vec::new(),
    )
    .unwrap();
    assert_eq!(out.sink.len(), 7608);
    assert_eq!(
        rafs_format::hex(&Sha256::digest(&out.sink)),
        "b2111019421c1da30cbb76e5aeb65c948d544f896aa2368ea0fb460089bb34ba"
    );
    assert_eq!(
        out.report.blob_id.as_deref(),
        Some("368cd0b308e11552c1c252c05941ed4015e19eb5d17d53347921244fec77f9f2")
    );
    assert_eq!(out.bootstrap.len(), 20480);
    assert_eq!(out.image.prefetch.len(), 1, "prefetch table [root]");
}

#[test]
fn separate_blob_of_tiny_tar() {
    // blob.md §12.1: `create -t tar-rafs -B boot -b blob tiny.tar`: 4118 bytes.
    let out = build_layer(
        tiny_tar().as_slice(),
        &BuildOptions::new(FsVersion::V6),
        Vec::new(),
    )
    .unwrap();
    assert_eq!(out.sink.len(), 6 + 16 + 4096);
    assert_eq!(
        out.report.blob_id.as_deref(),
        Some(rafs_format::hex(&Sha256::digest(&out.sink)).as_str())
    );
}

/// A layer of (path, content) files.
fn layer(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (p, d) in files {
        let mut h = tar::Header::new_ustar();
        h.set_path(p).unwrap();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, d.as_slice()).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn chunk_dictionary_turns_known_chunks_into_references() {
    // blob.md §6: chunks found in the dictionary are not stored; the dictionary's blob joins
    // the blob table when first referenced.
    let shared: Vec<u8> = (0..300_000u32)
        .flat_map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes())
        .collect();
    let base = build_layer(
        layer(&[("base.bin", shared.clone())]).as_slice(),
        &BuildOptions::new(FsVersion::V6),
        Vec::new(),
    )
    .unwrap();
    let mut opts = BuildOptions::new(FsVersion::V6);
    opts.chunk_dict = Some(rafs_chunker::ChunkDict::from_bootstrap(&base.bootstrap).unwrap());
    let fresh = b"only in the new layer".to_vec();
    let out = build_layer(
        layer(&[("copy.bin", shared.clone()), ("new.txt", fresh)]).as_slice(),
        &opts,
        Vec::new(),
    )
    .unwrap();
    let image = rafs_format::decode(&out.bootstrap).unwrap();
    assert_eq!(image.blobs.len(), 2);
    assert_eq!(
        image.blobs[0].blob_id,
        base.report.blob_id.unwrap(),
        "the dictionary blob came first"
    );
    assert_eq!(image.blobs[1].blob_id, out.report.blob_id.unwrap());
    assert_eq!(
        out.report.chunks_stored, 1,
        "only new.txt's chunk is stored"
    );
    let copy = node_at(&image, "/copy.bin");
    assert!(image
        .tree
        .inode_of(copy)
        .chunks
        .iter()
        .all(|c| c.blob_index == 0));
}

fn node_at(image: &rafs_format::model::Image, path: &str) -> rafs_format::model::NodeId {
    (0..image.tree.nodes.len())
        .map(|i| rafs_format::model::NodeId(i as u32))
        .find(|&n| image.tree.path(n) == path)
        .unwrap()
}

#[test]
fn xattr_values_may_contain_newlines() {
    // A capability mask with CAP_DAC_OVERRIDE and CAP_FOWNER is the byte 0x0a: PAX records
    // are length-prefixed, so the value is binary-safe (the reference's parser splits it).
    let cap: [u8; 20] = [
        1, 0, 0, 2, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([
        ("SCHILY.xattr.security.capability", &cap[..]),
        ("path", b"bin/ping"),
    ])
    .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("truncated-name").unwrap();
    h.set_size(4);
    h.set_mode(0o755);
    h.set_cksum();
    b.append(&h, &b"ELF!"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let out = build_layer(
        tar.as_slice(),
        &BuildOptions::new(FsVersion::V6),
        Vec::new(),
    )
    .unwrap();
    let image = rafs_format::decode(&out.bootstrap).unwrap();
    let ping = node_at(&image, "/bin/ping");
    let x = &image.tree.inode_of(ping).xattrs;
    assert_eq!(x.len(), 1);
    assert_eq!(
        (x[0].name.as_slice(), x[0].value.as_slice()),
        (&b"security.capability"[..], &cap[..])
    );
}

#[test]
fn a_tarfs_build_needs_no_sink_and_refuses_other_conversions() {
    let tar = tiny_tar();
    let without = rafs_tar_build::build_tarfs_layer(&tar[..], &BuildOptions::tarfs()).unwrap();
    let with = build_layer(&tar[..], &BuildOptions::tarfs(), Vec::new()).unwrap();
    assert_eq!(without.bootstrap, with.bootstrap);
    assert!(with.sink.is_empty(), "tarfs writes no blob");
    let refused = rafs_tar_build::build_tarfs_layer(&tar[..], &BuildOptions::new(FsVersion::V6));
    assert!(matches!(
        refused,
        Err(rafs_tar_build::Error::InvalidOptions(
            rafs_tar_build::OptionsError::NotTarfs
        ))
    ));
}
