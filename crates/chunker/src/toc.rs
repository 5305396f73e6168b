//! Sections of a packed blob (blob.md §8): each payload is followed by a 512-byte GNU tar
//! header naming it, and the ToC (`rafs.blob.toc`, 128-byte entries) comes last.

use crate::error::{berr, invalid, BlobErrorKind, Error, Result};
use crate::ondisk::{TocEntryRecord, TAR_HEADER_SIZE, TOC_ENTRY_SIZE, U32, U64};
use crate::source::ReadAt;
use rafs_format::model::Compressor;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// Name of the chunk data section.
pub const ENTRY_BLOB_DATA: &str = "image.blob";
/// Name of the chunk-info array plus header section.
pub const ENTRY_BLOB_META: &str = "blob.meta";
/// ToC-only name of the 4096-byte chunk-info header.
pub const ENTRY_BLOB_META_HEADER: &str = "blob.meta.header";
/// Name of the chunk digest array section.
pub const ENTRY_BLOB_DIGEST: &str = "blob.digest";
/// Name of the inlined bootstrap section.
pub const ENTRY_BOOTSTRAP: &str = "image.boot";
/// Name of the ToC section.
pub const ENTRY_TOC: &str = "rafs.blob.toc";

/// Largest ToC a reader accepts (the Go converter's cap).
pub const MAX_TOC_SIZE: u64 = 1 << 20;

/// At most this many sections are walked (a packed blob has at most six).
pub const MAX_SECTIONS: usize = 64;

/// One ToC entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TocEntry {
    /// Entry name (at most 16 bytes).
    pub name: String,
    /// Compression of the payload.
    pub compressor: Compressor,
    /// sha256 of the uncompressed payload.
    pub uncompressed_digest: [u8; 32],
    /// Offset of the payload in the blob.
    pub compressed_offset: u64,
    /// Stored size of the payload.
    pub compressed_size: u64,
    /// Size of the payload uncompressed.
    pub uncompressed_size: u64,
}

/// ToC flag of a payload compressor.
pub fn toc_flags(c: Compressor) -> u32 {
    match c {
        Compressor::None => 0x1,
        Compressor::Zstd => 0x2,
        Compressor::Lz4Block => 0x4,
        Compressor::Gzip => 0x8,
    }
}

impl TocEntry {
    /// The 128-byte record.
    pub fn to_bytes(&self) -> [u8; TOC_ENTRY_SIZE] {
        let mut rec = TocEntryRecord::new_zeroed();
        rec.flags = U32::new(toc_flags(self.compressor));
        let n = self.name.as_bytes();
        rec.name[..n.len().min(16)].copy_from_slice(&n[..n.len().min(16)]);
        rec.uncompressed_digest = self.uncompressed_digest;
        rec.compressed_offset = U64::new(self.compressed_offset);
        rec.compressed_size = U64::new(self.compressed_size);
        rec.uncompressed_size = U64::new(self.uncompressed_size);
        let mut out = [0u8; TOC_ENTRY_SIZE];
        out.copy_from_slice(rec.as_bytes());
        out
    }

    /// Parses a record found at `offset`.
    pub fn parse(bytes: &[u8], offset: u64) -> Result<TocEntry> {
        const S: &str = "ToC entry";
        let rec = TocEntryRecord::read_from_bytes(bytes)
            .map_err(|_| invalid(S, offset, "length", "not 128 bytes"))?;
        let compressor = match rec.flags.get() & 0xf {
            0x1 => Compressor::None,
            0x2 => Compressor::Zstd,
            0x4 => Compressor::Lz4Block,
            0x8 => Compressor::Gzip,
            f => return Err(berr(S, offset, BlobErrorKind::UnknownCompressor(f))),
        };
        let name_len = rec.name.iter().position(|&b| b == 0).unwrap_or(16);
        let name = std::str::from_utf8(&rec.name[..name_len])
            .map_err(|_| invalid(S, offset + 8, "name", "not UTF-8"))?
            .to_string();
        Ok(TocEntry {
            name,
            compressor,
            uncompressed_digest: rec.uncompressed_digest,
            compressed_offset: rec.compressed_offset.get(),
            compressed_size: rec.compressed_size.get(),
            uncompressed_size: rec.uncompressed_size.get(),
        })
    }
}

