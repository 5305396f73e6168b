//! Sparse files in their four tar forms, read as their logical content (holes as zeros):
//! - PAX 1.0 (`GNU.sparse.major=1`, `minor=0`): the entry's data starts with a text map (a
//!   count, then offset/size pairs, one decimal number per line, padded to 512 bytes),
//!   followed by the data segments;
//! - PAX 0.1: the map in `GNU.sparse.map` (`offset,size,...`), the name in `GNU.sparse.name`;
//! - PAX 0.0: the map as repeated `GNU.sparse.offset`/`GNU.sparse.numbytes` records;
//! - old GNU (type `S`): the map in the header and its extension blocks (read by the stream).
//!
//! Any other combination of `GNU.sparse.*` records is refused rather than guessed at.

use crate::error::EntryErrorKind as K;
use std::collections::BTreeMap;
use std::io::{self, Read};

/// Most segments accepted in one map.
const MAX_SEGMENTS: u64 = 1 << 20;

/// How a PAX sparse entry stores its map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SparseMap {
    /// At the start of the entry's data (1.0).
    InData,
    /// In the PAX records (0.0, 0.1): (offset, length) segments, in order.
    Segments(Vec<(u64, u64)>),
}

/// A PAX sparse entry's real name, size and map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaxSparse {
    /// `GNU.sparse.name`, when given (0.1 and 1.0 store a made-up path in the header).
    pub name: Option<Vec<u8>>,
    /// Size of the file, holes included.
    pub real: u64,
    /// Where the map is.
    pub map: SparseMap,
}

fn decimal(records: &BTreeMap<String, Vec<u8>>, key: &'static str) -> Result<u64, K> {
    let v = records
        .get(key)
        .ok_or_else(|| K::BadSparseMap(format!("missing {key}")))?;
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| K::BadSparseMap(format!("{key} is not a number")))
}

fn segments_01(map: &[u8]) -> Result<Vec<(u64, u64)>, K> {
    let text = std::str::from_utf8(map).map_err(|_| K::BadSparseMap("map is not text".into()))?;
    let numbers: Vec<u64> = text
        .split(',')
        .map(|n| n.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|_| K::BadSparseMap("GNU.sparse.map holds a non-number".into()))?;
    if numbers.len() % 2 != 0 || numbers.len() as u64 > 2 * MAX_SEGMENTS {
        return Err(K::BadSparseMap(format!(
            "GNU.sparse.map of {} numbers",
            numbers.len()
        )));
    }
    Ok(numbers.chunks(2).map(|p| (p[0], p[1])).collect())
}

fn segments_00(list: &[u8], count: u64) -> Result<Vec<(u64, u64)>, K> {
    let bad = |r: &str| K::BadSparseMap(format!("GNU.sparse.offset/numbytes records {r}"));
    let mut items = list.split(|&b| b == b',').filter(|i| !i.is_empty());
    let mut out = Vec::new();
    while let Some(off) = items.next() {
        let len = items.next().ok_or_else(|| bad("are not in pairs"))?;
        let number = |item: &[u8], tag: u8| -> Result<u64, K> {
            match item.split_first() {
                Some((&t, digits)) if t == tag => std::str::from_utf8(digits)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .ok_or_else(|| bad("hold a non-number")),
                _ => Err(bad("are not offset then numbytes")),
            }
        };
        out.push((number(off, b'o')?, number(len, b'n')?));
        if out.len() as u64 > MAX_SEGMENTS {
            return Err(bad("are too many"));
        }
    }
    if out.len() as u64 != count {
        return Err(bad(&format!(
            "number {}, GNU.sparse.numblocks {count}",
            out.len()
        )));
    }
    Ok(out)
}

/// Reads the sparse format of an entry's own PAX records (global records never make an entry
/// sparse): `None` when there is none, an error for a format this crate does not know.
pub fn pax_sparse(local: &BTreeMap<String, Vec<u8>>) -> Result<Option<PaxSparse>, K> {
    if !local.keys().any(|k| k.starts_with("GNU.sparse.")) {
        return Ok(None);
    }
    let name = local.get("GNU.sparse.name").cloned();
    let version = (local.get("GNU.sparse.major"), local.get("GNU.sparse.minor"));
    let (real, map) = if version.0.is_some() || version.1.is_some() {
        if version != (Some(&b"1".to_vec()), Some(&b"0".to_vec())) {
            return Err(K::Unrepresentable(
                "GNU sparse format other than 1.0".into(),
            ));
        }
        (decimal(local, "GNU.sparse.realsize")?, SparseMap::InData)
    } else if let Some(map) = local.get("GNU.sparse.map") {
        (
            decimal(local, "GNU.sparse.size")?,
            SparseMap::Segments(segments_01(map)?),
        )
    } else if let Some(list) = local.get(crate::reader::SPARSE_00_SEGMENTS) {
        let count = decimal(local, "GNU.sparse.numblocks")?;
        (
            decimal(local, "GNU.sparse.size")?,
            SparseMap::Segments(segments_00(list, count)?),
        )
    } else {
        return Err(K::Unrepresentable(
            "GNU.sparse records of no format this reader knows (0.0, 0.1, 1.0)".into(),
        ));
    };
    Ok(Some(PaxSparse { name, real, map }))
}

/// Checks segments (offset, length) against a file of `real` bytes whose entry stores
/// `stored` bytes: in order, not overlapping, inside the file, adding up to what is stored.
pub fn check_segments(segments: &[(u64, u64)], real: u64, stored: u64) -> Result<(), K> {
    let mut end = 0u64;
    let mut data = 0u64;
    for &(off, len) in segments {
        end = off
            .checked_add(len)
            .filter(|&e| off >= end && e <= real)
            .ok_or_else(|| {
                K::BadSparseMap(format!(
                    "segment [{off}, +{len}) out of order or past {real}"
                ))
            })?;
        data += len;
    }
    if data != stored {
        return Err(K::BadSparseMap(format!(
            "segments hold {data} bytes, the entry stores {stored}"
        )));
    }
    Ok(())
}

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
        for _ in 0..count {
            let off = read_number(&mut inner, &mut consumed)?;
            let len = read_number(&mut inner, &mut consumed)?;
            segments.push((off, len));
        }
        let pad = (512 - consumed % 512) % 512;
        io::copy(&mut (&mut inner).take(pad), &mut io::sink())
            .map_err(|e| K::BadSparseMap(format!("map padding: {e}")))?;
        let data = stored.checked_sub(consumed + pad).ok_or_else(|| {
            K::BadSparseMap(format!(
                "the map takes {} bytes, the entry has {stored}",
                consumed + pad
            ))
        })?;
        check_segments(&segments, real, data)?;
        segments.retain(|s| s.1 > 0);
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
                let want = usize::try_from(left).map_or(buf.len(), |l| buf.len().min(l));
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
                let n =
                    usize::try_from(hole_end - self.pos).map_or(buf.len(), |h| buf.len().min(h));
                buf[..n].fill(0);
                self.pos += n as u64;
                Ok(n)
            }
        }
    }
}
