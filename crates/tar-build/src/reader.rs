//! A streaming tar reader: headers and their extensions (GNU long names and links, PAX local
//! and global records, old-GNU sparse maps) resolved into one entry at a time, the entry's
//! data read in place. The archive ends where Go's `archive/tar` (which containerd applies
//! layers with) ends it: at a zero block followed by a second one or by the end of the data;
//! a zero block followed by a header is an error there, so here too. (The reference skips
//! zero blocks and reads on; entries past the end marker are not part of the layer.)
//!
//! The `tar` crate parses single headers here (fields, octal and base-256 numbers, the ustar
//! prefix); its archive iterator is not used because it splits PAX records at newlines, and a
//! binary xattr value (a capability mask, say) may contain one. PAX records are read by their
//! length prefix, as POSIX defines them.

use std::collections::BTreeMap;
use std::io::{self, Read};

/// Size of a tar block.
const BLOCK: u64 = 512;
/// Largest extension payload (long name, PAX records) accepted.
const MAX_EXTENSION: u64 = 1 << 20;
/// Most old-GNU sparse extension blocks accepted for one entry.
const MAX_SPARSE_BLOCKS: usize = 1 << 16;

/// What went wrong reading the stream.
#[derive(Debug)]
pub enum StreamError {
    /// The underlying reader failed (or the stream ended early).
    Io(io::Error),
    /// A header's checksum is wrong.
    BadChecksum,
    /// Anything else malformed, with a description.
    Malformed(String),
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> Self {
        StreamError::Io(e)
    }
}

/// The key under which [`parse_pax`] keeps GNU sparse 0.0 segment records, in order, each
/// `o<offset>,` or `n<numbytes>,`.
pub const SPARSE_00_SEGMENTS: &str = "GNU.sparse.offset+numbytes";

