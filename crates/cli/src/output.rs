//! Output files: complete or absent, never on an input, never two on one path. The staging
//! itself (`O_TMPFILE`, linked into place) is `rafs_chunker::StagedFile`; this module adds
//! resolving what a path names, committing several outputs together, and refusing clashes.
//!
//! A regular output is written to an unnamed file (`O_TMPFILE`) in its directory and linked
//! into place only when the command has succeeded; all outputs of a command are committed
//! together at the end ([`commit_all`]), and if one cannot be, those already committed are
//! taken back (a replaced file is restored). A process killed while working leaves nothing;
//! a kill inside the commit itself (microseconds) can leave a subset, blobs before the
//! bootstrap that names them.
//!
//! Paths are resolved first: a symlink is written through to its target, a character or
//! block device or a FIFO is written into directly (there is nothing to replace), `-` is
//! standard output. Their directories must exist before any work starts.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::journal::{absolute, Entry, Journal};
use rafs_chunker::staged::temp_name;
use rafs_chunker::StagedFile as AtomicFile;

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Where an output's bytes go.
enum Target {
    /// A regular file, committed at the end.
    Atomic(AtomicFile),
    /// A device or FIFO, written directly.
    Direct(File),
    /// Standard output.
    Stdout(io::Stdout),
}

/// One output of a command.
pub struct Output {
    target: Target,
    /// The resolved path (symlinks followed); `None` for standard output.
    path: Option<PathBuf>,
}

/// A path as the user gave it, for messages.
pub fn shown(path: &Path) -> String {
    rafs_format::rules::escape_bytes(path.as_os_str().as_encoded_bytes())
}

/// The descriptor a path names: `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`.
/// Written into as the descriptor it is, never replaced: its links lead to a pipe (which has no
/// path) or to a file the shell opened, maybe for appending.
fn descriptor_of(spec: &Path) -> Option<u32> {
    let s = spec.to_str()?;
    match s {
        "/dev/stdout" => Some(1),
        "/dev/stderr" => Some(2),
        _ => s
            .strip_prefix("/dev/fd/")
            .or_else(|| s.strip_prefix("/proc/self/fd/"))?
            .parse()
            .ok(),
    }
}

/// A file writing into descriptor `fd`: standard output and error are duplicated, so the
/// writes share their open file (its offset, its append mode); another descriptor is opened
/// again through `/proc/self/fd`, appending when it was opened to append.
fn open_descriptor(fd: u32) -> io::Result<File> {
    use std::os::fd::AsFd;
    match fd {
        1 => Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?)),
        2 => Ok(File::from(io::stderr().as_fd().try_clone_to_owned()?)),
        n => {
            let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{n}"))?;
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
                .unwrap_or(0);
            let append = rustix::fs::OFlags::APPEND.bits();
            std::fs::OpenOptions::new()
                .write(true)
                .append(flags & append != 0)
                .open(format!("/proc/self/fd/{n}"))
        }
    }
}

/// Follows symlinks (also dangling ones: the output is created at the end of the chain).
fn resolve(path: &Path) -> Result<PathBuf, String> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p).map_err(|e| format!("{}: {e}", shown(&p)))?;
                p = dir_of(&p).join(target);
            }
            _ => return Ok(p),
        }
    }
    Err(format!(
        "{}: too many levels of symbolic links",
        shown(path)
    ))
}

