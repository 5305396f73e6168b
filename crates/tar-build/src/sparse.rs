//! PAX 1.0 sparse files (`GNU.sparse.major=1`, `minor=0`): the entry's data starts with a
//! text map (a count, then offset/size pairs, one decimal number per line, padded to 512
//! bytes) followed by the data segments; holes read as zeros. (Old GNU sparse entries, type
//! `S`, are expanded by the `tar` crate itself.)

use crate::error::EntryErrorKind as K;
use std::io::{self, Read};

/// Most segments accepted in one map.
const MAX_SEGMENTS: u64 = 1 << 20;

/// A sparse map error raised while reading (carried inside an `io::Error`).
#[derive(Debug)]
pub struct SparseError(pub String);

impl std::fmt::Display for SparseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SparseError {}

/// The logical content of a PAX 1.0 sparse entry.
pub struct SparseReader<R> {
    inner: R,
    segments: Vec<(u64, u64)>,
    next: usize,
    pos: u64,
    real: u64,
}

fn read_number<R: Read>(r: &mut R, consumed: &mut u64) -> Result<u64, K> {
    let mut digits = Vec::new();
    loop {
        let mut b = [0u8];
        r.read_exact(&mut b)
            .map_err(|e| K::BadSparseMap(format!("map ends early: {e}")))?;
        *consumed += 1;
        match b[0] {
            b'\n' => break,
            d @ b'0'..=b'9' if digits.len() < 20 => digits.push(d),
            _ => return Err(K::BadSparseMap("map holds a non-decimal line".into())),
        }
    }
    std::str::from_utf8(&digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| K::BadSparseMap("empty or oversized number in the map".into()))
}

impl<R: Read> SparseReader<R> {
    /// The logical content of data stored as `segments` (offset, length), in order.
    pub fn from_segments(inner: R, segments: Vec<(u64, u64)>, real: u64) -> Self {
        SparseReader {
            inner,
            segments: segments.into_iter().filter(|s| s.1 > 0).collect(),
            next: 0,
            pos: 0,
            real,
        }
    }

    /// Reads and checks the map from `inner` (the entry's `stored` bytes) for a file of
    /// `real` bytes.
    pub fn new(mut inner: R, stored: u64, real: u64) -> Result<Self, K> {
        let mut consumed = 0u64;
        let count = read_number(&mut inner, &mut consumed)?;
        if count > MAX_SEGMENTS {
            return Err(K::BadSparseMap(format!("{count} segments")));
        }
        let mut segments = Vec::new();
        let mut data = 0u64;
        let mut end = 0u64;
        for _ in 0..count {
            let off = read_number(&mut inner, &mut consumed)?;
            let len = read_number(&mut inner, &mut consumed)?;
            let seg_end = off
                .checked_add(len)
                .filter(|&e| e <= real && off >= end)
                .ok_or_else(|| {
                    K::BadSparseMap(format!(
                        "segment [{off}, +{len}) out of order or past {real}"
                    ))
                })?;
            end = seg_end;
            data += len;
            if len > 0 {
                segments.push((off, len));
            }
        }
        let pad = (512 - consumed % 512) % 512;
        io::copy(&mut (&mut inner).take(pad), &mut io::sink())
            .map_err(|e| K::BadSparseMap(format!("map padding: {e}")))?;
        if consumed + pad + data != stored {
            return Err(K::BadSparseMap(format!(
                "map and segments take {} bytes, the entry has {stored}",
                consumed + pad + data
            )));
        }
        Ok(SparseReader {
            inner,
            segments,
            next: 0,
            pos: 0,
            real,
        })
    }
}

impl<R: Read> Read for SparseReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.real || buf.is_empty() {
            return Ok(0);
        }
        match self.segments.get(self.next).copied() {
            Some((off, len)) if self.pos >= off => {
                let left = off + len - self.pos;
                let want = buf.len().min(left as usize);
                let n = self.inner.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "sparse data ends early",
                    ));
                }
                self.pos += n as u64;
                if self.pos == off + len {
                    self.next += 1;
                }
                Ok(n)
            }
            other => {
                let hole_end = other.map_or(self.real, |(off, _)| off);
                let n = buf.len().min((hole_end - self.pos) as usize);
                buf[..n].fill(0);
                self.pos += n as u64;
                Ok(n)
            }
        }
    }
}
