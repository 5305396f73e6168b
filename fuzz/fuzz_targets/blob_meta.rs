//! Opens arbitrary bytes as a data blob (packed or plain) and reads every section, ToC entry
//! and chunk it claims (rafs_chunker::fuzzing::blob_meta).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = rafs_chunker::fuzzing::blob_meta(data) {
        panic!("{e}");
    }
});
