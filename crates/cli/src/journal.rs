//! The commit journal: what lets several outputs (a blob and the bootstrap naming it) appear
//! together even when the process is killed outright between two of them.
//!
//! Before the first output is put in place, a journal listing every output (new, or replacing
//! a file kept under a backup name) is written and synced in the last output's directory,
//! and held with an `flock`. Removing it is the commit point. A journal that no process holds
//! is a commit that never finished: [`recover`] takes it back (new outputs removed, replaced
//! files restored), so what is left is the state before the command. Only journals owned by
//! the recovering user are followed, so nobody can make another user's `rafs` remove files.

use rustix::fs::{flock, FlockOperation};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// First characters of a journal's name.
const PREFIX: &str = ".rafs-commit-";
const HEADER: &str = "rafs-commit-journal 1";

/// One output of a commit.
pub enum Entry {
    /// A name that did not exist.
    New(PathBuf),
    /// A name whose file is kept at `backup` until the commit ends.
    Replaced {
        /// The output's path.
        path: PathBuf,
        /// Where the replaced file is kept.
        backup: PathBuf,
    },
}

/// A journal on disk, held while its commit runs.
pub struct Journal {
    file: tempfile::NamedTempFile,
}

fn hex(p: &Path) -> String {
    rafs_format::hex(p.as_os_str().as_bytes())
}

fn unhex(s: &str) -> Option<PathBuf> {
    if s.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    let p = PathBuf::from(std::ffi::OsStr::from_bytes(&bytes?));
    p.is_absolute().then_some(p)
}

/// `path` made absolute (its directory canonical), as the journal records it.
pub fn absolute(path: &Path) -> io::Result<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("an output has no file name"))?;
    Ok(std::fs::canonicalize(dir)?.join(name))
}

impl Journal {
    /// Writes, syncs and holds the journal of `entries` in `dir`.
    pub fn begin(dir: &Path, entries: &[Entry]) -> io::Result<Journal> {
        let mut file = tempfile::Builder::new().prefix(PREFIX).tempfile_in(dir)?;
        flock(file.as_file(), FlockOperation::NonBlockingLockExclusive)?;
        let mut text = format!("{HEADER}\n");
        for e in entries {
            match e {
                Entry::New(p) => text.push_str(&format!("new {}\n", hex(p))),
                Entry::Replaced { path, backup } => {
                    text.push_str(&format!("replaced {} {}\n", hex(path), hex(backup)));
                }
            }
        }
        file.write_all(text.as_bytes())?;
        file.as_file().sync_all()?;
        File::open(dir)?.sync_all()?;
        Ok(Journal { file })
    }

    /// The commit point: the journal goes, and with it the way back.
    pub fn end(self) -> io::Result<()> {
        let dir = self.file.path().parent().map(Path::to_path_buf);
        self.file.close()?;
        if let Some(dir) = dir {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// Takes back the commits in `dir` that never finished (journals no process holds, owned by
/// this user); returns how many.
pub fn recover(dir: &Path) -> io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut n = 0;
    for entry in entries {
        let entry = entry?;
        if !entry.file_name().as_bytes().starts_with(PREFIX.as_bytes()) {
            continue;
        }
        if recover_one(&entry.path())? {
            n += 1;
        }
    }
    Ok(n)
}

/// Rolls back one journal if it is ours and nobody holds it.
fn recover_one(journal: &Path) -> io::Result<bool> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::open(journal, flags, Mode::empty()) else {
        return Ok(false);
    };
    let mut file = File::from(fd);
    let meta = file.metadata()?;
    let ours = meta.uid() == rustix::process::geteuid().as_raw();
    if !meta.is_file() || !ours || meta.len() > 1 << 20 {
        return Ok(false);
    }
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        return Ok(false); // a commit under way
    }
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Ok(false);
    }
    let entries: Vec<&str> = lines.collect();
    for line in entries.iter().rev() {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["new", p] => {
                if let Some(p) = unhex(p) {
                    let _ = std::fs::remove_file(p);
                }
            }
            ["replaced", p, b] => {
                if let (Some(p), Some(b)) = (unhex(p), unhex(b)) {
                    if b.exists() {
                        std::fs::rename(&b, &p)?;
                    }
                }
            }
            _ => {}
        }
    }
    std::fs::remove_file(journal)?;
    Ok(true)
}
