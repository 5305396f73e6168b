//! What a program that converts layers in-process needs, in one place (the README's "Use as a
//! library" section; `.ci/run` runs it): convert a layer tar into a bootstrap and a data blob,
//! put the blob into a blob directory under its id atomically, then open the image from the
//! directory, list every path, read a file back verified, and unpack the image to a tar.
//!
//! Run it with `cargo run -p rafs-reader --example convert_and_read [LAYER.tar]`; without an
//! argument it converts a small layer it makes itself.

use rafs_chunker::StagedFile;
use rafs_reader::{unpack_to_tar, ImageReader};
use rafs_tar_build::{build_layer, BuildOptions, Compressor, Digester, FsVersion};
use std::error::Error;

fn sample_layer() -> Result<Vec<u8>, Box<dyn Error>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in [
        ("etc/hostname", &b"nydus\n"[..]),
        ("bin/hello", b"#!/bin/sh\necho hi\n"),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_path(path)?;
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        tar.append(&h, data)?;
    }
    Ok(tar.into_inner()?)
}

fn main() -> Result<(), Box<dyn Error>> {
    let layer = match std::env::args_os().nth(1) {
        Some(path) => std::fs::read(path)?,
        None => sample_layer()?,
    };
    let blob_dir = std::env::temp_dir().join(format!("rafs-example-{}", std::process::id()));
    std::fs::create_dir_all(&blob_dir)?;

    // Convert: the blob streams into an unnamed file in the blob directory.
    let options = BuildOptions::new(FsVersion::V6)
        .with_compressor(Compressor::Zstd)
        .with_digester(Digester::Sha256);
    let out = build_layer(
        layer.as_slice(),
        &options,
        StagedFile::create_in(&blob_dir)?,
    )?;
    if let Some(id) = &out.report.blob_id {
        // The blob appears under its id only now, complete.
        out.sink.persist_blob(id)?;
    }
    println!(
        "converted {} entries: bootstrap {} bytes, blob {:?} ({} bytes)",
        out.report.entries, out.report.bootstrap_size, out.report.blob_id, out.report.blob_size
    );

    // Read: the bootstrap's bytes decode to the image; blobs are found by id in the directory.
    let image = rafs_format::decode(&out.bootstrap)?;
    let reader = ImageReader::open_dir(image, &blob_dir)?.verify_digests(true);
    for entry in reader.image().tree.entries() {
        println!(
            "{:>8} {}",
            entry.inode.size,
            rafs_format::rules::escape_bytes(&entry.path)
        );
    }
    if let Some(node) = reader.lookup("/etc/hostname") {
        let bytes = reader.read_file(node)?;
        assert_eq!(bytes, b"nydus\n");
    }
    reader.verify_all()?;
    let (tar, report) = unpack_to_tar(&reader, Vec::new())?;
    println!(
        "unpacked {} entries into a {}-byte tar",
        report.entries,
        tar.len()
    );
    std::fs::remove_dir_all(&blob_dir)?;
    Ok(())
}
