//! Whole images: a generated 3-layer OCI image (gzip layers from `write_layer_tar`, 512 MiB of
//! file data in all by default) converted to a Nydus image in-process, against
//! * the sum of converting each layer alone as `rafs convert --blob-inline-meta --features
//!   blob-toc` does (blob staged and persisted under its id, bootstrap written), what a
//!   converter that runs a builder per layer pays, and
//! * the bare cost of the same bytes: gunzip of each layer, then zstd level 3, blake3 digest
//!   and CRC-32C of each 1 MiB chunk of each file, on one thread.
//!
//! Printed ratios above 1.0 mean the whole-image path is faster. Criterion then measures the
//! image conversion. `RAFS_BENCH_MB` sets the total file data (default 512).

use criterion::{Criterion, Throughput};
use rafs_format::model::FsVersion;
use rafs_oci::{convert_image, ConvertOptions, Layout};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An OCI layout with one 3-layer image `bench`, its layers gzip tars; returns the layers.
fn make_image(dir: &Path, mb: u64) -> Vec<Vec<u8>> {
    let layout = Layout::create(dir).unwrap();
    let mut layers = Vec::new();
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for seed in 0..3u64 {
        let tar = rafs_benches::write_layer_tar(Vec::new(), (mb << 20) / 3, 11 + seed).unwrap();
        diff_ids.push(rafs_oci::layout::digest_of(&tar));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let digest = layout.write_blob(&gz).unwrap();
        descs.push(serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest, "size": gz.len()}));
        layers.push(gz);
    }
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let (cd, cs) = layout.write_json(&config).unwrap();
    let manifest = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs}, "layers": descs});
    let (md, ms) = layout.write_json(&manifest).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "bench"}}]});
    layout
        .write_index(&serde_json::from_value(index).unwrap())
        .unwrap();
    layers
}

fn convert_whole(src: &Layout, out: &Path) {
    let _ = std::fs::remove_dir_all(out);
    let target = Layout::create(out).unwrap();
    convert_image(
        src,
        Some("bench"),
        &target,
        "n",
        &ConvertOptions::new(FsVersion::V6),
    )
    .unwrap();
}

/// What `rafs convert --blob-inline-meta --features blob-toc` does per layer: the blob staged
/// in a blob directory and persisted under its id (synced), the bootstrap written beside it.
fn convert_each(layers: &[Vec<u8>], dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let options = rafs_oci::pack::pack_options(FsVersion::V6);
    for (i, l) in layers.iter().enumerate() {
        let staged = rafs_chunker::StagedFile::create_in(dir).unwrap();
        let out = rafs_tar_build::build_layer(l.as_slice(), &options, staged).unwrap();
        let id = out.report.blob_id.clone().unwrap();
        out.sink.persist_blob(&id).unwrap();
        let boot = dir.join(format!("layer{i}.boot"));
        let mut f = std::fs::File::create(&boot).unwrap();
        f.write_all(&out.bootstrap).unwrap();
        f.sync_all().unwrap();
    }
}

fn bare(layers: &[Vec<u8>]) {
    let mut zstd = zstd::bulk::Compressor::new(3).unwrap();
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(1 << 20));
    for l in layers {
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(l.as_slice()));
        let mut data = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            data.clear();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            for chunk in data.chunks(1 << 20) {
                std::hint::black_box((blake3::hash(chunk), crc32c::crc32c(chunk)));
                out.clear();
                zstd.compress_to_buffer(chunk, &mut out).unwrap();
            }
        }
    }
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn main() {
    let mb: u64 = std::env::var("RAFS_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("rafs-bench-image-{}", std::process::id()));
    let layers = make_image(&dir.join("src"), mb);
    let src = Layout::open(dir.join("src")).unwrap();
    let total: usize = layers.iter().map(Vec::len).sum();
    println!(
        "image: 3 layers, {mb} MiB of file data, {} MB of gzip layers, {} cores",
        total / 1_000_000,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    // Interleaved rounds, best of each: this machine's speed drifts.
    let (mut whole, mut each, mut base) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for _ in 0..3 {
        whole = whole.min(timed(|| convert_whole(&src, &dir.join("out"))));
        each = each.min(timed(|| convert_each(&layers, &dir.join("each"))));
        base = base.min(timed(|| bare(&layers)));
    }
    let s = |d: Duration| d.as_secs_f64();
    println!("convert-image {:.2} s | sum of single-layer converts {:.2} s | bare gunzip+zstd+blake3+crc 1 thread {:.2} s", s(whole), s(each), s(base));
    println!(
        "ratio convert-image / single-layer sum: {:.2} (goal < 1.0) | convert-image / bare: {:.2}",
        s(whole) / s(each),
        s(whole) / s(base)
    );
    let mut crit = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20))
        .configure_from_args();
    let mut g = crit.benchmark_group("image");
    g.throughput(Throughput::Bytes(mb << 20));
    g.bench_function("convert-image-3-layers", |b| {
        b.iter(|| convert_whole(&src, &dir.join("out")))
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}
