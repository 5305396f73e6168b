//! Reading blobs back: plain blobs (chunk data, then blob meta for v6), packed blobs (sections
//! with tar headers, a ToC), any chunk decompressed and verified.

mod chunks;
mod meta_load;

use crate::cipher::BlobCipher;
use crate::compress::{decompress, MAX_CHUNK_SIZE};
use crate::error::{berr, invalid, BlobErrorKind, Error, Result};
use crate::meta::{BlobMeta, CiEntry, CiHeader};
use crate::ondisk::{CI_HEADER_SIZE, CI_MAGIC, TAR_HEADER_SIZE};
use crate::source::ReadAt;
use crate::toc::{
    has_section_headers, read_toc, walk_sections, Section, TocEntry, ENTRY_BLOB_DATA,
    ENTRY_BLOB_META,
};
use rafs_format::model::{Blob, BlobFeatures, ChunkFlags, ChunkInfo, Compressor, Digester};
use sha2::{Digest as _, Sha256};
use std::io::Read;

/// Limits applied while reading a blob. Exceeding one is [`BlobErrorKind::LimitExceeded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderLimits {
    /// Largest metadata payload (blob meta, inlined bootstrap, digest array) decompressed.
    pub max_entry_size: u64,
    /// Most chunk-info entries accepted.
    pub max_chunks: u32,
}

impl Default for ReaderLimits {
    fn default() -> Self {
        ReaderLimits {
            max_entry_size: 256 << 20,
            max_chunks: crate::writer::MAX_CHUNKS_PER_BLOB,
        }
    }
}

/// The structure chunk errors name.
const CHUNK: &str = "chunk";
/// The structure blob meta header errors name.
const META_HEADER: &str = "blob meta header";

/// A chunk's data against its recorded digest and CRC, as `verify` asks.
fn check_chunk(chunk: &ChunkInfo, data: &[u8], verify: Verify) -> Result<()> {
    let at = chunk.compressed_offset;
    if let Some(d) = verify.digest {
        let computed = rafs_format::digest::digest(d, data);
        if computed != chunk.digest {
            let recorded = rafs_format::hex(&chunk.digest);
            let kind = BlobErrorKind::DigestMismatch {
                recorded,
                computed: rafs_format::hex(&computed),
            };
            return Err(berr(CHUNK, at, kind));
        }
    }
    if verify.crc32 && chunk.flags.contains(ChunkFlags::HAS_CRC32) {
        let computed = crc32c::crc32c(data);
        if computed != chunk.crc32 {
            return Err(berr(
                CHUNK,
                at,
                BlobErrorKind::CrcMismatch {
                    recorded: chunk.crc32,
                    computed,
                },
            ));
        }
    }
    Ok(())
}

/// What to check when reading a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verify {
    /// Recompute the chunk digest with this digester and compare.
    pub digest: Option<Digester>,
    /// Compare the CRC-32C when the record has one.
    pub crc32: bool,
}

/// An open blob.
pub struct BlobReader<S: ReadAt> {
    src: S,
    sections: Vec<Section>,
    toc: Option<Vec<TocEntry>>,
    meta: Option<BlobMeta>,
    data_end: u64,
    limits: ReaderLimits,
    /// Batches found again in a data section given alone ([`BlobReader::find_batches`]).
    batches: Option<crate::data_only::Batches>,
    /// The blob's key: stored chunks, batches, the chunk-info array and its header are
    /// encrypted (`--encrypt`).
    cipher: Option<BlobCipher>,
}

impl<S: ReadAt> BlobReader<S> {
    /// Opens a blob, recognising its layout from its tail: a tar header (packed blob), a
    /// blob-meta header (plain v6 blob), or neither (plain v5 blob, tarfs layer).
    pub fn open(src: S) -> Result<Self> {
        Self::open_with_limits(src, ReaderLimits::default())
    }

    /// [`open`](Self::open) with explicit limits.
    pub fn open_with_limits(src: S, limits: ReaderLimits) -> Result<Self> {
        Self::open_keyed(src, limits, None, true)
    }

    /// Opens a packed blob for its sections alone (the inlined bootstrap, the ToC): its blob
    /// meta is not read, so this works for an encrypted blob without its key.
    pub fn open_sections(src: S) -> Result<Self> {
        Self::open_keyed(src, ReaderLimits::default(), None, false)
    }

