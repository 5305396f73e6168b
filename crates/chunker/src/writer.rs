//! The blob writer: files in, a data blob out, laid out exactly as `nydus-image create` lays
//! it out (blob.md §2-§9).
//!
//! Writing is a pipeline. The caller's thread reads each file's chunks into buffers from a
//! bounded pool; worker threads digest and compress them; the caller's thread takes the
//! results back in submission order, deduplicates, and appends them to the sink whenever it
//! needs a buffer. The sink never leaves the caller's thread, so it need be neither `Send`
//! nor `'static` (a `&mut Vec<u8>` or a borrowed file will do). The pool holds
//! [`BlobOptions::max_in_flight`] buffers, so memory is bounded by that many chunks whatever
//! the size of a file or layer, and the output is the same for any number of threads.
//!
//! With [`BlobOptions::batch_size`], a file of one chunk under half the batch size is only
//! digested by the workers; the writer thread gathers such chunks into a batch and writes it
//! as one compressed unit when the next one would fill it or a chunk is stored on its own
//! (blob.md §10), so batches, like everything else, depend only on the input order.

use crate::cipher::BlobCipher;
use crate::compress::{CompressContext, MAX_CHUNK_SIZE};
use crate::dict::ChunkDict;
use crate::error::{Error, Result};
use crate::meta::{ci_flags, encode_entries, BatchContext, CiEntry, CiFormat, CiHeader};
use crate::toc::{
    tar_header, TocEntry, ENTRY_BLOB_DATA, ENTRY_BLOB_DIGEST, ENTRY_BLOB_META,
    ENTRY_BLOB_META_HEADER, ENTRY_BOOTSTRAP, ENTRY_TOC,
};
use crate::zran::{ZranChunk, ZranContext, ZranError};
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use hashbrown::HashTable;
use rafs_format::model::{
    Blob, BlobFeatures, BlobMetaLocation, ChunkFlags, ChunkInfo, Compressor, Digester, FsVersion,
};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::io::{BufWriter, Read, Write};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The blob id an inlined bootstrap records for its own blob (64 `x`), because the real id is
/// only known once the bootstrap has been written into the blob.
pub const INLINE_BLOB_ID_PLACEHOLDER: &str =
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

/// Highest chunk index a blob may allocate (exclusive).
pub const MAX_CHUNKS_PER_BLOB: u32 = 0xff_ffff;

/// Most worker threads a writer starts (more only costs memory: two cores or two hundred, the
/// pipeline is bounded by the reader and the writer thread).
pub const MAX_THREADS: usize = 1024;

/// Most chunks one job gathers (small files travel to the workers together).
const MAX_PARTS_PER_JOB: usize = 256;

/// Most chunks in flight a writer allows (each holds up to two chunk-sized buffers).
pub const MAX_IN_FLIGHT: usize = 4 * MAX_THREADS + 2;

/// How to lay out a blob; the `nydus-image create` options that affect blob bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlobOptions {
    /// RAFS version of the bootstrap: v6 aligns uncompressed offsets and writes blob meta.
    pub fs_version: FsVersion,
    /// Chunk compressor (`--compressor`, default zstd).
    pub compressor: Compressor,
    /// Chunk digester (`--digester`, default blake3).
    pub digester: Digester,
    /// Chunk size (`--chunk-size`): a power of two from 4 KiB to 16 MiB, default 1 MiB.
    pub chunk_size: u32,
    /// v5 `--aligned-chunk`: align uncompressed offsets to 4 KiB (v6 always does).
    pub aligned_chunk: bool,
    /// `--blob-inline-meta`: the bootstrap goes into the blob, sections get tar headers.
    pub inline_bootstrap: bool,
    /// `--features blob-toc`: a digest array and a ToC, sections get tar headers.
    pub blob_toc: bool,
    /// Record CRC-32C of each chunk (the reference does since v2.3.2).
    pub crc32: bool,
    /// v6 `--batch-size`: a file of one chunk smaller than half of it shares a compressed
    /// unit (a batch) with its neighbours; 0 = off.
    pub batch_size: u32,
    /// Worker threads for digest and compression; 0 means one per core.
    pub threads: usize,
    /// Chunks in flight (read but not yet written); 0 means `2 * threads + 2`.
    pub max_in_flight: usize,
    /// `--type targz-ref`: the chunks stay in the gzip layer they are read from; the blob
    /// written is only metadata (blob.md §11). Needs v6, the `gzip` compressor and
    /// [`BlobWriter::add_zran_file`].
    pub zran: bool,
    /// `--encrypt`: stored chunks, batches and the blob meta encrypted with this key (v6
    /// only; see [`crate::cipher`]). The key is recorded in the blob-table entry.
    pub cipher: Option<BlobCipher>,
}

impl BlobOptions {
    /// The reference's defaults for a bootstrap version: zstd, blake3, 1 MiB chunks, CRC-32C,
    /// separate bootstrap, no ToC.
    pub fn new(fs_version: FsVersion) -> Self {
        BlobOptions {
            fs_version,
            compressor: Compressor::Zstd,
            digester: Digester::Blake3,
            chunk_size: 0x10_0000,
            aligned_chunk: false,
            inline_bootstrap: false,
            blob_toc: false,
            crc32: true,
            batch_size: 0,
            threads: 0,
            max_in_flight: 0,
            zran: false,
            cipher: None,
        }
    }

    /// Checks the options as `nydus-image` does.
    pub fn validate(&self) -> Result<()> {
        let cs = self.chunk_size;
        if !cs.is_power_of_two() || !(0x1000..=MAX_CHUNK_SIZE).contains(&cs) {
            return Err(Error::InvalidOptions(format!(
                "chunk size {cs:#x} is not a power of two from 0x1000 to 0x1000000"
            )));
        }
        if self.zran {
            self.validate_zran()?;
        } else if self.compressor == Compressor::Gzip {
            return Err(Error::InvalidOptions(
                "gzip is not a chunk compressor".into(),
            ));
        }
        self.validate_batch()?;
        if self.cipher.is_some() && (self.fs_version != FsVersion::V6 || self.zran) {
            // A v5 blob table has no room for the key: the reference writes such an image,
            // which no reader can decrypt.
            return Err(Error::InvalidOptions(
                "encryption needs RAFS v6 and chunks stored in the blob (not zran)".into(),
            ));
        }
        if self.threads > MAX_THREADS {
            return Err(Error::InvalidOptions(format!(
                "{} threads; at most {MAX_THREADS}",
                self.threads
            )));
        }
        if self.max_in_flight > MAX_IN_FLIGHT {
            return Err(Error::InvalidOptions(format!(
                "{} chunks in flight; at most {MAX_IN_FLIGHT}",
                self.max_in_flight
            )));
        }
        Ok(())
    }

    /// `--batch-size`: v6 only, a power of two from 4 KiB to the chunk size.
    fn validate_batch(&self) -> Result<()> {
        let b = self.batch_size;
        if b == 0 {
            return Ok(());
        }
        if self.fs_version != FsVersion::V6 {
            return Err(Error::InvalidOptions("batch chunks need RAFS v6".into()));
        }
        if !b.is_power_of_two() || b < 0x1000 || b > self.chunk_size {
            return Err(Error::InvalidOptions(format!(
                "batch size {b:#x} is not a power of two from 0x1000 to the chunk size {:#x}",
                self.chunk_size
            )));
        }
        Ok(())
    }

