//! The same layer and options give the same bytes: run twice, and on 1, 2 or 4 worker threads.

#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "tests: fixture offsets and sizes are small known values, and a scenario reads \
              best top to bottom in one function"
)]

use rafs_format::model::{Compressor, FsVersion};
use rafs_tar_build::{build_layer, BuildOptions};

/// A layer of about 20 MiB: text and noise files of many sizes, some larger than a chunk,
/// some repeated (dedup), links.
fn layer() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut x = 0x1234_5678_9abc_def0u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut first = Vec::new();
    for i in 0..300u64 {
        let size = match i % 5 {
            0 => (next() % 3_000_000) as usize,
            1 => (next() % 100) as usize,
            _ => (next() % 40_000) as usize,
        };
        let data: Vec<u8> = if i % 3 == 0 {
            (0..size).map(|_| (next() >> 20) as u8).collect()
        } else {
            format!("line {i} of some text\n")
                .into_bytes()
                .into_iter()
                .cycle()
                .take(size)
                .collect()
        };
        if i == 0 {
            first = data.clone();
        }
        let data = if i % 50 == 49 { first.clone() } else { data };
        let mut h = tar::Header::new_gnu();
        h.set_path(format!("d{}/f{i}", i % 7)).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000 + i);
        h.set_cksum();
        tar.append(&h, data.as_slice()).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_path("link").unwrap();
    h.set_entry_type(tar::EntryType::Link);
    h.set_link_name("d0/f0").unwrap();
    h.set_mode(0o644);
    h.set_size(0);
    h.set_cksum();
    tar.append(&h, std::io::empty()).unwrap();
    tar.into_inner().unwrap()
}

#[test]
fn same_bytes_every_run_and_thread_count() {
    let tar = layer();
    for (label, base) in [
        ("v6 zstd", BuildOptions::new(FsVersion::V6)),
        ("v5 lz4", {
            let mut o = BuildOptions::new(FsVersion::V5);
            o.compressor = Compressor::Lz4Block;
            o
        }),
        ("go converter", BuildOptions::go_converter()),
    ] {
        let mut outputs = Vec::new();
        for threads in [1, 2, 4, 0, 0] {
            let mut o = base.clone();
            o.threads = threads;
            let out = build_layer(tar.as_slice(), &o, Vec::new()).unwrap();
            assert!(out.report.chunks_stored > 50, "{label}");
            outputs.push((threads, out.bootstrap, out.sink));
        }
        for (t, boot, blob) in &outputs[1..] {
            assert!(
                *boot == outputs[0].1,
                "{label}: bootstrap differs on {t} threads"
            );
            assert!(
                *blob == outputs[0].2,
                "{label}: blob differs on {t} threads"
            );
        }
    }
}
