//! Building the random-access index of a gzip layer while it is read front to back: the
//! decompressed tar comes out of [`ZranGenerator`] (it is a `Read`), and around each chunk's
//! bytes the builder asks for the chunk's place ([`ZranGenerator::begin_chunk`],
//! [`ZranGenerator::end_chunk`]).
//!
//! The rules are the reference's (nydus `utils/src/compress/zlib_random.rs` and
//! `storage/src/meta/zran.rs`), because the contexts and every chunk's compressed range end up
//! in the blob meta: input is read in 64 KiB pieces, inflate stops at every deflate block
//! boundary, and a new context starts at the latest boundary when the current one has 512 KiB
//! of input or 1 MiB of output (2 MiB with the next chunk), or when a chunk starts far past a
//! large context, or after a gzip member ends.

use super::zstream::{self, ZStream};
use super::{ZranChunk, ZranContext, ZranError, MAX_CONTEXTS};
use crossbeam_channel::{bounded, Receiver, Sender};
use sha2::{Digest as _, Sha256};
use std::io::{self, Read};

/// Input is read in pieces of this size (the reference's buffer; where a piece ends decides
/// how much input inflate has consumed at a chunk boundary).
const INPUT_PIECE: usize = 64 * 1024;
/// A context with at least this much input ends at the next chunk whose start lies more than
/// twice its input past it.
const MIN_CONTEXT_IN: u64 = 512 * 1024;
/// A context ends when it has half this much input.
const MAX_CONTEXT_IN: u64 = 1024 * 1024;
/// A context ends when its output and the next chunk would reach this.
const MAX_CONTEXT_OUT: u64 = 2 * 1024 * 1024;

/// Where inflate is, as the reference's `ZranCompInfo` records it.
#[derive(Debug, Clone, Copy, Default)]
struct Position {
    in_pos: u64,
    out_pos: u64,
    data_type: i32,
    previous_byte: u8,
    pending_bits: u8,
    stream_switched: bool,
}

/// Decompresses a gzip stream (one or more members) and records random-access contexts.
pub struct ZranGenerator<R> {
    source: R,
    stream: ZStream,
    input: Vec<u8>,
    /// Unconsumed input is `input[next..end]`.
    next: usize,
    end: usize,
    /// The byte before `input[0]` (the last one of the previous piece).
    last_byte: u8,
    /// zlib's `data_type` after the latest inflate call.
    data_type: i32,
    /// Input consumed since the current gzip member began (0 between members).
    member_in: u64,
    total_in: u64,
    total_out: u64,
    /// Hashes consumed input pieces on a thread of its own (sha256 of a layer costs about
    /// half of inflating it; on the inflating thread it would be the bottleneck).
    hasher: PieceHasher,
    input_size: u64,
    stream_switched: bool,
    /// The latest block boundary passed, and the window there.
    block: Position,
    block_dict: Vec<u8>,
    contexts: Vec<ZranContext>,
    current: Option<usize>,
    current_block_start: u64,
    chunk_out_start: u64,
    chunk_in_start: u64,
    chunk_size: u64,
}

fn inflate_error(what: &str, code: i32) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        ZranError::Inflate(format!("{what} (zlib code {code})")),
    )
}

impl<R: Read> ZranGenerator<R> {
    /// Starts on a gzip stream; `chunk_size` is the build's chunk size (the reference sizes
    /// contexts with it, not with each chunk's length).
    pub fn new(source: R, chunk_size: u32) -> io::Result<Self> {
        let stream =
            ZStream::new(zstream::GZIP).ok_or_else(|| inflate_error("cannot start inflate", 0))?;
        Ok(ZranGenerator {
            source,
            stream,
            input: vec![0; INPUT_PIECE],
            next: 0,
            end: 0,
            last_byte: 0,
            data_type: 0,
            member_in: 0,
            total_in: 0,
            total_out: 0,
            hasher: PieceHasher::start()?,
            input_size: 0,
            stream_switched: false,
            block: Position::default(),
            block_dict: Vec::new(),
            contexts: Vec::new(),
            current: None,
            current_block_start: 0,
            chunk_out_start: 0,
            chunk_in_start: 0,
            chunk_size: u64::from(chunk_size),
        })
    }

