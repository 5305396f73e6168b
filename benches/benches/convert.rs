//! End to end: a generated 512 MiB layer (text, binaries, already-compressed files, many small
//! files, links; see `rafs_benches::write_layer_tar`) converted to RAFS v6 with zstd, with
//! blake3 and with sha256, on every core.
//!
//! First it prints, from one run, the conversion's throughput next to the bare cost of the
//! same data's chunk work on one thread (zstd level 3, digest and CRC-32C of each 1 MiB chunk
//! of each file), and their ratio. Criterion then measures the conversions.
//!
//! `RAFS_BENCH_MB` sets the size of the file data (default 512).

use criterion::{Criterion, Throughput};
use rafs_format::model::{Digester, FsVersion};
use rafs_tar_build::{build_layer, BuildOptions};
use std::time::{Duration, Instant};

/// The chunk work of every regular file of the tar, on this thread.
fn bare(tar: &[u8], d: Digester) -> u64 {
    let mut zstd = zstd::bulk::Compressor::new(3).unwrap();
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(1 << 20));
    let mut ar = tar::Archive::new(tar);
    let mut data = Vec::new();
    let mut stored = 0u64;
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        data.clear();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        for chunk in data.chunks(1 << 20) {
            std::hint::black_box((rafs_format::digest::digest(d, chunk), crc32c::crc32c(chunk)));
            out.clear();
            stored += zstd.compress_to_buffer(chunk, &mut out).unwrap() as u64;
        }
    }
    stored
}

fn convert(tar: &[u8], d: Digester) -> u64 {
    let mut o = BuildOptions::new(FsVersion::V6);
    o.digester = d;
    build_layer(tar, &o, std::io::sink())
        .unwrap()
        .report
        .blob_size
}

fn main() {
    let mb: u64 = std::env::var("RAFS_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let tar = rafs_benches::write_layer_tar(Vec::new(), mb << 20, 7).unwrap();
    let entries = tar::Archive::new(tar.as_slice()).entries().unwrap().count();
    println!(
        "convert: {} MB of tar, {entries} entries",
        tar.len() / 1_000_000
    );
    println!("digester | bare chunk work 1 thread MB/s | convert MB/s | ratio");
    for d in [Digester::Blake3, Digester::Sha256] {
        let (mut tb, mut tc) = (Duration::MAX, Duration::MAX);
        for _ in 0..3 {
            let t = Instant::now();
            bare(&tar, d);
            tb = tb.min(t.elapsed());
            let t = Instant::now();
            convert(&tar, d);
            tc = tc.min(t.elapsed());
        }
        let rate = |t: Duration| tar.len() as f64 / t.as_secs_f64() / 1e6;
        println!(
            "{:>8} | {:>29.0} | {:>12.0} | {:.2}",
            d.name(),
            rate(tb),
            rate(tc),
            tb.as_secs_f64() / tc.as_secs_f64()
        );
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    let mut g = c.benchmark_group("convert");
    g.throughput(Throughput::Bytes(tar.len() as u64));
    for d in [Digester::Blake3, Digester::Sha256] {
        g.bench_function(format!("v6-zstd-{}", d.name()), |b| {
            b.iter(|| convert(&tar, d))
        });
    }
    g.finish();
    c.final_summary();
}
