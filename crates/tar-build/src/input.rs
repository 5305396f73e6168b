//! The layer stream: compression detected from its first bytes (gzip, zstd, or a plain tar),
//! byte counters for progress and error offsets, and an optional sha256 of the tar (the blob
//! id of a tarfs image).

use sha2::{Digest as _, Sha256};
use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

/// Compression of the layer stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (several members allowed).
    Gzip,
    /// zstd (several frames allowed).
    Zstd,
}

impl Compression {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// An error of the decompressor, carried inside the `io::Error` the tar parser passes up.
#[derive(Debug)]
pub struct DecodeFailure {
    /// `gzip` or `zstd`.
    pub algorithm: &'static str,
    /// The decoder's message.
    pub reason: String,
}

impl std::fmt::Display for DecodeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "corrupt {} stream: {}", self.algorithm, self.reason)
    }
}

impl std::error::Error for DecodeFailure {}

/// Counts bytes read through it.
pub struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R> Counting<R> {
    /// Wraps a reader; the counter is shared.
    pub fn new(inner: R, count: Rc<Cell<u64>>) -> Self {
        Counting { inner, count }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Tags a decompressor's errors so they can be told from tar errors.
struct Tagged<R> {
    inner: R,
    algorithm: &'static str,
}

impl<R: Read> Read for Tagged<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let kind = if e.kind() == io::ErrorKind::UnexpectedEof {
                io::ErrorKind::UnexpectedEof
            } else {
                io::ErrorKind::InvalidData
            };
            io::Error::new(
                kind,
                DecodeFailure {
                    algorithm: self.algorithm,
                    reason: e.to_string(),
                },
            )
        })
    }
}

/// Hashes the bytes read through it (the tarfs blob id) when enabled.
pub struct Hashing<R> {
    inner: R,
    hash: Option<Sha256>,
}

impl<R: Read> Hashing<R> {
    /// Wraps a reader, hashing only when `enabled`.
    pub fn new(inner: R, enabled: bool) -> Self {
        Hashing {
            inner,
            hash: enabled.then(Sha256::new),
        }
    }

    /// Reads to the end (what follows the tar's last entry is part of the blob) and returns
    /// the digest.
    pub fn finish(mut self) -> io::Result<Option<[u8; 32]>> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(self.hash.map(|h| h.finalize().into()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hash {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Detects the compression from the first bytes and returns the decompressed stream.
pub fn open<'a, R: Read + 'a>(input: R) -> io::Result<(Box<dyn Read + 'a>, Compression)> {
    let mut buffered = BufReader::with_capacity(256 * 1024, input);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        let d = flate2::bufread::MultiGzDecoder::new(buffered);
        return Ok((
            Box::new(Tagged {
                inner: d,
                algorithm: "gzip",
            }),
            Compression::Gzip,
        ));
    }
    // A zstd frame, or a skippable frame (magic 0x184D2A50..=0x184D2A5F) ahead of one.
    let skippable = head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18];
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || skippable {
        let mut d = zstd::stream::read::Decoder::with_buffer(buffered)?;
        // Layers made with `zstd --long` need windows up to 2 GiB (the format's limit for
        // 64-bit decoders); libzstd refuses more than 128 MiB unless told.
        d.window_log_max(31)?;
        return Ok((
            Box::new(Tagged {
                inner: d,
                algorithm: "zstd",
            }),
            Compression::Zstd,
        ));
    }
    Ok((Box::new(buffered), Compression::None))
}
