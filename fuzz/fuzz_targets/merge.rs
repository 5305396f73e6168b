//! Merges two fuzzed bootstraps (rafs_merge::fuzzing::merge_two).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = rafs_merge::fuzzing::merge_two(data) {
        panic!("{e}");
    }
});
