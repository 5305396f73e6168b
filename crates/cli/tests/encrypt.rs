//! `nydus-image create --encrypt` (issue 22, item 6). The reference draws a random key and IV
//! per blob, so no encrypted output can be byte-identical; what can be compared is compared:
//! our encrypted build of a layer against the reference's (committed under
//! `testdata/encrypt`, `make_reference.sh`), equal in every byte that does not depend on the
//! key. That nydusd (the reference's reader) reads ours is `nydusd_matrix.rs`'s encrypted
//! cells; that we read the reference's is `rafs-chunker`'s `tests/encrypted.rs` and below.

mod common;
use common::{ok, s, tempdir};
use rafs_format::model::Image;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn reference(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/encrypt")
        .join(name)
}

fn layer(name: &str) -> PathBuf {
    rafs_testkit::corpus().join("layers").join(name)
}

fn nydus_image(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nydus-image"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// `create --encrypt` of L2 with a separate bootstrap, as `make_reference.sh` ran the
/// reference (L2: our unencrypted build of it is byte-identical to the reference's; L1 has
/// PAX mtimes, where we differ on purpose); returns (bootstrap, blob).
fn build(dir: &Path, tag: &str) -> (Vec<u8>, Vec<u8>) {
    let (boot, blob) = (
        dir.join(format!("{tag}.boot")),
        dir.join(format!("{tag}.blob")),
    );
    let out = nydus_image(&[
        "create",
        "--log-level",
        "warn",
        "--type",
        "tar-rafs",
        "--fs-version",
        "6",
        "--encrypt",
        "--bootstrap",
        s(&boot),
        "--blob",
        s(&blob),
        s(&layer("L2.tar")),
    ]);
    assert!(out.status.success(), "{out:?}");
    (std::fs::read(boot).unwrap(), std::fs::read(blob).unwrap())
}

/// The image with what the key decides taken out: the key and IV fields, and the blob id
/// (the blob's sha256, which covers the ciphertext).
fn without_key(bootstrap: &[u8]) -> Image {
    let mut image = rafs_format::decode(bootstrap).unwrap();
    for b in &mut image.blobs {
        assert_eq!(b.cipher_algo, 1, "AES-128-XTS recorded");
        b.meta_digest = [0; 32];
        b.meta_size = 0;
        b.cipher_iv = [0; 8];
        b.blob_id.clear();
    }
    image
}

#[test]
fn an_encrypted_build_equals_the_references_but_for_the_key() {
    let dir = tempdir("encrypt-layout");
    let (boot, blob) = build(&dir, "ours");
    let ref_boot = std::fs::read(reference("L2.boot")).unwrap();
    let ref_blob = std::fs::read(reference("L2.blob")).unwrap();
    assert_eq!(blob.len(), ref_blob.len(), "blob sizes");
    assert_eq!(boot.len(), ref_boot.len(), "bootstrap sizes");
    assert_eq!(without_key(&boot), without_key(&ref_boot));
    // The two bootstraps differ only in the key (32 bytes), the IV (16) and the blob id,
    // which v6 writes twice (blob table and device slot, 64 bytes each).
    let differing = boot.iter().zip(&ref_boot).filter(|(a, b)| a != b).count();
    assert!(
        differing <= 32 + 16 + 2 * 64,
        "{differing} bootstrap bytes differ"
    );

    // A second build draws another key: other ciphertext, same layout.
    let (boot2, blob2) = build(&dir, "again");
    assert_ne!(blob, blob2);
    assert_eq!(blob.len(), blob2.len());
    assert_ne!(
        rafs_format::decode(&boot).unwrap().blobs[0].meta_digest,
        rafs_format::decode(&boot2).unwrap().blobs[0].meta_digest
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A blob directory holding `blob` under the id `bootstrap` records.
fn blob_dir(dir: &Path, bootstrap: &[u8], blob: &[u8]) -> PathBuf {
    let blobs = dir.join("blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    let id = rafs_format::decode(bootstrap).unwrap().blobs[0]
        .blob_id
        .clone();
    std::fs::write(blobs.join(id), blob).unwrap();
    blobs
}

#[test]
fn the_references_encrypted_image_checks_and_unpacks_with_us() {
    let dir = tempdir("encrypt-reference");
    let boot = std::fs::read(reference("L1.boot")).unwrap();
    let blobs = blob_dir(&dir, &boot, &std::fs::read(reference("L1.blob")).unwrap());
    let boot_path = reference("L1.boot");
    let out = ok(&["check", "-D", s(&blobs), s(&boot_path)]);
    assert!(out.contains("112 chunks read back and verified"), "{out}");
    // The reference's own `unpack` fails on this image ("fail to decompress": it does not
    // decrypt); ours gives the layer's tree.
    let tar = dir.join("out.tar");
    let unpacked = nydus_image(&[
        "unpack",
        "--bootstrap",
        s(&boot_path),
        "--blob-dir",
        s(&blobs),
        "--output",
        s(&tar),
    ]);
    assert!(unpacked.status.success(), "{unpacked:?}");
    let treelist = rafs_testkit::corpus().join("tools/treelist.py");
    let got = rafs_testkit::run("python3", &[s(&treelist), "tar", s(&tar)]).unwrap();
    rafs_testkit::assert_listing(
        "unpack",
        &got,
        &common::expected("L1"),
        &common::reference_fault,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_flipped_byte_in_an_encrypted_chunk_fails_the_check() {
    let dir = tempdir("encrypt-flip");
    let (boot, mut blob) = build(&dir, "ours");
    blob[100] ^= 0x40;
    let blobs = blob_dir(&dir, &boot, &blob);
    let boot_path = dir.join("ours.boot");
    let out = Command::new(env!("CARGO_BIN_EXE_rafs"))
        .args(["check", "-D", s(&blobs), s(&boot_path)])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a corrupted chunk passed: {out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn encrypt_is_refused_where_no_reader_could_decrypt() {
    let dir = tempdir("encrypt-refused");
    let blob = dir.join("b");
    let l1 = layer("L1.tar");
    let gz = layer("L1.tar.gz");
    for (args, named) in [
        (
            vec!["--type", "tar-rafs", "--fs-version", "5", s(&l1)],
            "--fs-version 5",
        ),
        (
            vec!["--type", "tar-tarfs", "--bootstrap", s(&blob), s(&l1)],
            "tar-tarfs",
        ),
        (vec!["--type", "targz-ref", s(&gz)], "targz-ref"),
    ] {
        let mut all = vec!["create", "--encrypt", "--blob", s(&blob)];
        all.extend(args);
        let out = nydus_image(&all);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{all:?} succeeded");
        assert!(
            err.contains("--encrypt") && err.contains(named),
            "{all:?}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
