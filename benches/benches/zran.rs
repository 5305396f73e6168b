//! zran (`targz-ref`, issue 13): indexing a gzip layer of 200 MB and more against the bare
//! cost of decompressing the same bytes once, measured in the same run: `gzip -d` (when
//! installed) and zlib-rs through flate2 (what a Rust program would use). Indexing reads the
//! layer once, inflating it with block stops, while worker threads digest the chunks; the goal
//! is at most 1.3x one decompression. With `RAFS_BENCH_REFERENCE=/path/to/nydus-image` the
//! reference indexes the same layer (`create -t targz-ref`) too. `RAFS_BENCH_MB` sets the
//! layer's file data (default 640, which gzip -6 makes about 250 MB).

use rafs_tar_build::{build_layer, BuildOptions};
use std::io::Write;
use std::process::Command;
use std::time::Instant;

fn seconds(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

/// Best of two runs.
fn best(mut f: impl FnMut() -> f64) -> f64 {
    f().min(f())
}

/// `gzip -d` of the layer file, output discarded; `None` without gzip.
fn gzip_d(path: &std::path::Path) -> Option<f64> {
    Command::new("gzip").arg("--version").output().ok()?;
    Some(best(|| {
        seconds(|| {
            let out = Command::new("gzip")
                .args(["-d", "-c"])
                .arg(path)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(out.success());
        })
    }))
}

/// The reference's `create -t targz-ref` on the layer file, if `RAFS_BENCH_REFERENCE` names it.
fn reference(dir: &std::path::Path, layer: &std::path::Path) -> Option<f64> {
    let bin = std::env::var("RAFS_BENCH_REFERENCE").ok()?;
    Some(best(|| {
        let _ = std::fs::remove_dir_all(dir.join("blobs"));
        std::fs::create_dir_all(dir.join("blobs")).unwrap();
        seconds(|| {
            let s = Command::new(&bin)
                .args(["create", "-t", "targz-ref", "-D"])
                .arg(dir.join("blobs"))
                .arg("-B")
                .arg(dir.join("bootstrap"))
                .arg(layer)
                .output()
                .unwrap();
            assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
        })
    }))
}

fn main() {
    let mb: u64 = std::env::var("RAFS_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(640);
    let tar = rafs_benches::write_layer_tar(Vec::new(), mb << 20, 5).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let dir = std::env::temp_dir().join(format!("rafs-bench-zran-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let layer = dir.join("layer.tar.gz");
    std::fs::write(&layer, &gz).unwrap();
    println!(
        "zran: {} MB of tar, {} MB gzip'ed",
        tar.len() / 1_000_000,
        gz.len() / 1_000_000
    );
    drop(tar);
    let zlib_rs = best(|| {
        seconds(|| {
            let mut d = flate2::read::GzDecoder::new(gz.as_slice());
            std::io::copy(&mut d, &mut std::io::sink()).unwrap();
        })
    });
    let gzip = gzip_d(&layer);
    let ours = best(|| {
        seconds(|| {
            let out = build_layer(gz.as_slice(), &BuildOptions::targz_ref(), Vec::new()).unwrap();
            std::hint::black_box(out.report.chunks_stored);
        })
    });
    let shown = |t: Option<f64>| t.map_or_else(|| "-".to_string(), |t| format!("{t:.2} s"));
    println!(
        "bare decompression: gzip -d {} | zlib-rs {zlib_rs:.2} s",
        shown(gzip)
    );
    let versus_gzip = gzip.map_or_else(String::new, |g| format!(", {:.2}x gzip -d", ours / g));
    println!(
        "ours (targz-ref): {ours:.2} s = {:.2}x zlib-rs{versus_gzip}",
        ours / zlib_rs
    );
    if let Some(r) = reference(&dir, &layer) {
        println!("reference: {r:.2} s, {:.2}x ours", r / ours);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