    /// zran: v6, chunks "compressed" by the layer's gzip, no batches.
    fn validate_zran(&self) -> Result<()> {
        if self.fs_version != FsVersion::V6 {
            return Err(Error::InvalidOptions("zran needs RAFS v6".into()));
        }
        if self.compressor != Compressor::Gzip {
            return Err(Error::InvalidOptions(
                "zran chunks are compressed by the layer's gzip: the compressor must be gzip"
                    .into(),
            ));
        }
        if self.batch_size != 0 {
            return Err(Error::InvalidOptions(
                "zran and batch chunks do not mix".into(),
            ));
        }
        Ok(())
    }

    /// Whether a chunk of `len` bytes, its file's only one, goes into a batch.
    fn batchable(&self, chunks_in_file: u64, len: usize) -> bool {
        self.batch_size > 0 && chunks_in_file == 1 && len < (self.batch_size / 2) as usize
    }

    fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
        }
    }

    fn aligned(&self) -> bool {
        self.fs_version == FsVersion::V6 || self.aligned_chunk
    }

    fn tar_headers(&self) -> bool {
        self.inline_bootstrap || self.blob_toc
    }
}

/// A count or size the writer bounds (chunks by MAX_CHUNKS_PER_BLOB, a chunk's bytes by the
/// 16 MiB chunk size, the blob table by the dictionary's blobs) as the u32 of its field.
fn field_u32(what: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Unrepresentable(format!("{what} {n} does not fit 32 bits")))
}

/// Where the chunks of a zran file are in the gzip layer: asked around each chunk's read
/// (implemented by [`ZranGenerator`](crate::zran::ZranGenerator)).
pub trait ChunkSpans {
    /// The next chunk's bytes are about to be read.
    fn begin_chunk(&mut self) -> std::result::Result<(), ZranError>;
    /// They were read: where they are.
    fn end_chunk(&mut self) -> std::result::Result<ZranChunk, ZranError>;
}

/// Handle of a file added to a [`BlobWriter`]; indexes [`BlobData::files`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId(pub u32);

/// An entry of the blob table the chunks refer to, in blob-index order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobTableEntry {
    /// The blob being written.
    ThisBlob,
    /// A blob of the chunk dictionary, referenced by at least one chunk.
    Dictionary(Blob),
}

struct Buffers {
    /// Chunk bytes: the first `filled` belong to the job. Never shrunk, so a reused buffer
    /// is not zeroed again before each read.
    data: Vec<u8>,
    filled: usize,
    out: Vec<u8>,
}

/// One chunk of a job: which file it belongs to and where its bytes are in the job's buffer.
#[derive(Clone, Copy)]
struct Part {
    file: u32,
    file_offset: u64,
    /// Goes into a batch, which is compressed as a whole: the worker only digests it.
    batchable: bool,
    /// Where the chunk is in the gzip layer (zran): the worker only digests it.
    zran: Option<ZranChunk>,
    start: usize,
    len: usize,
}

/// Chunks handed to a worker together: one large chunk, or several small ones (small files
/// one by one would cost a round trip between threads each).
struct Job {
    seq: u64,
    parts: Vec<Part>,
    buf: Buffers,
}

/// What a worker found for one part; its stored bytes are `out[out_start..][..out_len]`.
struct PartDone {
    part: Part,
    out_start: usize,
    out_len: usize,
    digest: [u8; 32],
    crc32: u32,
    compressed: bool,
    /// Not compressed: the chunk dictionary or an earlier chunk of the stream has the same
    /// digest (see [`Claims`]).
    skipped_duplicate: bool,
}

struct Done {
    seq: u64,
    parts: Vec<PartDone>,
    buf: Buffers,
    failure: Option<Error>,
}

/// One chunk's bytes and what the worker found, as placement sees it.
#[derive(Clone, Copy)]
struct Piece<'a> {
    file: u32,
    file_offset: u64,
    batchable: bool,
    zran: Option<ZranChunk>,
    data: &'a [u8],
    out: &'a [u8],
    digest: [u8; 32],
    crc32: u32,
    compressed: bool,
    skipped_duplicate: bool,
}

/// Which chunks the workers have seen, by digest and size: the earliest stream position of
/// each. A worker does not compress a chunk the chunk dictionary holds or an earlier one
/// duplicates, as the reference does not (placement will refer to that one). Positions make
/// this independent of which worker gets there first; keys are a keyed hash, and should two
/// keys ever collide, placement compresses the chunk itself, so the output never depends on it.
struct Claims {
    earliest: Mutex<HashMap<u64, u64>>,
    hasher: RandomState,
    dict: Option<ChunkDict>,
}

impl Claims {
    fn new(dict: Option<ChunkDict>) -> Self {
        Claims {
            earliest: Mutex::new(HashMap::new()),
            hasher: RandomState::new(),
            dict,
        }
    }

    /// Whether the dictionary or a chunk earlier than `position` has this digest and size;
    /// else records `position` as the earliest.
    fn duplicates_earlier(&self, digest: &[u8; 32], size: usize, position: u64) -> bool {
        let in_dict = u32::try_from(size).is_ok_and(|size| {
            self.dict
                .as_ref()
                .is_some_and(|dict| dict.lookup(&(*digest, size)).is_some())
        });
        if in_dict {
            return true;
        }
        let key = self.hasher.hash_one((digest, size));
        let Ok(mut earliest) = self.earliest.lock() else {
            return false;
        };
        match earliest.get_mut(&key) {
            Some(p) if *p < position => true,
            Some(p) => {
                *p = position;
                false
            }
            None => {
                earliest.insert(key, position);
                false
            }
        }
    }
}

impl Done {
    fn pieces(&self) -> impl Iterator<Item = Piece<'_>> {
        self.parts.iter().map(|p| Piece {
            file: p.part.file,
            file_offset: p.part.file_offset,
            batchable: p.part.batchable,
            zran: p.part.zran,
            data: &self.buf.data[p.part.start..p.part.start + p.part.len],
            out: &self.buf.out[p.out_start..p.out_start + p.out_len],
            digest: p.digest,
            crc32: p.crc32,
            compressed: p.compressed,
            skipped_duplicate: p.skipped_duplicate,
        })
    }
}

/// The record of stored chunk `index`: `stored_at` says where it is in `files`.
fn stored_record<'f>(
    files: &'f [Vec<ChunkInfo>],
    stored_at: &[(u32, u32)],
    index: u32,
) -> Option<&'f ChunkInfo> {
    record_at(files, *stored_at.get(index as usize)?)
}

/// The record at (file, position) in `files`.
fn record_at(files: &[Vec<ChunkInfo>], (file, at): (u32, u32)) -> Option<&ChunkInfo> {
    files.get(file as usize)?.get(at as usize)
}

/// What the writer thread owns and hands back at the end.
struct Placement<W: Write> {
    sink: BufWriter<W>,
    pos: u64,
    hash: Sha256,
    opts: BlobOptions,
    uncompressed_offset: u64,
    entries: Vec<CiEntry>,
    /// Per stored chunk, by chunk index: where its record is in `files` (file, position).
    stored_at: Vec<(u32, u32)>,
    /// Stored chunks by digest and size, as chunk indexes: the key and the record stay in
    /// `files` (a table of keys would cost ten times the memory per chunk).
    seen: HashTable<u32>,
    /// Keys the hashes of `seen` (randomly, so crafted digests cannot pile up in one place).
    seen_hasher: RandomState,
    dict: Option<ChunkDict>,
    dict_blob_slots: HashMap<u32, u32>,
    table: Vec<BlobTableEntry>,
    own_index: Option<u32>,
    files: Vec<Vec<ChunkInfo>>,
    /// Bytes of the batch being filled (`--batch-size`).
    batch: Vec<u8>,
    /// Batches written so far.
    batches: Vec<BatchContext>,
    /// Scratch for compressing a batch.
    batch_out: Vec<u8>,
    /// zran: the context table (set when the data is finished).
    zran_contexts: Vec<ZranContext>,
    /// For [`Placement::compress_and_store`].
    late_compress: CompressContext,
    late_out: Vec<u8>,
    /// Scratch for an encrypted unit (`--encrypt`).
    sealed: Vec<u8>,
}