/// The 512-byte header the reference writes after a section (tar-rs `Header::new_gnu` with a
/// path, type regular and a size; every other field zero or empty).
pub fn tar_header(name: &str, size: u64) -> [u8; TAR_HEADER_SIZE] {
    let mut h = tar::Header::new_gnu();
    // Section names are short constants: the name field takes them as they are (what
    // tar-rs `set_path` writes for them), NUL padded.
    let n = name.as_bytes();
    let len = n.len().min(100);
    h.as_mut_bytes()[..len].copy_from_slice(&n[..len]);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(size);
    h.set_cksum();
    let mut out = [0u8; TAR_HEADER_SIZE];
    out.copy_from_slice(h.as_bytes());
    out
}

/// A section of a packed blob located by the backward walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The name in its tar header.
    pub name: String,
    /// Offset of the payload.
    pub offset: u64,
    /// Size of the payload.
    pub size: u64,
    /// Offset of its tar header (= offset + size).
    pub header_offset: u64,
}

/// The checksum a 512-byte tar header should record: the sum of its bytes, the checksum
/// field counted as eight spaces.
pub fn tar_checksum(header: &[u8; TAR_HEADER_SIZE]) -> u32 {
    header
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                0x20
            } else {
                u32::from(b)
            }
        })
        .sum()
}

/// Parses the tar header at `offset`: verifies the checksum and the type, returns name and
/// payload size.
pub fn parse_tar_header(bytes: &[u8; TAR_HEADER_SIZE], offset: u64) -> Result<(String, u64)> {
    const S: &str = "tar header";
    let bad = |why: String| berr(S, offset, BlobErrorKind::BadTarHeader(why));
    let h = tar::Header::from_byte_slice(bytes);
    let recorded = h
        .cksum()
        .map_err(|_| bad("checksum field is not octal".into()))?;
    let computed = tar_checksum(bytes);
    if recorded != computed {
        return Err(bad(format!(
            "checksum {recorded:#o}, computed {computed:#o}"
        )));
    }
    if !matches!(h.entry_type(), tar::EntryType::Regular) {
        return Err(bad(format!(
            "type {:?} is not a regular file",
            h.entry_type()
        )));
    }
    let size = h
        .entry_size()
        .map_err(|_| bad("size field is invalid".into()))?;
    let name_bytes = h.path_bytes();
    let name = std::str::from_utf8(&name_bytes)
        .map_err(|_| bad("name is not UTF-8".into()))?
        .to_string();
    Ok((name, size))
}

/// Walks the sections backwards from the end of `src` (blob.md §8.1). Stops at offset 0 or when
/// fewer than 512 bytes precede the last section found. An invalid header is an error.
pub fn walk_sections(src: &(impl ReadAt + ?Sized)) -> Result<Vec<Section>> {
    let total = src.size();
    let mut sections = Vec::new();
    let mut end = total;
    while end >= TAR_HEADER_SIZE as u64 {
        if sections.len() >= MAX_SECTIONS {
            return Err(berr(
                "tar header",
                end,
                BlobErrorKind::LimitExceeded {
                    what: "sections",
                    value: sections.len() as u64 + 1,
                    limit: MAX_SECTIONS as u64,
                },
            ));
        }
        let header_offset = end - TAR_HEADER_SIZE as u64;
        let mut hdr = [0u8; TAR_HEADER_SIZE];
        src.read_exact_at(&mut hdr, header_offset)
            .map_err(|e| Error::io(format!("reading tar header at {header_offset}"), e))?;
        let (name, size) = parse_tar_header(&hdr, header_offset)?;
        if size > header_offset {
            return Err(berr(
                "tar header",
                header_offset,
                BlobErrorKind::Truncated {
                    needed: size,
                    available: header_offset,
                },
            ));
        }
        let offset = header_offset - size;
        sections.push(Section {
            name,
            offset,
            size,
            header_offset,
        });
        end = offset;
    }
    sections.reverse();
    Ok(sections)
}

