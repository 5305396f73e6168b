//! Replays every committed fuzz corpus input through the function its target calls, so the
//! properties hold on all of them and a fixed crash stays fixed.

use rafs_format::model::FsVersion;
use std::path::PathBuf;

fn replay(target: &str, version: FsVersion) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        let data = std::fs::read(&p).unwrap();
        if let Err(msg) = rafs_format::fuzzing::decode_then_encode(&data, version) {
            panic!("{}: {msg}", p.display());
        }
        n += 1;
    }
    assert!(n >= 10, "{target}: only {n} corpus inputs");
}

#[test]
fn bootstrap_v5_corpus() {
    replay("bootstrap_v5", FsVersion::V5);
}

#[test]
fn bootstrap_v6_corpus() {
    replay("bootstrap_v6", FsVersion::V6);
}

/// The seeds the `bootstrap_mutate` target patches (the same files it embeds).
static SEEDS: [&[u8]; 6] = [
    include_bytes!("../../../testdata/conformance/nydus-image/L2-v5-zstd-sha256/bootstrap"),
    include_bytes!("../../../testdata/conformance/nydus-image/L2-v6-zstd-sha256/bootstrap"),
    include_bytes!("../../../testdata/conformance/nydus-image/L3-v6-tarfs/bootstrap"),
    include_bytes!("../../../testdata/conformance/nydus-image/merge-v6-zstd-sha256-L1L2/bootstrap"),
    include_bytes!("../../../testdata/conformance/nydus-image/L2-v6-targz-ref/bootstrap"),
    include_bytes!(
        "../../../testdata/conformance/nydus-image/L3-v6-zstd-sha256-batch256k/bootstrap"
    ),
];

#[test]
fn bootstrap_mutate_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/bootstrap_mutate");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if let Err(msg) =
            rafs_format::fuzzing::mutate_then_decode(&std::fs::read(&p).unwrap(), &SEEDS)
        {
            panic!("{}: {msg}", p.display());
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} inputs");
}
