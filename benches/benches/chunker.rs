//! The blob writer over 256 MiB of realistic layer content (text and binary files, see
//! `rafs_benches::LayerContent`), for each compressor and digester, on 1 and 2 worker threads,
//! against the bare cost of the same work in the same run: single-threaded compression, chunk
//! digest and CRC-32C of the same chunks with the libraries called directly.
//!
//! Before criterion's own measurements it prints a table of throughputs and the ratio
//! `bare time / pipeline time` (best of five interleaved rounds). A ratio of 2 would be perfect use of
//! two cores; the target is at least 1.7 with 2 threads.
//!
//! Two more columns explain the rest: the bare work split by hand over two threads (what two
//! cores of this machine give at best), and the bare work plus the sha256 of the stored bytes
//! that every blob writer owes for the blob id — serial, and outside the bare cost.
//!
//! `RAFS_BENCH_MB` sets the data size (default 256); `RAFS_BENCH_IN_FLIGHT` the writer's
//! chunks in flight.

use criterion::{Criterion, Throughput};
use rafs_benches::layer_files;
use rafs_chunker::{BlobOptions, BlobWriter};
use rafs_format::model::{Compressor, Digester, FsVersion};
use std::time::{Duration, Instant};

const CHUNK: usize = 0x10_0000;

/// Compression, digest and CRC of every chunk, on this thread, with no pipeline.
fn bare(files: &[Vec<u8>], c: Compressor, d: Digester) -> usize {
    bare_work(files, c, d, false)
}

/// [`bare`], plus the sha256 of the stored bytes that every blob writer owes (the blob id).
fn bare_with_blob_hash(files: &[Vec<u8>], c: Compressor, d: Digester) -> usize {
    bare_work(files, c, d, true)
}

fn bare_work(files: &[Vec<u8>], c: Compressor, d: Digester, blob_hash: bool) -> usize {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    let mut zstd = zstd::bulk::Compressor::new(3).unwrap();
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(CHUNK));
    let mut lz4 = vec![0u8; lz4_flex::block::get_maximum_output_size(CHUNK)];
    let mut stored = 0;
    for f in files {
        for chunk in f.chunks(CHUNK) {
            let digest = rafs_format::digest::digest(d, chunk);
            let crc = crc32c::crc32c(chunk);
            std::hint::black_box((digest, crc));
            let bytes: &[u8] = match c {
                Compressor::Zstd => {
                    out.clear();
                    zstd.compress_to_buffer(chunk, &mut out).unwrap();
                    &out
                }
                Compressor::Lz4Block => {
                    let n = lz4_flex::block::compress_into(chunk, &mut lz4).unwrap();
                    &lz4[..n]
                }
                _ => chunk,
            };
            stored += bytes.len();
            if blob_hash {
                hash.update(bytes);
            }
        }
    }
    std::hint::black_box(hash.finalize());
    stored
}

/// The bare work split over two threads by hand (alternate files), no pipeline: what this
/// machine's two cores can do at best.
fn bare_two_threads(halves: &[Vec<Vec<u8>>; 2], c: Compressor, d: Digester) {
    std::thread::scope(|s| {
        s.spawn(|| bare(&halves[0], c, d));
        bare(&halves[1], c, d);
    });
}

fn pipeline(files: &[Vec<u8>], c: Compressor, d: Digester, threads: usize) -> u64 {
    let mut o = BlobOptions::new(FsVersion::V6);
    o.compressor = c;
    o.digester = d;
    o.threads = threads;
    o.max_in_flight = std::env::var("RAFS_BENCH_IN_FLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut w = BlobWriter::new(std::io::sink(), o).unwrap();
    for f in files {
        w.add_bytes(f).unwrap();
    }
    w.finish_data().unwrap().finish(None).unwrap().size
}

/// Rounds of the ratio table.
const ROUNDS: usize = 5;

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

const COMPRESSORS: [Compressor; 3] = [Compressor::Zstd, Compressor::Lz4Block, Compressor::None];
const DIGESTERS: [Digester; 2] = [Digester::Blake3, Digester::Sha256];

fn main() {
    let mb: usize = std::env::var("RAFS_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let files = layer_files(mb << 20, 42);
    let total = (mb << 20) as f64;
    let mut halves: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    for (i, f) in files.iter().enumerate() {
        halves[i % 2].push(f.clone());
    }
    let rate = |t: Duration| total / t.as_secs_f64() / 1e6;
    println!(
        "chunker: {mb} MiB in {} files, {} cores",
        files.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("compressor digester | bare 1 thr | +blob sha256 | bare split 2 thr | pipeline 1 thr | pipeline 2 thr | ratio 1 thr | ratio 2 thr | ratio 2 thr vs bare+blob sha256 | blob/data   (MB/s)");
    for c in COMPRESSORS {
        for d in DIGESTERS {
            // Interleaved rounds, best of each: this VM's speed drifts, and drift must not
            // land on one side of the ratio.
            let mut stored = 0;
            let (mut tb, mut tbh, mut tb2, mut t1, mut t2) = (
                Duration::MAX,
                Duration::MAX,
                Duration::MAX,
                Duration::MAX,
                Duration::MAX,
            );
            for _ in 0..ROUNDS {
                tb = tb.min(timed(|| stored = bare(&files, c, d)));
                tbh = tbh.min(timed(|| {
                    bare_with_blob_hash(&files, c, d);
                }));
                tb2 = tb2.min(timed(|| bare_two_threads(&halves, c, d)));
                t1 = t1.min(timed(|| {
                    pipeline(&files, c, d, 1);
                }));
                t2 = t2.min(timed(|| {
                    pipeline(&files, c, d, 2);
                }));
            }
            println!(
                "{:>9} {:>7} | {:>10.0} | {:>12.0} | {:>16.0} | {:>14.0} | {:>14.0} | {:>11.2} | {:>11.2} | {:>32.2} | {:.3}",
                c.name(),
                d.name(),
                rate(tb),
                rate(tbh),
                rate(tb2),
                rate(t1),
                rate(t2),
                tb.as_secs_f64() / t1.as_secs_f64(),
                tb.as_secs_f64() / t2.as_secs_f64(),
                tbh.as_secs_f64() / t2.as_secs_f64(),
                stored as f64 / total,
            );
        }
    }

    let mut crit = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut g = crit.benchmark_group("chunker");
    g.throughput(Throughput::Bytes((mb << 20) as u64));
    for c in COMPRESSORS {
        for d in DIGESTERS {
            let tag = format!("{}-{}", c.name(), d.name());
            g.bench_function(format!("bare/{tag}"), |b| b.iter(|| bare(&files, c, d)));
            for t in [1, 2] {
                g.bench_function(format!("pipeline-{t}t/{tag}"), |b| {
                    b.iter(|| pipeline(&files, c, d, t))
                });
            }
        }
    }
    g.finish();
    crit.final_summary();
}
