//! The layer stream: compression detected from its first bytes (gzip, zstd, or a plain tar),
//! decompressed on a thread of its own ahead of the tar parser, byte counters for progress
//! and error offsets, and an optional sha256 of the tar (the blob id of a tarfs image).

use rafs_chunker::zran::{SharedZran, ZranGenerator};
use sha2::{Digest as _, Sha256};
use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

/// Compression of the layer stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (several members allowed).
    Gzip,
    /// zstd (several frames allowed).
    Zstd,
}

impl Compression {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// An error of the decompressor, carried inside the `io::Error` the tar parser passes up.
#[derive(Debug)]
pub struct DecodeFailure {
    /// `gzip` or `zstd`.
    pub algorithm: &'static str,
    /// The decoder's message.
    pub reason: String,
}

impl std::fmt::Display for DecodeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "corrupt {} stream: {}", self.algorithm, self.reason)
    }
}

impl std::error::Error for DecodeFailure {}

/// A count of bytes, shared between a reader and whoever reports it (for the layer's input,
/// another thread: the decompressing one reads it).
#[derive(Debug, Clone, Default)]
pub struct ByteCount(Arc<AtomicU64>);

impl ByteCount {
    /// Bytes counted so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counts bytes read through it.
pub struct Counting<R> {
    inner: R,
    count: ByteCount,
}

impl<R> Counting<R> {
    /// Wraps a reader; the counter is shared.
    pub fn new(inner: R, count: ByteCount) -> Self {
        Counting { inner, count }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.0.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Tags a decompressor's errors so they can be told from tar errors.
struct Tagged<R> {
    inner: R,
    algorithm: &'static str,
}

impl<R: Read> Read for Tagged<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            let kind = if e.kind() == io::ErrorKind::UnexpectedEof {
                io::ErrorKind::UnexpectedEof
            } else {
                io::ErrorKind::InvalidData
            };
            io::Error::new(
                kind,
                DecodeFailure {
                    algorithm: self.algorithm,
                    reason: e.to_string(),
                },
            )
        })
    }
}

/// Hashes the bytes read through it (the tarfs blob id) when enabled.
pub struct Hashing<R> {
    inner: R,
    hash: Option<Sha256>,
}

impl<R: Read> Hashing<R> {
    /// Wraps a reader, hashing only when `enabled`.
    pub fn new(inner: R, enabled: bool) -> Self {
        Hashing {
            inner,
            hash: enabled.then(Sha256::new),
        }
    }

