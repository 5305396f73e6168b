//! The runtime reader: images mounted by `nydusd`, the FUSE daemon nydus-snapshotter starts for
//! every container, with a `localfs` backend (blobs in a directory, named by blob id).
//!
//! `nydusd` is the reference's (`../shared/reference/nydusd.zst`; `.ci/run` installs it as
//! `/usr/local/bin/nydusd`); the `NYDUSD` variable names another.

use crate::run;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `nydusd` binary: `$NYDUSD`, else `nydusd` on `PATH`.
pub fn nydusd_binary() -> PathBuf {
    std::env::var_os("NYDUSD").map_or_else(|| PathBuf::from("nydusd"), PathBuf::from)
}

/// Why `nydusd` cannot mount here, if it cannot (not root, no `/dev/fuse`, no binary).
pub fn nydusd_unavailable() -> Option<String> {
    match run("id", &["-u"]) {
        Ok(uid) if uid == "0" => {}
        _ => return Some("not root".into()),
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".into());
    }
    let bin = nydusd_binary();
    match Command::new(&bin).arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some(format!(
            "{} does not run (.ci/run installs it from ../shared/reference/nydusd.zst)",
            bin.display()
        )),
    }
}

/// How to mount.
#[derive(Debug, Clone, Copy, Default)]
pub struct NydusdOptions {
    /// `digest_validate`: every chunk checked against its digest as it is read (nydusd
    /// refuses it for v6 images).
    pub digest_validate: bool,
    /// A tarfs image: its blobs are layer tars, and the cache directory is the blob directory.
    pub tarfs: bool,
}

/// A running `nydusd` with its mount, unmounted and stopped on drop.
pub struct NydusdMount {
    child: Child,
    dir: PathBuf,
    work: PathBuf,
}

impl NydusdMount {
    /// The mount point.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for NydusdMount {
    fn drop(&mut self) {
        let _ = run("umount", &[self.dir.to_str().unwrap_or_default()]);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir(&self.dir);
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// Whether `/proc/mounts` lists a FUSE mount at `dir`.
fn fuse_mounted_at(dir: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let want = dir.to_string_lossy();
    mounts.lines().any(|l| {
        let mut f = l.split(' ');
        let (_, at, fs) = (f.next(), f.next(), f.next().unwrap_or_default());
        at == Some(&*want) && fs.starts_with("fuse")
    })
}

/// Mounts `bootstrap` with its blobs in `blob_dir` at `dir` (made if missing; `dir` with
/// `.work` appended holds the daemon's config and cache). Waits until the mount is live;
/// when the daemon exits first, returns what it printed.
pub fn mount_nydusd(
    bootstrap: &Path,
    blob_dir: &Path,
    dir: &Path,
    options: NydusdOptions,
) -> Result<NydusdMount, String> {
    let work = dir.with_extension("work");
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(work.join("cache")).map_err(|e| e.to_string())?;
    let blob_dir = std::fs::canonicalize(blob_dir).map_err(|e| e.to_string())?;
    let cache = if options.tarfs {
        blob_dir.clone()
    } else {
        work.join("cache")
    };
    let config = format!(
        r#"{{"device": {{"backend": {{"type": "localfs", "config": {{"dir": {blobs:?}}}}},
            "cache": {{"type": "blobcache", "config": {{"work_dir": {cache:?}}}}}}},
          "mode": "direct", "digest_validate": {validate}, "iostats_files": false,
          "enable_xattr": true, "fs_prefetch": {{"enable": false}}}}"#,
        blobs = blob_dir.display().to_string(),
        cache = cache.display().to_string(),
        validate = options.digest_validate,
    );
    let config_path = work.join("config.json");
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
    let log = work.join("nydusd.log");
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let child = Command::new(nydusd_binary())
        .arg("--config")
        .arg(&config_path)
        .arg("--mountpoint")
        .arg(dir)
        .arg("--bootstrap")
        .arg(bootstrap)
        .args(["--log-level", "warn", "--rlimit-nofile", "0"])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("nydusd: {e}"))?;
    let mut mount = NydusdMount {
        child,
        dir: dir.to_path_buf(),
        work,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fuse_mounted_at(dir) {
        let exited = mount.child.try_wait().map_err(|e| e.to_string())?;
        if exited.is_some() || Instant::now() > deadline {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("nydusd did not mount ({exited:?}): {said}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(mount)
}

/// What `nydusd` logged so far for `mount` (its warnings name refused metadata).
pub fn nydusd_log(mount: &NydusdMount) -> String {
    std::fs::read_to_string(mount.work.join("nydusd.log")).unwrap_or_default()
}
