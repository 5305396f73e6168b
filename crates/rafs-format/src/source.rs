//! Getting a bootstrap's bytes: a memory map for files (a 200 MB bootstrap costs no heap), or
//! an owned buffer.

use crate::error::{Error, Result};
use std::path::Path;

/// Bytes of a bootstrap, mapped or owned.
pub enum Bootstrap {
    /// A read-only memory map of a file.
    Mapped(memmap2::Mmap),
    /// Bytes in memory.
    Owned(Vec<u8>),
}

impl Bootstrap {
    /// Maps a file read-only (reads it instead when it is empty or cannot be mapped, e.g. a
    /// pipe).
    // The workspace denies unsafe code; mapping a file is the one place it is unavoidable.
    #[allow(unsafe_code)]
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if meta.is_file() && meta.len() > 0 {
            // SAFETY: the map is read-only and private to this process; a file truncated or
            // rewritten underneath it could fault or change bytes, which the decoder tolerates
            // as hostile input (it never trusts a byte twice), the same contract as any mmap reader.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
            return Ok(Bootstrap::Mapped(map));
        }
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut &file, &mut buf).map_err(io)?;
        Ok(Bootstrap::Owned(buf))
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Bootstrap::Mapped(m) => m,
            Bootstrap::Owned(v) => v,
        }
    }
}
