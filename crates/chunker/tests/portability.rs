//! The crates that must build on any system (rafs-format, rafs-chunker, rafs-tar-build,
//! rafs-merge) touch the operating system only through `rafs-chunker`'s `sys/unix.rs` and
//! `rafs-tar-build`'s `dir_source.rs` (reading a directory: lstat fields, xattrs), both gated
//! by the `unix` feature; `.ci/run` checks they build with it off. This test keeps it so: no
//! `std::os::unix`, `std::os::fd` or `rustix` anywhere else in their sources.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn platform_code_stays_behind_the_unix_feature() {
    let crates = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let allowed = [
        crates.join("chunker/src/sys/unix.rs"),
        crates.join("tar-build/src/dir_source.rs"),
    ];
    let mut files = Vec::new();
    for c in ["rafs-format", "chunker", "tar-build", "merge"] {
        sources(&crates.join(c).join("src"), &mut files);
    }
    assert!(files.len() > 30, "{} files", files.len());
    let mut offenders = Vec::new();
    for f in &files {
        if allowed.contains(f) {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if ["std::os::unix", "std::os::fd", "rustix"]
                .iter()
                .any(|p| code.contains(p))
            {
                offenders.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "platform code outside sys/unix.rs:\n{}",
        offenders.join("\n")
    );
    let gate = std::fs::read_to_string(crates.join("chunker/src/sys/mod.rs")).unwrap();
    assert!(gate.contains("#[cfg(feature = \"unix\")]\nmod unix;"));
    let gate = std::fs::read_to_string(crates.join("tar-build/src/lib.rs")).unwrap();
    assert!(gate.contains("#[cfg(feature = \"unix\")]\npub mod dir_source;"));
}