    /// [`open_with_limits`](Self::open_with_limits) of a blob encrypted with `cipher`; with
    /// `load_meta` false the blob meta is left unread.
    pub(super) fn open_keyed(
        src: S,
        limits: ReaderLimits,
        cipher: Option<BlobCipher>,
        load_meta: bool,
    ) -> Result<Self> {
        let size = src.size();
        let mut r = BlobReader {
            src,
            sections: Vec::new(),
            toc: None,
            meta: None,
            data_end: size,
            limits,
            batches: None,
            cipher,
        };
        if has_section_headers(&r.src) {
            // The ToC first: a damaged ToC is reported as such, not as the walk's failure.
            r.toc = read_toc(&r.src)?.map(|(_, entries)| entries);
            r.sections = walk_sections(&r.src)?;
            r.data_end = r
                .sections
                .iter()
                .find(|s| s.name == ENTRY_BLOB_DATA)
                .map_or(0, |s| s.offset + s.size);
            if let Some(s) = r
                .sections
                .iter()
                .find(|s| s.name == ENTRY_BLOB_META)
                .filter(|_| load_meta)
                .cloned()
            {
                if s.size < CI_HEADER_SIZE as u64 {
                    return Err(invalid(
                        "blob.meta section",
                        s.offset,
                        "size",
                        "smaller than its 4096-byte header",
                    ));
                }
                let header_at = s.offset + s.size - CI_HEADER_SIZE as u64;
                r.load_meta(header_at, Some(s.offset))?;
            }
        } else if load_meta && size >= CI_HEADER_SIZE as u64 && r.tail_is_ci_header()? {
            let header_at = size - CI_HEADER_SIZE as u64;
            let data_end = r.load_meta(header_at, None)?;
            r.data_end = data_end;
        }
        Ok(r)
    }

    /// Opens a blob described by a bootstrap's blob-table entry: the entry says where the blob
    /// meta is, so nothing is guessed. An encrypted blob is opened with the key the entry
    /// records.
    pub fn open_for(src: S, blob: &Blob) -> Result<Self> {
        let cipher = BlobCipher::of_blob(blob)
            .map_err(|e| invalid("blob table entry", 0, "cipher", e.to_string()))?;
        let mut r = Self::open_keyed(src, ReaderLimits::default(), cipher, true)?;
        let m = &blob.meta;
        // The data section alone (what the Go converter's `Unpack` hands the builder as
        // `--blob`): the blob meta would start at or past its end. Stored chunks read by their
        // bootstrap records; a batch member needs the meta and is refused by name.
        let data_only = r.meta.is_none() && m.compressed_size > 0 && m.offset >= r.size();
        if r.meta.is_none()
            && !data_only
            && blob.features.contains(BlobFeatures::ALIGNED)
            && m.compressed_size > 0
            && !blob.features.contains(BlobFeatures::SEPARATE)
        {
            let header_at = m.offset.checked_add(m.compressed_size).ok_or_else(|| {
                invalid(
                    "blob table entry",
                    0,
                    "ci_offset",
                    "offset + size overflows",
                )
            })?;
            let end = r.load_meta(header_at, None)?;
            r.data_end = r.data_end.min(end);
        }
        if let Some(meta) = &r.meta {
            let h = &meta.header;
            if (h.ci_offset, h.ci_compressed_size, h.ci_uncompressed_size)
                != (m.offset, m.compressed_size, m.uncompressed_size)
                && m.compressed_size > 0
            {
                return Err(invalid(
                    "blob meta header",
                    h.ci_offset + h.ci_compressed_size,
                    "ci_offset",
                    "differs from the bootstrap's blob table",
                ));
            }
        }
        Ok(r)
    }

    /// For a blob given as its data section alone (no chunk-info array: what the Go
    /// converter's `Unpack` passes), finds its batches from the bootstrap's chunk `records` of
    /// this blob, so batch members read (see `data_only`). Does nothing when the blob has its
    /// chunk-info array, or no record is a batch member.
    pub fn find_batches(&mut self, records: &[ChunkInfo], compressor: Compressor) -> Result<()> {
        if self.meta.is_none() && self.cipher.is_none() {
            self.batches =
                crate::data_only::Batches::infer(&self.src, self.data_end, records, compressor)?;
        }
        Ok(())
    }

    pub(super) fn tail_is_ci_header(&self) -> Result<bool> {
        let size = self.src.size();
        let mut m = [0u8; 4];
        let mut m2 = [0u8; 4];
        self.read(&mut m, size - CI_HEADER_SIZE as u64, "blob meta header")?;
        self.read(&mut m2, size - 4, "blob meta header")?;
        Ok(u32::from_le_bytes(m) == CI_MAGIC && u32::from_le_bytes(m2) == CI_MAGIC)
    }

