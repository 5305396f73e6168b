//! Scratch space and temporary files: never at a guessable path, owned by the value that uses
//! them, gone when it goes, gone when the process is told to stop, and found and removed by a
//! later run when the process was killed outright.
//!
//! Every temporary name starts with [`PREFIX`] and is made by `tempfile` (random, created
//! exclusively; directories mode 0700), so nothing can be planted there in advance. While its
//! owner lives, each holds an exclusive `flock`, which the kernel drops when the owner dies
//! however it dies; [`sweep`] removes the temporaries no process holds. Live ones are also
//! listed in a process-wide registry, so a signal handler can remove them
//! ([`remove_registered`]) before the process exits.

use crate::error::{io, Result};
use rustix::fs::{flock, FlockOperation};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// The first characters of every temporary name this crate makes.
pub const PREFIX: &str = ".rafs-tmp-";

static LIVE: Mutex<BTreeMap<u64, PathBuf>> = Mutex::new(BTreeMap::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static STOPPING: AtomicBool = AtomicBool::new(false);

/// A path in the registry while this value lives.
#[derive(Debug)]
struct Registration(u64);

impl Registration {
    /// Makes a temporary with `make` (which returns it and its path, or `None` to try again)
    /// and registers it, all under the registry's lock: a stopping process's handler, which
    /// takes the same lock, never runs between the creation and the registration (a
    /// temporary made then would outlive the process), and nothing is made after its sweep.
    fn make<T>(
        parent: &Path,
        mut make: impl FnMut() -> Result<Option<(T, PathBuf)>>,
    ) -> Result<(T, Self)> {
        let mut live = LIVE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if STOPPING.load(Ordering::SeqCst) {
            return Err(io(parent)(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "the process is stopping",
            )));
        }
        for _ in 0..8 {
            if let Some((value, path)) = make()? {
                let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
                live.insert(id, path);
                return Ok((value, Registration(id)));
            }
        }
        Err(io(parent)(std::io::Error::other(
            "no temporary could be made",
        )))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut live = LIVE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        live.remove(&self.0);
    }
}

/// Removes every live temporary of this process and refuses new ones: what a SIGINT or
/// SIGTERM handler calls before the process exits. Returns how many were removed.
pub fn remove_registered() -> usize {
    let mut live = LIVE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    STOPPING.store(true, Ordering::SeqCst);
    let mut n = 0;
    for path in std::mem::take(&mut *live).into_values() {
        if remove_path(&path) {
            n += 1;
        }
    }
    n
}

fn remove_path(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).is_ok(),
        Ok(_) => std::fs::remove_file(path).is_ok(),
        Err(_) => false,
    }
}

/// Takes the owner's lock on a just-made temporary, and makes sure the name still leads to
/// it (a sweep by another process could have removed it between creation and lock).
fn lock_owned(file: &File, path: &Path) -> Result<bool> {
    flock(file, FlockOperation::NonBlockingLockExclusive)
        .map_err(|e| io(path)(std::io::Error::from(e)))?;
    use std::os::unix::fs::MetadataExt;
    let held = file.metadata().map_err(io(path))?;
    Ok(std::fs::symlink_metadata(path)
        .is_ok_and(|named| named.ino() == held.ino() && named.dev() == held.dev()))
}

/// A scratch directory: removed with everything in it when dropped.
#[derive(Debug)]
pub struct ScratchDir {
    dir: tempfile::TempDir,
    _lock: File,
    _registration: Registration,
}

impl ScratchDir {
    /// A new scratch directory inside `parent` (which must exist).
    pub fn new_in(parent: &Path) -> Result<Self> {
        let ((dir, lock), registration) = Registration::make(parent, || {
            // Owner only: what is unpacked here is nobody else's to read or write into.
            let dir = tempfile::Builder::new()
                .prefix(PREFIX)
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .tempdir_in(parent)
                .map_err(io(parent))?;
            let lock = File::open(dir.path()).map_err(io(dir.path()))?;
            // Swept before we held it: its name is gone, so the TempDir drop is harmless.
            Ok(lock_owned(&lock, dir.path())?.then(|| {
                let path = dir.path().to_path_buf();
                ((dir, lock), path)
            }))
        })?;
        Ok(ScratchDir {
            dir,
            _lock: lock,
            _registration: registration,
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A temporary file: removed when dropped unless [`TempFile::persist`] named it.
#[derive(Debug)]
pub struct TempFile {
    file: tempfile::NamedTempFile,
    _registration: Registration,
}

impl TempFile {
    /// A new temporary file inside `dir`, open for writing.
    pub fn new_in(dir: &Path) -> Result<Self> {
        let (file, registration) = Registration::make(dir, || {
            // The layout's files are for other readers too (a registry, nydusd as another
            // user): created 0666 less the umask, as any file, not tempfile's 0600.
            let file = tempfile::Builder::new()
                .prefix(PREFIX)
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
                .tempfile_in(dir)
                .map_err(io(dir))?;
            Ok(lock_owned(file.as_file(), file.path())?.then(|| {
                let path = file.path().to_path_buf();
                (file, path)
            }))
        })?;
        Ok(TempFile {
            file,
            _registration: registration,
        })
    }

    /// The open file.
    pub fn file(&mut self) -> &mut File {
        self.file.as_file_mut()
    }

    /// Its current (temporary) path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Syncs the file and renames it to `dest`, replacing what is there.
    pub fn persist(self, dest: &Path) -> Result<()> {
        let file = self.file;
        file.as_file().sync_all().map_err(io(file.path()))?;
        file.persist(dest).map_err(|e| io(dest)(e.error))?;
        Ok(())
    }
}

/// Removes the temporaries directly in `dir` that no live process holds (left by a process
/// killed outright); returns how many. Entries of other names, and symlinks or special files
/// under our prefix, are left alone.
pub fn sweep(dir: &Path) -> Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(dir)(e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        if !entry
            .file_name()
            .as_encoded_bytes()
            .starts_with(PREFIX.as_bytes())
        {
            continue;
        }
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if !(kind.is_file() || kind.is_dir()) {
            continue;
        }
        let Ok(held) = open_no_follow(&path) else {
            continue;
        };
        if flock(&held, FlockOperation::NonBlockingLockExclusive).is_ok() && remove_path(&path) {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Opens `path` for reading without following a final symlink and without blocking.
fn open_no_follow(path: &Path) -> Result<File> {
    use rustix::fs::{open, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    open(path, flags, Mode::empty())
        .map(File::from)
        .map_err(|e| io(path)(e.into()))
}
