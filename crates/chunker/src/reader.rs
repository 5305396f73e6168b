//! Reading blobs back: plain blobs (chunk data, then blob meta for v6), packed blobs (sections
//! with tar headers, a ToC), any chunk decompressed and verified.

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
    fn open_keyed(
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

    /// Opens a zran blob (`targz-ref`): `layer` is the gzip layer, which is the data; its
    /// chunk-info entries and inflate contexts come from `meta_blob`, the metadata blob the
    /// build wrote (separate, or holding the bootstrap and a ToC). The blob-table entry must
    /// describe both: the layer's size, the metadata's location.
    pub fn open_zran(layer: S, meta_blob: &dyn ReadAt, blob: &Blob) -> Result<Self> {
        let m = BlobReader::open(meta_blob)?;
        let meta = m.meta.filter(|m| m.zran.is_some()).ok_or_else(|| {
            invalid(
                "zran metadata blob",
                0,
                "blob meta",
                "no chunk-info array with inflate contexts",
            )
        })?;
        let h = &meta.header;
        let loc = &blob.meta;
        if loc.compressed_size > 0
            && (h.ci_offset, h.ci_compressed_size, h.ci_uncompressed_size)
                != (loc.offset, loc.compressed_size, loc.uncompressed_size)
        {
            return Err(invalid(
                "zran metadata blob",
                h.ci_offset,
                "ci_offset",
                "differs from the bootstrap's blob table",
            ));
        }
        if layer.size() != blob.compressed_size {
            let reason = format!(
                "the layer has {} bytes, the blob table says {}",
                layer.size(),
                blob.compressed_size
            );
            return Err(invalid("gzip layer", 0, "size", reason));
        }
        let data_end = layer.size();
        Ok(BlobReader {
            src: layer,
            sections: Vec::new(),
            toc: None,
            meta: Some(meta),
            data_end,
            limits: m.limits,
            batches: None,
            cipher: None,
        })
    }

    /// A zran chunk: inflated from its context in the gzip layer.
    fn read_zran(&self, chunk: &ChunkInfo) -> Result<Vec<u8>> {
        const S: &str = "zran chunk";
        let (meta, e) = self.meta_and_entry(chunk.index)?;
        if e.uncompressed_size != chunk.uncompressed_size {
            let reason = "differs from the chunk record";
            return Err(invalid(S, e.compressed_offset, "uncompressed size", reason));
        }
        let (ci, inner) = ((e.data >> 32) as u32, (e.data & 0xffff_ffff) as u32);
        // BlobMeta::decode checked the context exists and holds the chunk.
        let (ctx, dict) = meta
            .zran
            .as_ref()
            .and_then(|t| t.get(ci))
            .ok_or_else(|| invalid(S, e.compressed_offset, "zran context", "missing"))?;
        let mut out = Vec::new();
        crate::zran::read_chunk(&self.src, ctx, dict, inner, e.uncompressed_size, &mut out)
            .map_err(|f| {
                let at = ctx.in_offset.get();
                match f {
                    crate::zran::ChunkFault::Read(r) => Error::io(
                        format!("reading the gzip layer at {at}"),
                        std::io::Error::other(r),
                    ),
                    other => invalid(S, at, "zran context", format!("context {ci}: {other}")),
                }
            })?;
        Ok(out)
    }

    fn is_zran(&self, chunk: &ChunkInfo) -> bool {
        self.meta
            .as_ref()
            .and_then(|m| m.entries.get(chunk.index as usize))
            .is_some_and(CiEntry::is_zran)
    }

    fn tail_is_ci_header(&self) -> Result<bool> {
        let size = self.src.size();
        let mut m = [0u8; 4];
        let mut m2 = [0u8; 4];
        self.read(&mut m, size - CI_HEADER_SIZE as u64, "blob meta header")?;
        self.read(&mut m2, size - 4, "blob meta header")?;
        Ok(u32::from_le_bytes(m) == CI_MAGIC && u32::from_le_bytes(m2) == CI_MAGIC)
    }

    fn read(&self, buf: &mut [u8], offset: u64, what: &'static str) -> Result<()> {
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

    fn read_vec(&self, offset: u64, len: u64, what: &'static str) -> Result<Vec<u8>> {
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

    /// Reads the header at `header_at` and the array before it; returns where chunk data ends.
    fn load_meta(&mut self, header_at: u64, expected_ci_offset: Option<u64>) -> Result<u64> {
        let mut hbytes = self.read_vec(header_at, CI_HEADER_SIZE as u64, META_HEADER)?;
        self.decrypt(&mut hbytes, META_HEADER, header_at)?;
        let header = CiHeader::parse(&hbytes, header_at)?;
        self.check_meta_header(&header, header_at, expected_ci_offset)?;
        let compressor = Compressor::from_u32(header.ci_compressor).ok_or_else(|| {
            let at = header_at
                + core::mem::offset_of!(crate::ondisk::CiHeaderRecord, s_ci_compressor) as u64;
            berr(
                META_HEADER,
                at,
                BlobErrorKind::UnknownCompressor(header.ci_compressor),
            )
        })?;
        let mut stored = self.read_vec(
            header.ci_offset,
            header.ci_compressed_size,
            "chunk-info array",
        )?;
        self.decrypt(&mut stored, "chunk-info array", header.ci_offset)?;
        let data = self.inflate(
            compressor,
            &stored,
            header.ci_uncompressed_size,
            "chunk-info array",
            header.ci_offset,
        )?;
        // Chunk data ends where its tar header starts (packed) or where the array starts.
        let data_end = if header.features.contains(BlobFeatures::SEPARATE) {
            u64::MAX
        } else if self.sections.is_empty() {
            header.ci_offset
        } else {
            self.data_end
        };
        self.meta = Some(BlobMeta::decode(header, &data, data_end)?);
        Ok(header.ci_offset)
    }

    /// The header's counts and ranges: within the limits, the array right before the header
    /// (and where the ToC says it is), large enough for its entries.
    fn check_meta_header(
        &self,
        header: &CiHeader,
        header_at: u64,
        expected_ci_offset: Option<u64>,
    ) -> Result<()> {
        if header.entries > self.limits.max_chunks {
            let kind = BlobErrorKind::LimitExceeded {
                what: "chunk-info entries",
                value: header.entries.into(),
                limit: self.limits.max_chunks.into(),
            };
            return Err(berr(META_HEADER, header_at, kind));
        }
        if header.ci_offset.checked_add(header.ci_compressed_size) != Some(header_at) {
            let reason = format!(
                "array [{}, +{}) does not end at the header",
                header.ci_offset, header.ci_compressed_size
            );
            return Err(invalid(META_HEADER, header_at, "ci_offset", reason));
        }
        if let Some(exp) = expected_ci_offset.filter(|exp| *exp != header.ci_offset) {
            let reason = format!(
                "{} but the blob.meta section starts at {exp}",
                header.ci_offset
            );
            return Err(invalid(META_HEADER, header_at, "ci_offset", reason));
        }
        let needed = u64::from(header.entries) * header.format().entry_size() as u64;
        if header.ci_uncompressed_size < needed {
            let reason = format!(
                "{} is less than {needed} for the entries",
                header.ci_uncompressed_size
            );
            return Err(invalid(
                META_HEADER,
                header_at,
                "ci_uncompressed_size",
                reason,
            ));
        }
        Ok(())
    }

    /// Decrypts a unit read at `offset` when the blob is encrypted.
    fn decrypt(&self, unit: &mut Vec<u8>, what: &'static str, offset: u64) -> Result<()> {
        let Some(cipher) = &self.cipher else {
            return Ok(());
        };
        cipher.decrypt(unit).map_err(|reason| {
            berr(
                what,
                offset,
                BlobErrorKind::Corrupt {
                    algorithm: "aes-128-xts",
                    reason: reason.into(),
                },
            )
        })
    }

    /// Decompresses a metadata payload, allocating only as the data actually inflates.
    fn inflate(
        &self,
        compressor: Compressor,
        stored: &[u8],
        declared: u64,
        what: &'static str,
        offset: u64,
    ) -> Result<Vec<u8>> {
        let limit = self.limits.max_entry_size;
        if declared > limit {
            return Err(berr(
                what,
                offset,
                BlobErrorKind::LimitExceeded {
                    what: "declared size",
                    value: declared,
                    limit,
                },
            ));
        }
        let mismatch = |actual: u64| {
            berr(
                what,
                offset,
                BlobErrorKind::SizeMismatch { declared, actual },
            )
        };
        match compressor {
            Compressor::Zstd => {
                let corrupt = |e: std::io::Error| {
                    berr(
                        what,
                        offset,
                        BlobErrorKind::Corrupt {
                            algorithm: "zstd",
                            reason: e.to_string(),
                        },
                    )
                };
                let mut out = Vec::new();
                zstd::stream::read::Decoder::with_buffer(stored)
                    .map_err(corrupt)?
                    .take(declared + 1)
                    .read_to_end(&mut out)
                    .map_err(corrupt)?;
                if out.len() as u64 != declared {
                    return Err(mismatch(out.len() as u64));
                }
                Ok(out)
            }
            Compressor::Lz4Block => {
                // LZ4 cannot expand more than 255:1; a larger claim is a lie.
                if declared > (stored.len() as u64).saturating_mul(255).saturating_add(16) {
                    return Err(mismatch(declared));
                }
                decompress(compressor, stored, declared, limit, what, offset)
            }
            _ => decompress(compressor, stored, declared, limit, what, offset),
        }
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
        if let Some(e) = self
            .toc
            .as_ref()
            .and_then(|t| t.iter().find(|e| e.name == name))
        {
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
            let mut stored = self.read_vec(e.compressed_offset, e.compressed_size, S)?;
            if name == ENTRY_BLOB_META || name == crate::toc::ENTRY_BLOB_META_HEADER {
                self.decrypt(&mut stored, S, e.compressed_offset)?;
            }
            let data = if name == ENTRY_BLOB_DATA {
                // The chunk data's "uncompressed size" is the uncompressed blob's; the data
                // itself is stored as is.
                stored
            } else {
                self.inflate(
                    e.compressor,
                    &stored,
                    e.uncompressed_size,
                    S,
                    e.compressed_offset,
                )?
            };
            let mut h = Sha256::new();
            h.update(&data);
            if name == ENTRY_BLOB_DATA {
                // Quirk of the reference: this digest also covers the section's tar header.
                let tail = self.read_vec(
                    e.compressed_offset + e.compressed_size,
                    TAR_HEADER_SIZE as u64,
                    S,
                )?;
                h.update(&tail);
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
            return Ok(data);
        }
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

    /// The chunk-info entry of chunk `index`.
    pub fn chunk_entry(&self, index: u32) -> Result<&CiEntry> {
        self.meta_and_entry(index).map(|(_, e)| e)
    }

    fn meta_and_entry(&self, index: u32) -> Result<(&BlobMeta, &CiEntry)> {
        let meta = self.meta.as_ref().ok_or_else(|| {
            berr(
                "blob",
                0,
                BlobErrorKind::Unsupported("blob has no chunk-info array".into()),
            )
        })?;
        let e = meta.entries.get(index as usize).ok_or_else(|| {
            berr(
                "chunk-info array",
                meta.header.ci_offset,
                BlobErrorKind::ChunkNotFound {
                    index,
                    // The header counts entries in a u32.
                    count: u32::try_from(meta.entries.len()).unwrap_or(u32::MAX),
                },
            )
        })?;
        Ok((meta, e))
    }

    /// The stored bytes of a chunk record, decompressed with `compressor` (the blob's) and
    /// checked as `verify` asks.
    pub fn read_chunk(
        &self,
        chunk: &ChunkInfo,
        compressor: Compressor,
        verify: Verify,
    ) -> Result<Vec<u8>> {
        let usize_ = u64::from(chunk.uncompressed_size);
        if usize_ == 0 || usize_ > u64::from(MAX_CHUNK_SIZE) {
            let reason = format!("{usize_} not in 1..=16 MiB");
            return Err(invalid(
                CHUNK,
                chunk.compressed_offset,
                "uncompressed size",
                reason,
            ));
        }
        let data = if self.in_batch(chunk) {
            self.read_batch_member(chunk, compressor)?
        } else if self.is_zran(chunk) {
            self.read_zran(chunk)?
        } else {
            self.read_stored(chunk, compressor)?
        };
        check_chunk(chunk, &data, verify)?;
        Ok(data)
    }

    /// Whether a chunk lives in a batch. Bootstrap records of batch members carry no batch
    /// flag and a stored size of 0; only the chunk-info entry knows where their batch is.
    fn in_batch(&self, chunk: &ChunkInfo) -> bool {
        chunk.flags.contains(ChunkFlags::BATCH)
            || (chunk.compressed_size == 0
                && self
                    .meta
                    .as_ref()
                    .and_then(|m| m.entries.get(chunk.index as usize))
                    .is_some_and(|e| e.is_batch()))
    }

    /// A chunk stored on its own: read inside the data, then decompressed or taken raw.
    fn read_stored(&self, chunk: &ChunkInfo, compressor: Compressor) -> Result<Vec<u8>> {
        let at = chunk.compressed_offset;
        let usize_ = u64::from(chunk.uncompressed_size);
        let csize = u64::from(chunk.compressed_size);
        if let (0, None, Some(b)) = (csize, &self.meta, &self.batches) {
            return b.read(&self.src, chunk, compressor);
        }
        if csize == 0 && self.meta.is_none() {
            let reason = "0: a batch member, whose batch only the blob meta locates, and the \
                          blob file given holds no blob meta (only the data)";
            return Err(invalid(CHUNK, at, "compressed size", reason));
        }
        if csize == 0 || csize > u64::from(MAX_CHUNK_SIZE) {
            return Err(invalid(
                CHUNK,
                at,
                "compressed size",
                format!("{csize} not in 1..=16 MiB"),
            ));
        }
        let end = at.saturating_add(csize);
        if end > self.data_end {
            let kind = BlobErrorKind::Truncated {
                needed: end,
                available: self.data_end,
            };
            return Err(berr(CHUNK, at, kind));
        }
        let mut stored = self.read_vec(at, csize, CHUNK)?;
        self.decrypt(&mut stored, CHUNK, at)?;
        if chunk.flags.contains(ChunkFlags::COMPRESSED) {
            return decompress(
                compressor,
                &stored,
                usize_,
                u64::from(MAX_CHUNK_SIZE),
                CHUNK,
                at,
            );
        }
        if stored.len() as u64 != usize_ {
            let reason = "raw chunk whose stored size differs from its size";
            return Err(invalid(CHUNK, at, "compressed size", reason));
        }
        Ok(stored)
    }

    fn read_batch_member(&self, chunk: &ChunkInfo, compressor: Compressor) -> Result<Vec<u8>> {
        const S: &str = "batch";
        let (meta, e) = self.meta_and_entry(chunk.index)?;
        let e = *e;
        if !e.is_batch() {
            return Err(invalid(
                "chunk-info entry",
                chunk.compressed_offset,
                "flags",
                "record says batch, entry does not",
            ));
        }
        if (e.uncompressed_offset, e.uncompressed_size)
            != (chunk.uncompressed_offset, chunk.uncompressed_size)
        {
            return Err(invalid(
                "chunk-info entry",
                chunk.compressed_offset,
                "uncompressed range",
                "differs from the chunk record",
            ));
        }
        // BlobMeta::decode checked the batch index, the inner range and the stored range.
        let b = *meta.batches.get((e.data >> 32) as usize).ok_or_else(|| {
            invalid(
                S,
                e.compressed_offset,
                "batch index",
                "names no batch context",
            )
        })?;
        let inner = (e.data & 0xffff_ffff) as usize;
        let mut stored = self.read_vec(e.compressed_offset, u64::from(b.compressed_size), S)?;
        self.decrypt(&mut stored, S, e.compressed_offset)?;
        let unit = if stored.len() as u64 == u64::from(b.uncompressed_size) {
            stored
        } else {
            decompress(
                compressor,
                &stored,
                b.uncompressed_size.into(),
                u64::from(MAX_CHUNK_SIZE),
                S,
                e.compressed_offset,
            )?
        };
        let end = inner + chunk.uncompressed_size as usize;
        unit.get(inner..end).map(<[u8]>::to_vec).ok_or_else(|| {
            invalid(
                S,
                e.compressed_offset,
                "offset",
                "chunk extends past its batch",
            )
        })
    }

    /// Chunk `index` of the blob meta as a chunk record (digest unknown), for reading a blob
    /// without its bootstrap.
    pub fn chunk_from_meta(&self, index: u32) -> Result<ChunkInfo> {
        let e = *self.chunk_entry(index)?;
        let mut flags = ChunkFlags::empty();
        if e.is_compressed() {
            flags |= ChunkFlags::COMPRESSED;
        }
        if e.is_batch() {
            flags |= ChunkFlags::BATCH;
        }
        Ok(ChunkInfo {
            digest: [0; 32],
            blob_index: 0,
            index,
            flags,
            compressed_offset: e.compressed_offset,
            compressed_size: e.compressed_size,
            uncompressed_offset: e.uncompressed_offset,
            uncompressed_size: e.uncompressed_size,
            file_offset: 0,
            crc32: 0,
        })
    }
}