/// PAX records of a header's data, read by their length prefixes. Later records win.
pub fn parse_pax(data: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i < data.len() {
        if data[i..].iter().all(|&b| b == 0) {
            break; // padding
        }
        let space = data[i..]
            .iter()
            .position(|&b| b == b' ')
            .ok_or("record without a length")?;
        let len: usize = std::str::from_utf8(&data[i..i + space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("record length is not a number")?;
        let end = i
            .checked_add(len)
            .filter(|&e| e <= data.len() && len > space + 2)
            .ok_or("record length runs past the header")?;
        let rec = &data[i + space + 1..end];
        let rec = rec
            .strip_suffix(b"\n")
            .ok_or("record does not end with a newline")?;
        let eq = rec
            .iter()
            .position(|&b| b == b'=')
            .ok_or("record without '='")?;
        let key = std::str::from_utf8(&rec[..eq]).map_err(|_| "record key is not UTF-8")?;
        let value = &rec[eq + 1..];
        // GNU sparse 0.0 repeats these two keys, once per segment, in order: kept as one
        // tagged list instead of letting the last one win.
        let tag = match key {
            "GNU.sparse.offset" => Some(b'o'),
            "GNU.sparse.numbytes" => Some(b'n'),
            _ => None,
        };
        if let Some(tag) = tag {
            let list: &mut Vec<u8> = out.entry(SPARSE_00_SEGMENTS.to_string()).or_default();
            list.push(tag);
            list.extend_from_slice(value);
            list.push(b',');
        } else {
            out.insert(key.to_string(), value.to_vec());
        }
        i = end;
    }
    Ok(out)
}

/// One resolved entry.
pub struct Entry {
    /// Its (last) header.
    pub header: tar::Header,
    /// Offset of that header in the tar.
    pub header_pos: u64,
    /// Offset of its data in the tar.
    pub data_pos: u64,
    /// Path: PAX `path`, else a GNU long name, else the header's (with the ustar prefix).
    pub path: Vec<u8>,
    /// Link target: a GNU long link, else PAX `linkpath`, else the header's.
    pub link: Vec<u8>,
    /// PAX records of this entry (globals not included).
    pub pax: BTreeMap<String, Vec<u8>>,
    /// Bytes of data stored for the entry.
    pub stored: u64,
    /// Old-GNU sparse map: (segments, real size).
    pub sparse: Option<(Vec<(u64, u64)>, u64)>,
}

/// The tar stream.
pub struct TarStream<R> {
    inner: R,
    pos: u64,
    /// Data of the current entry not yet read, and its padding.
    remaining: u64,
    padding: u64,
}

impl<R: Read> TarStream<R> {
    /// Wraps the (decompressed) tar.
    pub fn new(inner: R) -> Self {
        TarStream {
            inner,
            pos: 0,
            remaining: 0,
            padding: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The inner reader, after the last entry.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
        self.pos += copied;
        if copied < n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stream ends inside an entry",
            ));
        }
        Ok(())
    }

    /// Reads one block; `None` at a clean end of stream.
    fn block(&mut self) -> Result<Option<[u8; 512]>, StreamError> {
        let mut b = [0u8; 512];
        let mut got = 0;
        while got < b.len() {
            let n = match self.inner.read(&mut b[got..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                break;
            }
            got += n;
        }
        self.pos += got as u64;
        match got {
            0 => Ok(None),
            512 => Ok(Some(b)),
            _ => Err(StreamError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "failed to read entire block",
            ))),
        }
    }

    /// Reads an extension header's payload (bounded).
    fn payload(&mut self, size: u64) -> Result<Vec<u8>, StreamError> {
        if size > MAX_EXTENSION {
            return Err(StreamError::Malformed(format!(
                "extension header of {size} bytes"
            )));
        }
        let len = usize::try_from(size)
            .map_err(|_| StreamError::Malformed(format!("extension header of {size} bytes")))?;
        let mut data = vec![0u8; len];
        self.inner.read_exact(&mut data)?;
        self.pos += size;
        self.skip(size.div_ceil(BLOCK) * BLOCK - size)?;
        Ok(data)
    }

    /// The next entry, extensions resolved; `None` at the end. Unread data of the previous
    /// entry is skipped.
    pub fn next_entry(&mut self) -> Result<Option<Entry>, StreamError> {
        let rest = self.remaining + self.padding;
        self.remaining = 0;
        self.padding = 0;
        self.skip(rest)?;
        let mut ext = Extensions::default();
        loop {
            let header_pos = self.pos;
            let Some(block) = self.block()? else {
                if ext.any() {
                    return Err(StreamError::Malformed(
                        "extension headers without a member".into(),
                    ));
                }
                return Ok(None);
            };
            if block.iter().all(|&b| b == 0) {
                return self.end_of_archive(ext.any()).map(|()| None);
            }
            let header = tar::Header::from_byte_slice(&block).clone();
            let recorded = header.cksum().map_err(|_| StreamError::BadChecksum)?;
            if rafs_chunker::toc::tar_checksum(&block) != recorded {
                return Err(StreamError::BadChecksum);
            }
            let header_size = header
                .entry_size()
                .map_err(|e| StreamError::Malformed(e.to_string()))?;
            if self.read_extension(&header, header_size, &mut ext)? {
                continue;
            }
            return self.member(header, header_pos, header_size, ext).map(Some);
        }
    }

    /// A zero block was read: the end, if the next block is zero too or the data ends there,
    /// as Go's reader decides. What follows is not read: it is not part of the layer.
    fn end_of_archive(&mut self, pending_extensions: bool) -> Result<(), StreamError> {
        if pending_extensions {
            return Err(StreamError::Malformed(
                "extension headers without a member".into(),
            ));
        }
        match self.block()? {
            None => Ok(()),
            Some(b) if b.iter().all(|&x| x == 0) => Ok(()),
            Some(_) => Err(StreamError::Malformed(
                "a zero block followed by a header: Go's archive/tar, which containerd \
                 applies layers with, refuses such a tar"
                    .into(),
            )),
        }
    }

    /// Reads a GNU long name or link, or a PAX header, into `ext`; false for other entries.
    fn read_extension(
        &mut self,
        header: &tar::Header,
        size: u64,
        ext: &mut Extensions,
    ) -> Result<bool, StreamError> {
        let twice = |what: &str| {
            StreamError::Malformed(format!("two {what} headers describing the same member"))
        };
        let trimmed = |mut d: Vec<u8>| {
            while d.last() == Some(&0) {
                d.pop();
            }
            d
        };
        match header.entry_type() {
            tar::EntryType::GNULongName if ext.long_name.is_some() => Err(twice("long name")),
            tar::EntryType::GNULongName => {
                ext.long_name = Some(trimmed(self.payload(size)?));
                Ok(true)
            }
            tar::EntryType::GNULongLink if ext.long_link.is_some() => Err(twice("long link")),
            tar::EntryType::GNULongLink => {
                ext.long_link = Some(trimmed(self.payload(size)?));
                Ok(true)
            }
            tar::EntryType::XHeader if ext.pax.is_some() => Err(twice("PAX")),
            tar::EntryType::XHeader => {
                let d = self.payload(size)?;
                let records = parse_pax(&d)
                    .map_err(|e| StreamError::Malformed(format!("PAX header: {e}")))?;
                ext.pax = Some(records);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The member a header starts, its extensions applied; its data is next in the stream.
    fn member(
        &mut self,
        header: tar::Header,
        header_pos: u64,
        header_size: u64,
        ext: Extensions,
    ) -> Result<Entry, StreamError> {
        let pax = ext.pax.unwrap_or_default();
        let path = match (ext.long_name, pax.get("path")) {
            (Some(n), _) => n,
            (None, Some(p)) => p.clone(),
            (None, None) => header.path_bytes().into_owned(),
        };
        let link = match (ext.long_link, pax.get("linkpath")) {
            (Some(l), _) => l,
            (None, Some(l)) => l.clone(),
            (None, None) => header
                .link_name_bytes()
                .map(|c| c.into_owned())
                .unwrap_or_default(),
        };
        let stored = match pax.get("size") {
            Some(s) => std::str::from_utf8(s)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| StreamError::Malformed("PAX size is not a number".into()))?,
            None => header_size,
        };
        let sparse = if header.entry_type() == tar::EntryType::GNUSparse {
            Some(self.gnu_sparse_map(&header, stored)?)
        } else {
            None
        };
        let data_pos = self.pos;
        // Global headers are entries too: the caller reads and applies them.
        self.remaining = stored;
        self.padding = stored.div_ceil(BLOCK) * BLOCK - stored;
        Ok(Entry {
            header,
            header_pos,
            data_pos,
            path,
            link,
            pax,
            stored,
            sparse,
        })
    }

    /// The map of an old-GNU sparse entry: four slots in the header, more in extension blocks.
    fn gnu_sparse_map(
        &mut self,
        header: &tar::Header,
        stored: u64,
    ) -> Result<(Vec<(u64, u64)>, u64), StreamError> {
        let gnu = header
            .as_gnu()
            .ok_or_else(|| StreamError::Malformed("sparse entry without a GNU header".into()))?;
        let bad = |e: io::Error| StreamError::Malformed(format!("sparse map: {e}"));
        let mut segments = Vec::new();
        let push =
            |segments: &mut Vec<(u64, u64)>, s: &tar::GnuSparseHeader| -> Result<(), StreamError> {
                if !s.is_empty() {
                    segments.push((s.offset().map_err(bad)?, s.length().map_err(bad)?));
                }
                Ok(())
            };
        for s in &gnu.sparse {
            push(&mut segments, s)?;
        }
        let mut extended = gnu.is_extended();
        let mut blocks = 0;
        while extended {
            blocks += 1;
            if blocks > MAX_SPARSE_BLOCKS {
                return Err(StreamError::Malformed(
                    "too many sparse extension blocks".into(),
                ));
            }
            let b = self.block()?.ok_or_else(|| {
                StreamError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "sparse map ends early",
                ))
            })?;
            let mut ext = tar::GnuExtSparseHeader::new();
            ext.as_mut_bytes().copy_from_slice(&b);
            for s in ext.sparse() {
                push(&mut segments, s)?;
            }
            extended = ext.is_extended();
        }
        let real = gnu.real_size().map_err(bad)?;
        crate::sparse::check_segments(&segments, real, stored)
            .map_err(|k| StreamError::Malformed(format!("old GNU sparse map: {k}")))?;
        Ok((segments, real))
    }
}

impl<R: Read> Read for TarStream<R> {
    /// Reads the current entry's data (stored bytes), never past it.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(self.remaining).map_or(buf.len(), |r| buf.len().min(r));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "entry data ends early",
            ));
        }
        self.remaining -= n as u64;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The extension headers read so far for the next member.
#[derive(Default)]
struct Extensions {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<BTreeMap<String, Vec<u8>>>,
}

impl Extensions {
    fn any(&self) -> bool {
        self.long_name.is_some() || self.long_link.is_some() || self.pax.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_values_may_hold_newlines() {
        // "SCHILY.xattr.security.capability" with a value containing 0x0a.
        let value = [1u8, 0, 0, 2, 0x0a, 0, 0, 0];
        let body = [
            b"SCHILY.xattr.security.capability=".as_slice(),
            &value,
            b"\n",
        ]
        .concat();
        let len = body.len() + 3;
        let rec = [format!("{len} ").as_bytes(), &body].concat();
        assert_eq!(rec.len(), len);
        let m = parse_pax(&rec).unwrap();
        assert_eq!(m["SCHILY.xattr.security.capability"], value);
        assert!(parse_pax(b"5 a=b\n").is_err(), "length must match");
    }
}
