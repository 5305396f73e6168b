//! The acceptance rule on fuzzed layers with tightened budgets and prefetch patterns: what
//! converts must decode, check, read back verified and unpack (see
//! crates/reader/tests/common/accept.rs).
#![no_main]
use libfuzzer_sys::fuzz_target;

include!("../../crates/reader/tests/common/accept.rs");

fuzz_target!(|data: &[u8]| {
    if let Err(e) = accept_rule(data) {
        panic!("{e}");
    }
});
