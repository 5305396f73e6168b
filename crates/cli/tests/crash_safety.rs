//! A `rafs convert` killed with SIGKILL half way leaves no output file: the blob and the
//! bootstrap are written unnamed (`O_TMPFILE`) and only linked into place when complete.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A layer of compressible text files, large enough to take a while to convert.
fn big_layer(path: &Path) {
    let f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut tar = tar::Builder::new(f);
    let line: Vec<u8> = (0..4096u32)
        .flat_map(|i| format!("{i} some log line of text\n").into_bytes())
        .collect();
    for i in 0..160 {
        let data: Vec<u8> = line
            .iter()
            .copied()
            .cycle()
            .skip(i * 7)
            .take(2 << 20)
            .collect();
        let mut h = tar::Header::new_gnu();
        h.set_path(format!("dir/file{i}")).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append(&h, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().flush().unwrap();
}

#[test]
fn killed_convert_leaves_no_output() {
    let tmp = std::env::temp_dir().join(format!("rafs-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let layer = tmp.join("layer.tar");
    big_layer(&layer);
    for (tag, extra) in [
        ("blob-dir", vec!["-D", "out/blobs"]),
        ("blob-file", vec!["--blob", "out/blob"]),
        (
            "inline",
            vec![
                "-D",
                "out/blobs",
                "--blob-inline-meta",
                "--features",
                "blob-toc",
            ],
        ),
    ] {
        let out = tmp.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let mut args = vec![
            "convert",
            layer.to_str().unwrap(),
            "-B",
            "out/boot",
            "--threads",
            "1",
            "-q",
        ];
        args.extend(extra);
        let mut child = Command::new(env!("CARGO_BIN_EXE_rafs"))
            .args(&args)
            .current_dir(&tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill it once it has read part of the layer.
        let started = Instant::now();
        let pid = child.id();
        loop {
            let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
            let read: u64 = io
                .lines()
                .find_map(|l| l.strip_prefix("rchar: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if read > 40 << 20 || started.elapsed() > Duration::from_secs(20) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "{tag}: finished before it could be killed"
        );
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success());
        let left = rafs_testkit::files_under(&out);
        assert!(left.is_empty(), "{tag}: killed convert left {left:?}");
        println!("{tag}: killed after {:?}, no file left", started.elapsed());
        std::fs::remove_dir_all(&out).unwrap();
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
