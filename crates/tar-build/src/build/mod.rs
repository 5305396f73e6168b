//! The conversion: one pass over the tar, chunks to the blob writer as they stream by, the
//! tree built alongside, then the bootstrap.

mod finish;
mod run;

use finish::*;
pub(crate) use finish::{stream_error, tar_error};

use crate::entry::{normalise, Kind, Pax};
use crate::error::{EntryError, EntryErrorKind as K, Error, OptionsError, Result, TarErrorKind};
use crate::input::{self, ByteCount, Counting, DecodeFailure, Hashing, ZranInput, ZranSide};
use crate::limits::Budget;
use crate::meaning::{device_number, entry_kind, name_attrs, DROPPED};
use crate::options::{BuildOptions, ConversionType, WhiteoutSpec};
use crate::reader::{Entry, StreamError, TarStream};
use crate::sparse::{check_segments, pax_sparse, PaxSparse, SparseMap, SparseReader};
use crate::tree::{BuildTree, Data, NameAttrs};
use rafs_chunker::{BlobData, BlobOptions, BlobTableEntry, BlobWriter};
use rafs_format::model::{
    Blob, BlobFeatures, ChunkFlags, ChunkInfo, Compressor, Digester, Image, Inode, Superblock,
};
use rafs_merge::{inherit_implicit_dirs, merge, Layer, MergeOptions};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// Progress of a conversion, reported after each entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes read from the input (compressed, as given).
    pub input_bytes: u64,
    /// Bytes of uncompressed tar parsed.
    pub tar_bytes: u64,
    /// Tar entries processed.
    pub entries: u64,
}

/// What a conversion produced and how long it took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BuildReport {
    /// Input compression (`none`, `gzip`, `zstd`).
    pub compression: &'static str,
    /// Bytes read from the input.
    pub input_bytes: u64,
    /// Bytes of uncompressed tar.
    pub tar_bytes: u64,
    /// Tar entries (extension headers not counted).
    pub entries: u64,
    /// Regular files with data read.
    pub files: u64,
    /// Bytes of file data read.
    pub file_bytes: u64,
    /// Hard-link entries.
    pub hardlinks: u64,
    /// Whiteouts dropped because an earlier entry of the layer replaced their parent
    /// directory by a non-directory (they hide nothing the layer still has).
    pub whiteouts_dropped: u64,
    /// Paths in the image (root included).
    pub paths: u64,
    /// Chunks stored in the data blob.
    pub chunks_stored: u64,
    /// Chunk references in the image (stored, deduplicated or in the dictionary).
    pub chunk_refs: u64,
    /// Blob id (`None` when the layer has no data blob). For targz-ref: the layer's sha256.
    pub blob_id: Option<String>,
    /// targz-ref: the id of the metadata blob written to the sink (sha256 of what was
    /// written, the digest array aside), which is what it is stored under.
    pub meta_blob_id: Option<String>,
    /// Size of the data blob written (0 for tarfs, whose blob is the tar itself).
    pub blob_size: u64,
    /// Size of the bootstrap.
    pub bootstrap_size: u64,
    /// Time spent reading the tar and writing chunks.
    pub stream_time: Duration,
    /// Time spent finishing the blob and writing the bootstrap.
    pub finish_time: Duration,
}

/// The result of [`build_layer`].
#[non_exhaustive]
pub struct BuildOutput<W> {
    /// The bootstrap (also inside the blob when inlined).
    pub bootstrap: Vec<u8>,
    /// The image the bootstrap encodes.
    pub image: Image,
    /// The blob sink, flushed. Nothing was written to it when the layer has no data blob
    /// (no stored chunk and no inlined bootstrap) or for tarfs.
    pub sink: W,
    /// Figures.
    pub report: BuildReport,
    /// Directories the tar did not list (its root without `./`, parents it left out), made
    /// with default attributes: at image level they stand for the lower layers' directories.
    pub implicit_dirs: Vec<Vec<u8>>,
}

/// Converts one OCI layer (plain, gzip or zstd tar, read once front to back) into a RAFS
/// bootstrap and a data blob written to `sink`.
pub fn build_layer<R: Read + Send, W: Write>(
    input: R,
    options: &BuildOptions,
    sink: W,
) -> Result<BuildOutput<W>> {
    build_layer_with_progress(input, options, sink, &mut |_| {})
}

/// Converts one OCI layer into a tarfs bootstrap (`nydus-image create -t tar-tarfs`): files
/// point into the layer tar itself, so there is no blob to write and no sink to give.
pub fn build_tarfs_layer<R: Read + Send>(
    input: R,
    options: &BuildOptions,
) -> Result<BuildOutput<()>> {
    if options.conversion != ConversionType::TarTarfs {
        return Err(OptionsError::NotTarfs.into());
    }
    let out = build_layer(input, options, std::io::sink())?;
    Ok(BuildOutput {
        bootstrap: out.bootstrap,
        image: out.image,
        sink: (),
        report: out.report,
        implicit_dirs: out.implicit_dirs,
    })
}