impl Output {
    /// Opens the output `spec` names: `-` is standard output, a device or FIFO is written
    /// into, a symlink is followed, anything else is a new file in an existing directory.
    pub fn open(spec: &Path) -> Result<Output, String> {
        if spec.as_os_str() == "-" {
            return Ok(Output {
                target: Target::Stdout(io::stdout()),
                path: None,
            });
        }
        if let Some(fd) = descriptor_of(spec) {
            return Ok(Output {
                target: Target::Direct(
                    open_descriptor(fd).map_err(|e| format!("{}: {e}", shown(spec)))?,
                ),
                path: None,
            });
        }
        let path = resolve(spec)?;
        let at = |e: io::Error| format!("{}: {e}", shown(spec));
        if let Ok(m) = std::fs::metadata(&path) {
            let t = m.file_type();
            if t.is_dir() {
                return Err(format!("{}: is a directory", shown(spec)));
            }
            if t.is_char_device() || t.is_block_device() || t.is_fifo() {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(at)?;
                widen_pipe(&f);
                return Ok(Output {
                    target: Target::Direct(f),
                    path: Some(path),
                });
            }
        }
        let dir = dir_of(&path);
        recover_interrupted(&dir)?;
        let file = AtomicFile::create_in(&dir).map_err(|e| format!("{}: {e}", shown(&dir)))?;
        Ok(Output {
            target: Target::Atomic(file),
            path: Some(path),
        })
    }

    /// Starts a file in `dir` whose name is known only at the end ([`Output::named`]).
    pub fn in_dir(dir: &Path) -> Result<Output, String> {
        recover_interrupted(dir)?;
        let file = AtomicFile::create_in(dir).map_err(|e| format!("{}: {e}", shown(dir)))?;
        Ok(Output {
            target: Target::Atomic(file),
            path: None,
        })
    }

    /// Gives an output started with [`Output::in_dir`] its path.
    pub fn named(mut self, path: PathBuf) -> Output {
        self.path = Some(path);
        self
    }

    /// The path the output will have (`None`: standard output or not yet named).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.target {
            Target::Atomic(f) => f.write(buf),
            Target::Direct(f) => f.write(buf),
            Target::Stdout(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.target {
            Target::Atomic(f) => f.flush(),
            Target::Direct(f) => f.flush(),
            Target::Stdout(s) => s.flush(),
        }
    }
}

/// A committed output that can still be taken back.
struct Done {
    path: PathBuf,
    /// The file it replaced, kept under a hidden name until every output is in place.
    backup: Option<PathBuf>,
}

fn undo(done: Vec<Done>) {
    for d in done.into_iter().rev() {
        match d.backup {
            Some(b) => {
                let _ = std::fs::rename(&b, &d.path);
            }
            None => {
                let _ = std::fs::remove_file(&d.path);
            }
        }
    }
}

/// Takes back, in `dir`, the commits of processes killed half way through one, before a new
/// output goes there (`journal.rs`).
pub fn recover_interrupted(dir: &Path) -> Result<usize, String> {
    crate::journal::recover(dir).map_err(|e| format!("{}: {e}", shown(dir)))
}

