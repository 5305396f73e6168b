//! Decodes arbitrary bytes as a RAFS v6 bootstrap; on success encodes again and checks the
//! round trip (rafs_format::fuzzing::decode_then_encode).
#![no_main]
use libfuzzer_sys::fuzz_target;
use rafs_format::model::FsVersion;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = rafs_format::fuzzing::decode_then_encode(data, FsVersion::V6) {
        panic!("{e}");
    }
});
