//! Converts arbitrary bytes as a layer (plain, gzip'ed, zstd'ed) with several option sets
//! (rafs_tar_build::fuzzing::build_any).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = rafs_tar_build::fuzzing::build_any(data) {
        panic!("{e}");
    }
});
