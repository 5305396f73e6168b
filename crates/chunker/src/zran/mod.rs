//! Random access into gzip layers ("zran", `nydus-image create --type targz-ref`): the OCI
//! layer's `.tar.gz` stays the data blob, and the blob meta says how to start inflating it in
//! the middle.
//!
//! A *context* is a point where a deflate block begins: its offset in the gzip input and in
//! the decompressed tar, the bits of the previous byte that belong to the block, and the 32 KiB
//! of output before it (the window back-references may reach into). Each chunk names its
//! context and where its bytes lie in the context's output (blob.md §11). The contexts follow
//! the chunk-info entries in the blob meta as 40-byte records, then all their windows.
//!
//! [`ZranGenerator`] records contexts while decompressing a layer; [`ZranTable`] decodes and
//! checks them from a blob meta; [`read_chunk`] inflates one chunk from the gzip blob.

mod generator;
mod zstream;

pub use generator::{SharedZran, ZranGenerator};

use crate::source::ReadAt;
use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Most contexts one blob may have (the reference's bound).
pub const MAX_CONTEXTS: usize = 1 << 24;
/// Size of a saved window.
pub const WINDOW_SIZE: usize = zstream::WINDOW;
/// Most input one context may span when read back: the reference's contexts stop growing at
/// 512 KiB of input plus one chunk (16 MiB at most) and what inflate had read ahead, so a
/// larger claim is a corrupt table, not a reason to read that much.
pub const MAX_CONTEXT_INPUT: u32 = 64 << 20;
/// Most output one context may span when read back (2 MiB plus a 16 MiB chunk, rounded up).
pub const MAX_CONTEXT_OUTPUT: u32 = 64 << 20;

/// Why zran data could not be indexed or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ZranError {
    /// The gzip data does not inflate.
    #[error("gzip: {0}")]
    Inflate(String),
    /// More contexts than a blob meta may hold.
    #[error("more than {MAX_CONTEXTS} inflate contexts")]
    TooManyContexts,
    /// `end_chunk` without `begin_chunk`.
    #[error("a chunk ended that never began")]
    NoChunk,
    /// A size does not fit its 32-bit field.
    #[error("{what} of {value} bytes does not fit 32 bits")]
    TooLarge {
        /// The field.
        what: &'static str,
        /// Its value.
        value: u64,
    },
}

/// One inflate context, as the builder records it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ZranContext {
    /// Offset in the gzip input where the context's first block begins (rounded up to a byte:
    /// `ctx_bits` bits of the byte before belong to it).
    pub in_offset: u64,
    /// Offset in the decompressed stream.
    pub out_offset: u64,
    /// Input bytes the context's chunks need.
    pub in_len: u32,
    /// Output bytes of the context's chunks (from `out_offset`).
    pub out_len: u32,
    /// The byte before `in_offset`, whose top `ctx_bits` bits start the block.
    pub ctx_byte: u8,
    /// Bits of `ctx_byte` that belong to the block (0-7).
    pub ctx_bits: u8,
    /// The window: up to 32 KiB of output before `out_offset`.
    pub dict: Vec<u8>,
}

/// Where one chunk's bytes are, as the builder records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ZranChunk {
    /// Index of its context.
    pub context: u32,
    /// Offset of its bytes in the context's output.
    pub offset: u32,
    /// Its length.
    pub len: u32,
    /// Input consumed before its bytes were read (the chunk's compressed offset).
    pub in_pos: u64,
    /// Input consumed while they were read (the chunk's compressed size).
    pub in_len: u32,
}

/// The 40-byte on-disk context record (`ZranInflateContext`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ContextRecord {
    /// Offset in the gzip input.
    pub in_offset: U64,
    /// Offset in the decompressed stream.
    pub out_offset: U64,
    /// Offset of the window in the window area.
    pub dict_offset: U64,
    /// Input length.
    pub in_len: U32,
    /// Output length.
    pub out_len: U32,
    /// Window length.
    pub dict_size: U32,
    /// The byte before `in_offset`.
    pub ctx_byte: u8,
    /// Its bits that belong to the first block.
    pub ctx_bits: u8,
    /// Zero.
    pub reserved: [u8; 2],
}

/// Size of a [`ContextRecord`].
pub const CONTEXT_RECORD_SIZE: usize = 40;

