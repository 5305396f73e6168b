//! Replays the committed `tar_build` fuzz corpus through the function the target calls, so a
//! fixed crash stays fixed.

#[test]
fn tar_build_corpus() {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/tar_build");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if let Err(msg) = rafs_tar_build::fuzzing::build_any(&std::fs::read(&p).unwrap()) {
            panic!("{}: {msg}", p.display());
        }
        n += 1;
    }
    assert!(n >= 10, "only {n} inputs");
}