/// Held while outputs are being put in place; the SIGINT/SIGTERM handler takes it before it
/// ends the process, so a signal never lands between two outputs of one commit.
pub static COMMIT_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Commits every output together, in order: all appear, or none changes (a replaced file is
/// restored). Streams are flushed. A journal written first makes this hold even when the
/// process is killed outright half way (`journal.rs`); SIGINT and SIGTERM wait for it.
pub fn commit_all(outputs: Vec<Output>) -> Result<(), String> {
    let _signals_wait = COMMIT_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let plan = plan(&outputs)?;
    let journal = begin_journal(&plan)?;
    let mut done: Vec<Done> = Vec::new();
    let mut dirs = Vec::new();
    let count = outputs.len();
    for (i, (out, entry)) in outputs.into_iter().zip(&plan).enumerate() {
        if let Err(e) = commit_one(out, entry.as_ref(), &mut done, &mut dirs) {
            undo(done);
            if let Some(j) = journal {
                let _ = j.end();
            }
            return Err(e);
        }
        if i + 1 < count {
            failpoint("commit-between-outputs");
        }
    }
    // Make the new names themselves durable, then pass the commit point.
    for dir in dirs {
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
    }
    if let Some(j) = journal {
        j.end().map_err(|e| format!("ending the commit: {e}"))?;
    }
    for d in done {
        if let Some(b) = d.backup {
            let _ = std::fs::remove_file(b);
        }
    }
    Ok(())
}

/// A fail point for the crash tests: with `RAFS_FAILPOINT=<name>` in the environment the
/// process dies at once here, as if killed (no handler, no destructor runs).
fn failpoint(name: &str) {
    if std::env::var_os("RAFS_FAILPOINT").is_some_and(|v| v == name) {
        std::process::abort();
    }
}

/// What each output will be in the journal: a new name, or a replaced file and where it is
/// kept meanwhile; `None` for streams and devices, which nothing can take back.
fn plan(outputs: &[Output]) -> Result<Vec<Option<Entry>>, String> {
    outputs
        .iter()
        .map(|out| {
            let (Target::Atomic(_), Some(path)) = (&out.target, &out.path) else {
                return Ok(None);
            };
            let abs = absolute(path).map_err(|e| format!("{}: {e}", shown(path)))?;
            Ok(Some(if std::fs::symlink_metadata(&abs).is_ok() {
                let backup = temp_name(&dir_of(&abs), "replaced");
                Entry::Replaced { path: abs, backup }
            } else {
                Entry::New(abs)
            }))
        })
        .collect()
}

/// The journal of a commit, in the last file output's directory (`None`: no file output).
fn begin_journal(plan: &[Option<Entry>]) -> Result<Option<Journal>, String> {
    let entries: Vec<Entry> = plan
        .iter()
        .flatten()
        .map(|e| match e {
            Entry::New(p) => Entry::New(p.clone()),
            Entry::Replaced { path, backup } => Entry::Replaced {
                path: path.clone(),
                backup: backup.clone(),
            },
        })
        .collect();
    let Some(last) = entries.last() else {
        return Ok(None);
    };
    let dir = dir_of(match last {
        Entry::New(p) | Entry::Replaced { path: p, .. } => p,
    });
    Journal::begin(&dir, &entries)
        .map(Some)
        .map_err(|e| format!("{}: writing the commit journal: {e}", shown(&dir)))
}

fn commit_one(
    out: Output,
    entry: Option<&Entry>,
    done: &mut Vec<Done>,
    dirs: &mut Vec<PathBuf>,
) -> Result<(), String> {
    let Output { target, path } = out;
    let mut file = match target {
        Target::Atomic(f) => f,
        Target::Direct(mut f) => return f.flush().map_err(|e| e.to_string()),
        Target::Stdout(mut s) => return s.flush().map_err(|e| e.to_string()),
    };
    let path = path.ok_or("an output was never named")?;
    let at = |e: io::Error| format!("{}: {e}", shown(&path));
    let staged = file.place(&path).map_err(at)?;
    dirs.push(dir_of(&path));
    let Some(staged) = staged else {
        done.push(Done { path, backup: None });
        return Ok(());
    };
    // Something is there: keep it under a hidden name (the journal's, when it planned one)
    // until all outputs are in place.
    let backup = match entry {
        Some(Entry::Replaced { backup, .. }) => backup.clone(),
        _ => temp_name(&dir_of(&path), "replaced"),
    };
    let had = std::fs::hard_link(&path, &backup).is_ok();
    if let Err(e) = std::fs::rename(&staged, &path) {
        let _ = std::fs::remove_file(&staged);
        if had {
            let _ = std::fs::remove_file(&backup);
        }
        return Err(at(e));
    }
    done.push(Done {
        path,
        backup: had.then_some(backup),
    });
    Ok(())
}

/// What identifies a file: its device and inode when it exists, else its canonical
/// directory and name.
#[derive(PartialEq, Eq)]
enum Identity {
    Inode(u64, u64),
    Path(PathBuf),
    Stdout,
}

fn identity(path: &Path) -> Identity {
    if path.as_os_str() == "-" {
        return Identity::Stdout;
    }
    if let Ok(m) = std::fs::metadata(path) {
        return Identity::Inode(m.dev(), m.ino());
    }
    let dir = std::fs::canonicalize(dir_of(path)).unwrap_or_else(|_| dir_of(path));
    Identity::Path(dir.join(path.file_name().unwrap_or_default()))
}

/// Refuses two outputs on one file and an output on an input. `outputs` are as given
/// (before resolution); `inputs` are files the command reads (`-` = standard input, never
/// an output's file).
pub fn check_distinct(outputs: &[&Path], inputs: &[&Path]) -> Result<(), String> {
    let ids: Vec<Identity> = outputs.iter().map(|p| identity(p)).collect();
    for i in 0..ids.len() {
        for j in i + 1..ids.len() {
            if ids[i] == ids[j] {
                return Err(format!(
                    "{} and {} are the same output",
                    shown(outputs[i]),
                    shown(outputs[j])
                ));
            }
        }
    }
    for input in inputs.iter().filter(|p| p.as_os_str() != "-") {
        let inp = identity(input);
        if let Some(k) = ids.iter().position(|o| *o == inp) {
            return Err(format!(
                "output {} is the input {}",
                shown(outputs[k]),
                shown(input)
            ));
        }
    }
    Ok(())
}

/// Writes `bytes` to the output `path` names (atomically when it is a file).
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut out = Output::open(path)?;
    out.write_all(bytes)
        .map_err(|e| format!("{}: {e}", shown(path)))?;
    commit_all(vec![out])
}