    pub(super) fn read(&self, buf: &mut [u8], offset: u64, what: &'static str) -> Result<()> {
        let size = self.src.size();
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > size) {
            return Err(berr(
                what,
                offset,
                BlobErrorKind::Truncated {
                    needed: end.unwrap_or(u64::MAX),
                    available: size,
                },
            ));
        }
        self.src
            .read_exact_at(buf, offset)
            .map_err(|e| Error::io(format!("reading {what} at offset {offset}"), e))
    }

    pub(super) fn read_vec(&self, offset: u64, len: u64, what: &'static str) -> Result<Vec<u8>> {
        let size = self.src.size();
        if offset.checked_add(len).is_none_or(|e| e > size) {
            return Err(berr(
                what,
                offset,
                BlobErrorKind::Truncated {
                    needed: offset.saturating_add(len),
                    available: size,
                },
            ));
        }
        let mut buf = vec![0u8; crate::error::len_of(len, what, offset)?];
        self.read(&mut buf, offset, what)?;
        Ok(buf)
    }

    /// Size of the blob.
    pub fn size(&self) -> u64 {
        self.src.size()
    }

    /// The sections found by the backward tar-header walk (empty for a plain blob).
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The ToC entries, if the blob has a ToC.
    pub fn toc(&self) -> Option<&[TocEntry]> {
        self.toc.as_deref()
    }

    /// The blob meta (v6 blobs).
    pub fn meta(&self) -> Option<&BlobMeta> {
        self.meta.as_ref()
    }

    /// End of the chunk data: no chunk's stored bytes may pass it.
    pub fn data_end(&self) -> u64 {
        self.data_end
    }

    /// The underlying source.
    pub fn source(&self) -> &S {
        &self.src
    }

    /// The payload of a named entry, decompressed: found through the ToC (whose size and
    /// sha256 are checked) or else through the tar-header walk (returned as stored).
    pub fn entry(&self, name: &str) -> Result<Vec<u8>> {
        match self
            .toc
            .as_ref()
            .and_then(|t| t.iter().find(|e| e.name == name))
        {
            Some(e) => self.toc_entry(e),
            None => self.section(name),
        }
    }

    /// A ToC entry's payload: read within the limit, decrypted (blob meta of an encrypted
    /// blob), decompressed, and checked against the entry's sha256.
    fn toc_entry(&self, e: &TocEntry) -> Result<Vec<u8>> {
        const S: &str = "ToC entry payload";
        if e.compressed_size > self.limits.max_entry_size {
            return Err(berr(
                S,
                e.compressed_offset,
                BlobErrorKind::LimitExceeded {
                    what: "stored size",
                    value: e.compressed_size,
                    limit: self.limits.max_entry_size,
                },
            ));
        }
        let name = e.name.as_str();
        let mut stored = self.read_vec(e.compressed_offset, e.compressed_size, S)?;
        if name == ENTRY_BLOB_META || name == crate::toc::ENTRY_BLOB_META_HEADER {
            self.decrypt(&mut stored, S, e.compressed_offset)?;
        }
        let data = if name == ENTRY_BLOB_DATA {
            // The chunk data's "uncompressed size" is the uncompressed blob's; the data
            // itself is stored as is.
            stored
        } else {
            let (size, at) = (e.uncompressed_size, e.compressed_offset);
            self.inflate(e.compressor, &stored, size, S, at)?
        };
        let mut h = Sha256::new();
        h.update(&data);
        if name == ENTRY_BLOB_DATA {
            // Quirk of the reference: this digest also covers the section's tar header.
            let header_at = e.compressed_offset + e.compressed_size;
            h.update(&self.read_vec(header_at, TAR_HEADER_SIZE as u64, S)?);
        }
        let computed: [u8; 32] = h.finalize().into();
        if computed != e.uncompressed_digest {
            return Err(berr(
                S,
                e.compressed_offset,
                BlobErrorKind::DigestMismatch {
                    recorded: rafs_format::hex(&e.uncompressed_digest),
                    computed: rafs_format::hex(&computed),
                },
            ));
        }
        Ok(data)
    }

    /// A section found by the tar-header walk, as stored, within the limit.
    fn section(&self, name: &str) -> Result<Vec<u8>> {
        let s = self
            .sections
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| {
                berr(
                    "packed blob",
                    self.size(),
                    BlobErrorKind::EntryNotFound(name.to_string()),
                )
            })?;
        if s.size > self.limits.max_entry_size {
            return Err(berr(
                "section",
                s.offset,
                BlobErrorKind::LimitExceeded {
                    what: "section size",
                    value: s.size,
                    limit: self.limits.max_entry_size,
                },
            ));
        }
        self.read_vec(s.offset, s.size, "section")
    }

    /// The inlined bootstrap (`image.boot`), decompressed.
    pub fn bootstrap(&self) -> Result<Vec<u8>> {
        self.entry(crate::toc::ENTRY_BOOTSTRAP)
    }
}
