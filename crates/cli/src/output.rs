//! Output files appear only when complete. Data goes to an unnamed file (`O_TMPFILE`) in the
//! target's directory, which is synced and then given its name; a process killed half way
//! leaves nothing behind. Filesystems without `O_TMPFILE` get a hidden temporary name instead,
//! removed on any error.

use rustix::fs::{AtFlags, Mode, OFlags};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A file being written that becomes visible under its name only on [`commit`](Self::commit).
pub struct AtomicFile {
    file: File,
    dir: PathBuf,
    /// The temporary name, when the file has one (no `O_TMPFILE`).
    named: Option<PathBuf>,
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn temp_name(dir: &Path, hint: &str) -> PathBuf {
    static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!(".{hint}.tmp-{}-{n}", std::process::id()))
}

impl AtomicFile {
    /// Starts a file that will live in `dir`.
    pub fn create_in(dir: &Path) -> io::Result<Self> {
        let anonymous = rustix::fs::openat(
            rustix::fs::CWD,
            dir,
            OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        );
        match anonymous {
            Ok(fd) => Ok(AtomicFile {
                file: File::from(fd),
                dir: dir.to_path_buf(),
                named: None,
            }),
            Err(
                rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR | rustix::io::Errno::INVAL,
            ) => {
                let tmp = temp_name(dir, "rafs");
                let file = File::create(&tmp)?;
                Ok(AtomicFile {
                    file,
                    dir: dir.to_path_buf(),
                    named: Some(tmp),
                })
            }
            Err(e) => Err(io::Error::from(e)),
        }
    }

    /// Syncs the data and gives the file its name, replacing any file there.
    pub fn commit(mut self, path: &Path) -> io::Result<()> {
        self.file.flush()?;
        self.file.sync_all()?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let staged = match self.named.take() {
            Some(tmp) => tmp,
            None => {
                // Link the unnamed file under a fresh hidden name, then rename it over the
                // target (linkat cannot replace an existing file).
                let tmp = temp_name(&self.dir, &name);
                let proc_path = format!("/proc/self/fd/{}", self.file.as_raw_fd());
                rustix::fs::linkat(
                    rustix::fs::CWD,
                    proc_path.as_str(),
                    rustix::fs::CWD,
                    &tmp,
                    AtFlags::SYMLINK_FOLLOW,
                )?;
                tmp
            }
        };
        if let Err(e) = std::fs::rename(&staged, path) {
            let _ = std::fs::remove_file(&staged);
            return Err(e);
        }
        // Make the new name itself durable.
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.named.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = AtomicFile::create_in(&dir_of(path))?;
    f.write_all(bytes)?;
    f.commit(path)
}

/// The directory a path's file lives in.
pub fn parent_dir(path: &Path) -> PathBuf {
    dir_of(path)
}
