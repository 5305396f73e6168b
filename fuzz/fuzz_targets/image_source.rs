//! Reads arbitrary bytes as an oci-archive or docker-archive, converts what it accepts and
//! checks the result against the archive (rafs_oci::fuzzing::image_source).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = rafs_oci::fuzzing::image_source(data) {
        panic!("{e}");
    }
});
