//! Other systems, with `std` alone: no symlink is followed when opening a blob (checked, then
//! opened), positioned reads seek under the caller's lock, staged files have temporary names.

use super::{create_named, regular, Unnamed};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// Opens a file for reading; only a regular file is kept.
pub(crate) fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    if !std::fs::metadata(path)?.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    regular(File::open(path)?)
}

/// Opens `name` in `dir`, refusing a symlink.
pub(crate) fn open_in_dir(dir: &Path, name: &str) -> io::Result<(File, u64)> {
    let path = dir.join(name);
    if std::fs::symlink_metadata(&path)?.file_type().is_symlink() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{name} is a link; it may lead out of the blob directory"),
        ));
    }
    open_regular(&path)
}

/// Fills `buf` from `offset` by seeking (callers serialise reads of one file).
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

/// A file with a temporary name (no unnamed files here).
pub(crate) fn create_unnamed(dir: &Path) -> io::Result<Unnamed> {
    create_named(dir)
}

/// Never called: files created here always have a name.
pub(crate) fn link_unnamed(_file: &File, _to: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "unnamed files do not exist on this system",
    ))
}