/// Whether the last 512 bytes of `src` are a valid section header (a packed blob).
pub fn has_section_headers(src: &(impl ReadAt + ?Sized)) -> bool {
    let total = src.size();
    if total < TAR_HEADER_SIZE as u64 {
        return false;
    }
    let mut hdr = [0u8; TAR_HEADER_SIZE];
    src.read_exact_at(&mut hdr, total - TAR_HEADER_SIZE as u64)
        .is_ok()
        && parse_tar_header(&hdr, total - TAR_HEADER_SIZE as u64).is_ok()
}

/// Reads and parses the ToC of a packed blob, if its last section is one.
pub fn read_toc(src: &(impl ReadAt + ?Sized)) -> Result<Option<(Section, Vec<TocEntry>)>> {
    let total = src.size();
    if !has_section_headers(src) {
        return Ok(None);
    }
    let header_offset = total - TAR_HEADER_SIZE as u64;
    let mut hdr = [0u8; TAR_HEADER_SIZE];
    src.read_exact_at(&mut hdr, header_offset)
        .map_err(|e| Error::io("reading the ToC header", e))?;
    let (name, size) = parse_tar_header(&hdr, header_offset)?;
    if name != ENTRY_TOC {
        return Ok(None);
    }
    const S: &str = "ToC";
    if size > MAX_TOC_SIZE {
        return Err(berr(
            S,
            header_offset,
            BlobErrorKind::LimitExceeded {
                what: "ToC size",
                value: size,
                limit: MAX_TOC_SIZE,
            },
        ));
    }
    if size % TOC_ENTRY_SIZE as u64 != 0 || size == 0 {
        return Err(invalid(
            S,
            header_offset,
            "size",
            format!("{size} is not a positive multiple of 128"),
        ));
    }
    if size > header_offset {
        return Err(berr(
            S,
            header_offset,
            BlobErrorKind::Truncated {
                needed: size,
                available: header_offset,
            },
        ));
    }
    let offset = header_offset - size;
    let mut buf = vec![0u8; crate::error::len_of(size, "ToC", offset)?];
    src.read_exact_at(&mut buf, offset)
        .map_err(|e| Error::io("reading the ToC", e))?;
    let mut entries = Vec::with_capacity(buf.len() / TOC_ENTRY_SIZE);
    for (i, rec) in buf.chunks_exact(TOC_ENTRY_SIZE).enumerate() {
        let at = offset + (i * TOC_ENTRY_SIZE) as u64;
        let e = TocEntry::parse(rec, at)?;
        let end = e.compressed_offset.checked_add(e.compressed_size);
        if end.is_none_or(|end| end > offset) {
            return Err(invalid(
                S,
                at,
                "compressed range",
                format!(
                    "[{}, +{}) does not end before the ToC at {offset}",
                    e.compressed_offset, e.compressed_size
                ),
            ));
        }
        entries.push(e);
    }
    Ok(Some((
        Section {
            name,
            offset,
            size,
            header_offset,
        },
        entries,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_matches_the_reference_example() {
        // blob.md §8.1: "image.blob", size 6, checksum 0o5625.
        let h = tar_header("image.blob", 6);
        assert_eq!(&h[124..136], b"00000000006\0");
        assert_eq!(&h[148..156], b"0005625\0");
        assert_eq!(&h[257..265], b"ustar  \0");
        assert_eq!(
            parse_tar_header(&h, 0).unwrap(),
            ("image.blob".to_string(), 6)
        );
    }
}
