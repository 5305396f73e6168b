//! A chunk that claims 16 MiB but inflates to 1 GiB fails fast with a typed error, and the
//! process's peak resident set grows by less than 64 MiB doing so. (One test per binary, so
//! nothing else shares the measured process.)

#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "tests: fixture offsets and sizes are small known values, and a scenario reads \
              best top to bottom in one function"
)]

use rafs_chunker::{BlobReader, Verify};
use rafs_format::model::{ChunkFlags, ChunkInfo, Compressor};
use std::io::Read;
use std::time::Instant;

fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_16_mib_chunk_that_inflates_to_1_gib_fails_fast_in_little_memory() {
    // A streamed zstd frame (no content size in its header) of 1 GiB of zeros: a few KiB.
    let mut enc = zstd::stream::read::Encoder::new(std::io::repeat(0).take(1 << 30), 19).unwrap();
    let mut bomb = Vec::new();
    enc.read_to_end(&mut bomb).unwrap();
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let chunk = ChunkInfo {
        digest: [0; 32],
        blob_index: 0,
        index: 0,
        flags: ChunkFlags::COMPRESSED,
        compressed_offset: 0,
        compressed_size: bomb.len() as u32,
        uncompressed_offset: 0,
        uncompressed_size: 16 << 20,
        file_offset: 0,
        crc32: 0,
    };
    let baseline = vm_hwm_kib();
    let started = Instant::now();
    let reader = BlobReader::open(bomb.as_slice()).unwrap();
    let e = reader
        .read_chunk(&chunk, Compressor::Zstd, Verify::default())
        .unwrap_err();
    let took = started.elapsed();
    let grew = (vm_hwm_kib() - baseline) * 1024;
    eprintln!(
        "bomb of {} bytes refused in {took:?}: {e}; peak RSS grew {} KiB",
        bomb.len(),
        grew >> 10
    );
    assert_eq!(e.blob_kind().unwrap().name(), "SizeMismatch", "{e}");
    assert!(grew < 64 << 20, "peak grew by {} MiB", grew >> 20);
    assert!(took.as_secs() < 5, "{took:?}");
}
