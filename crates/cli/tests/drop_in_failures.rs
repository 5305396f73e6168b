//! Bad input as the Go converter meets it, on our `nydus-image` with the converter's own
//! command line (issue 22): a layer it must refuse, a source FIFO closed early, a truncated
//! gzip stream, the blob FIFO's reader going away, a full disk, SIGTERM. Each exits non-zero,
//! at once (no hang), and leaves nothing behind; through `goconverter` the error reaches the
//! Go side.

mod common;
use common::{s, tempdir};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn layer(name: &str) -> PathBuf {
    rafs_testkit::corpus().join("layers").join(name)
}

/// The Go converter's `create` for a tar layer (spec go-converter.md §3).
fn create(blob: &Path, source: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nydus-image"));
    c.args([
        "create",
        "--log-level",
        "warn",
        "--prefetch-policy",
        "fs",
        "--blob",
    ])
    .arg(blob)
    .args([
        "--whiteout-spec",
        "none",
        "--fs-version",
        "6",
        "--type",
        "tar-rafs",
    ])
    .args(["--blob-inline-meta", "--features", "blob-toc"])
    .arg(source)
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    c
}

fn spawn_with_patterns(mut c: Command) -> Child {
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"/\n").unwrap();
    child
}

/// Waits at most `limit` for `child`; a hang fails the test.
fn wait(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A layer of one file of `len` bytes that do not compress (xorshift).
fn noise_layer(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("noise.bin").unwrap();
    h.set_size(len as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, data.as_slice()).unwrap();
    b.into_inner().unwrap()
}

fn mkfifo(p: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

/// Names in `dir` but the ones given.
fn left_in(dir: &Path, expected: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !expected.contains(&n.as_str()))
        .collect()
}

#[test]
fn a_refused_layer_a_short_fifo_and_a_truncated_gzip_fail_and_leave_nothing() {
    let dir = tempdir("drop-in-bad-input");
    let blob = dir.join("blob.rafs");
    // A layer with `..` in a path: refused by name.
    let mut c = spawn_with_patterns(create(&blob, &layer("edge/E6-dotdot-path.tar")));
    let st = wait(&mut c, Duration::from_secs(30), "refused layer");
    assert!(!st.success());
    // A truncated gzip stream.
    let gz = std::fs::read(layer("L2.tar.gz")).unwrap();
    let cut = dir.join("cut.tar.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let mut c = spawn_with_patterns(create(&blob, &cut));
    let st = wait(&mut c, Duration::from_secs(30), "truncated gzip");
    assert!(!st.success());
    // A source FIFO whose writer stops inside a file's data and closes. (Stopping exactly
    // between two entries is a valid end for Go's archive/tar, so for containerd too.)
    let fifo = dir.join("blob.targz");
    mkfifo(&fifo);
    let mut c = spawn_with_patterns(create(&blob, &fifo));
    let tar = std::fs::read(layer("L2.tar")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .unwrap()
        .write_all(&tar[..16_312])
        .unwrap();
    let st = wait(&mut c, Duration::from_secs(30), "short FIFO");
    assert!(!st.success());
    assert_eq!(
        left_in(&dir, &["cut.tar.gz", "blob.targz"]),
        Vec::<String>::new()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_blob_readers_going_away_and_sigterm_end_the_builder_at_once() {
    let dir = tempdir("drop-in-epipe");
    // The blob FIFO's reader reads a little, then closes: EPIPE, exit non-zero. The blob must
    // outgrow the pipe (1 MiB, as the builder widens it): 8 MiB that do not compress.
    let blob = dir.join("blob.rafs");
    mkfifo(&blob);
    let noise = dir.join("noise.tar");
    std::fs::write(&noise, noise_layer(8 << 20)).unwrap();
    let mut c = spawn_with_patterns(create(&blob, &noise));
    {
        let mut r = std::fs::File::open(&blob).unwrap();
        let mut buf = [0u8; 4096];
        std::io::Read::read_exact(&mut r, &mut buf).unwrap();
    }
    let st = wait(&mut c, Duration::from_secs(30), "EPIPE");
    assert!(!st.success(), "{st:?}");
    // SIGTERM (exec.CommandContext's kill on timeout) while it waits for its source: 143.
    let source = dir.join("blob.targz");
    mkfifo(&source);
    let out = dir.join("out.rafs");
    let mut c = spawn_with_patterns(create(&out, &source));
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(&source)
        .unwrap();
    w.write_all(&std::fs::read(layer("L2.tar")).unwrap()[..4096])
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(c.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let st = wait(&mut c, Duration::from_secs(10), "SIGTERM");
    assert_eq!(st.code(), Some(143), "{st:?}");
    drop(w);
    assert_eq!(
        left_in(&dir, &["blob.rafs", "blob.targz", "noise.tar"]),
        Vec::<String>::new()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_disk_fails_the_build_and_leaves_nothing() {
    if rafs_testkit::run("id", &["-u"]).as_deref() != Ok("0") {
        rafs_testkit::skipped("full disk: needs root to mount a small tmpfs");
        return;
    }
    let dir = tempdir("drop-in-enospc");
    let small = dir.join("small");
    std::fs::create_dir_all(&small).unwrap();
    rafs_testkit::run(
        "mount",
        &["-t", "tmpfs", "-o", "size=256k", "tmpfs", s(&small)],
    )
    .unwrap();
    let blob = small.join("blob.rafs");
    let mut c = spawn_with_patterns(create(&blob, &layer("L1.tar")));
    let st = wait(&mut c, Duration::from_secs(30), "ENOSPC");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut c.stderr.take().unwrap(), &mut err).unwrap();
    let left = left_in(&small, &[]);
    let _ = rafs_testkit::run("umount", &[s(&small)]);
    assert!(!st.success());
    assert!(err.contains("No space left"), "{err}");
    assert_eq!(left, Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_go_converter_sees_our_builders_refusal() {
    let bin = std::env::var_os("GOCONVERTER").map_or_else(|| "goconverter".into(), PathBuf::from);
    if Command::new(&bin).arg("-h").output().is_err() {
        rafs_testkit::skipped("goconverter is not installed (.ci/run installs it)");
        return;
    }
    let dir = tempdir("drop-in-go-refusal");
    let o = Command::new(&bin)
        .arg("--builder")
        .arg(env!("CARGO_BIN_EXE_nydus-image"))
        .arg("--out")
        .arg(&dir)
        .arg(layer("edge/E6-dotdot-path.tar"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("call builder: exit status 1"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