impl<W: Write> Placement<W> {
    fn new(sink: W, opts: BlobOptions, dict: Option<ChunkDict>) -> Self {
        Placement {
            sink: BufWriter::with_capacity(256 * 1024, sink),
            pos: 0,
            hash: Sha256::new(),
            opts,
            uncompressed_offset: 0,
            entries: Vec::new(),
            stored_at: Vec::new(),
            seen: HashTable::new(),
            seen_hasher: RandomState::new(),
            dict,
            dict_blob_slots: HashMap::new(),
            table: Vec::new(),
            own_index: None,
            files: Vec::new(),
            batch: Vec::new(),
            batches: Vec::new(),
            batch_out: Vec::new(),
            zran_contexts: Vec::new(),
            late_compress: CompressContext::new(),
            late_out: Vec::new(),
            sealed: Vec::new(),
        }
    }

    fn write(&mut self, bytes: &[u8], hashed: bool) -> Result<()> {
        self.sink
            .write_all(bytes)
            .map_err(|e| Error::io("writing the blob", e))?;
        if hashed {
            self.hash.update(bytes);
        }
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Writes one stored unit (a chunk or a batch), encrypted when the blob is; returns the
    /// size written.
    fn write_unit(&mut self, unit: &[u8]) -> Result<u32> {
        let mut sealed = std::mem::take(&mut self.sealed);
        let bytes = match &self.opts.cipher {
            Some(cipher) => {
                cipher.encrypt(unit, &mut sealed)?;
                &sealed[..]
            }
            None => unit,
        };
        let size = field_u32("stored chunk size", bytes.len())?;
        if self.pos + u64::from(size) >= 1 << 40 {
            return Err(Error::Unrepresentable(
                "blob data exceeds 2^40 bytes".into(),
            ));
        }
        let written = self.write(bytes, true);
        self.sealed = sealed;
        written.map(|()| size)
    }

    fn place(&mut self, d: &Piece<'_>) -> Result<()> {
        let usize_ = field_u32("chunk size", d.data.len())?;
        let key = (d.digest, usize_);
        let mut info = if let Some((dict_blob, chunk)) =
            self.dict.as_ref().and_then(|dict| dict.lookup(&key))
        {
            let slot = match self.dict_blob_slots.get(&dict_blob) {
                Some(&s) => s,
                None => {
                    let blob = self
                        .dict
                        .as_ref()
                        .and_then(|dict| dict.blob(dict_blob))
                        .cloned()
                        .ok_or_else(|| Error::Pipeline("dictionary blob vanished".into()))?;
                    self.table.push(BlobTableEntry::Dictionary(blob));
                    let s = field_u32("blob table slot", self.table.len() - 1)?;
                    self.dict_blob_slots.insert(dict_blob, s);
                    s
                }
            };
            ChunkInfo {
                blob_index: slot,
                ..chunk
            }
        } else if let Some(info) = self.seen_chunk(&key) {
            info
        } else {
            let info = if d.skipped_duplicate {
                self.compress_and_store(d)?
            } else {
                self.store(d)?
            };
            let at = self.files.get(d.file as usize).map_or(0, Vec::len);
            self.remember(
                &key,
                info.index,
                (d.file, field_u32("chunks of a file", at)?),
            )?;
            info
        };
        info.file_offset = d.file_offset;
        let f = d.file as usize;
        if self.files.len() <= f {
            self.files.resize_with(f + 1, Vec::new);
        }
        let list = &mut self.files[f];
        // Most files have one chunk: room for one, not the four a first push reserves.
        if list.capacity() == 0 {
            list.reserve_exact(1);
        }
        list.push(info);
        Ok(())
    }

    /// Stores a chunk a worker left uncompressed as a duplicate that turned out to need its
    /// own bytes (only if two claim keys collided): compressed here, as the worker would have.
    fn compress_and_store(&mut self, d: &Piece<'_>) -> Result<ChunkInfo> {
        let mut out = std::mem::take(&mut self.late_out);
        let compressed = self
            .late_compress
            .compress(self.opts.compressor, d.data, &mut out)?;
        let piece = Piece {
            out: &out,
            compressed,
            skipped_duplicate: false,
            ..*d
        };
        let stored = self.store(&piece);
        self.late_out = out;
        stored
    }

    /// The record of a chunk stored earlier with this digest and size.
    fn seen_chunk(&self, key: &([u8; 32], u32)) -> Option<ChunkInfo> {
        let hash = self.seen_hasher.hash_one(key);
        let record = |index: u32| stored_record(&self.files, &self.stored_at, index);
        let &index = self.seen.find(hash, |&i| {
            record(i).is_some_and(|c| (c.digest, c.uncompressed_size) == *key)
        })?;
        record(index).copied()
    }

    /// Notes the chunk just stored as chunk `index` under `key`, its record to be at `at`.
    fn remember(&mut self, key: &([u8; 32], u32), index: u32, at: (u32, u32)) -> Result<()> {
        if index as usize != self.stored_at.len() {
            return Err(Error::Pipeline(format!(
                "chunk {index} stored out of order (expected {})",
                self.stored_at.len()
            )));
        }
        self.stored_at.push(at);
        let Placement {
            seen,
            seen_hasher,
            files,
            stored_at,
            ..
        } = self;
        let rehash = |&i: &u32| {
            stored_record(files, stored_at, i)
                .map_or(0, |c| seen_hasher.hash_one((c.digest, c.uncompressed_size)))
        };
        // The record is pushed after this; the rehash only looks at earlier ones.
        seen.insert_unique(seen_hasher.hash_one(key), index, rehash);
        Ok(())
    }

    /// The next chunk index and the uncompressed range of a new chunk of `usize_` bytes.
    fn next_chunk(&mut self, usize_: u32) -> Result<(u32, u64)> {
        let index = field_u32("chunk index", self.entries.len())?;
        if index >= MAX_CHUNKS_PER_BLOB {
            return Err(Error::Unrepresentable(format!(
                "more than {MAX_CHUNKS_PER_BLOB} chunks in one blob"
            )));
        }
        let uncompressed_offset = self.uncompressed_offset;
        let advance = if self.opts.aligned() {
            u64::from(usize_).div_ceil(4096) * 4096
        } else {
            u64::from(usize_)
        };
        if uncompressed_offset + advance >= 1 << 44 {
            return Err(Error::Unrepresentable(
                "uncompressed blob exceeds 2^44 bytes".into(),
            ));
        }
        self.uncompressed_offset += advance;
        Ok((index, uncompressed_offset))
    }

    /// Adds a new chunk to the current batch (after writing the batch out if the chunk would
    /// fill it) and records it as the reference does (blob.md §10): the chunk-info entry
    /// names the batch and the place in it; the bootstrap record has no stored range.
    fn store_batched(&mut self, d: &Piece<'_>) -> Result<ChunkInfo> {
        let usize_ = field_u32("chunk size", d.data.len())?;
        if !self.batch.is_empty()
            && self.batch.len() + d.data.len() >= self.opts.batch_size as usize
        {
            self.flush_batch()?;
        }
        let own = self.own_index()?;
        let (index, uncompressed_offset) = self.next_chunk(usize_)?;
        let batch_index = u64::try_from(self.batches.len()).unwrap_or(u64::MAX);
        self.entries.push(CiEntry {
            uncompressed_offset,
            uncompressed_size: usize_,
            compressed_offset: self.pos,
            compressed_size: 0,
            flags: ci_flags::COMPRESSED | ci_flags::BATCH | self.encrypted_flag(),
            data: batch_index << 32 | self.batch.len() as u64,
        });
        self.batch.extend_from_slice(d.data);
        let crc32 = if self.opts.crc32 { d.crc32 } else { 0 };
        let mut flags = if self.opts.crc32 {
            ChunkFlags::HAS_CRC32
        } else {
            ChunkFlags::empty()
        };
        if self.opts.cipher.is_some() {
            flags |= ChunkFlags::ENCRYPTED;
        }
        let info = ChunkInfo {
            digest: d.digest,
            blob_index: own,
            index,
            flags,
            compressed_offset: 0,
            compressed_size: 0,
            uncompressed_offset,
            uncompressed_size: usize_,
            file_offset: d.file_offset,
            crc32,
        };
        Ok(info)
    }

    /// Writes the current batch as one unit, compressed unless that does not shrink it.
    fn flush_batch(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let mut out = std::mem::take(&mut self.batch_out);
        let mut raw = std::mem::take(&mut self.batch);
        let compressed = crate::compress::compress(self.opts.compressor, &raw, &mut out)?;
        let stored = if compressed { &out } else { &raw };
        let context = BatchContext {
            compressed_size: self.write_unit(stored)?,
            uncompressed_size: field_u32("batch size", raw.len())?,
        };
        self.batches.push(context);
        raw.clear();
        self.batch = raw;
        self.batch_out = out;
        Ok(())
    }

    /// Appends a new chunk's stored bytes and records it.
    fn store(&mut self, d: &Piece<'_>) -> Result<ChunkInfo> {
        if d.batchable {
            return self.store_batched(d);
        }
        if let Some(z) = d.zran {
            return self.store_zran(d, z);
        }
        // A chunk stored on its own ends the batch being filled (the reference's order).
        self.flush_batch()?;
        let own = self.own_index()?;
        let usize_ = field_u32("chunk size", d.data.len())?;
        let stored: &[u8] = if d.compressed { d.out } else { d.data };
        let compressed_offset = self.pos;
        let (index, uncompressed_offset) = self.next_chunk(usize_)?;
        let csize = self.write_unit(stored)?;
        let crc32 = if self.opts.crc32 { d.crc32 } else { 0 };
        let (flags, ci) = self.chunk_flags(d.compressed);
        let info = ChunkInfo {
            digest: d.digest,
            blob_index: own,
            index,
            flags,
            compressed_offset,
            compressed_size: csize,
            uncompressed_offset,
            uncompressed_size: usize_,
            file_offset: d.file_offset,
            crc32,
        };
        self.entries.push(CiEntry {
            uncompressed_offset,
            uncompressed_size: usize_,
            compressed_offset,
            compressed_size: csize,
            flags: ci,
            data: u64::from(crc32),
        });
        Ok(info)
    }

    /// Records a chunk that stays in the gzip layer (blob.md §11): its stored range is the
    /// input inflate consumed while it was read; the chunk-info entry names its context.
    fn store_zran(&mut self, d: &Piece<'_>, z: ZranChunk) -> Result<ChunkInfo> {
        let own = self.own_index()?;
        let usize_ = field_u32("chunk size", d.data.len())?;
        if z.len != usize_ {
            return Err(Error::Pipeline(format!(
                "zran chunk of {} bytes recorded for {usize_} bytes read",
                z.len
            )));
        }
        if z.in_len > 0xff_ffff || z.in_pos >= 1 << 40 {
            return Err(Error::Unrepresentable(format!(
                "a chunk spanning {}+{} bytes of the gzip layer does not fit a chunk-info entry",
                z.in_pos, z.in_len
            )));
        }
        let (index, uncompressed_offset) = self.next_chunk(usize_)?;
        self.entries.push(CiEntry {
            uncompressed_offset,
            uncompressed_size: usize_,
            compressed_offset: z.in_pos,
            compressed_size: z.in_len,
            flags: ci_flags::COMPRESSED | ci_flags::ZRAN,
            data: u64::from(z.context) << 32 | u64::from(z.offset),
        });
        let (flags, _) = self.chunk_flags(true);
        Ok(ChunkInfo {
            digest: d.digest,
            blob_index: own,
            index,
            flags,
            compressed_offset: z.in_pos,
            compressed_size: z.in_len,
            uncompressed_offset,
            uncompressed_size: usize_,
            file_offset: d.file_offset,
            crc32: if self.opts.crc32 { d.crc32 } else { 0 },
        })
    }

    /// This blob's slot in the blob table, taken when it stores its first chunk.
    fn own_index(&mut self) -> Result<u32> {
        if let Some(i) = self.own_index {
            return Ok(i);
        }
        let i = field_u32("blob table slot", self.table.len())?;
        self.table.push(BlobTableEntry::ThisBlob);
        self.own_index = Some(i);
        Ok(i)
    }

    /// A chunk's flags in the bootstrap and in the chunk-info entry.
    fn chunk_flags(&self, compressed: bool) -> (ChunkFlags, u8) {
        let mut flags = ChunkFlags::empty();
        let mut ci = 0u8;
        if compressed {
            flags |= ChunkFlags::COMPRESSED;
            ci |= ci_flags::COMPRESSED;
        }
        if self.opts.crc32 {
            flags |= ChunkFlags::HAS_CRC32;
            ci |= ci_flags::HAS_CRC32;
        }
        if self.opts.cipher.is_some() {
            flags |= ChunkFlags::ENCRYPTED;
            ci |= ci_flags::ENCRYPTED;
        }
        (flags, ci)
    }

    /// The chunk-info flag of an encrypted blob's chunks.
    fn encrypted_flag(&self) -> u8 {
        if self.opts.cipher.is_some() {
            ci_flags::ENCRYPTED
        } else {
            0
        }
    }
}

/// The sections after the chunk data, in the order the reference writes them.
impl<W: Write> Placement<W> {
    /// The tar header closing the chunk data; returns its ToC entry.
    fn write_data_header(&mut self) -> Result<TocEntry> {
        let data_len = self.pos;
        self.write(&tar_header(ENTRY_BLOB_DATA, data_len), true)?;
        Ok(TocEntry {
            name: ENTRY_BLOB_DATA.into(),
            compressor: Compressor::None,
            uncompressed_digest: self.hash.clone().finalize().into(),
            compressed_offset: 0,
            compressed_size: data_len,
            uncompressed_size: self.uncompressed_offset,
        })
    }

