//! What the whole-image tests share: scratch directories and shell steps.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh directory for one test.
pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rafs-oci-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs a bash script in `dir`; panics with its output on failure. (Not every test binary
/// that shares this module runs scripts.)
#[allow(dead_code)]
pub fn sh(dir: &Path, script: &str) {
    let o = Command::new("bash")
        .arg("-euc")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("bash");
    assert!(
        o.status.success(),
        "{script}\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