    /// Fills the input piece from the source: 64 KiB unless the source ends first.
    fn refill(&mut self) -> io::Result<usize> {
        if self.next > 0 {
            self.last_byte = self.input[self.next - 1];
        }
        // The consumed piece goes to the hasher; a recycled buffer takes its place.
        let mut done = std::mem::replace(&mut self.input, self.hasher.buffer());
        done.truncate(self.end);
        self.hasher.hash(done);
        self.input.resize(INPUT_PIECE, 0);
        let mut filled = 0;
        while filled < INPUT_PIECE {
            match self.source.read(&mut self.input[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.input_size += filled as u64;
        self.next = 0;
        self.end = filled;
        Ok(filled)
    }

    /// Where inflate is now; like the reference, asking clears the member-switch mark.
    fn position(&mut self) -> Position {
        let pending_bits = (self.data_type & 7) as u8;
        let previous_byte = if pending_bits == 0 {
            0
        } else if self.next == 0 {
            self.last_byte
        } else {
            self.input[self.next - 1]
        };
        Position {
            in_pos: self.total_in,
            out_pos: self.total_out,
            data_type: self.data_type,
            previous_byte,
            pending_bits,
            stream_switched: std::mem::take(&mut self.stream_switched),
        }
    }

    /// One inflate call into `out`; returns zlib's code and the bytes produced.
    fn inflate_into(&mut self, out: &mut [u8]) -> (i32, usize) {
        let step = self
            .stream
            .inflate(&self.input[self.next..self.end], out, zstream::BLOCK);
        self.next += step.consumed;
        self.total_in += step.consumed as u64;
        self.member_in += step.consumed as u64;
        self.total_out += step.produced as u64;
        self.data_type = step.data_type;
        (step.ret, step.produced)
    }

    /// At a block boundary (or right after a member's header), remembers it and its window.
    fn note_boundary(&mut self) -> io::Result<()> {
        let pos = self.position();
        if pos.data_type & 0x80 != 0 {
            if !self.stream.dictionary(&mut self.block_dict) {
                return Err(inflate_error("cannot read the inflate window", 0));
            }
            self.block = pos;
        }
        Ok(())
    }

    /// Inflates up to the first block boundary (the end of the gzip header) without output.
    fn pass_header(&mut self) -> io::Result<()> {
        loop {
            if self.next == self.end && self.refill()? == 0 {
                return Ok(());
            }
            let before = self.total_in;
            let (ret, _) = self.inflate_into(&mut []);
            match ret {
                zstream::OK => {
                    self.note_boundary()?;
                    if self.block.data_type & 0x80 != 0 {
                        return Ok(());
                    }
                }
                zstream::Z_BUF_ERROR if self.next == self.end => {}
                // Anything else (a bad header, no progress) is for the next read to report.
                _ => return Ok(()),
            }
            if self.total_in == before && self.next != self.end {
                return Ok(());
            }
        }
    }

    /// Begins a chunk: picks the context its bytes will be read through (a new one at the
    /// latest block boundary when the current one is full). Returns the context index.
    pub fn begin_chunk(&mut self) -> Result<u32, ZranError> {
        if self.total_out == 0 && self.block.data_type & 0x80 == 0 {
            // Nothing read yet: a context must begin after the gzip header, not on it. (A tar
            // parser has always read a header first, so the reference never gets here.)
            self.pass_header()
                .map_err(|e| ZranError::Inflate(e.to_string()))?;
        }
        let now = self.position();
        let index = match self.current {
            Some(i) => {
                let ctx = &self.contexts[i];
                let in_size = now.in_pos - ctx.in_offset;
                let out_size = now.out_pos - ctx.out_offset;
                // No boundary since the context began: it cannot start anywhere else.
                let first = self.block.in_pos == self.current_block_start;
                let full = !first
                    && (in_size >= MAX_CONTEXT_IN / 2
                        || out_size + self.chunk_size >= MAX_CONTEXT_OUT);
                let far = !first
                    && in_size > 2 * u64::from(ctx.in_len)
                    && u64::from(ctx.in_len) > MIN_CONTEXT_IN;
                if now.stream_switched || full || far {
                    self.new_context()?
                } else {
                    i
                }
            }
            None => self.new_context()?,
        };
        self.current = Some(index);
        self.chunk_out_start = now.out_pos;
        self.chunk_in_start = now.in_pos;
        u32::try_from(index).map_err(|_| ZranError::TooManyContexts)
    }

    fn new_context(&mut self) -> Result<usize, ZranError> {
        if self.contexts.len() > MAX_CONTEXTS {
            return Err(ZranError::TooManyContexts);
        }
        let b = self.block;
        self.contexts.push(ZranContext {
            in_offset: b.in_pos,
            out_offset: b.out_pos,
            in_len: 0,
            out_len: 0,
            ctx_byte: b.previous_byte,
            ctx_bits: b.pending_bits,
            dict: self.block_dict.clone(),
        });
        self.current_block_start = b.in_pos;
        Ok(self.contexts.len() - 1)
    }

    /// Ends the chunk begun last: where its bytes are, in the context and in the gzip input.
    pub fn end_chunk(&mut self) -> Result<ZranChunk, ZranError> {
        let now = self.position();
        let index = self.current.ok_or(ZranError::NoChunk)?;
        let (chunk_out, chunk_in) = (self.chunk_out_start, self.chunk_in_start);
        let ctx = &mut self.contexts[index];
        let field = |what: &'static str, v: u64| {
            u32::try_from(v).map_err(|_| ZranError::TooLarge { what, value: v })
        };
        ctx.out_len = field("context output", now.out_pos - ctx.out_offset)?;
        ctx.in_len = field("context input", now.in_pos - ctx.in_offset)?;
        Ok(ZranChunk {
            context: u32::try_from(index).map_err(|_| ZranError::TooManyContexts)?,
            offset: field("offset in context", chunk_out - ctx.out_offset)?,
            len: field("chunk length", now.out_pos - chunk_out)?,
            in_pos: chunk_in,
            in_len: field("chunk input", now.in_pos - chunk_in)?,
        })
    }

    /// The contexts recorded so far.
    pub fn contexts(&self) -> &[ZranContext] {
        &self.contexts
    }

    /// Takes the contexts (at the end of the build).
    pub fn take_contexts(&mut self) -> Vec<ZranContext> {
        std::mem::take(&mut self.contexts)
    }
}

impl<R: Read> Read for ZranGenerator<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut count = 0;
        loop {
            if self.next == self.end && self.refill()? == 0 {
                if self.member_in > 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        ZranError::Inflate("the gzip stream ends inside a member".into()),
                    ));
                }
                return Ok(count);
            }
            let (ret, produced) = self.inflate_into(&mut buf[count..]);
            count += produced;
            match ret {
                zstream::Z_STREAM_END => {
                    if !self.stream.reset() {
                        return Err(inflate_error("cannot restart inflate", ret));
                    }
                    self.member_in = 0;
                    self.stream_switched = true;
                }
                zstream::OK => {
                    self.note_boundary()?;
                    if count > 0 {
                        return Ok(count);
                    }
                }
                zstream::Z_BUF_ERROR if self.next == self.end => {}
                code => return Err(inflate_error("corrupt gzip data", code)),
            }
        }
    }
}

