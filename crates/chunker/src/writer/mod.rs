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

mod options;
mod pipeline;
mod placement;
mod seal;
mod sections;

pub use options::BlobOptions;
pub use pipeline::BlobWriter;
pub use seal::{BlobData, FinishedBlob};
use sections::sealed_features;

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