/// A FIFO (the Go converter's `blob.rafs`, `blob.targz`, `oci.tar`) gets a 1 MiB pipe
/// instead of 64 KiB, so each side hands over more per wake-up (the Go converter's whole run
/// of a 188 MB layer: 0.69x the reference's time before, 0.63-0.67x after); elsewhere, or
/// where the system refuses, nothing changes.
pub fn widen_pipe(f: &std::fs::File) {
    #[cfg(target_os = "linux")]
    if f.metadata()
        .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()))
    {
        let _ = rustix::pipe::fcntl_setpipe_size(f, 1 << 20);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = f;
}

/// The directory a path's file lives in.
pub fn parent_dir(path: &Path) -> PathBuf {
    dir_of(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rafs-output-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A later output that cannot be committed takes back the earlier ones: a replaced file
    /// gets its old content back, a new one disappears, no temporary name is left.
    #[test]
    fn a_failed_commit_takes_back_every_output() {
        let d = tmp("rollback");
        let (a, b, gone) = (d.join("a"), d.join("b"), d.join("gone"));
        std::fs::write(&a, b"old").unwrap();
        std::fs::create_dir_all(&gone).unwrap();
        let mut outs = Vec::new();
        for (path, data) in [(&a, b"new-a"), (&b, b"new-b")] {
            let mut o = Output::open(path).unwrap();
            o.write_all(data).unwrap();
            outs.push(o);
        }
        let mut last = Output::open(&gone.join("c")).unwrap();
        last.write_all(b"c").unwrap();
        outs.push(last);
        std::fs::remove_dir_all(&gone).unwrap();
        assert!(commit_all(outs).is_err());
        assert_eq!(std::fs::read(&a).unwrap(), b"old");
        assert!(!b.exists());
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a")]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_successful_commit_replaces_and_creates() {
        let d = tmp("commit");
        let (a, b) = (d.join("a"), d.join("b"));
        std::fs::write(&a, b"old").unwrap();
        let mut oa = Output::open(&a).unwrap();
        oa.write_all(b"new").unwrap();
        let mut ob = Output::open(&b).unwrap();
        ob.write_all(b"b").unwrap();
        assert!(!b.exists(), "nothing appears before the commit");
        commit_all(vec![oa, ob]).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"new");
        assert_eq!(std::fs::read(&b).unwrap(), b"b");
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            2,
            "no temporary names left"
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
