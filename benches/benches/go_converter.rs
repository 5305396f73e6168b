//! The Go tool chain's whole conversion (nydus-snapshotter's `pkg/converter` as `goconverter`:
//! Pack of every layer, Merge, Unpack of the first) with our `nydus-image` as the builder,
//! against the same run with the reference builder (`RAFS_BENCH_REFERENCE=/path/to/nydus-image`)
//! and against the bare cost of the same bytes (inflating the gzip layers once).
//!
//! Inputs, made once under `$RAFS_BENCH_DIR` (default: the system's temp dir): a gzip'ed
//! root-file-system layer of 150+ MB of this machine's files (`/etc`, `/usr/sbin`, Python,
//! Perl, `/var/lib/dpkg`, zoneinfo, shared libraries) and two smaller layers
//! (`/usr/share/doc`, `/usr/share/man`). Pairs of runs interleave ours and the reference's;
//! each builder run's peak RSS is taken with GNU time. Build ours first:
//! `cargo build --release -p rafs-cli`, then `cargo bench -p rafs-benches --bench go_converter`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Runs goconverter with `builder` (wrapped by GNU time, which appends each builder run's peak
/// RSS in KiB to `rss`); returns the wall time in seconds.
fn run(dir: &Path, builder: &Path, layers: &[PathBuf], rss: &Path) -> f64 {
    let wrapper = dir.join(format!(
        "timed-{}",
        builder.file_name().unwrap().to_string_lossy()
    ));
    let script = format!(
        "#!/bin/sh\nexec /usr/bin/time -f %M -a -o {} {} \"$@\"\n",
        rss.display(),
        builder.display()
    );
    std::fs::write(&wrapper, script).unwrap();
    let executable = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(&wrapper, executable).unwrap();
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let start = Instant::now();
    let st = Command::new(std::env::var("GOCONVERTER").unwrap_or_else(|_| "goconverter".into()))
        .arg("--builder")
        .arg(&wrapper)
        .arg("--prefetch-patterns")
        .arg("/")
        .arg("--out")
        .arg(&out)
        .args(layers)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    let t = start.elapsed().as_secs_f64();
    assert!(
        st.success(),
        "goconverter with {} failed",
        builder.display()
    );
    t
}

/// The largest peak RSS (MB) recorded in `rss`.
fn peak(rss: &Path) -> u64 {
    let text = std::fs::read_to_string(rss).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .max()
        .unwrap_or(0)
        / 1024
}

/// The bare cost of the same bytes: inflating every layer once.
fn bare(layers: &[PathBuf]) -> f64 {
    let start = Instant::now();
    for l in layers {
        let mut d = flate2::read::GzDecoder::new(std::fs::File::open(l).unwrap());
        let mut buf = vec![0u8; 1 << 20];
        while d.read(&mut buf).unwrap() > 0 {}
    }
    start.elapsed().as_secs_f64()
}

fn main() {
    if Command::new(std::env::var("GOCONVERTER").unwrap_or_else(|_| "goconverter".into()))
        .arg("-h")
        .output()
        .is_err()
    {
        println!("SKIPPED: goconverter is not installed");
        return;
    }
    let ours = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/nydus-image");
    assert!(
        ours.exists(),
        "build it first: cargo build --release -p rafs-cli"
    );
    let reference = std::env::var_os("RAFS_BENCH_REFERENCE").map(PathBuf::from);
    let dir = std::env::var_os("RAFS_BENCH_DIR")
        .map_or_else(std::env::temp_dir, PathBuf::from)
        .join("rafs-bench-go-converter");
    let layers = rafs_benches::rootfs::rootfs_layers(&dir);
    let bare = bare(&layers);
    let pairs = 3;
    let (mut t_ours, mut t_ref, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (rss_ours, rss_ref) = (dir.join("rss-ours"), dir.join("rss-ref"));
    let _ = std::fs::remove_file(&rss_ours);
    let _ = std::fs::remove_file(&rss_ref);
    for _ in 0..pairs {
        let a = run(&dir, &ours, &layers, &rss_ours);
        t_ours.push(a);
        if let Some(r) = &reference {
            let b = run(&dir, r, &layers, &rss_ref);
            t_ref.push(b);
            ratios.push(a / b);
        }
    }
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    println!("inflating the layers once (bare cost): {bare:.2} s");
    println!(
        "goconverter with our nydus-image: {:.2}-{:.2} s ({:.2}x the bare cost), builder peak RSS {} MB",
        min(&t_ours), max(&t_ours), min(&t_ours) / bare, peak(&rss_ours)
    );
    if !t_ref.is_empty() {
        ratios.sort_by(f64::total_cmp);
        println!(
            "goconverter with the reference: {:.2}-{:.2} s, builder peak RSS {} MB; ours / reference (median of {pairs} pairs): {:.2}",
            min(&t_ref), max(&t_ref), peak(&rss_ref), ratios[ratios.len() / 2]
        );
    } else {
        println!("(set RAFS_BENCH_REFERENCE=/path/to/nydus-image for the ratio to the reference)");
    }
}
