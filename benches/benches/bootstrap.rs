//! Decode and re-encode a generated bootstrap of 100 000 inodes, v5 and v6.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rafs_benches::generated_image;
use rafs_format::model::FsVersion;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("bootstrap-100k");
    g.sample_size(10);
    for version in [FsVersion::V5, FsVersion::V6] {
        let image = generated_image(100_000, version);
        let bytes = rafs_format::encode(&image).expect("encode");
        let decoded = rafs_format::decode(&bytes).expect("decode");
        assert!(image.tree_difference(&decoded).is_none());
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        let v = version.number();
        g.bench_function(format!("v{v}-decode"), |b| {
            b.iter(|| rafs_format::decode(&bytes).unwrap())
        });
        g.bench_function(format!("v{v}-encode"), |b| {
            b.iter(|| rafs_format::encode(&decoded).unwrap())
        });
        g.bench_function(format!("v{v}-decode+encode"), |b| {
            b.iter(|| rafs_format::encode(&rafs_format::decode(&bytes).unwrap()).unwrap())
        });
        println!(
            "v{v}: {} paths, bootstrap {} bytes",
            image.tree.nodes.len(),
            bytes.len()
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
