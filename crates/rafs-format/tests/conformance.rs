//! Every reference bootstrap in the corpus decodes, and re-encoding it in its own version
//! reproduces it byte for byte.

use std::path::PathBuf;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance/nydus-image")
}

/// Every `<case>/bootstrap` of the corpus.
fn bootstraps() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(corpus()).expect("corpus") {
        let e = e.unwrap();
        let p = e.path().join("bootstrap");
        let rc = std::fs::read_to_string(e.path().join("rc")).unwrap_or_default();
        // Failed reference runs (rc != 0) leave an empty bootstrap behind; they have nothing to decode.
        if p.exists() && rc.trim() == "0" {
            out.push((
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            ));
        }
    }
    out.sort();
    assert!(
        out.len() >= 60,
        "expected the corpus's successful bootstraps, found {}",
        out.len()
    );
    out
}

/// Cases whose bootstrap the reference itself does not write reproducibly: an inode with two
/// or more xattrs gets them in hash-map order. We decode them and re-encode in the order we
/// read, which must still give the same bytes.
#[test]
fn every_bootstrap_rewrites_byte_identically() {
    let mut failures = Vec::new();
    for (case, bytes) in bootstraps() {
        let image = match rafs_format::decode(&bytes) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{case}: decode: {e}"));
                continue;
            }
        };
        match rafs_format::encode(&image) {
            Ok(out) if out == bytes => {}
            Ok(out) => {
                let first = out
                    .iter()
                    .zip(&bytes)
                    .position(|(a, b)| a != b)
                    .unwrap_or(out.len().min(bytes.len()));
                failures.push(format!(
                    "{case}: differs at byte {first} (ours {} bytes, reference {})",
                    out.len(),
                    bytes.len()
                ));
            }
            Err(e) => failures.push(format!("{case}: encode: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
