//! Reads arbitrary bytes as a Nydus bootstrap layer, as check-image and chunk-dictionary
//! images do (rafs_oci::fuzzing::bootstrap_layer).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = rafs_oci::fuzzing::bootstrap_layer(data) {
        panic!("{e}");
    }
});