    /// Keeps only the inflate contexts some stored chunk is read through, renumbering the
    /// entries. A chunk stored once for several spans of the layer (8 MiB of zeros) leaves the
    /// others' contexts unused, and nydusd refuses a blob meta with more contexts than chunks
    /// (`validate_header` in its `storage/src/meta/mod.rs`); the reference writes them all.
    fn drop_unused_contexts(&mut self) {
        let mut new_index = vec![u32::MAX; self.zran_contexts.len()];
        for e in &self.entries {
            if let Some(slot) = new_index.get_mut((e.data >> 32) as usize) {
                *slot = 0;
            }
        }
        let mut kept = 0u32;
        for slot in &mut new_index {
            if *slot == 0 {
                *slot = kept;
                kept += 1;
            }
        }
        let mut i = 0;
        self.zran_contexts.retain(|_| {
            i += 1;
            new_index[i - 1] != u32::MAX
        });
        for e in &mut self.entries {
            if let Some(&n) = new_index.get((e.data >> 32) as usize) {
                e.data = (u64::from(n) << 32) | (e.data & 0xffff_ffff);
            }
        }
    }

    /// The v6 chunk-info array and its header (blob.md §6); adds their ToC entries and
    /// returns where the array is.
    fn write_blob_meta(
        &mut self,
        features: BlobFeatures,
        toc: &mut Vec<TocEntry>,
    ) -> Result<BlobMetaLocation> {
        let opts = self.opts.clone();
        let tabled = opts.batch_size > 0 || opts.zran;
        if opts.zran {
            self.drop_unused_contexts();
        }
        let format = if tabled || opts.cipher.is_some() {
            CiFormat::V2
        } else {
            CiFormat::V1
        };
        let mut raw = encode_entries(&self.entries, format);
        // Batch or zran contexts follow the entries in the same (compressed) array (blob.md
        // §10, §11).
        let zran_offset = raw.len() as u64;
        let zran_count = if opts.zran {
            raw.extend_from_slice(&crate::zran::encode_contexts(&self.zran_contexts));
            self.zran_contexts.len()
        } else {
            for b in &self.batches {
                raw.extend_from_slice(&b.to_bytes());
            }
            self.batches.len()
        };
        let (stored, ci_compressor) = stored_meta(&opts, &raw)?;
        let header = CiHeader {
            features,
            ci_compressor: ci_compressor.to_u32(),
            entries: field_u32("chunk count", self.entries.len())?,
            ci_offset: self.pos,
            ci_compressed_size: stored.len() as u64,
            ci_uncompressed_size: raw.len() as u64,
            zran_offset: if tabled { zran_offset } else { 0 },
            zran_size: raw.len() as u64 - zran_offset,
            zran_count: field_u32("batch count", zran_count)?,
        };
        let hbytes = header.to_bytes();
        let mut sealed_header = Vec::new();
        match &opts.cipher {
            Some(cipher) => cipher.encrypt(&hbytes, &mut sealed_header)?,
            None => sealed_header.extend_from_slice(&hbytes),
        }
        self.write(&stored, true)?;
        self.write(&sealed_header, true)?;
        if opts.tar_headers() {
            self.write(
                &tar_header(ENTRY_BLOB_META, stored.len() as u64 + hbytes.len() as u64),
                true,
            )?;
        }
        toc.push(TocEntry {
            name: ENTRY_BLOB_META.into(),
            compressor: ci_compressor,
            uncompressed_digest: Sha256::digest(&raw).into(),
            compressed_offset: header.ci_offset,
            compressed_size: header.ci_compressed_size,
            uncompressed_size: header.ci_uncompressed_size,
        });
        toc.push(TocEntry {
            name: ENTRY_BLOB_META_HEADER.into(),
            compressor: Compressor::None,
            uncompressed_digest: Sha256::digest(&hbytes).into(),
            compressed_offset: header.ci_offset + header.ci_compressed_size,
            compressed_size: hbytes.len() as u64,
            uncompressed_size: hbytes.len() as u64,
        });
        Ok(BlobMetaLocation {
            compressor: header.ci_compressor,
            offset: header.ci_offset,
            compressed_size: header.ci_compressed_size,
            uncompressed_size: header.ci_uncompressed_size,
        })
    }

