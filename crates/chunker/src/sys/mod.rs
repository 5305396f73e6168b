//! The operating system's part: opening blob files safely, positioned reads, unnamed files.
//! `unix.rs` (feature `unix`, on by default) uses `rustix`, with Linux-only calls
//! (`openat2`, `O_TMPFILE`) behind `target_os = "linux"`; `portable.rs` uses only `std`,
//! for other systems and to prove the crate builds without the unix layer. Nothing outside
//! this module touches `rustix` or `std::os`.

use std::io;
use std::path::{Path, PathBuf};

#[cfg(feature = "unix")]
mod unix;
#[cfg(feature = "unix")]
pub(crate) use unix::*;

#[cfg(not(feature = "unix"))]
mod portable;
#[cfg(not(feature = "unix"))]
pub(crate) use portable::*;

/// Refuses a blob id that is not one path component.
pub(crate) fn check_component(name: &str) -> io::Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("blob id {name:?} is not a file name"),
        ));
    }
    Ok(())
}

/// A file being staged: the open file and, when it has one, its temporary name.
pub(crate) struct Unnamed {
    pub file: std::fs::File,
    pub named: Option<PathBuf>,
}

/// A hidden name in `dir`, unique in this process.
pub fn temp_name(dir: &Path, hint: &str) -> PathBuf {
    static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    dir.join(format!(".{hint}.tmp-{}-{n}", std::process::id()))
}

/// A file with a temporary name in `dir` (where unnamed files do not exist).
pub(crate) fn create_named(dir: &Path) -> io::Result<Unnamed> {
    let tmp = temp_name(dir, "rafs");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    Ok(Unnamed {
        file,
        named: Some(tmp),
    })
}

/// Refuses anything but a regular file.
pub(crate) fn regular(file: std::fs::File) -> io::Result<(std::fs::File, u64)> {
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok((file, meta.len()))
}
