//! A `rafs convert` killed with SIGKILL half way leaves no output file: the blob and the
//! bootstrap are written unnamed (`O_TMPFILE`) and only linked into place when complete.

use std::io::Write;
use std::path::{Path, PathBuf};
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

/// Runs `rafs convert LAYER` with `args` in `dir`, with `RAFS_FAILPOINT` set to `failpoint`.
fn convert_in(dir: &Path, layer: &Path, args: &[&str], failpoint: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rafs"))
        .arg("convert")
        .arg(layer)
        .args(args)
        .arg("-q")
        .env("RAFS_FAILPOINT", failpoint)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn gc(dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rafs"))
        .arg("gc")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn killed_between_the_blob_and_the_bootstrap_leaves_neither_once_recovered() {
    let tmp = std::env::temp_dir().join(format!("rafs-commit-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(tmp.join("out")).unwrap();
    let (l1, l2) = (rafs_testkit::layer_tar("L1"), rafs_testkit::layer_tar("L2"));
    let args = ["-B", "out/boot", "-D", "out/blobs"];
    // Killed after the blob is in place, before the bootstrap: the blob is there for now.
    let crashed = convert_in(&tmp, &l1, &args, "commit-between-outputs");
    assert!(!crashed.status.success());
    assert_eq!(rafs_testkit::files_under(&tmp.join("out/blobs")).len(), 1);
    assert!(!tmp.join("out/boot").exists());
    // The commit never finished, so it is taken back: neither is left.
    assert!(gc(&tmp.join("out")).contains("1 unfinished commits taken back"));
    assert_eq!(
        rafs_testkit::files_under(&tmp.join("out")),
        Vec::<PathBuf>::new()
    );
    // A bootstrap that was there keeps its old bytes; the next convert writing into the
    // directory takes the crashed commit back before it starts.
    std::fs::write(tmp.join("out/boot"), b"old").unwrap();
    let crashed = convert_in(&tmp, &l1, &args, "commit-between-outputs");
    assert!(!crashed.status.success());
    let ok = convert_in(&tmp, &l2, &["-B", "out/boot2", "-D", "out/blobs2"], "");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(std::fs::read(tmp.join("out/boot")).unwrap(), b"old");
    assert!(rafs_testkit::files_under(&tmp.join("out/blobs")).is_empty());
    let mut names: Vec<String> = std::fs::read_dir(tmp.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["blobs", "blobs2", "boot", "boot2"]);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn dev_stdout_is_written_as_the_descriptor_it_is_appending_or_piped() {
    let tmp = std::env::temp_dir().join(format!("rafs-dev-stdout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let layer = rafs_testkit::layer_tar("L1");
    let rafs = env!("CARGO_BIN_EXE_rafs");
    let l = layer.display();
    let script = format!(
        "set -e\n\
         {rafs} convert {l} -B boot -D blobs -q\n\
         printf HEAD > appended\n\
         {rafs} convert {l} -B /dev/stdout -D blobs -q >> appended\n\
         {rafs} convert {l} -B /dev/stdout -D blobs -q | cat > piped\n"
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&tmp)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let boot = std::fs::read(tmp.join("boot")).unwrap();
    assert!(boot.len() > 4096);
    let mut expected = b"HEAD".to_vec();
    expected.extend_from_slice(&boot);
    assert_eq!(std::fs::read(tmp.join("appended")).unwrap(), expected);
    assert_eq!(std::fs::read(tmp.join("piped")).unwrap(), boot);
    let _ = std::fs::remove_dir_all(&tmp);
}
