//! Small files, as real layers hold them (issue 14): a generated tree whose file sizes follow
//! a root filesystem's shape (most files a few KiB, a mean near 30 KiB, a few MiB-sized ones),
//! converted plain and gzip'ed (`gzip -6`-like), next to the bare cost of every stage on the
//! same bytes, measured in the same run on one thread: reading the tar, gzip decoding, zstd
//! level 3, the blake3 digest and CRC-32C of each chunk, sha256 of the blob.
//!
//! The roofline is the larger of the total bare work spread over the cores and the longest
//! stage that cannot be split (reading the tar, plus decoding for gzip); the table gives our
//! wall time as a multiple of it. With `RAFS_BENCH_REFERENCE=/path/to/nydus-image` the
//! reference converts the same tars too (`-t tar-rafs` and `-t targz-rafs`), for the ratio.
//! `RAFS_BENCH_MB` sets the file data (default 256).

use rafs_format::model::{Digester, FsVersion};
use rafs_tar_build::{build_layer, BuildOptions};
use sha2::Digest as _;
use std::io::{Read, Write};
use std::time::Instant;

/// File sizes of a root filesystem's shape: log-uniform 64 B .. 256 KiB for most, one in a
/// hundred 256 KiB .. 2 MiB (a mean near 30 KiB).
fn next_size(state: &mut u64) -> usize {
    let mut next = || {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    };
    let (lo, span) = if next() % 100 == 0 { (18, 3) } else { (6, 11) };
    let bits = lo + (next() % span) as u32;
    let base = 1usize << bits;
    base + (next() as usize % base)
}

/// A tar of `total` bytes of small files in directories of 64.
fn small_file_tar(total: usize) -> (Vec<u8>, usize) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut g = rafs_benches::LayerContent::new(11);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let (mut written, mut n, mut buf) = (0, 0usize, Vec::new());
    while written < total {
        let size = next_size(&mut state).min(total - written);
        g.fill(&mut buf, size);
        let mut h = tar::Header::new_gnu();
        h.set_path(format!("usr/share/d{:04}/f{n:06}", n / 64))
            .unwrap();
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        tar.append(&h, buf.as_slice()).unwrap();
        written += size;
        n += 1;
    }
    (tar.into_inner().unwrap(), n)
}

fn seconds(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// Bare single-thread costs: (read the tar, zstd, blake3 + CRC, sha256 of the output).
fn bare_stages(tar: &[u8]) -> (f64, f64, f64, f64) {
    let mut files = Vec::new();
    let read = seconds(|| {
        let mut ar = tar::Archive::new(tar);
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            files.push(data);
        }
    });
    let mut stored = Vec::new();
    let zstd = seconds(|| {
        let mut z = zstd::bulk::Compressor::new(3).unwrap();
        for f in &files {
            for c in f.chunks(1 << 20) {
                stored.extend_from_slice(&z.compress(c).unwrap());
            }
        }
    });
    let digest = seconds(|| {
        for f in &files {
            for c in f.chunks(1 << 20) {
                std::hint::black_box((
                    rafs_format::digest::digest(Digester::Blake3, c),
                    crc32c::crc32c(c),
                ));
            }
        }
    });
    let sha = seconds(|| {
        std::hint::black_box(sha2::Sha256::digest(&stored));
    });
    (read, zstd, digest, sha)
}

fn ours(input: &[u8]) -> f64 {
    let o = BuildOptions::new(FsVersion::V6);
    seconds(|| {
        build_layer(input, &o, std::io::sink()).unwrap();
    })
}

/// The reference on the same input, if `RAFS_BENCH_REFERENCE` names it.
fn reference(input: &[u8], kind: &str) -> Option<f64> {
    let bin = std::env::var("RAFS_BENCH_REFERENCE").ok()?;
    let dir = std::env::temp_dir().join(format!("rafs-bench-ref-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("blobs")).unwrap();
    let layer = dir.join("layer");
    std::fs::write(&layer, input).unwrap();
    let run = || {
        let s = std::process::Command::new(&bin)
            .args(["create", "-t", kind, "-D"])
            .arg(dir.join("blobs"))
            .arg("-B")
            .arg(dir.join("bootstrap"))
            .arg(&layer)
            .output()
            .unwrap();
        assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    };
    let t = seconds(run);
    let _ = std::fs::remove_dir_all(&dir);
    Some(t)
}

fn main() {
    let mb: usize = std::env::var("RAFS_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let (tar, files) = small_file_tar(mb << 20);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let gunzip = seconds(|| {
        let mut d = flate2::read::GzDecoder::new(gz.as_slice());
        std::io::copy(&mut d, &mut std::io::sink()).unwrap();
    });
    let (read, zstd, digest, sha) = bare_stages(&tar);
    println!(
        "small files: {files} files, {} MB of tar, {} MB gzip'ed, {cores} cores",
        tar.len() / 1_000_000,
        gz.len() / 1_000_000
    );
    println!(
        "bare, 1 thread: read tar {read:.2} s | gunzip {gunzip:.2} s | zstd-3 {zstd:.2} s | \
         blake3+crc {digest:.2} s | sha256 of blob {sha:.2} s"
    );
    let work = read + zstd + digest + sha;
    for (name, input, extra, kind) in [
        ("plain", &tar, 0.0, "tar-rafs"),
        ("gzip", &gz, gunzip, "targz-rafs"),
    ] {
        let roofline = ((work + extra) / cores).max(read + extra);
        let t = ours(input).min(ours(input));
        let versus = reference(input, kind)
            .map(|r| format!(" | reference {r:.2} s, {:.2}x ours", r / t))
            .unwrap_or_default();
        println!(
            "{name}: ours {t:.2} s ({:.0} MB/s) | roofline {roofline:.2} s | ours / roofline {:.2}{versus}",
            tar.len() as f64 / t / 1e6,
            t / roofline
        );
    }
}
