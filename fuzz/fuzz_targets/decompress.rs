//! Decompresses arbitrary bytes with a declared size under each chunk compressor, and
//! round-trips them (rafs_chunker::fuzzing::decompress_any).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = rafs_chunker::fuzzing::decompress_any(data) {
        panic!("{e}");
    }
});
