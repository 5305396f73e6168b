//! The blob writer over 256 MiB of realistic layer content (text and binary files, see
//! `rafs_benches::LayerContent`), for each compressor and digester, on 1 and 2 worker threads,
//! against the bare cost of the same work in the same run: single-threaded compression, chunk
//! digest and CRC-32C of the same chunks with the libraries called directly.
//!
//! Before criterion's own measurements it prints a table of throughputs and the ratio
//! `bare time / pipeline time` (best of three runs each). A ratio of 2 would be perfect use of
//! two cores; the target is at least 1.7 with 2 threads.
//!
//! `RAFS_BENCH_MB` sets the data size (default 256).

use criterion::{Criterion, Throughput};
use rafs_benches::layer_files;
use rafs_chunker::{BlobOptions, BlobWriter};
use rafs_format::model::{Compressor, Digester, FsVersion};
use std::time::{Duration, Instant};

const CHUNK: usize = 0x10_0000;

/// Compression, digest and CRC of every chunk, on this thread, with no pipeline.
fn bare(files: &[Vec<u8>], c: Compressor, d: Digester) -> usize {
    let mut zstd = zstd::bulk::Compressor::new(3).unwrap();
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(CHUNK));
    let mut lz4 = vec![0u8; lz4_flex::block::get_maximum_output_size(CHUNK)];
    let mut stored = 0;
    for f in files {
        for chunk in f.chunks(CHUNK) {
            let digest = rafs_format::digest::digest(d, chunk);
            let crc = crc32c::crc32c(chunk);
            std::hint::black_box((digest, crc));
            stored += match c {
                Compressor::Zstd => {
                    out.clear();
                    zstd.compress_to_buffer(chunk, &mut out).unwrap()
                }
                Compressor::Lz4Block => lz4_flex::block::compress_into(chunk, &mut lz4).unwrap(),
                _ => chunk.len(),
            };
        }
    }
    stored
}

fn pipeline(files: &[Vec<u8>], c: Compressor, d: Digester, threads: usize) -> u64 {
    let mut o = BlobOptions::new(FsVersion::V6);
    o.compressor = c;
    o.digester = d;
    o.threads = threads;
    let mut w = BlobWriter::new(std::io::sink(), o).unwrap();
    for f in files {
        w.add_bytes(f).unwrap();
    }
    w.finish_data().unwrap().finish(None).unwrap().size
}

fn best_of_three(mut f: impl FnMut()) -> Duration {
    (0..3)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
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
    let rate = |t: Duration| total / t.as_secs_f64() / 1e6;
    println!(
        "chunker: {mb} MiB in {} files, {} cores",
        files.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("compressor digester | bare 1 thread MB/s | pipeline 1 thr MB/s | pipeline 2 thr MB/s | ratio 1 thr | ratio 2 thr | blob/data");
    for c in COMPRESSORS {
        for d in DIGESTERS {
            let mut stored = 0;
            let tb = best_of_three(|| stored = bare(&files, c, d));
            let t1 = best_of_three(|| {
                pipeline(&files, c, d, 1);
            });
            let t2 = best_of_three(|| {
                pipeline(&files, c, d, 2);
            });
            println!(
                "{:>9} {:>7} | {:>18.0} | {:>19.0} | {:>19.0} | {:>11.2} | {:>11.2} | {:.3}",
                c.name(),
                d.name(),
                rate(tb),
                rate(t1),
                rate(t2),
                tb.as_secs_f64() / t1.as_secs_f64(),
                tb.as_secs_f64() / t2.as_secs_f64(),
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
