//! `rafs convert-image` stopped half way: SIGTERM and SIGINT leave nothing in the target (no
//! temporary blob, no scratch directory, no tag) and end with 128 + the signal; SIGKILL leaves
//! temporaries that `rafs gc` or the next conversion into the layout removes, while a live
//! conversion's temporaries are never touched. Scratch space is never in the system's
//! temporary directory, where another user could plant a link at a guessable name.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every `.rafs-tmp-*` path in the layout's root and blob directory.
fn temporaries(layout: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in [layout.to_path_buf(), layout.join("blobs").join("sha256")] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().starts_with(".rafs-tmp-") {
                found.push(e.path());
            }
        }
    }
    found
}

/// Starts `rafs convert-image SRC DST` with its own temporary directory `tmpdir`.
fn start(src: &str, dst: &str, tmpdir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rafs"))
        .args(["convert-image", src, dst, "-q", "--threads", "1"])
        .env("TMPDIR", tmpdir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until a blob is being written into `layout` (two temporaries not in `old` exist:
/// the scratch directory and a blob), at most 60 s.
fn wait_for_temporaries(child: &mut Child, layout: &Path, old: &[PathBuf]) {
    let started = Instant::now();
    while temporaries(layout)
        .iter()
        .filter(|p| !old.contains(p))
        .count()
        < 2
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it was stopped"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no temporary appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(child: &Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_child(child);
    rustix::process::kill_process(pid, sig).unwrap();
}

fn tags(layout: &Path) -> String {
    std::fs::read_to_string(layout.join("index.json")).unwrap_or_default()
}

#[test]
fn a_signalled_conversion_leaves_nothing_and_a_killed_one_is_swept() {
    use rustix::process::Signal;
    let dir = common::tempdir("interrupted");
    let tmpdir = dir.join("tmp");
    std::fs::create_dir_all(&tmpdir).unwrap();
    common::large_image(&dir.join("src"), 2, 3, 40 << 20);
    let src = format!("oci:{}:v1", dir.join("src").display());
    let out = dir.join("out");
    let dst = format!("oci:{}:v1", out.display());
    for (sig, code) in [(Signal::TERM, 143), (Signal::INT, 130)] {
        let mut child = start(&src, &dst, &tmpdir);
        wait_for_temporaries(&mut child, &out, &[]);
        signal(&child, sig);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{sig:?}");
        assert_eq!(temporaries(&out), Vec::<PathBuf>::new(), "{sig:?}");
        assert!(
            !tags(&out).contains("\"v1\""),
            "{sig:?}: a tag for a stopped conversion"
        );
    }
    // SIGKILL: no handler runs; the temporaries stay, unheld.
    let mut child = start(&src, &dst, &tmpdir);
    wait_for_temporaries(&mut child, &out, &[]);
    signal(&child, Signal::KILL);
    child.wait().unwrap();
    let left = temporaries(&out);
    assert!(!left.is_empty());
    // A live conversion's temporaries are not swept: gc runs while one is under way.
    let mut live = start(&src, &format!("oci:{}:v2", out.display()), &tmpdir);
    wait_for_temporaries(&mut live, &out, &left);
    let gc = Command::new(env!("CARGO_BIN_EXE_rafs"))
        .args(["gc", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    // The live one started after the kill and swept the killed one's temporaries itself.
    assert!(left.iter().all(|p| !p.exists()), "{left:?}");
    assert!(live.wait().unwrap().success());
    assert!(tags(&out).contains("\"v2\""));
    assert_eq!(temporaries(&out), Vec::<PathBuf>::new());
    // Nothing ever went to the system's temporary directory.
    assert_eq!(std::fs::read_dir(&tmpdir).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rafs_gc_removes_what_a_killed_conversion_left_and_nothing_else() {
    let dir = common::tempdir("gc");
    let out = dir.join("out");
    common::large_image(&out, 1, 1, 4096);
    let src = format!("oci:{}:v1", out.display());
    let tmpdir = dir.join("tmp");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let mut child = start(&src, &format!("oci:{}:nydus", out.display()), &tmpdir);
    assert!(child.wait().unwrap().success());
    // What a SIGKILL leaves: a temporary blob and a scratch directory, nobody holding them;
    // beside them a file of another name, and a link under our prefix, left alone.
    let blobs = out.join("blobs").join("sha256");
    std::fs::write(blobs.join(".rafs-tmp-left"), b"half a blob").unwrap();
    std::fs::create_dir_all(out.join(".rafs-tmp-scratch").join("source")).unwrap();
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", out.join(".rafs-tmp-link")).unwrap();
    let gc = Command::new(env!("CARGO_BIN_EXE_rafs"))
        .args(["gc", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(gc.status.success());
    assert!(String::from_utf8_lossy(&gc.stdout).contains("2 left-over temporaries removed"));
    assert!(!blobs.join(".rafs-tmp-left").exists());
    assert!(!out.join(".rafs-tmp-scratch").exists());
    assert!(out.join("notes.txt").exists());
    assert!(out.join(".rafs-tmp-link").symlink_metadata().is_ok());
    assert!(Path::new("/etc/passwd").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
