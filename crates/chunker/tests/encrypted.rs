//! Encrypted blobs (`--encrypt`, issue 22 item 6): the reference's read back with our cipher,
//! digest-verified (its AES-128-XTS is OpenSSL's; ours is pure Rust, so this is the check that
//! they agree), and ours laid out as the reference lays them out.

use rafs_chunker::meta::ci_flags;
use rafs_chunker::{BlobCipher, BlobOptions, BlobReader, BlobWriter, Verify};
use rafs_format::model::{BlobFeatures, ChunkFlags, FsVersion, Image};
use std::path::PathBuf;

fn testdata(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/encrypt");
    std::fs::read(path.join(name)).unwrap()
}

/// Reads every chunk of `image` from `blob` (its only blob), checking digests and CRCs;
/// returns how many chunk records were read.
fn read_all(image: &Image, blob: &[u8]) -> usize {
    assert_eq!(image.blobs.len(), 1);
    let b = &image.blobs[0];
    assert!(b
        .features
        .contains(BlobFeatures::ENCRYPTED | BlobFeatures::CHUNK_INFO_V2));
    let r = BlobReader::open_for(blob, b).unwrap();
    let verify = Verify {
        digest: Some(b.digester),
        crc32: true,
    };
    let mut read = 0;
    for inode in &image.tree.inodes {
        for c in &inode.chunks {
            let data = r.read_chunk(c, b.compressor, verify).unwrap();
            assert_eq!(data.len(), c.uncompressed_size as usize);
            read += 1;
        }
    }
    read
}

#[test]
fn the_references_encrypted_blob_reads_back_with_verified_digests() {
    let image = rafs_format::decode(&testdata("L1.boot")).unwrap();
    assert!(image.superblock.encrypted);
    assert_eq!(image.blobs[0].cipher_algo, 1);
    let blob = testdata("L1.blob");
    assert_eq!(read_all(&image, &blob), 112);
    // Every chunk-info entry is flagged encrypted; the stored chunks are not readable as is.
    let r = BlobReader::open_for(&blob[..], &image.blobs[0]).unwrap();
    let meta = r.meta().unwrap();
    assert_eq!(meta.entries.len(), 111);
    assert!(meta
        .entries
        .iter()
        .all(|e| e.flags & ci_flags::ENCRYPTED != 0));
}

#[test]
fn the_references_encrypted_batch_blob_reads_back_from_its_inlined_bootstrap() {
    let packed = testdata("L1-batch.packed");
    // The blob meta needs the key, the inlined bootstrap (which holds it) does not.
    assert!(BlobReader::open(&packed[..]).is_err());
    let boot = BlobReader::open_sections(&packed[..])
        .unwrap()
        .bootstrap()
        .unwrap();
    let image = rafs_format::decode(&boot).unwrap();
    assert!(image.blobs[0].features.contains(BlobFeatures::BATCH));
    assert_eq!(read_all(&image, &packed), 112);
}

#[test]
fn a_wrong_key_fails_the_read_instead_of_returning_other_bytes() {
    let image = rafs_format::decode(&testdata("L1.boot")).unwrap();
    let mut b = image.blobs[0].clone();
    b.meta_digest[0] ^= 1;
    let blob = testdata("L1.blob");
    // The chunk-info array no longer decrypts to a valid array (or header).
    assert!(BlobReader::open_for(&blob[..], &b).is_err());
}

fn cipher() -> BlobCipher {
    let mut key = [0x5au8; 32];
    key[16..].fill(0xa5);
    BlobCipher::new(key, [7; 16]).unwrap()
}

fn encrypted_options(threads: usize) -> BlobOptions {
    let mut o = BlobOptions::new(FsVersion::V6);
    o.cipher = Some(cipher());
    o.threads = threads;
    o
}

#[test]
fn a_short_chunk_is_stored_padded_and_flagged_and_the_key_is_recorded() {
    let mut w = BlobWriter::new(Vec::new(), encrypted_options(1)).unwrap();
    let hello = w.add_bytes(b"hello\n").unwrap();
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let large = w.add_bytes(&big).unwrap();
    let blob = w.finish_data().unwrap().finish(None).unwrap();
    let small = blob.files[hello.0 as usize][0];
    // 6 bytes do not compress: stored raw, padded to 16 bytes and the 2-byte marker.
    assert_eq!(small.compressed_size, 18);
    assert!(!small.flags.contains(ChunkFlags::COMPRESSED));
    assert!(small.flags.contains(ChunkFlags::ENCRYPTED));
    assert_ne!(&blob.sink[..6], b"hello\n");
    let b = &blob.blob;
    assert!(b
        .features
        .contains(BlobFeatures::ENCRYPTED | BlobFeatures::CHUNK_INFO_V2));
    assert_eq!(BlobCipher::of_blob(b).unwrap(), Some(cipher()));

    let r = BlobReader::open_for(blob.sink.as_slice(), b).unwrap();
    let verify = Verify {
        digest: Some(b.digester),
        crc32: true,
    };
    assert_eq!(
        r.read_chunk(&small, b.compressor, verify).unwrap(),
        b"hello\n"
    );
    let chunk = blob.files[large.0 as usize][0];
    assert_eq!(r.read_chunk(&chunk, b.compressor, verify).unwrap(), big);
    let meta = r.meta().unwrap();
    assert!(meta
        .entries
        .iter()
        .all(|e| e.flags & ci_flags::ENCRYPTED != 0));
    // Without the key the tail is no blob-meta header.
    assert!(BlobReader::open(blob.sink.as_slice())
        .unwrap()
        .meta()
        .is_none());
}

#[test]
fn with_a_fixed_key_the_blob_is_the_same_on_any_number_of_threads() {
    let files: Vec<Vec<u8>> = (0..200u32)
        .map(|i| {
            (0..(i * 997 % 70_000))
                .map(|j| (j * i % 253) as u8)
                .collect()
        })
        .collect();
    let build = |threads| {
        let mut o = encrypted_options(threads);
        o.batch_size = 0x10000;
        let mut w = BlobWriter::new(Vec::new(), o).unwrap();
        for f in &files {
            w.add_bytes(f).unwrap();
        }
        w.finish_data().unwrap().finish(None).unwrap().sink
    };
    let one = build(1);
    assert_eq!(one, build(4));
}

#[test]
fn encryption_is_refused_for_v5_and_zran() {
    let mut o = BlobOptions::new(FsVersion::V5);
    o.cipher = Some(cipher());
    assert!(o.validate().is_err());
    let mut o = BlobOptions::new(FsVersion::V6);
    o.compressor = rafs_format::model::Compressor::Gzip;
    o.digester = rafs_format::model::Digester::Sha256;
    o.zran = true;
    assert!(o.validate().is_ok());
    o.cipher = Some(cipher());
    assert!(o.validate().is_err());
}
