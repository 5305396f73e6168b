//! Indexes arbitrary bytes as a gzip layer and reads every chunk back through its context, or
//! decodes them as a zran context table and inflates through it
//! (rafs_chunker::fuzzing::zran).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = rafs_chunker::fuzzing::zran(data) {
        panic!("{e}");
    }
});
