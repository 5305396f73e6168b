//! Unpacks a fuzzed image to a tar and into a temporary directory
//! (rafs_reader::fuzzing::unpack_any).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = rafs_reader::fuzzing::unpack_any(data) {
        panic!("{e}");
    }
});
