//! Unix: `rustix` without `unsafe`; Linux adds `openat2` and `O_TMPFILE`.

use super::{create_named, regular, Unnamed};
use rustix::fs::{Mode, OFlags};
use std::fs::File;
use std::io;
use std::path::Path;

/// Opens a file for reading without blocking on a FIFO; only a regular file is kept.
pub(crate) fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    regular(File::from(fd))
}

/// Opens `name` in `dir` without leaving `dir`: Linux resolves it beneath the directory
/// (a symlink that stays inside is followed); elsewhere no symlink is followed.
pub(crate) fn open_in_dir(dir: &Path, name: &str) -> io::Result<(File, u64)> {
    let dirfd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    #[cfg(target_os = "linux")]
    let opened = match rustix::fs::openat2(
        &dirfd,
        name,
        flags,
        Mode::empty(),
        rustix::fs::ResolveFlags::BENEATH | rustix::fs::ResolveFlags::NO_MAGICLINKS,
    ) {
        // Kernels before 5.6: no link is followed at all.
        Err(rustix::io::Errno::NOSYS) => {
            rustix::fs::openat(&dirfd, name, flags | OFlags::NOFOLLOW, Mode::empty())
        }
        other => other,
    };
    #[cfg(not(target_os = "linux"))]
    let opened = rustix::fs::openat(&dirfd, name, flags | OFlags::NOFOLLOW, Mode::empty());
    let fd = opened.map_err(|e| match e {
        rustix::io::Errno::XDEV | rustix::io::Errno::LOOP => io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{name} leads out of the blob directory"),
        ),
        e => io::Error::from(e),
    })?;
    regular(File::from(fd))
}

/// Fills `buf` from `offset` with `pread`.
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// An unnamed file in `dir` (`O_TMPFILE`) where the system has them, else a named one.
pub(crate) fn create_unnamed(dir: &Path) -> io::Result<Unnamed> {
    #[cfg(target_os = "linux")]
    {
        let anonymous = rustix::fs::openat(
            rustix::fs::CWD,
            dir,
            OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        );
        match anonymous {
            Ok(fd) => {
                return Ok(Unnamed {
                    file: File::from(fd),
                    named: None,
                })
            }
            Err(
                rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR | rustix::io::Errno::INVAL,
            ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    create_named(dir)
}

/// Gives an unnamed file the name `to`; `AlreadyExists` when something is there.
pub(crate) fn link_unnamed(file: &File, to: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    rustix::fs::linkat(
        rustix::fs::CWD,
        proc_path.as_str(),
        rustix::fs::CWD,
        to,
        rustix::fs::AtFlags::SYMLINK_FOLLOW,
    )
    .map_err(io::Error::from)
}
