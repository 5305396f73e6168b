//! Chunk dictionaries are not trusted (issue 21 item 3): lying records, unreadable or absent
//! dictionaries, dictionary images with two bootstraps.
//! Every image starts from the demo image in `testdata/` or is built here, so no tool is needed.

#![allow(
    unused_imports,
    reason = "each file uses its own part of the shared helpers"
)]

mod common;
use common::*;
use rafs_format::model::FsVersion;
use rafs_oci::layout::Layout;
use rafs_oci::{convert_image, ConvertOptions};
use serde_json::Value;
use std::io::Write;
use std::path::Path;

#[test]
fn a_chunk_dictionary_image_with_two_bootstraps_is_refused() {
    let (dir, target) = converted("dict-two-boots");
    let good = the_bootstrap(&target);
    let reg = tar::EntryType::Regular;
    let tar = tar_of(&[
        ("image/image.boot", reg, &good),
        ("image/image.boot", reg, &good),
    ]);
    with_bootstrap_tar(&target, "good", "two", &tar);
    let err = rafs_oci::ChunkDictionary::from_image(&target, Some("two")).unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_chunk_dictionary_that_lies_about_a_chunk_cannot_substitute_its_contents() {
    let (dir, target) = converted("dict-lies");
    let mut image = rafs_format::decode(&the_bootstrap(&target)).unwrap();
    // Swap what two chunk records claim: the record holding "hello\n" now claims the digest
    // and size of app.conf's contents, and the other way round. The blob is untouched (its
    // digest still matches), only the dictionary's bootstrap lies.
    let conf: [&[u8]; 3] = [b"etc", b"app", b"app.conf"];
    let hello: [&[u8]; 4] = [b"usr", b"share", b"doc", b"hello"];
    let (a, ca) = chunk_of(&image, &conf);
    let (b, cb) = chunk_of(&image, &hello);
    for (ino, from) in [(a, cb), (b, ca)] {
        let c = &mut image.tree.inodes[ino].chunks[0];
        c.digest = from.digest;
        c.uncompressed_size = from.uncompressed_size;
    }
    let lying = rafs_format::encode(&image).unwrap();
    let dict = rafs_oci::ChunkDictionary::from_bootstrap(&lying).unwrap();
    let mut options = ConvertOptions::new(FsVersion::V6);
    options.chunk_dict = Some(dict);
    convert_image(&demo(), Some("v1"), &target, "again", &options).unwrap();
    // Every file reads back as the source's: the two lying chunks were stored by the layers
    // themselves, every other chunk still comes from the dictionary.
    assert_eq!(problems(&target, "again"), "");
    let (manifest, _) = documents(&target, "again");
    let again =
        rafs_format::decode(&rafs_oci::check::bootstrap_of_manifest(&target, &manifest).unwrap())
            .unwrap();
    let dict_blobs: Vec<&str> = image.blobs.iter().map(|b| b.blob_id.as_str()).collect();
    for path in [&conf[..], &hello[..]] {
        let (_, c) = chunk_of(&again, path);
        let id = &again.blobs[c.blob_index as usize].blob_id;
        assert!(
            !dict_blobs.contains(&id.as_str()),
            "{path:?} refers to the dictionary"
        );
    }
    let numbers: [&[u8]; 4] = [b"usr", b"share", b"doc", b"numbers.txt"];
    let n = again.tree.lookup_components(numbers).unwrap();
    let c = again.tree.inode_of(n).chunks[0];
    assert!(dict_blobs.contains(&again.blobs[c.blob_index as usize].blob_id.as_str()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_chunk_dictionary_the_target_cannot_read_or_whose_blobs_are_absent_is_refused() {
    let (dir, target) = converted("dict-mismatch");
    let mut v5 = ConvertOptions::new(FsVersion::V5);
    convert_image(&demo(), Some("v1"), &target, "v5", &v5).unwrap();
    let (manifest, _) = documents(&target, "v5");
    let boot = rafs_oci::check::bootstrap_of_manifest(&target, &manifest).unwrap();
    // A v5 image names one compressor for all its blobs: zstd dictionary chunks in an
    // lz4_block image would be unreadable.
    v5.build.compressor = rafs_format::model::Compressor::Lz4Block;
    v5.chunk_dict = Some(rafs_oci::ChunkDictionary::from_bootstrap(&boot).unwrap());
    let err = convert_image(&demo(), Some("v1"), &target, "mixed", &v5).unwrap_err();
    assert!(
        err.to_string()
            .contains("chunk dictionary: compressor (v5) is zstd"),
        "{err}"
    );
    // Another chunk size.
    let mut v6 = ConvertOptions::new(FsVersion::V6);
    v6.build.chunk_size = 0x10000;
    v6.chunk_dict =
        Some(rafs_oci::ChunkDictionary::from_bootstrap(&the_bootstrap(&target)).unwrap());
    let err = convert_image(&demo(), Some("v1"), &target, "sizes", &v6).unwrap_err();
    assert!(
        err.to_string()
            .contains("chunk dictionary: chunk size is 0x100000"),
        "{err}"
    );
    // A bootstrap dictionary whose blobs are not in the target: nothing to verify against.
    let elsewhere = Layout::create(dir.join("elsewhere")).unwrap();
    let mut options = ConvertOptions::new(FsVersion::V6);
    options.chunk_dict =
        Some(rafs_oci::ChunkDictionary::from_bootstrap(&the_bootstrap(&target)).unwrap());
    let err = convert_image(&demo(), Some("v1"), &elsewhere, "x", &options).unwrap_err();
    assert!(err.to_string().contains("cannot be verified"), "{err}");
    assert!(elsewhere.resolve(Some("x")).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
