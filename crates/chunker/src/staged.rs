//! Files that appear under their name only when complete: written unnamed (`O_TMPFILE`) in
//! their directory, synced, then linked into place. A process killed half way leaves
//! nothing; filesystems without `O_TMPFILE` get a hidden temporary name instead, removed on
//! any error. [`StagedFile::persist_blob`] puts a finished blob into a blob directory under
//! its id, the way readers look for it.

pub use crate::sys::temp_name;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// A file being written that becomes visible under its name only when persisted.
pub struct StagedFile {
    file: File,
    dir: PathBuf,
    /// The temporary name, when the file has one (no `O_TMPFILE`).
    named: Option<PathBuf>,
    writeback: Writeback,
}

/// Bytes written between background syncs.
const WRITEBACK_EVERY: u64 = 32 << 20;

/// Syncs a growing file in the background every [`WRITEBACK_EVERY`] bytes, so that the sync
/// before it is named has only the tail left (a blob of hundreds of MB would otherwise wait
/// for all of its pages at the very end, after the work).
#[derive(Default)]
struct Writeback {
    unsynced: u64,
    running: Option<JoinHandle<io::Result<()>>>,
}

impl Writeback {
    /// `n` more bytes were written to `file`. A failed background sync is reported here or at
    /// [`Writeback::finish`]: the clone shares the file's error state, so the final sync
    /// might not see it again.
    fn wrote(&mut self, file: &File, n: usize) -> io::Result<()> {
        self.unsynced += n as u64;
        if self.unsynced < WRITEBACK_EVERY
            || self.running.as_ref().is_some_and(|h| !h.is_finished())
        {
            return Ok(());
        }
        self.finish()?;
        self.unsynced = 0;
        let clone = file.try_clone()?;
        self.running = Some(
            std::thread::Builder::new()
                .name("rafs-writeback".into())
                .spawn(move || clone.sync_data())?,
        );
        Ok(())
    }

    /// Waits for the background sync, if any.
    fn finish(&mut self) -> io::Result<()> {
        match self.running.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the background sync thread panicked")),
            None => Ok(()),
        }
    }
}

impl StagedFile {
    /// Starts a file that will live in `dir` (which must exist and be writable).
    pub fn create_in(dir: &Path) -> io::Result<Self> {
        let crate::sys::Unnamed { file, named } = crate::sys::create_unnamed(dir)?;
        Ok(StagedFile {
            file,
            dir: dir.to_path_buf(),
            named,
            writeback: Writeback::default(),
        })
    }

    /// The directory the file will live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Syncs the data and links it at `path` if nothing is there; otherwise stages it under
    /// a hidden name in the same directory and returns that name, for the caller to rename
    /// over the target (and to take back if a later output fails).
    pub fn place(&mut self, path: &Path) -> io::Result<Option<PathBuf>> {
        self.file.flush()?;
        self.writeback.finish()?;
        self.file.sync_all()?;
        if let Some(tmp) = self.named.take() {
            return Ok(Some(tmp));
        }
        let link = |to: &Path| crate::sys::link_unnamed(&self.file, to);
        match link(path) {
            Ok(()) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let hint = path
                    .file_name()
                    .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
                let tmp = temp_name(&self.dir, &hint);
                link(&tmp)?;
                Ok(Some(tmp))
            }
            Err(e) => Err(e),
        }
    }

    /// Gives the file its name `path` (in its directory), replacing what is there.
    pub fn persist(mut self, path: &Path) -> io::Result<()> {
        if let Some(staged) = self.place(path)? {
            if let Err(e) = std::fs::rename(&staged, path) {
                let _ = std::fs::remove_file(&staged);
                return Err(e);
            }
        }
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Gives a finished blob its name in its blob directory: its id, checked to be a name
    /// ([`rafs_format::rules::check_blob_id`]), never a path.
    pub fn persist_blob(self, blob_id: &str) -> io::Result<PathBuf> {
        rafs_format::rules::check_blob_id(blob_id).map_err(|reason| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("blob id {blob_id:?}: {reason}"),
            )
        })?;
        let path = self.dir.join(blob_id);
        self.persist(&path)?;
        Ok(path)
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        let _ = self.writeback.finish();
        if let Some(tmp) = self.named.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

impl Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.writeback.wrote(&self.file, n)?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_appears_under_its_id_only_when_persisted() {
        let dir = std::env::temp_dir().join(format!("rafs-staged-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut f = StagedFile::create_in(&dir).unwrap();
        f.write_all(b"blob bytes").unwrap();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let id = "ab".repeat(32);
        let path = f.persist_blob(&id).unwrap();
        assert_eq!(path, dir.join(&id));
        assert_eq!(std::fs::read(&path).unwrap(), b"blob bytes");
        let f = StagedFile::create_in(&dir).unwrap();
        assert!(f.persist_blob("../escape").is_err());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A file larger than the background-sync step is synced in the background while it is
    /// written, stays unnamed until persisted, and then holds every byte in order.
    #[test]
    fn a_large_file_syncs_in_the_background_and_persists_whole() {
        let dir = std::env::temp_dir().join(format!("rafs-staged-big-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut f = StagedFile::create_in(&dir).unwrap();
        let block: Vec<u8> = (0..1u32 << 20)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        let blocks = 2 * (WRITEBACK_EVERY >> 20) + 3;
        let mut synced_in_background = false;
        for k in 0..blocks {
            let mut b = block.clone();
            b[0] = u8::try_from(k).unwrap();
            f.write_all(&b).unwrap();
            synced_in_background |= f.writeback.running.is_some();
        }
        assert!(synced_in_background, "no background sync was started");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let path = dir.join("big");
        f.persist(&path).unwrap();
        let got = std::fs::read(&path).unwrap();
        assert_eq!(got.len() as u64, blocks << 20);
        for (k, chunk) in got.chunks(1 << 20).enumerate() {
            assert_eq!(usize::from(chunk[0]), k);
            assert_eq!(chunk[1..], block[1..]);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
