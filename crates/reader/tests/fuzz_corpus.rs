//! Replays the committed `unpack` and `accept_rule` fuzz corpora through the functions the
//! targets call, so a fixed crash stays fixed.

fn replay(target: &str, f: fn(&[u8]) -> Result<(), String>) {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if let Err(msg) = f(&std::fs::read(&p).unwrap()) {
            panic!("{}: {msg}", p.display());
        }
        n += 1;
    }
    assert!(n >= 5, "{target}: only {n} inputs");
}

#[test]
fn unpack_corpus() {
    replay("unpack", rafs_reader::fuzzing::unpack_any);
}

include!("common/accept.rs");

#[test]
fn accept_rule_corpus() {
    replay("accept_rule", accept_rule);
}