/// The context table as it follows the chunk-info entries: the records, then every window.
pub fn encode_contexts(contexts: &[ZranContext]) -> Vec<u8> {
    let dicts: usize = contexts.iter().map(|c| c.dict.len()).sum();
    let mut out = Vec::with_capacity(contexts.len() * CONTEXT_RECORD_SIZE + dicts);
    let mut dict_offset = 0u64;
    for c in contexts {
        let rec = ContextRecord {
            in_offset: c.in_offset.into(),
            out_offset: c.out_offset.into(),
            dict_offset: dict_offset.into(),
            in_len: c.in_len.into(),
            out_len: c.out_len.into(),
            // A window is at most 32 KiB.
            dict_size: U32::new(u32::try_from(c.dict.len().min(WINDOW_SIZE)).unwrap_or(0)),
            ctx_byte: c.ctx_byte,
            ctx_bits: c.ctx_bits,
            reserved: [0; 2],
        };
        out.extend_from_slice(rec.as_bytes());
        dict_offset += c.dict.len() as u64;
    }
    for c in contexts {
        out.extend_from_slice(&c.dict);
    }
    out
}

/// A decoded, checked context table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZranTable {
    records: Vec<ContextRecord>,
    windows: Vec<u8>,
}

/// What is wrong with a context table: the record's index and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFault {
    /// Index of the bad record (`None`: the table as a whole).
    pub context: Option<u32>,
    /// Byte offset of the fault in the table.
    pub offset: u64,
    /// The field.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl ZranTable {
    /// Decodes `count` records and their windows from `bytes` (the table region of the
    /// uncompressed blob meta), checking every window against the window area and every
    /// size against the read-back bounds.
    pub fn decode(bytes: &[u8], count: u32) -> Result<ZranTable, TableFault> {
        let fault = |context: Option<u32>, offset: usize, field, reason: String| TableFault {
            context,
            offset: offset as u64,
            field,
            reason,
        };
        let records_len = (count as usize)
            .checked_mul(CONTEXT_RECORD_SIZE)
            .filter(|&l| l <= bytes.len())
            .ok_or_else(|| {
                fault(
                    None,
                    0,
                    "context count",
                    format!("{count} records do not fit {} bytes", bytes.len()),
                )
            })?;
        let (records, _) = <[ContextRecord]>::ref_from_prefix_with_elems(bytes, count as usize)
            .map_err(|_| fault(None, 0, "context count", "records misaligned".into()))?;
        let windows = &bytes[records_len..];
        for (i, r) in records.iter().enumerate() {
            let at = i * CONTEXT_RECORD_SIZE;
            let idx = u32::try_from(i).ok();
            let dict_end = r
                .dict_offset
                .get()
                .checked_add(u64::from(r.dict_size.get()));
            if r.dict_size.get() as usize > WINDOW_SIZE
                || dict_end.is_none_or(|e| e > windows.len() as u64)
            {
                return Err(fault(
                    idx,
                    at + 16,
                    "dict_offset",
                    format!(
                        "window {}+{} outside the {}-byte window area (or over 32 KiB)",
                        r.dict_offset.get(),
                        r.dict_size.get(),
                        windows.len()
                    ),
                ));
            }
            if r.ctx_bits > 7 {
                return Err(fault(
                    idx,
                    at + 37,
                    "ctx_bits",
                    format!("{} > 7", r.ctx_bits),
                ));
            }
            if r.in_len.get() > MAX_CONTEXT_INPUT || r.out_len.get() > MAX_CONTEXT_OUTPUT {
                return Err(fault(
                    idx,
                    at + 24,
                    "in_len/out_len",
                    format!(
                        "{}/{} bytes; at most {MAX_CONTEXT_INPUT}/{MAX_CONTEXT_OUTPUT}",
                        r.in_len.get(),
                        r.out_len.get()
                    ),
                ));
            }
            if r.in_offset
                .get()
                .checked_add(u64::from(r.in_len.get()))
                .is_none()
            {
                return Err(fault(idx, at, "in_offset", "input range overflows".into()));
            }
        }
        Ok(ZranTable {
            records: records.to_vec(),
            windows: windows.to_vec(),
        })
    }

    /// Number of contexts.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Context `index` and its window.
    pub fn get(&self, index: u32) -> Option<(&ContextRecord, &[u8])> {
        let r = self.records.get(index as usize)?;
        // decode checked the window lies inside the area.
        let start = usize::try_from(r.dict_offset.get()).ok()?;
        let w = self
            .windows
            .get(start..start + r.dict_size.get() as usize)?;
        Some((r, w))
    }
}

/// Why a zran chunk could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkFault {
    /// The chunk lies outside its context's output.
    #[error("the chunk lies outside its context's output")]
    OutsideContext,
    /// The context's input lies outside the gzip blob.
    #[error("the context's input lies outside the gzip layer")]
    InputOutsideBlob,
    /// Reading the gzip blob failed.
    #[error("reading the gzip layer: {0}")]
    Read(String),
    /// Inflate failed or ended before the chunk's bytes.
    #[error("inflate: {0}")]
    Inflate(String),
}