/// [`build_layer`], calling `progress` after every entry. A compressed layer is decompressed
/// on a thread of its own, ahead of the parser.
pub fn build_layer_with_progress<R: Read + Send, W: Write>(
    input: R,
    options: &BuildOptions,
    sink: W,
    progress: &mut dyn FnMut(Progress),
) -> Result<BuildOutput<W>> {
    options.validate()?;
    let started = Instant::now();
    std::thread::scope(|scope| {
        let input_count = ByteCount::default();
        let counted = Counting::new(input, input_count.clone());
        let (decoded, compression, zran) = if options.conversion == ConversionType::TargzRef {
            // zran: inflate runs on this thread, stopping where the blob writer asks.
            let (side, stream) = input::zran(counted, options.chunk_size).map_err(|e| match e {
                ZranInput::Io(e) => tar_error(e, 0),
                ZranInput::NotGzip(n) => OptionsError::ZranNotGzip(n).into(),
            })?;
            (stream, input::Compression::Gzip, Some(side))
        } else {
            let (d, c) = input::ahead(scope, counted).map_err(|e| tar_error(e, 0))?;
            (d, c, None)
        };
        let mut run = Run::start(decoded, compression, input_count, options, sink)?;
        run.zran = zran;
        while let Some(entry) = run.next_entry()? {
            run.entry(entry)?;
            progress(run.progress());
        }
        run.finish(started)
    })
}

/// tarfs: the file's chunks point at its bytes in the tar.
fn tarfs_data(
    options: &BuildOptions,
    next_index: &mut u32,
    entry: &Entry,
    content: &Content,
    size: u64,
    at: &Where,
) -> Result<(u64, Data)> {
    if !matches!(content, Content::Plain) {
        return Err(at.fail(K::Unrepresentable(
            "tarfs cannot point into a sparse file's data".into(),
        )));
    }
    let chunk_size = u64::from(options.chunk_size);
    let pos = entry.data_pos;
    let mut chunks = Vec::new();
    let mut off = 0;
    while off < size {
        // At most the chunk size, which is a u32.
        let len = u32::try_from((size - off).min(chunk_size)).unwrap_or(options.chunk_size);
        chunks.push(ChunkInfo {
            digest: [0; 32],
            blob_index: 0,
            index: *next_index,
            flags: ChunkFlags::empty(),
            compressed_offset: pos + off,
            compressed_size: len,
            uncompressed_offset: pos + off,
            uncompressed_size: len,
            file_offset: off,
            crc32: 0,
        });
        *next_index += 1;
        off += u64::from(len);
    }
    Ok((size, Data::Tarfs(chunks.into_boxed_slice())))
}

/// Where one entry is, for its errors (the path is escaped only if one happens).
struct Where {
    index: u64,
    path: Vec<u8>,
    offset: u64,
}

impl Where {
    fn fail(&self, kind: K) -> Error {
        Error::Entry(Box::new(EntryError {
            index: self.index,
            path: rafs_format::rules::escape_bytes(&self.path),
            offset: self.offset,
            kind,
        }))
    }
}

/// The layer stream as the conversion reads it.
type Stream<'a> = TarStream<Hashing<Counting<Box<dyn Read + 'a>>>>;

/// One conversion in progress: the stream, the blob writer, the tree, the budgets.
struct Run<'a, 'o, W: Write> {
    options: &'o BuildOptions,
    stream: Stream<'a>,
    input_count: ByteCount,
    tar_count: ByteCount,
    out: Out<W>,
    report: BuildReport,
    tree: BuildTree,
    budget: Budget,
    index: u64,
    /// targz-ref: the generator the blob writer asks where each chunk is.
    zran: Option<ZranSide<'a>>,
}

/// Where file data goes: a data blob, or nowhere (tarfs files point into the tar, whose
/// sink is handed back untouched).
enum Out<W: Write> {
    Rafs(Box<BlobWriter<W>>),
    Tarfs { sink: W, chunks: u32 },
}

/// What an entry's header and PAX records say, read before anything is stored.
struct Header {
    path: crate::entry::Components,
    kind: Kind,
    attrs: NameAttrs,
    rdev: u32,
    xattrs: Vec<rafs_format::model::Xattr>,
    sparse: Option<PaxSparse>,
}

/// Where a regular file's bytes come from in the stream.
enum Content {
    /// The entry's data as stored.
    Plain,
    /// PAX 1.0 sparse: the map opens the data; the real size.
    SparseInData(u64),
    /// Sparse with a known map (PAX 0.0/0.1, old GNU) and the real size.
    Segments(Vec<(u64, u64)>, u64),
}

impl Content {
    fn size(&self, stored: u64) -> u64 {
        match self {
            Content::Plain => stored,
            Content::SparseInData(real) | Content::Segments(_, real) => *real,
        }
    }
}
