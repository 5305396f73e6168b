//! Merging N generated layers of M inodes each (`rafs_benches::generated_image`, each layer
//! with its own blob, every layer overlaying the same paths plus a whiteout per directory),
//! then encoding the v6 result.
//!
//! Prints, from one run, the time for 20x10 000, 20x20 000 and 40x20 000 and the time per
//! (layer x inode): constant means merge time grows linearly with layers x inodes. Criterion
//! then measures 20 layers of 20 000 inodes.

use criterion::Criterion;
use rafs_benches::generated_image;
use rafs_format::model::{mode, FsVersion, Image, Inode, ROOT};
use rafs_merge::{merge, Layer, MergeOptions};
use std::time::{Duration, Instant};

fn layers(n: usize, inodes: usize) -> Vec<Layer> {
    let base = generated_image(inodes, FsVersion::V6);
    (0..n)
        .map(|k| {
            let mut image: Image = base.clone();
            image.blobs[0].blob_id = format!("{k:064x}");
            if k > 0 {
                // A whiteout of some path in the root, as upper layers have.
                let victim = image
                    .tree
                    .node(image.tree.node(ROOT).children[k % 3])
                    .name
                    .clone();
                let mut name = b".wh.".to_vec();
                name.extend_from_slice(&victim);
                let wh = image.tree.add_inode(Inode::new(mode::S_IFREG | 0o644));
                image.tree.push_child(ROOT, name, wh);
                image.tree.sort_children();
            }
            Layer {
                image,
                blob_id: None,
            }
        })
        .collect()
}

fn run(ls: Vec<Layer>) -> usize {
    let merged = merge(ls, &MergeOptions::default()).unwrap();
    rafs_format::encode(&merged).unwrap().len()
}

fn main() {
    println!("layers x inodes | seconds | ns per (layer x inode)");
    for (n, m) in [(20, 10_000), (20, 20_000), (40, 20_000)] {
        let input = layers(n, m);
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let ls = input.clone();
            let t = Instant::now();
            run(ls);
            best = best.min(t.elapsed());
        }
        println!(
            "{n:>6} x {m:<6} | {:>7.3} | {:>6.0}",
            best.as_secs_f64(),
            best.as_secs_f64() * 1e9 / (n * m) as f64
        );
    }
    let input = layers(20, 20_000);
    let mut c = Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .configure_from_args();
    c.bench_function("merge/20x20000", |b| b.iter(|| run(input.clone())));
    c.final_summary();
}
