//! Replays every committed fuzz corpus input of the chunker's targets through the function
//! the target calls, so the properties hold on all of them and a fixed crash stays fixed.
//! `cargo test -p rafs-chunker --test fuzz_corpus -- --ignored` regenerates the writer-made
//! seeds.

#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "tests: fixture offsets and sizes are small known values, and a scenario reads \
              best top to bottom in one function"
)]

use rafs_chunker::{BlobOptions, BlobWriter};
use rafs_format::model::{Compressor, FsVersion};
use std::path::PathBuf;

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn replay(target: &str, f: fn(&[u8]) -> Result<(), String>) {
    let dir = corpus(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        let data = std::fs::read(&p).unwrap();
        if let Err(msg) = f(&data) {
            panic!("{}: {msg}", p.display());
        }
        n += 1;
    }
    assert!(n >= 10, "{target}: only {n} corpus inputs");
}

#[test]
fn blob_meta_corpus() {
    replay("blob_meta", rafs_chunker::fuzzing::blob_meta);
}

#[test]
fn decompress_corpus() {
    replay("decompress", rafs_chunker::fuzzing::decompress_any);
}

#[test]
fn zran_corpus() {
    replay("zran", rafs_chunker::fuzzing::zran);
}

/// Context tables of the corpus' gzip layers, whole and damaged, for the zran target.
#[test]
#[ignore]
fn write_zran_table_seeds() {
    use rafs_chunker::zran::{encode_contexts, ZranGenerator};
    use std::io::Read;
    for layer in ["L1", "L2", "L3"] {
        let gz =
            std::fs::read(rafs_testkit::corpus().join(format!("layers/{layer}.tar.gz"))).unwrap();
        let mut g = ZranGenerator::new(gz.as_slice(), 0x10_0000).unwrap();
        let mut buf = vec![0u8; 100_000];
        loop {
            g.begin_chunk().unwrap();
            let n = g.read(&mut buf).unwrap();
            g.end_chunk().unwrap();
            if n == 0 {
                break;
            }
        }
        let contexts = g.take_contexts();
        let table = encode_contexts(&contexts);
        if table.len() > 0xffff {
            continue;
        }
        let damaged: [(&str, usize, u8); 5] = [
            ("whole", 0, 0),
            ("in-offset", 0, 0x40),
            ("ctx-bits", 37, 9),
            ("dict-offset", 16, 0xff),
            ("window", table.len() - 1, 0x5a),
        ];
        for (tag, at, value) in damaged {
            let mut t = table.clone();
            if tag != "whole" {
                t[at] ^= value;
            }
            let mut seed = vec![1u8, contexts.len() as u8];
            seed.extend_from_slice(&(t.len() as u16).to_le_bytes());
            seed.extend_from_slice(&t);
            seed.extend_from_slice(&gz);
            std::fs::write(corpus("zran").join(format!("table-{layer}-{tag}")), seed).unwrap();
        }
    }
}

/// Small blobs of every layout our writer makes.
#[test]
#[ignore]
fn write_seeds() {
    let files: [&[u8]; 4] = [
        b"hello\n",
        &b"hello world\n".repeat(300),
        &[7u8; 5000],
        b"tiny",
    ];
    for version in [FsVersion::V5, FsVersion::V6] {
        for compressor in [Compressor::None, Compressor::Lz4Block, Compressor::Zstd] {
            for (inline, toc) in [(false, false), (true, false), (false, true), (true, true)] {
                let mut o = BlobOptions::new(version);
                o.compressor = compressor;
                o.inline_bootstrap = inline;
                o.blob_toc = toc;
                o.chunk_size = 0x1000;
                let mut w = BlobWriter::new(Vec::new(), o).unwrap();
                for f in files {
                    w.add_bytes(f).unwrap();
                }
                let boot = vec![0x5au8; 300];
                let blob = w
                    .finish_data()
                    .unwrap()
                    .finish(inline.then_some(&boot[..]))
                    .unwrap();
                let name = format!(
                    "ours-v{}-{}-{}{}",
                    version.number(),
                    compressor.name(),
                    inline as u8,
                    toc as u8
                );
                std::fs::write(corpus("blob_meta").join(name), blob.sink).unwrap();
            }
        }
    }
    let text = b"hello world\n".repeat(300);
    for (i, c) in [Compressor::None, Compressor::Lz4Block, Compressor::Zstd]
        .into_iter()
        .enumerate()
    {
        let mut out = Vec::new();
        rafs_chunker::compress::compress(c, &text, &mut out).unwrap();
        for (tag, declared) in [
            ("exact", text.len() as u32),
            ("bomb", 100),
            ("short", text.len() as u32 + 1),
            ("zero", 0),
        ] {
            let mut seed = vec![i as u8];
            seed.extend_from_slice(&declared.to_le_bytes()[..3]);
            seed.extend_from_slice(&out);
            std::fs::write(
                corpus("decompress").join(format!("{}-{tag}", c.name())),
                seed,
            )
            .unwrap();
        }
    }
}
