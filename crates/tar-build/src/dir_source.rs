//! A directory (an unpacked root file system) as a layer: [`directory_layer`] streams it as a
//! tar that [`crate::build_layer`] converts to exactly what the reference's `dir-rafs` build
//! makes of the directory.
//!
//! The reference reads each path with `lstat` (mode, owner, mtime with nanoseconds, size,
//! `rdev`), `readlink` and `llistxattr`, finds hard links by device and inode, leaves the
//! root's mtime at 0, and writes file data directory by directory: a directory's files in name
//! order, then each subdirectory in name order, recursively. The tar carries all of that
//! (PAX `mtime` with the nanoseconds, PAX xattrs, hard-link entries to the first path in that
//! order) in that order, so the bootstrap and blob come out byte-identical (shown on the
//! corpus' richest layer unpacked). Sockets are refused: a tar cannot carry them.
//!
//! Memory stays bounded: a thread writes the tar into a channel of a few 256 KiB pieces that
//! the builder reads; the walk keeps one directory's names per level (no recursion as deep as
//! the tree: an explicit stack).

use crate::options::WhiteoutSpec;
use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Pieces of tar in flight between the walking thread and the builder.
const PIECES: usize = 4;
const PIECE: usize = 256 * 1024;
/// Xattr name lists and values are read into buffers grown up to this (Linux allows 64 KiB).
const MAX_XATTR_BYTES: usize = 1 << 20;

/// The directory `root` as an uncompressed tar stream, made on a thread of its own; an error
/// of the walk (an unreadable file, a socket) ends the stream with that error. Whiteouts of
/// `whiteouts` are left out, as the reference leaves them out of a directory (its lowest
/// layer): `.wh.*` files for `Oci`, 0:0 character devices for `Overlayfs` (an opaque
/// directory stays); `None` keeps everything.
pub fn directory_layer(root: &Path, whiteouts: WhiteoutSpec) -> io::Result<DirectoryLayer> {
    if !std::fs::symlink_metadata(root)?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", root.display()),
        ));
    }
    let (tx, rx) = sync_channel(PIECES);
    let root = root.to_path_buf();
    let walker = std::thread::Builder::new()
        .name("rafs-dir-walk".into())
        .spawn(move || {
            let mut out = PieceWriter {
                tx: tx.clone(),
                piece: Vec::with_capacity(PIECE),
            };
            let result = write_tar(&root, whiteouts, &mut out).and_then(|()| out.flush());
            if let Err(e) = result {
                let _ = tx.send(Err(e));
            }
        })?;
    Ok(DirectoryLayer {
        rx,
        current: Vec::new(),
        at: 0,
        walker: Some(walker),
    })
}

/// The tar stream of [`directory_layer`].
pub struct DirectoryLayer {
    rx: Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    at: usize,
    walker: Option<std::thread::JoinHandle<()>>,
}

impl Read for DirectoryLayer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match self.rx.recv() {
                Ok(piece) => {
                    self.current = piece?;
                    self.at = 0;
                }
                // The walker is done and every piece was read.
                Err(_) => {
                    if let Some(w) = self.walker.take() {
                        w.join()
                            .map_err(|_| io::Error::other("the directory walk panicked"))?;
                    }
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Sends what is written in pieces; a closed reader (the build failed) stops the walk.
struct PieceWriter {
    tx: SyncSender<io::Result<Vec<u8>>>,
    piece: Vec<u8>,
}

impl Write for PieceWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.piece.extend_from_slice(buf);
        if self.piece.len() >= PIECE {
            self.flush()?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.piece.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.piece, Vec::with_capacity(PIECE));
        self.tx
            .send(Ok(piece))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the build stopped reading"))
    }
}

/// Writes the tar: the root as `./`, then directory by directory.
fn write_tar(root: &Path, whiteouts: WhiteoutSpec, out: &mut PieceWriter) -> io::Result<()> {
    let mut tar = tar::Builder::new(out);
    let mut first_paths: HashMap<(u64, u64), PathBuf> = HashMap::new();
    append(&mut tar, root, Path::new("."), true, &mut first_paths)?;
    // Directories still to visit, each with its children's names left to take.
    let mut stack: Vec<(PathBuf, PathBuf)> = vec![(root.to_path_buf(), PathBuf::new())];
    while let Some((dir, name)) = stack.pop() {
        let mut children: Vec<OsString> = std::fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut subdirs = Vec::new();
        for child in children {
            let path = dir.join(&child);
            if is_whiteout(&path, &child, whiteouts)? {
                continue;
            }
            let entry_name = name.join(&child);
            if append(&mut tar, &path, &entry_name, false, &mut first_paths)? {
                subdirs.push((path, entry_name));
            }
        }
        // Visited in name order: the stack pops the last pushed first.
        stack.extend(subdirs.into_iter().rev());
    }
    tar.into_inner()?.flush()
}

