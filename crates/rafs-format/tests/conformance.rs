//! Every reference bootstrap in the corpus decodes, and re-encoding it in its own version
//! reproduces it byte for byte.

use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance/nydus-image")
}

/// Every `<case>/bootstrap` of the corpus.
fn bootstraps() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(corpus()).expect("corpus") {
        let e = e.unwrap();
        let p = e.path().join("bootstrap");
        let rc = std::fs::read_to_string(e.path().join("rc")).unwrap_or_default();
        // Failed reference runs (rc != 0) leave an empty bootstrap behind; they have nothing to decode.
        if p.exists() && rc.trim() == "0" {
            out.push((
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            ));
        }
    }
    out.sort();
    assert!(
        out.len() >= 60,
        "expected the corpus's successful bootstraps, found {}",
        out.len()
    );
    out
}

/// Cases whose bootstrap the reference itself does not write reproducibly: an inode with two
/// or more xattrs gets them in hash-map order. We decode them and re-encode in the order we
/// read, which must still give the same bytes.
#[test]
fn every_bootstrap_rewrites_byte_identically() {
    let mut failures = Vec::new();
    for (case, bytes) in bootstraps() {
        let image = match rafs_format::decode(&bytes) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{case}: decode: {e}"));
                continue;
            }
        };
        // Only the reference's broken layered builds and its merge without blob ids have a
        // chunk table that the tree does not imply (corpus README, Findings).
        let broken = case.contains("-layered") || case.ends_with("-nodigests");
        let is_v6 = image.superblock.fs_version == rafs_format::model::FsVersion::V6;
        if image.v6_chunk_table.is_some() != (broken && is_v6) {
            failures.push(format!(
                "{case}: verbatim chunk table kept: {}",
                image.v6_chunk_table.is_some()
            ));
        }
        match rafs_format::encode(&image) {
            Ok(out) if out == bytes => {}
            Ok(out) => {
                let first = out
                    .iter()
                    .zip(&bytes)
                    .position(|(a, b)| a != b)
                    .unwrap_or(out.len().min(bytes.len()));
                failures.push(format!(
                    "{case}: differs at byte {first} (ours {} bytes, reference {})",
                    out.len(),
                    bytes.len()
                ));
            }
            Err(e) => failures.push(format!("{case}: encode: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// v5 -> v6 -> v5 keeps the tree: names, inode sharing, attributes, xattrs, chunks and blobs
/// (`Image::tree_difference` lists what a v6 image cannot carry). Each intermediate v6 image
/// must itself decode.
#[test]
fn v5_to_v6_to_v5_preserves_the_tree() {
    use rafs_format::model::FsVersion;
    let mut n = 0;
    for (case, bytes) in bootstraps() {
        let original = rafs_format::decode(&bytes).unwrap();
        if original.superblock.fs_version != FsVersion::V5 {
            continue;
        }
        let converted = rafs_format::encode(&original.converted_to(FsVersion::V6));
        if case.contains("layered") {
            // The reference's layered v5 build gives the new layer's chunks the parent blob's
            // (blob, index) addresses (corpus README, Findings). v6 resolves chunks by that
            // address, so the encoder must refuse rather than write an image that reads wrong.
            let e = converted.expect_err("ambiguous chunk addresses must not encode as v6");
            assert!(
                e.to_string().contains("cannot tell them apart"),
                "{case}: {e}"
            );
            continue;
        }
        let v6 = converted.unwrap_or_else(|e| panic!("{case}: {e}"));
        let mid = rafs_format::decode(&v6)
            .unwrap_or_else(|e| panic!("{case}: v6 form does not decode: {e}"));
        assert_eq!(mid.superblock.fs_version, FsVersion::V6);
        if let Some(d) = original.tree_difference(&mid) {
            panic!("{case}: v5 -> v6 changed the tree: {d}");
        }
        let v5 = rafs_format::encode(&mid.converted_to(FsVersion::V5)).unwrap();
        let back = rafs_format::decode(&v5).unwrap();
        if let Some(d) = original.tree_difference(&back) {
            panic!("{case}: v5 -> v6 -> v5 changed the tree: {d}");
        }
        n += 1;
    }
    assert!(n >= 20, "only {n} v5 bootstraps");
}

/// v6 keeps one chunk-table record per (digest, blob): an image whose two files hold chunks of
/// one digest at different addresses must not encode (one of them could not be found again),
/// and the error names one of the two files.
#[test]
fn one_digest_at_two_addresses_does_not_encode_as_v6() {
    let bytes = std::fs::read(corpus().join("L1-v6-default/bootstrap")).unwrap();
    let mut image = rafs_format::decode(&bytes).unwrap();
    let tree = &image.tree;
    let mut files = (0..tree.nodes.len())
        .map(rafs_format::model::NodeId::at)
        .filter(|id| !tree.inode_of(*id).chunks.is_empty());
    let (a, b) = (files.next().unwrap(), files.next().unwrap());
    let (pa, pb) = (tree.path(a), tree.path(b));
    let (ia, ib) = (tree.node(a).inode, tree.node(b).inode);
    assert_ne!(ia, ib);
    let first_of_a = tree.inode(ia).chunks[0];
    assert_ne!(
        first_of_a.index,
        tree.inode(ib).chunks[0].index,
        "the two files' first chunks must be stored apart for this test"
    );
    image.v6_chunk_table = None;
    image.tree.inodes[ib.0 as usize].chunks[0].digest = first_of_a.digest;
    let e = rafs_format::encode(&image).expect_err("one digest at two addresses");
    let message = e.to_string();
    assert!(message.contains("keeps one record per digest"), "{message}");
    assert!(
        message.contains(&pa) || message.contains(&pb),
        "{message} names neither {pa} nor {pb}"
    );
}