/// A [`ZranGenerator`] shared between the reader of the decompressed stream (a tar parser
/// that owns its input) and the blob writer that asks where each chunk is. Both sides run on
/// one thread; the lock is never contended.
pub struct SharedZran<R>(std::sync::Arc<std::sync::Mutex<ZranGenerator<R>>>);

impl<R> Clone for SharedZran<R> {
    fn clone(&self) -> Self {
        SharedZran(self.0.clone())
    }
}

impl<R: Read> SharedZran<R> {
    /// Shares `generator`.
    pub fn new(generator: ZranGenerator<R>) -> Self {
        SharedZran(std::sync::Arc::new(std::sync::Mutex::new(generator)))
    }

    /// Runs `f` on the generator.
    pub fn with<T>(&self, f: impl FnOnce(&mut ZranGenerator<R>) -> T) -> T {
        // A panic while holding the lock already failed the build; the state is not reused.
        let mut g = match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut g)
    }
}

impl<R: Read> Read for SharedZran<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.with(|g| g.read(buf))
    }
}

impl<R: Read> crate::writer::ChunkSpans for SharedZran<R> {
    fn begin_chunk(&mut self) -> Result<(), ZranError> {
        self.with(|g| g.begin_chunk().map(|_| ()))
    }
    fn end_chunk(&mut self) -> Result<ZranChunk, ZranError> {
        self.with(ZranGenerator::end_chunk)
    }
}

impl<R: Read> ZranGenerator<R> {
    /// Reads the layer to its end (a tar parser stops at the end-of-archive blocks; the blob
    /// id covers every byte), then hands over the contexts, the layer's sha256 and its size.
    pub fn finish(&mut self) -> io::Result<(Vec<ZranContext>, [u8; 32], u64)> {
        let mut scratch = vec![0u8; INPUT_PIECE];
        while self.read(&mut scratch)? > 0 {}
        let mut last = std::mem::take(&mut self.input);
        last.truncate(self.end);
        self.next = 0;
        self.end = 0;
        self.hasher.hash(last);
        let digest = self.hasher.finish()?;
        Ok((self.take_contexts(), digest, self.input_size))
    }
}

/// sha256 of the input pieces, in order, on a thread of its own; buffers come back for reuse.
struct PieceHasher {
    pieces: Option<Sender<Vec<u8>>>,
    free: Receiver<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<[u8; 32]>>,
}

impl PieceHasher {
    fn start() -> io::Result<Self> {
        let (pieces, todo) = bounded::<Vec<u8>>(8);
        let (give_back, free) = bounded::<Vec<u8>>(8);
        let thread = std::thread::Builder::new()
            .name("rafs-zran-hash".into())
            .spawn(move || {
                let mut hash = Sha256::new();
                for mut piece in todo {
                    hash.update(&piece);
                    piece.clear();
                    let _ = give_back.try_send(piece);
                }
                hash.finalize().into()
            })?;
        Ok(PieceHasher {
            pieces: Some(pieces),
            free,
            thread: Some(thread),
        })
    }

    fn buffer(&self) -> Vec<u8> {
        self.free.try_recv().unwrap_or_default()
    }

    fn hash(&mut self, piece: Vec<u8>) {
        if piece.is_empty() {
            return;
        }
        if let Some(tx) = &self.pieces {
            // The thread only stops when the sender is dropped, in finish.
            let _ = tx.send(piece);
        }
    }

    fn finish(&mut self) -> io::Result<[u8; 32]> {
        drop(self.pieces.take());
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .ok_or_else(|| io::Error::other("the layer's hashing thread stopped"))
    }
}

impl Drop for PieceHasher {
    fn drop(&mut self) {
        drop(self.pieces.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