/// Whether `path` is a whiteout of `spec`.
fn is_whiteout(path: &Path, name: &std::ffi::OsStr, spec: WhiteoutSpec) -> io::Result<bool> {
    use std::os::unix::fs::FileTypeExt;
    Ok(match spec {
        WhiteoutSpec::Oci => name.as_bytes().starts_with(b".wh."),
        WhiteoutSpec::Overlayfs => {
            let meta = std::fs::symlink_metadata(path)?;
            meta.file_type().is_char_device() && meta.rdev() == 0
        }
        WhiteoutSpec::None => false,
    })
}

/// Appends one path (its PAX records, then its entry); returns whether it is a directory.
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    name: &Path,
    is_root: bool,
    first_paths: &mut HashMap<(u64, u64), PathBuf>,
) -> io::Result<bool> {
    let meta = std::fs::symlink_metadata(path)?;
    let kind = meta.file_type();
    let mut h = tar::Header::new_gnu();
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(u64::from(meta.uid()));
    h.set_gid(u64::from(meta.gid()));
    h.set_size(0);
    let (secs, nsec) = if is_root {
        (0, 0)
    } else {
        (meta.mtime(), meta.mtime_nsec())
    };
    h.set_mtime(u64::try_from(secs).unwrap_or(0));
    let mut pax = xattr_records(path)?;
    if nsec != 0 {
        pax.push(("mtime".into(), format!("{secs}.{nsec:09}").into_bytes()));
    }
    if !pax.is_empty() {
        tar.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
    }
    let key = (meta.dev(), meta.ino());
    if !kind.is_dir() && meta.nlink() > 1 {
        if let Some(first) = first_paths.get(&key) {
            h.set_entry_type(tar::EntryType::Link);
            tar.append_link(&mut h, name, first)?;
            return Ok(false);
        }
        first_paths.insert(key, name.to_path_buf());
    }
    if kind.is_dir() {
        h.set_entry_type(tar::EntryType::Directory);
        tar.append_data(&mut h, name, io::empty())?;
    } else if kind.is_file() {
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(meta.len());
        let file = std::fs::File::open(path)?;
        tar.append_data(&mut h, name, file.take(meta.len()))?;
    } else if kind.is_symlink() {
        h.set_entry_type(tar::EntryType::Symlink);
        tar.append_link(&mut h, name, std::fs::read_link(path)?)?;
    } else {
        use std::os::unix::fs::FileTypeExt;
        let t = if kind.is_char_device() {
            tar::EntryType::Char
        } else if kind.is_block_device() {
            tar::EntryType::Block
        } else if kind.is_fifo() {
            tar::EntryType::Fifo
        } else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{}: a socket cannot be stored in a layer", path.display()),
            ));
        };
        h.set_entry_type(t);
        let rdev = meta.rdev();
        let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
        let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
        h.set_device_major(u32::try_from(major).unwrap_or(u32::MAX))?;
        h.set_device_minor(u32::try_from(minor).unwrap_or(u32::MAX))?;
        tar.append_data(&mut h, name, io::empty())?;
    }
    Ok(kind.is_dir())
}

/// The path's xattrs as PAX records (`SCHILY.xattr.NAME`), in the order the file system lists
/// them.
fn xattr_records(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut names = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut names) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) if names.len() < MAX_XATTR_BYTES => {
                names.resize(names.len() * 4, 0);
            }
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut records = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
        let key = std::str::from_utf8(name).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: an xattr name that is not UTF-8", path.display()),
            )
        })?;
        let c_name = std::ffi::CString::new(name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let mut value = vec![0u8; 256];
        let len = loop {
            match rustix::fs::lgetxattr(path, c_name.as_c_str(), &mut value) {
                Ok(len) => break len,
                Err(rustix::io::Errno::RANGE) if value.len() < MAX_XATTR_BYTES => {
                    value.resize(value.len() * 4, 0);
                }
                Err(e) => return Err(e.into()),
            }
        };
        value.truncate(len);
        records.push((format!("SCHILY.xattr.{key}"), value));
    }
    Ok(records)
}
