//! Memory follows metadata, never layer size (issue 14): a 100 MB and a 1 GB layer of the same
//! kind — 500 small files, then 1 MiB files (100 or 1 000 of them, so the metadata differs by
//! a few hundred KiB at most) — convert, plain and gzip'ed, in peak memory (`/usr/bin/time`)
//! within 10% of each other.

use rafs_testkit::layer::run_measured;
use std::ffi::OsStr;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Small files in either layer.
const SMALL: u64 = 500;

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rafs-memflat-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// File content: half text-like, half noise, generated as it is read.
struct Content {
    left: u64,
    state: u64,
}

impl Read for Content {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for (i, b) in buf[..n].iter_mut().enumerate() {
            if i % 64 == 0 {
                self.state ^= self.state << 13;
                self.state ^= self.state >> 7;
                self.state ^= self.state << 17;
            }
            let noise = (self.state >> (i % 8 * 8)).to_le_bytes()[0];
            *b = if self.state % 2 == 0 {
                b'a' + noise % 16
            } else {
                noise
            };
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A tar of SMALL files of 1-16 KiB and `large` files of 1 MiB in 40 directories, streamed
/// to `path`.
fn write_tar(path: &Path, large: u64) {
    let f = std::fs::File::create(path).unwrap();
    let mut b = tar::Builder::new(BufWriter::with_capacity(1 << 20, f));
    for i in 0..SMALL + large {
        let size = if i < SMALL { 1024 << (i % 5) } else { 1 << 20 };
        let mut h = tar::Header::new_ustar();
        h.set_path(format!("d{}/f{i}", i % 40)).unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        let content = Content {
            left: size,
            state: 0x9e37_79b9 ^ (i + 1),
        };
        b.append(&h, content).unwrap();
    }
    b.into_inner().unwrap().flush().unwrap();
}

/// Peak KiB of `rafs convert` of `layer` (blob written through to /dev/null).
fn peak_kib(dir: &Path, layer: &Path) -> u64 {
    let boot = dir.join("boot");
    let args: Vec<&OsStr> = vec![
        OsStr::new("convert"),
        OsStr::new("-q"),
        OsStr::new("--blob"),
        OsStr::new("/dev/null"),
        OsStr::new("-B"),
        boot.as_os_str(),
        layer.as_os_str(),
    ];
    let m = run_measured(Path::new(env!("CARGO_BIN_EXE_rafs")), &args);
    assert_eq!(m.code, Some(0), "{}", m.stderr);
    println!(
        "{}: {:.2} s, peak {} KiB",
        layer.display(),
        m.seconds,
        m.peak_kib
    );
    m.peak_kib
}

fn gzip(path: &Path) -> PathBuf {
    let out = path.with_extension("tar.gz");
    let f = std::fs::File::create(&out).unwrap();
    let st = std::process::Command::new("gzip")
        .args(["-1", "-c"])
        .arg(path)
        .stdout(f)
        .status()
        .unwrap();
    assert!(st.success());
    out
}

#[test]
fn peak_memory_is_flat_from_100_mb_to_1_gb() {
    let dir = tempdir("layers");
    let mut peaks = Vec::new();
    for (tag, large) in [("100mb", 100), ("1gb", 1000)] {
        let tar = dir.join(format!("{tag}.tar"));
        write_tar(&tar, large);
        let gz = gzip(&tar);
        peaks.push((peak_kib(&dir, &tar), peak_kib(&dir, &gz)));
        std::fs::remove_file(&tar).unwrap();
        std::fs::remove_file(&gz).unwrap();
    }
    let ((small_plain, small_gz), (large_plain, large_gz)) = (peaks[0], peaks[1]);
    for (what, small, large) in [
        ("plain", small_plain, large_plain),
        ("gzip", small_gz, large_gz),
    ] {
        let ratio = large as f64 / small as f64;
        println!("{what}: 100 MB {small} KiB, 1 GB {large} KiB, ratio {ratio:.3}");
        assert!(
            ratio <= 1.10,
            "{what}: peak grows from {small} KiB to {large} KiB with the layer's size"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
