//! Replays the committed `unpack` and `accept_rule` fuzz corpora through the functions the
//! targets call, so a fixed crash stays fixed.

#[test]
fn unpack_corpus() {
    rafs_testkit::replay_corpus("unpack", rafs_reader::fuzzing::unpack_any);
}

include!("common/accept.rs");

#[test]
fn accept_rule_corpus() {
    rafs_testkit::replay_corpus("accept_rule", accept_rule);
}