    /// The chunk digest array and its tar header; returns its ToC entry.
    fn write_digest_array(&mut self) -> Result<TocEntry> {
        // Digests by chunk index, from the records (the writer keeps no copy of them).
        let mut array = Vec::with_capacity(32 * self.stored_at.len());
        for &(file, at) in &self.stored_at {
            let record = record_at(&self.files, (file, at))
                .ok_or_else(|| Error::Pipeline(format!("file {file} has no record {at}")))?;
            array.extend_from_slice(&record.digest);
        }
        let offset = self.pos;
        // The digest array is left out of the blob hash (blob.md §9); its header is not.
        self.write(&array, false)?;
        self.write(&tar_header(ENTRY_BLOB_DIGEST, array.len() as u64), true)?;
        Ok(TocEntry {
            name: ENTRY_BLOB_DIGEST.into(),
            compressor: Compressor::None,
            uncompressed_digest: Sha256::digest(&array).into(),
            compressed_offset: offset,
            compressed_size: array.len() as u64,
            uncompressed_size: array.len() as u64,
        })
    }
}

/// The chunk-info array as stored and the compressor it records: compressed unless that does
/// not shrink it (a zran blob's meta always with zstd, the reference's choice), then encrypted
/// when the blob is (its recorded size is the encrypted one).
fn stored_meta(opts: &BlobOptions, raw: &[u8]) -> Result<(Vec<u8>, Compressor)> {
    let meta_compressor = if opts.zran {
        Compressor::Zstd
    } else {
        opts.compressor
    };
    let mut stored = Vec::new();
    let compressed = crate::compress::compress(meta_compressor, raw, &mut stored)?;
    let ci_compressor = if compressed {
        meta_compressor
    } else {
        Compressor::None
    };
    if let Some(cipher) = &opts.cipher {
        let plain = std::mem::take(&mut stored);
        cipher.encrypt(&plain, &mut stored)?;
    }
    Ok((stored, ci_compressor))
}

/// The blob features the options and chunk count give (ALIGNED is added with the blob meta).
fn sealed_features(opts: &BlobOptions, chunks: usize) -> BlobFeatures {
    let mut features = BlobFeatures::CAP_TAR_TOC;
    if opts.inline_bootstrap {
        features |= BlobFeatures::INLINED_FS_META;
    }
    if opts.tar_headers() {
        features |= BlobFeatures::HAS_TAR_HEADER;
    }
    if opts.batch_size > 0 {
        features |= BlobFeatures::BATCH | BlobFeatures::CHUNK_INFO_V2;
    }
    if opts.zran {
        features |= BlobFeatures::ZRAN | BlobFeatures::SEPARATE | BlobFeatures::CHUNK_INFO_V2;
    }
    if opts.cipher.is_some() {
        features |= BlobFeatures::ENCRYPTED | BlobFeatures::CHUNK_INFO_V2;
    }
    if opts.blob_toc {
        features |= BlobFeatures::HAS_TOC;
        if chunks > 0 {
            features |= BlobFeatures::INLINED_CHUNK_DIGEST;
        }
    }
    features
}

/// Writes one data blob. See the [module documentation](self).
pub struct BlobWriter<W: Write> {
    opts: BlobOptions,
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    /// Taken by [`BlobWriter::finish_data`].
    placement: Option<Placement<W>>,
    /// Buffers not in flight.
    free: Vec<Buffers>,
    /// Buffers made so far (at most `max_in_flight`).
    buffers: usize,
    /// Results that came back before their turn, by sequence number.
    pending: BTreeMap<u64, Done>,
    /// Sequence number of the next job to place.
    next_to_place: u64,
    next_seq: u64,
    files: u32,
    /// Small chunks gathered for the next job.
    packing: Option<(Buffers, Vec<Part>)>,
}

impl<W: Write> BlobWriter<W> {
    /// Starts a blob written to `sink`.
    pub fn new(sink: W, options: BlobOptions) -> Result<Self> {
        Self::start(sink, options, None)
    }

