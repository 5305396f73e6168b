//! Random-access sources a blob is read from: byte slices, memory maps, files, and any
//! `Read + Seek`.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Mutex;

/// Positional reads from a blob of known size. Implementations must be callable from several
/// threads at once.
pub trait ReadAt {
    /// Size of the blob in bytes.
    fn size(&self) -> u64;
    /// Fills `buf` from `offset`; a short read is `UnexpectedEof`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "read past the end of the blob",
    )
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        buf.copy_from_slice(self.get(start..end).ok_or_else(eof)?);
        Ok(())
    }
}

impl ReadAt for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
}

impl ReadAt for memmap2::Mmap {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for Box<T> {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
}

/// A file read by position (`pread` on unix), its size taken when opened.
pub struct FileSource {
    file: std::fs::File,
    size: u64,
    /// Serialises reads where positioned reads are emulated by seeking.
    #[cfg_attr(feature = "unix", allow(dead_code))]
    lock: Mutex<()>,
}

impl FileSource {
    /// Wraps an open file.
    pub fn new(file: std::fs::File) -> io::Result<Self> {
        let size = file.metadata()?.len();
        Ok(Self::with_size(file, size))
    }

    fn with_size(file: std::fs::File, size: u64) -> Self {
        FileSource {
            file,
            size,
            lock: Mutex::new(()),
        }
    }

    /// Opens a path. It must name a regular file (a FIFO or device is refused, never waited
    /// on).
    pub fn open(path: impl AsRef<std::path::Path>) -> io::Result<Self> {
        let (file, size) = crate::sys::open_regular(path.as_ref())?;
        Ok(Self::with_size(file, size))
    }

    /// Opens the blob file `name` in the blob directory `dir`. `name` must be one path
    /// component (a blob id is a name, never a path), so no image can steer the open
    /// elsewhere; a symlink the user put in the directory (a layer tar kept elsewhere, as
    /// tarfs and zran blobs often are) is followed. Anything but a regular file is refused
    /// without blocking (a FIFO would stall every reader).
    pub fn open_in_dir(dir: &std::path::Path, name: &str) -> io::Result<Self> {
        crate::sys::check_component(name)?;
        let (file, size) = crate::sys::open_regular(&dir.join(name))?;
        Ok(Self::with_size(file, size))
    }
}

/// Opens `rel`, a relative path, below `dir` without leaving it (on Linux a symlink that stays
/// inside is followed, one that points out is refused; elsewhere none is followed), never
/// blocking, regular files only: for an OCI layout's documents and blobs, whose symlinks may
/// come from an archive. Returns the file and its size.
pub fn open_file_beneath(dir: &std::path::Path, rel: &str) -> io::Result<(std::fs::File, u64)> {
    crate::sys::open_in_dir(dir, rel)
}

impl ReadAt for FileSource {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.size)
        {
            return Err(eof());
        }
        #[cfg(not(feature = "unix"))]
        let _serial = self
            .lock
            .lock()
            .map_err(|_| io::Error::other("blob file lock poisoned"))?;
        crate::sys::read_exact_at(&self.file, buf, offset)
    }
}

/// Any `Read + Seek` (a pipe-less stream), serialised behind a lock.
pub struct SeekSource<R> {
    inner: Mutex<R>,
    size: u64,
}

impl<R: Read + Seek> SeekSource<R> {
    /// Wraps a reader; its size is found by seeking to the end.
    pub fn new(mut inner: R) -> io::Result<Self> {
        let size = inner.seek(SeekFrom::End(0))?;
        Ok(SeekSource {
            inner: Mutex::new(inner),
            size,
        })
    }
}

impl<R: Read + Seek> ReadAt for SeekSource<R> {
    fn size(&self) -> u64 {
        self.size
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.size)
        {
            return Err(eof());
        }
        let mut r = self
            .inner
            .lock()
            .map_err(|_| io::Error::other("blob reader lock poisoned"))?;
        r.seek(SeekFrom::Start(offset))?;
        r.read_exact(buf)
    }
}
