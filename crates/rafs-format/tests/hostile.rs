//! Every crafted bootstrap in `testdata/hostile/` fails to decode with the error kind its
//! `EXPECTED` line names, without panicking, at the byte offset it names: the corrupted
//! field's own offset, which `make_hostile.py` takes from the format tables when it patches
//! the bytes (a truncation names where the missing structure would start).

use std::path::PathBuf;

#[test]
fn hostile_bootstraps_fail_with_their_expected_error() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/hostile");
    let expected = std::fs::read_to_string(dir.join("EXPECTED")).expect("EXPECTED");
    let mut n = 0;
    for line in expected.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let (file, kind) = (parts.next().unwrap(), parts.next().unwrap());
        let at: u64 = parts.next().expect("an offset").parse().unwrap();
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let err = match rafs_format::decode(&bytes) {
            Ok(_) => panic!("{file}: decoded, expected {kind}"),
            Err(e) => e,
        };
        let d = err
            .as_decode()
            .unwrap_or_else(|| panic!("{file}: not a decode error: {err}"));
        assert_eq!(d.kind.name(), kind, "{file}: {err}");
        assert_eq!(d.offset, at, "{file}: {err}");
        // A truncation is reported where the structure would have been, possibly past the end.
        if kind != "Truncated" {
            assert!(
                d.offset < bytes.len() as u64,
                "{file}: offset {} outside the file",
                d.offset
            );
        }
        assert!(!err.to_string().is_empty());
        n += 1;
    }
    assert!(n >= 20, "only {n} hostile bootstraps");
}

/// A 4 KiB v5 bootstrap claiming 2^32 - 1 inodes (the u32 field's maximum) and 2^16 blobs
/// fails at once, without allocating for them.
#[test]
fn huge_counts_in_a_tiny_file_fail_fast() {
    let mut b = vec![0u8; 8192 + 4096];
    b[0..4].copy_from_slice(&0x5241_4653u32.to_le_bytes());
    b[4..8].copy_from_slice(&0x500u32.to_le_bytes());
    b[8..12].copy_from_slice(&8192u32.to_le_bytes());
    b[12..16].copy_from_slice(&0x10_0000u32.to_le_bytes());
    b[16..24].copy_from_slice(&0x94u64.to_le_bytes());
    b[32..40].copy_from_slice(&8192u64.to_le_bytes());
    b[56..60].copy_from_slice(&u32::MAX.to_le_bytes());
    b[68..72].copy_from_slice(&(1u32 << 16).to_le_bytes());
    let e = rafs_format::decode(&b).unwrap_err();
    assert_eq!(e.decode_kind().unwrap().name(), "LimitExceeded", "{e}");
    // Within the node limit, the table itself does not fit in the file.
    b[56..60].copy_from_slice(&(1u32 << 20).to_le_bytes());
    let e = rafs_format::decode(&b).unwrap_err();
    assert_eq!(e.decode_kind().unwrap().name(), "BadRange", "{e}");
}