    /// Starts a blob whose chunks are first looked up in a chunk dictionary: a hit becomes a
    /// reference into the dictionary's blob instead of stored data.
    pub fn with_dictionary(sink: W, options: BlobOptions, dict: ChunkDict) -> Result<Self> {
        if dict.digester() != options.digester {
            return Err(Error::InvalidOptions(format!(
                "chunk dictionary uses {}, the build {}",
                dict.digester().name(),
                options.digester.name()
            )));
        }
        Self::start(sink, options, Some(dict))
    }

    fn start(sink: W, mut opts: BlobOptions, dict: Option<ChunkDict>) -> Result<Self> {
        opts.validate()?;
        let threads = opts.effective_threads();
        opts.threads = threads;
        if opts.max_in_flight == 0 {
            opts.max_in_flight = 2 * threads + 2;
        }
        let (jobs_tx, jobs_rx) = bounded::<Job>(opts.max_in_flight);
        let (done_tx, done) = unbounded::<Done>();
        let workers = spawn_workers(&opts, &jobs_rx, &done_tx, dict.clone())?;
        Ok(BlobWriter {
            placement: Some(Placement::new(sink, opts.clone(), dict)),
            opts,
            jobs: Some(jobs_tx),
            done,
            workers,
            free: Vec::new(),
            buffers: 0,
            pending: BTreeMap::new(),
            next_to_place: 0,
            next_seq: 0,
            files: 0,
            packing: None,
        })
    }

    /// A buffer for the next chunk: a free one, a new one while the pool is not full, or the
    /// next one placing results gives back.
    fn buffer(&mut self) -> Result<Buffers> {
        loop {
            if let Some(b) = self.free.pop() {
                return Ok(b);
            }
            if self.buffers < self.opts.max_in_flight {
                self.buffers += 1;
                // A job holds at most one chunk size of data, and its compressed parts are
                // each smaller than their data: exact room, never grown by doubling.
                let room = self.opts.chunk_size as usize;
                return Ok(Buffers {
                    data: Vec::with_capacity(room),
                    filled: 0,
                    out: Vec::with_capacity(room),
                });
            }
            self.place_one_result()?;
        }
    }

    /// Waits for one result, then places every result whose turn has come.
    fn place_one_result(&mut self) -> Result<()> {
        let done = self
            .done
            .recv()
            .map_err(|_| Error::Pipeline("worker threads stopped".into()))?;
        self.pending.insert(done.seq, done);
        while let Some(mut d) = self.pending.remove(&self.next_to_place) {
            self.next_to_place += 1;
            let placed = match d.failure.take() {
                Some(e) => Err(e),
                None => match self.placement.as_mut() {
                    Some(p) => d.pieces().try_for_each(|piece| p.place(&piece)),
                    None => Err(Error::Pipeline("writer already finished".into())),
                },
            };
            self.free.push(d.buf);
            placed?;
        }
        Ok(())
    }

    /// The options in effect (threads and in-flight count resolved).
    pub fn options(&self) -> &BlobOptions {
        &self.opts
    }

    /// Adds a regular file of `size` bytes read from `reader`, cut into chunks. Returns its
    /// handle; its chunk records are in [`BlobData::files`] once the data is finished.
    pub fn add_file(&mut self, reader: &mut dyn Read, size: u64) -> Result<FileId> {
        if self.opts.zran {
            return Err(Error::InvalidOptions(
                "a zran blob takes files through add_zran_file".into(),
            ));
        }
        self.add_file_located(reader, size, None)
    }

    /// Adds a regular file of a gzip layer (zran): `spans` says where each chunk's bytes are
    /// in the layer, asked just before and just after they are read from `reader` (the
    /// layer's decompressed stream, usually through the same [`ZranGenerator`]).
    ///
    /// [`ZranGenerator`]: crate::zran::ZranGenerator
    pub fn add_zran_file(
        &mut self,
        reader: &mut dyn Read,
        size: u64,
        spans: &mut dyn ChunkSpans,
    ) -> Result<FileId> {
        if !self.opts.zran {
            return Err(Error::InvalidOptions(
                "add_zran_file needs BlobOptions::zran".into(),
            ));
        }
        self.add_file_located(reader, size, Some(spans))
    }

    fn add_file_located(
        &mut self,
        reader: &mut dyn Read,
        size: u64,
        mut spans: Option<&mut dyn ChunkSpans>,
    ) -> Result<FileId> {
        let cs = u64::from(self.opts.chunk_size);
        let nchunks = size.div_ceil(cs);
        if nchunks > 1 << 24 {
            return Err(Error::Unrepresentable(format!(
                "a file of {size} bytes needs {nchunks} chunks, more than 2^24"
            )));
        }
        let file = self.files;
        self.files = self
            .files
            .checked_add(1)
            .ok_or_else(|| Error::Unrepresentable("more than 2^32 files".into()))?;
        let mut file_offset = 0u64;
        while file_offset < size {
            // At most one chunk: 16 MiB, or the options would not have validated.
            let len = usize::try_from((size - file_offset).min(cs))
                .map_err(|_| Error::Unrepresentable("a chunk larger than memory".into()))?;
            let part = Part {
                file,
                file_offset,
                batchable: self.opts.batchable(nchunks, len),
                zran: None,
                start: 0,
                len,
            };
            self.pack_chunk(reader, part, size, &mut spans)?;
            file_offset += len as u64;
        }
        Ok(FileId(file))
    }

    /// Reads one chunk into the job being gathered, sending that job first if the chunk would
    /// not fit in a chunk size's worth of buffer (so a job never holds more than one chunk
    /// size of data, as before gathering).
    fn pack_chunk(
        &mut self,
        reader: &mut dyn Read,
        mut part: Part,
        file_size: u64,
        spans: &mut Option<&mut dyn ChunkSpans>,
    ) -> Result<()> {
        let limit = self.opts.chunk_size as usize;
        if let Some((buf, parts)) = &self.packing {
            if buf.filled + part.len > limit || parts.len() >= MAX_PARTS_PER_JOB {
                self.send_packed()?;
            }
        }
        let (mut buf, mut parts) = match self.packing.take() {
            Some(p) => p,
            None => {
                let mut buf = self.buffer()?;
                buf.filled = 0;
                (buf, Vec::new())
            }
        };
        part.start = buf.filled;
        buf.filled += part.len;
        if buf.data.len() < buf.filled {
            buf.data.resize(buf.filled, 0);
        }
        let at = part.file_offset;
        let zran_fail = |e: ZranError| {
            Error::io(
                format!("locating file data at offset {at} in the gzip layer"),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        };
        if let Some(s) = spans {
            s.begin_chunk().map_err(zran_fail)?;
        }
        reader
            .read_exact(&mut buf.data[part.start..buf.filled])
            .map_err(|e| {
                Error::io(
                    format!("reading file data at offset {at} of {file_size} bytes"),
                    e,
                )
            })?;
        if let Some(s) = spans {
            part.zran = Some(s.end_chunk().map_err(zran_fail)?);
        }
        parts.push(part);
        self.packing = Some((buf, parts));
        Ok(())
    }

    /// Hands the gathered chunks to the workers.
    fn send_packed(&mut self) -> Result<()> {
        let Some((buf, parts)) = self.packing.take() else {
            return Ok(());
        };
        let job = Job {
            seq: self.next_seq,
            parts,
            buf,
        };
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| Error::Pipeline("writer already finished".into()))?;
        jobs.send(job)
            .map_err(|_| Error::Pipeline("worker threads stopped".into()))?;
        self.next_seq += 1;
        Ok(())
    }

