//! Structure-aware: patches bytes of valid reference bootstraps (v5, v6, tarfs, merged, zran, batch) and
//! decodes, re-encodes and compares (rafs_format::fuzzing::mutate_then_decode).
#![no_main]
use libfuzzer_sys::fuzz_target;

static SEEDS: [&[u8]; 6] = [
    include_bytes!("../../testdata/conformance/nydus-image/L2-v5-zstd-sha256/bootstrap"),
    include_bytes!("../../testdata/conformance/nydus-image/L2-v6-zstd-sha256/bootstrap"),
    include_bytes!("../../testdata/conformance/nydus-image/L3-v6-tarfs/bootstrap"),
    include_bytes!("../../testdata/conformance/nydus-image/merge-v6-zstd-sha256-L1L2/bootstrap"),
    include_bytes!("../../testdata/conformance/nydus-image/L2-v6-targz-ref/bootstrap"),
    include_bytes!("../../testdata/conformance/nydus-image/L3-v6-zstd-sha256-batch256k/bootstrap"),
];

fuzz_target!(|data: &[u8]| {
    if let Err(e) = rafs_format::fuzzing::mutate_then_decode(data, &SEEDS) {
        panic!("{e}");
    }
});