    /// Reads to the end (what follows the tar's last entry is part of the blob) and returns
    /// the digest.
    pub fn finish(mut self) -> io::Result<Option<[u8; 32]>> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(self.hash.map(|h| h.finalize().into()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hash {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Bytes of decompressed stream per hand-off between the decompressing thread and the parser.
const AHEAD_BLOCK: usize = 256 * 1024;
/// Blocks decompressed ahead of the parser at most (memory: this many blocks, twice).
const AHEAD_BLOCKS: usize = 4;

/// The decompressed stream as the parser reads it: blocks a thread of `scope` decompresses
/// ahead. A plain tar is read in place (there is nothing to overlap but the read itself).
pub fn ahead<'scope, 'env, R: Read + Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    input: R,
) -> io::Result<(Box<dyn Read + 'scope>, Compression)> {
    let mut decoded = detect(input)?;
    let compression = decoded.compression();
    if compression == Compression::None {
        return Ok((Box::new(decoded), compression));
    }
    let (data_tx, data_rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(AHEAD_BLOCKS);
    let (free_tx, free_rx) = mpsc::sync_channel::<Vec<u8>>(AHEAD_BLOCKS + 2);
    std::thread::Builder::new()
        .name("rafs-decompress".into())
        .spawn_scoped(scope, move || {
            decompress_blocks(&mut decoded, &data_tx, &free_rx)
        })?;
    Ok((
        Box::new(Ahead {
            blocks: data_rx,
            free: free_tx,
            current: Vec::new(),
            pos: 0,
            done: false,
        }),
        compression,
    ))
}

/// The decompressing thread: fills blocks until the stream ends, fails, or the parser stops
/// listening (an error there ends the build, and the thread with it).
fn decompress_blocks(
    decoded: &mut dyn Read,
    blocks: &mpsc::SyncSender<io::Result<Vec<u8>>>,
    free: &mpsc::Receiver<Vec<u8>>,
) {
    loop {
        let mut block = free.try_recv().unwrap_or_default();
        block.resize(AHEAD_BLOCK, 0);
        let mut filled = 0;
        let result = loop {
            match decoded.read(&mut block[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    filled += n;
                    if filled == block.len() {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        block.truncate(filled);
        let end = filled < AHEAD_BLOCK;
        if filled > 0 && blocks.send(Ok(block)).is_err() {
            return;
        }
        if let Err(e) = result {
            let _ = blocks.send(Err(e));
            return;
        }
        if end {
            return;
        }
    }
}

/// The parser's end of [`ahead`].
struct Ahead {
    blocks: mpsc::Receiver<io::Result<Vec<u8>>>,
    free: mpsc::SyncSender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for Ahead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() && !self.done {
            match self.blocks.recv() {
                Ok(Ok(block)) => {
                    let used = std::mem::replace(&mut self.current, block);
                    let _ = self.free.try_send(used);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The thread ended after the last block.
                Err(_) => self.done = true,
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The layer stream, decompressed as its first bytes say.
enum Decoded<R: BufRead> {
    Plain(R),
    Gzip(Box<Tagged<flate2::bufread::MultiGzDecoder<R>>>),
    Zstd(Tagged<zstd::stream::read::Decoder<'static, R>>),
}

impl<R: BufRead> Decoded<R> {
    fn compression(&self) -> Compression {
        match self {
            Decoded::Plain(_) => Compression::None,
            Decoded::Gzip(_) => Compression::Gzip,
            Decoded::Zstd(_) => Compression::Zstd,
        }
    }
}

impl<R: BufRead> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoded::Plain(r) => r.read(buf),
            Decoded::Gzip(r) => r.read(buf),
            Decoded::Zstd(r) => r.read(buf),
        }
    }
}

/// Detects the compression from the first bytes.
fn detect<R: Read>(input: R) -> io::Result<Decoded<BufReader<R>>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, input);
    let head = buffered.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        return Ok(Decoded::Gzip(Box::new(Tagged {
            inner: flate2::bufread::MultiGzDecoder::new(buffered),
            algorithm: "gzip",
        })));
    }
    // A zstd frame, or a skippable frame (magic 0x184D2A50..=0x184D2A5F) ahead of one.
    let skippable = head.len() >= 4 && head[0] & 0xf0 == 0x50 && head[1..4] == [0x2a, 0x4d, 0x18];
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) || skippable {
        let mut d = zstd::stream::read::Decoder::with_buffer(buffered)?;
        // Layers made with `zstd --long` need windows up to 2 GiB (the format's limit for
        // 64-bit decoders); libzstd refuses more than 128 MiB unless told.
        d.window_log_max(31)?;
        return Ok(Decoded::Zstd(Tagged {
            inner: d,
            algorithm: "zstd",
        }));
    }
    Ok(Decoded::Plain(buffered))
}

/// A gzip layer read for a zran build: the generator that decompresses it and records where
/// its blocks begin, shared with the blob writer; and the decompressed stream the parser
/// reads through it. Any other compression is refused by name.
pub fn zran<'a, R: Read + 'a>(
    input: R,
    chunk_size: u32,
) -> Result<(ZranSide<'a>, Box<dyn Read + 'a>), ZranInput> {
    let mut buffered = BufReader::with_capacity(256 * 1024, input);
    let head = buffered.fill_buf().map_err(ZranInput::Io)?;
    if !head.starts_with(&[0x1f, 0x8b, 0x08]) {
        let name = if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            "zstd"
        } else {
            "not compressed"
        };
        return Err(ZranInput::NotGzip(name));
    }
    let source: Box<dyn Read + 'a> = Box::new(buffered);
    let generator = ZranGenerator::new(source, chunk_size).map_err(ZranInput::Io)?;
    let shared = SharedZran::new(generator);
    let stream = Tagged {
        inner: shared.clone(),
        algorithm: "gzip",
    };
    Ok((shared, Box::new(stream)))
}

/// The blob writer's side of a zran build.
pub type ZranSide<'a> = SharedZran<Box<dyn Read + 'a>>;

/// Why a layer cannot be read for a zran build.
pub enum ZranInput {
    /// Reading it failed.
    Io(io::Error),
    /// It is not gzip (its compression).
    NotGzip(&'static str),
}

/// Detects the compression from the first bytes and returns the decompressed stream.
pub fn open<'a, R: Read + 'a>(input: R) -> io::Result<(Box<dyn Read + 'a>, Compression)> {
    let decoded = detect(input)?;
    let compression = decoded.compression();
    Ok((Box::new(decoded), compression))
}