    /// Adds a file held in memory.
    pub fn add_bytes(&mut self, data: &[u8]) -> Result<FileId> {
        let mut r = data;
        self.add_file(&mut r, data.len() as u64)
    }

    /// Waits for every chunk, then writes the sections that follow the chunk data: the
    /// `image.blob` header, the blob meta and the digest array, as the options ask.
    pub fn finish_data(self) -> Result<BlobData<W>> {
        if self.opts.zran {
            return Err(Error::InvalidOptions(
                "a zran blob is finished with finish_zran".into(),
            ));
        }
        self.finish_with(None)
    }

    /// [`finish_data`](Self::finish_data) for a zran blob: `contexts` are the generator's,
    /// and the data blob is the gzip layer, `layer_id` (hex sha256) of `layer_size` bytes.
    pub fn finish_zran(
        self,
        contexts: Vec<ZranContext>,
        layer_id: String,
        layer_size: u64,
    ) -> Result<BlobData<W>> {
        if !self.opts.zran {
            return Err(Error::InvalidOptions(
                "finish_zran needs BlobOptions::zran".into(),
            ));
        }
        self.finish_with(Some((contexts, layer_id, layer_size)))
    }

    fn finish_with(mut self, zran: Option<(Vec<ZranContext>, String, u64)>) -> Result<BlobData<W>> {
        self.send_packed()?;
        drop(self.jobs.take());
        while self.next_to_place < self.next_seq {
            self.place_one_result()?;
        }
        for w in self.workers.drain(..) {
            w.join()
                .map_err(|_| Error::Pipeline("a worker thread panicked".into()))?;
        }
        // The chunk buffers are done with; sealing should not hold them.
        self.free = Vec::new();
        let mut p = self
            .placement
            .take()
            .ok_or_else(|| Error::Pipeline("writer already finished".into()))?;
        p.files.resize_with(self.files as usize, Vec::new);
        let layer = zran.map(|(contexts, id, size)| {
            p.zran_contexts = contexts;
            (id, size)
        });
        BlobData::seal(p, layer)
    }
}

impl<W: Write> Drop for BlobWriter<W> {
    fn drop(&mut self) {
        // Closing the job queue ends the workers once they have drained it.
        drop(self.jobs.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Starts the workers: each digests and compresses jobs until the queue closes.
fn spawn_workers(
    opts: &BlobOptions,
    jobs: &Receiver<Job>,
    done: &Sender<Done>,
    dict: Option<ChunkDict>,
) -> Result<Vec<JoinHandle<()>>> {
    let mut workers = Vec::with_capacity(opts.threads);
    let claims = Arc::new(Claims::new(dict));
    for _ in 0..opts.threads {
        let (jobs, done, claims) = (jobs.clone(), done.clone(), Arc::clone(&claims));
        let (compressor, digester, crc) = (opts.compressor, opts.digester, opts.crc32);
        let spawned = std::thread::Builder::new().spawn(move || {
            let mut ctx = CompressContext::new();
            let mut scratch = Vec::new();
            for job in jobs {
                if done
                    .send(process(
                        &mut ctx,
                        &mut scratch,
                        &claims,
                        job,
                        compressor,
                        digester,
                        crc,
                    ))
                    .is_err()
                {
                    return;
                }
            }
        });
        workers.push(
            spawned.map_err(|e| Error::Pipeline(format!("cannot start a worker thread: {e}")))?,
        );
    }
    Ok(workers)
}

/// Each part's digest, CRC and compression; compressed bytes go one after another into the
/// job's `out` buffer.
fn process(
    ctx: &mut CompressContext,
    scratch: &mut Vec<u8>,
    claims: &Claims,
    mut job: Job,
    compressor: Compressor,
    digester: Digester,
    crc: bool,
) -> Done {
    let mut parts = Vec::with_capacity(job.parts.len());
    let mut failure = None;
    let mut out = std::mem::take(&mut job.buf.out);
    out.clear();
    for (i, part) in (0u64..).zip(&job.parts) {
        let data = &job.buf.data[part.start..part.start + part.len];
        let digest = rafs_format::digest::digest(digester, data);
        let crc32 = if crc { crc32c::crc32c(data) } else { 0 };
        let out_start = out.len();
        let kept_as_is = part.batchable || part.zran.is_some() || failure.is_some();
        // Parts of a job are at most MAX_PARTS_PER_JOB, so positions keep stream order.
        let position = job.seq * MAX_PARTS_PER_JOB as u64 + i;
        let skipped_duplicate =
            !kept_as_is && claims.duplicates_earlier(&digest, data.len(), position);
        let compressed = if kept_as_is || skipped_duplicate {
            false
        } else {
            match ctx.compress(compressor, data, scratch) {
                Ok(c) => {
                    if c {
                        out.extend_from_slice(scratch);
                    }
                    c
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        };
        parts.push(PartDone {
            part: *part,
            out_start,
            out_len: out.len() - out_start,
            digest,
            crc32,
            compressed,
            skipped_duplicate,
        });
    }
    job.buf.out = out;
    Done {
        seq: job.seq,
        parts,
        buf: job.buf,
        failure,
    }
}

/// A blob whose chunk data and metadata sections are written; the bootstrap (if inlined) and
/// the ToC are still to come.
pub struct BlobData<W: Write> {
    p: Placement<W>,
    toc: Vec<TocEntry>,
    features: BlobFeatures,
    meta: BlobMetaLocation,
    size_before_bootstrap: u64,
    /// zran: the data blob (the gzip layer): its id and size.
    layer: Option<(String, u64)>,
    /// Chunk records of every file added, indexed by [`FileId`], in file order.
    pub files: Vec<Vec<ChunkInfo>>,
    /// The blob table the records' `blob_index` refers to.
    pub blob_table: Vec<BlobTableEntry>,
}

impl<W: Write> BlobData<W> {
    fn seal(mut p: Placement<W>, layer: Option<(String, u64)>) -> Result<Self> {
        p.flush_batch()?;
        let opts = p.opts.clone();
        let chunks = p.entries.len();
        let mut toc = Vec::new();
        let features = sealed_features(&opts, chunks);
        // Without an array, v6 keeps the header's default compressor (lz4_block); v5 has no
        // such field.
        let mut meta = BlobMetaLocation {
            compressor: if opts.fs_version == FsVersion::V6 {
                Compressor::Lz4Block.to_u32()
            } else {
                0
            },
            ..Default::default()
        };
        // A zran blob holds no chunk data, so no `image.blob` section.
        if chunks > 0 && opts.tar_headers() && !opts.zran {
            toc.push(p.write_data_header()?);
        }
        let features = if opts.fs_version == FsVersion::V6 && p.uncompressed_offset > 0 {
            let features = features | BlobFeatures::ALIGNED;
            meta = p.write_blob_meta(features, &mut toc)?;
            features
        } else {
            features
        };
        if opts.blob_toc && chunks > 0 {
            toc.push(p.write_digest_array()?);
        }
        let size_before_bootstrap = p.pos;
        let files = std::mem::take(&mut p.files);
        let blob_table = p.table.clone();
        Ok(BlobData {
            p,
            toc,
            features,
            meta,
            size_before_bootstrap,
            layer,
            files,
            blob_table,
        })
    }

    /// Whether any chunk was stored (a layer of directories and empty files stores none, and
    /// then has no data blob unless a bootstrap is inlined).
    pub fn has_data(&self) -> bool {
        !self.p.entries.is_empty()
    }

    /// Chunks stored in this blob.
    pub fn chunk_count(&self) -> u32 {
        // `store` refused a chunk index past MAX_CHUNKS_PER_BLOB, so the count fits.
        u32::try_from(self.p.entries.len()).unwrap_or(MAX_CHUNKS_PER_BLOB)
    }

    /// Chunk-info entries of the stored chunks, in chunk-index order.
    pub fn chunk_entries(&self) -> &[CiEntry] {
        &self.p.entries
    }

    fn blob_entry(&self, blob_id: String, compressed_size: u64) -> Blob {
        let o = &self.p.opts;
        // A zran blob-table entry names the gzip layer, whatever was written.
        let (blob_id, compressed_size) = match &self.layer {
            Some((id, size)) => (id.clone(), *size),
            None => (blob_id, compressed_size),
        };
        let mut b = Blob::new(blob_id, o.compressor, o.digester, o.chunk_size);
        b.chunk_count = self.chunk_count();
        b.features = self.features;
        b.compressed_size = compressed_size;
        b.uncompressed_size = self.p.uncompressed_offset;
        b.meta = self.meta;
        if let Some(cipher) = &o.cipher {
            cipher.record_in(&mut b);
        }
        b
    }

    /// The blob-table entry an **inlined** bootstrap records for this blob: the placeholder
    /// id, and as compressed size the blob's size before the bootstrap (blob.md §9).
    pub fn inline_blob_entry(&self) -> Blob {
        self.blob_entry(
            INLINE_BLOB_ID_PLACEHOLDER.into(),
            self.size_before_bootstrap,
        )
    }

    /// The finished blob's table entry; a separate bootstrap also records the ToC and, for
    /// zran, the metadata blob nydusd fetches (blob.md §11).
    fn separate_entry(
        &self,
        blob_id: String,
        size: u64,
        toc_digest: [u8; 32],
        toc_size: u32,
    ) -> Blob {
        let mut blob = self.blob_entry(blob_id, size);
        if !self.p.opts.inline_bootstrap {
            blob.toc_digest = toc_digest;
            blob.toc_size = toc_size;
            if self.p.opts.zran {
                blob.meta_digest = self.p.hash.clone().finalize().into();
                blob.meta_size = size;
            }
        }
        blob
    }

    /// Appends the inlined bootstrap (when the options ask for one) and the ToC, and returns
    /// the finished blob. `bootstrap` must be `Some` exactly when `inline_bootstrap` is set.
    pub fn finish(mut self, bootstrap: Option<&[u8]>) -> Result<FinishedBlob<W>> {
        let opts = self.p.opts.clone();
        match (opts.inline_bootstrap, bootstrap) {
            (true, Some(boot)) => {
                let (payload, compressor) = if opts.blob_toc {
                    let mut out = Vec::new();
                    if crate::compress::compress(Compressor::Zstd, boot, &mut out)? {
                        (out, Compressor::Zstd)
                    } else {
                        (boot.to_vec(), Compressor::None)
                    }
                } else {
                    (boot.to_vec(), Compressor::None)
                };
                let offset = self.p.pos;
                self.p.write(&payload, true)?;
                self.p
                    .write(&tar_header(ENTRY_BOOTSTRAP, payload.len() as u64), true)?;
                self.toc.push(TocEntry {
                    name: ENTRY_BOOTSTRAP.into(),
                    compressor,
                    uncompressed_digest: Sha256::digest(boot).into(),
                    compressed_offset: offset,
                    compressed_size: payload.len() as u64,
                    uncompressed_size: boot.len() as u64,
                });
            }
            (false, None) => {}
            (true, None) => {
                return Err(Error::InvalidOptions(
                    "inline_bootstrap is set but no bootstrap was given".into(),
                ))
            }
            (false, Some(_)) => {
                return Err(Error::InvalidOptions(
                    "a bootstrap was given but inline_bootstrap is not set".into(),
                ))
            }
        }
        let mut toc_digest = [0u8; 32];
        let mut toc_size = 0u32;
        let wrote_anything = self.p.pos > 0;
        if opts.blob_toc && wrote_anything {
            let mut bytes = Vec::with_capacity(self.toc.len() * 128 + 512);
            for e in &self.toc {
                bytes.extend_from_slice(&e.to_bytes());
            }
            let len = bytes.len() as u64;
            bytes.extend_from_slice(&tar_header(ENTRY_TOC, len));
            self.p.write(&bytes, true)?;
            toc_digest = Sha256::digest(&bytes).into();
            toc_size = field_u32("ToC size", bytes.len())?;
        }
        self.p
            .sink
            .flush()
            .map_err(|e| Error::io("flushing the blob", e))?;
        let size = self.p.pos;
        let blob_id = rafs_format::hex(&self.p.hash.clone().finalize());
        let blob = self.separate_entry(blob_id.clone(), size, toc_digest, toc_size);
        let sink = self
            .p
            .sink
            .into_inner()
            .map_err(|e| Error::io("flushing the blob", e.into_error()))?;
        Ok(FinishedBlob {
            sink,
            blob_id,
            size,
            blob,
            toc: if opts.blob_toc { self.toc } else { Vec::new() },
            files: self.files,
            blob_table: self.blob_table,
        })
    }
}

/// A finished blob.
pub struct FinishedBlob<W> {
    /// The sink, flushed.
    pub sink: W,
    /// The blob id: sha256 of every byte written except the digest array (hex).
    pub blob_id: String,
    /// Bytes written; 0 when there was nothing to write (no chunks, no inlined bootstrap).
    pub size: u64,
    /// The blob-table entry a **separate** bootstrap records for this blob.
    pub blob: Blob,
    /// The ToC entries written (empty without `blob_toc`).
    pub toc: Vec<TocEntry>,
    /// Chunk records of every file added, indexed by [`FileId`].
    pub files: Vec<Vec<ChunkInfo>>,
    /// The blob table the records' `blob_index` refers to.
    pub blob_table: Vec<BlobTableEntry>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk a worker left uncompressed as a duplicate, for which placement finds no
    /// earlier copy (two claim keys colliding), is compressed by placement and stored exactly
    /// as a worker would have stored it.
    #[test]
    fn a_skipped_chunk_without_an_earlier_copy_is_stored_as_a_worker_would() {
        let opts = BlobOptions::new(FsVersion::V6);
        let data: Vec<u8> = b"a chunk that compresses well. ".repeat(300);
        let digest = rafs_format::digest::digest(opts.digester, &data);
        let mut out = Vec::new();
        let compressed = crate::compress::compress(opts.compressor, &data, &mut out).unwrap();
        assert!(compressed, "the test needs a chunk that compresses");
        let by_worker = Piece {
            file: 0,
            file_offset: 0,
            batchable: false,
            zran: None,
            data: &data,
            out: &out,
            digest,
            crc32: crc32c::crc32c(&data),
            compressed,
            skipped_duplicate: false,
        };
        let skipped = Piece {
            out: &[],
            compressed: false,
            skipped_duplicate: true,
            ..by_worker
        };
        let mut worker = Placement::new(Vec::new(), opts.clone(), None);
        worker.place(&by_worker).unwrap();
        let mut late = Placement::new(Vec::new(), opts, None);
        late.place(&skipped).unwrap();
        assert_eq!(late.files, worker.files);
        assert_eq!(late.entries, worker.entries);
        let bytes = |p: Placement<Vec<u8>>| p.sink.into_inner().unwrap();
        let (late, worker) = (bytes(late), bytes(worker));
        assert_eq!(late.len(), out.len());
        assert_eq!(late, worker);
    }
}
