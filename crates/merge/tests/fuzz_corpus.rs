//! Replays the committed `merge` fuzz corpus through the function the target calls, so a
//! fixed crash stays fixed.

#[test]
fn merge_corpus() {
    rafs_testkit::replay_corpus("merge", rafs_merge::fuzzing::merge_two);
}