/// Inflates `len` bytes at `offset` of context `ctx` (with window `dict`) from the gzip blob
/// `src`, into `out`. The context's input is read whole (its size was bounded when the table
/// was decoded); output before the chunk goes through a small scratch buffer.
pub fn read_chunk(
    src: &dyn ReadAt,
    ctx: &ContextRecord,
    dict: &[u8],
    offset: u32,
    len: u32,
    out: &mut Vec<u8>,
) -> Result<(), ChunkFault> {
    let end = u64::from(offset) + u64::from(len);
    if end > u64::from(ctx.out_len.get()) {
        return Err(ChunkFault::OutsideContext);
    }
    let in_start = ctx.in_offset.get();
    let in_len = ctx.in_len.get().min(MAX_CONTEXT_INPUT);
    if in_start.saturating_add(u64::from(in_len)) > src.size() {
        return Err(ChunkFault::InputOutsideBlob);
    }
    let mut input = vec![0u8; in_len as usize];
    src.read_exact_at(&mut input, in_start)
        .map_err(|e| ChunkFault::Read(e.to_string()))?;
    let mut inflater = ContextInflater::start(ctx, dict, input)?;
    out.clear();
    out.resize(len as usize, 0);
    let mut skip = u64::from(offset);
    let mut scratch = vec![0u8; 64 * 1024];
    let mut filled = 0usize;
    while filled < len as usize {
        let target: &mut [u8] = if skip > 0 {
            let n = usize::try_from(skip.min(scratch.len() as u64)).unwrap_or(scratch.len());
            &mut scratch[..n]
        } else {
            &mut out[filled..]
        };
        let produced = inflater.step(target)?;
        if produced == 0 && inflater.input_empty() && !inflater.member_ended {
            return Err(ChunkFault::Inflate(
                "the context's input ends before the chunk".into(),
            ));
        }
        if skip > 0 {
            skip -= produced as u64;
        } else {
            filled += produced;
        }
    }
    Ok(())
}

/// A raw inflate started at a context, crossing gzip member boundaries as the reference's
/// decoder does (trailer and next header skipped).
struct ContextInflater {
    stream: zstream::ZStream,
    pending: Vec<u8>,
    next: usize,
    /// A member ended: its trailer and the next header come before more output.
    member_ended: bool,
}

impl ContextInflater {
    fn start(ctx: &ContextRecord, dict: &[u8], input: Vec<u8>) -> Result<Self, ChunkFault> {
        let fail = |what: &str| ChunkFault::Inflate(what.to_string());
        let mut stream =
            zstream::ZStream::new(zstream::RAW).ok_or_else(|| fail("cannot start inflate"))?;
        if ctx.ctx_bits != 0 {
            let bits = ctx.ctx_bits & 7;
            if !stream.prime(bits, ctx.ctx_byte >> (8 - bits)) {
                return Err(fail("cannot prime inflate with the context's bits"));
            }
        }
        if !stream.set_dictionary(dict) {
            return Err(fail("cannot set the context's window"));
        }
        Ok(ContextInflater {
            stream,
            pending: input,
            next: 0,
            member_ended: false,
        })
    }

    fn input_empty(&self) -> bool {
        self.next >= self.pending.len()
    }

    /// Inflates into `out`; returns the bytes produced (0 when it needs more input).
    fn step(&mut self, out: &mut [u8]) -> Result<usize, ChunkFault> {
        if std::mem::take(&mut self.member_ended) {
            self.skip_member_boundary()?;
        }
        let s = self
            .stream
            .inflate(&self.pending[self.next..], out, zstream::NO_FLUSH);
        self.next += s.consumed;
        match s.ret {
            zstream::OK => Ok(s.produced),
            zstream::Z_BUF_ERROR if self.input_empty() => Ok(s.produced),
            zstream::Z_STREAM_END => {
                self.member_ended = true;
                Ok(s.produced)
            }
            code => Err(ChunkFault::Inflate(format!(
                "corrupt deflate data (zlib code {code})"
            ))),
        }
    }

    /// After a member's last block: its 8-byte trailer, then the next member's header, then
    /// raw inflate again.
    fn skip_member_boundary(&mut self) -> Result<(), ChunkFault> {
        let fail = |what: &str| ChunkFault::Inflate(what.to_string());
        if self.pending.len() - self.next < 8 {
            return Err(fail("the input does not hold the gzip trailer"));
        }
        self.next += 8;
        if !self.stream.reset_as(zstream::GZIP) {
            return Err(fail("cannot restart inflate"));
        }
        let mut discard = [0u8; 0];
        loop {
            let s = self
                .stream
                .inflate(&self.pending[self.next..], &mut discard, zstream::BLOCK);
            self.next += s.consumed;
            if s.ret != zstream::OK {
                return Err(fail("the next gzip member's header does not parse"));
            }
            if s.data_type & 0x80 != 0 {
                break;
            }
            if s.consumed == 0 {
                return Err(fail("the next gzip member's header is cut short"));
            }
        }
        if !self.stream.reset_as(zstream::RAW) {
            return Err(fail("cannot restart raw inflate"));
        }
        Ok(())
    }
}
