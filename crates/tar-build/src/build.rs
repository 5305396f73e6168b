//! The conversion: one pass over the tar, chunks to the blob writer as they stream by, the
//! tree built alongside, then the bootstrap.

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

impl<'a, 'o, W: Write> Run<'a, 'o, W> {
    fn start(
        decoded: Box<dyn Read + 'a>,
        compression: input::Compression,
        input_count: ByteCount,
        options: &'o BuildOptions,
        sink: W,
    ) -> Result<Self> {
        let tarfs = options.conversion == ConversionType::TarTarfs;
        let tar_count = ByteCount::default();
        let hashing = Hashing::new(Counting::new(decoded, tar_count.clone()), tarfs);
        let out = if tarfs {
            Out::Tarfs { sink, chunks: 0 }
        } else {
            Out::Rafs(Box::new(blob_writer(options, sink)?))
        };
        Ok(Run {
            options,
            stream: TarStream::new(hashing),
            input_count,
            tar_count,
            out,
            report: BuildReport {
                compression: compression.name(),
                ..Default::default()
            },
            tree: BuildTree::with_v5_link_flag(!options.directory_source),
            budget: Budget::new(options.limits),
            index: 0,
            zran: None,
        })
    }

    fn progress(&self) -> Progress {
        Progress {
            input_bytes: self.input_count.get(),
            tar_bytes: self.tar_count.get(),
            entries: self.report.entries,
        }
    }

    fn next_entry(&mut self) -> Result<Option<Entry>> {
        self.stream
            .next_entry()
            .map_err(|e| stream_error(e, self.stream.position()))
    }

    /// Takes one entry of the stream into the tree (and its data into the blob).
    fn entry(&mut self, mut entry: Entry) -> Result<()> {
        let at = Where {
            index: self.index,
            path: entry.path.clone(),
            offset: entry.header_pos,
        };
        self.index += 1;
        if entry.header.entry_type().is_pax_global_extensions() {
            return self.global_header(&entry, &at);
        }
        let Some(h) = self.header(&entry).map_err(|k| at.fail(k))? else {
            return Ok(());
        };
        self.budget.entry().map_err(|k| at.fail(k))?;
        self.budget.xattrs(&h.xattrs).map_err(|k| at.fail(k))?;
        if self.is_redundant_whiteout(&h) {
            // The entry's parent was replaced by a non-directory earlier in this layer: the
            // whiteout hides a child of a directory that no longer exists here.
            self.report.whiteouts_dropped += 1;
            return Ok(());
        }
        self.report.entries += 1;
        match h.kind {
            Kind::HardLink(ref target) => {
                self.report.hardlinks += 1;
                self.tree
                    .link(&h.path, target, h.attrs, h.xattrs)
                    .map_err(|k| at.fail(k))?;
            }
            _ => {
                let path = h.path.clone();
                let (inode, data) = self.inode(h, &mut entry, &at)?;
                self.tree.add(&path, inode, data).map_err(|k| at.fail(k))?;
            }
        }
        self.budget
            .paths(self.tree.len() as u64)
            .map_err(|k| at.fail(k))
    }

    /// A PAX global header: read within the layer's budget and checked to parse, as Go's
    /// reader does, then not applied. containerd's applier skips global headers ("found and
    /// ignored"), so their records (an mtime, an xattr) are not part of any entry; the
    /// reference refuses such layers, GNU tar would apply them.
    fn global_header(&mut self, entry: &Entry, at: &Where) -> Result<()> {
        let max = self.options.limits.max_global_pax_bytes;
        if entry.stored > max {
            return Err(at.fail(K::LimitExceeded {
                limit: "max_global_pax_bytes",
                value: entry.stored,
                max,
            }));
        }
        let mut data = Vec::new();
        (&mut self.stream)
            .take(entry.stored)
            .read_to_end(&mut data)
            .map_err(|e| tar_error(e, self.stream.position()))?;
        crate::reader::parse_pax(&data).map_err(|r| {
            at.fail(K::BadField {
                field: "PAX global header",
                reason: r,
            })
        })?;
        Ok(())
    }

    /// What the entry is; `None` for an entry the reference always drops.
    fn header(&self, entry: &Entry) -> std::result::Result<Option<Header>, K> {
        let pax = Pax::new(&entry.pax);
        let sparse = pax_sparse(&entry.pax)?;
        let path_bytes = match sparse.as_ref().and_then(|s| s.name.as_deref()) {
            Some(name) => name,
            None => &entry.path,
        };
        let path = normalise(path_bytes)?;
        if path.len() == 1 && DROPPED.contains(&path[0].as_slice()) {
            return Ok(None);
        }
        let kind = entry_kind(entry, self.options.fs_version)?;
        let attrs = name_attrs(entry, &pax, &kind, self.options.repeatable)?;
        let mut rdev = device_number(&entry.header, &kind)?;
        if self.options.directory_source && rdev == rafs_format::model::NON_DEVICE_RDEV {
            rdev = 0;
        }
        let xattrs = pax.xattrs()?;
        rafs_format::rules::check_xattrs_storable(self.options.fs_version, &xattrs)
            .map_err(K::XattrsUnstorable)?;
        Ok(Some(Header {
            path,
            kind,
            attrs,
            rdev,
            xattrs,
            sparse,
        }))
    }

    fn is_redundant_whiteout(&self, h: &Header) -> bool {
        let name = h.path.last().map_or(&b""[..], |n| n.as_slice());
        let marker = match self.options.whiteout_spec {
            WhiteoutSpec::Oci => name.starts_with(b".wh."),
            WhiteoutSpec::Overlayfs => h.kind == Kind::Char && h.rdev == 0,
            // The Go converter keeps OCI markers as entries here and merges them later; one
            // under a path an earlier entry replaced by a non-directory (umoci writes these
            // after `rm -r dir; ln -s x dir`) hides nothing the replacement did not, and the
            // reference drops it.
            WhiteoutSpec::None => name.starts_with(b".wh."),
        };
        marker && self.tree.parent_replaced(&h.path)
    }

    /// The inode of a non-link entry, with its data stored.
    fn inode(&mut self, h: Header, entry: &mut Entry, at: &Where) -> Result<(Inode, Data)> {
        let mut inode = Inode::new(h.attrs.mode);
        inode.uid = h.attrs.uid;
        inode.gid = h.attrs.gid;
        inode.mtime = h.attrs.mtime;
        inode.mtime_nsec = h.attrs.mtime_nsec;
        inode.rdev = h.rdev;
        inode.xattrs = h.xattrs;
        inode.nlink = 1;
        let mut data = Data::None;
        match h.kind {
            Kind::Symlink(target) => {
                inode.size = target.len() as u64;
                inode.symlink = target;
            }
            Kind::Directory => inode.nlink = 2,
            Kind::Regular => {
                let (size, d) = self.file_data(entry, h.sparse, at)?;
                inode.size = size;
                data = d;
            }
            _ => {}
        }
        Ok((inode, data))
    }

    /// Stores a regular file's data (chunks into the blob, or tarfs references) and returns
    /// its size.
    fn file_data(
        &mut self,
        entry: &mut Entry,
        pax_sparse: Option<PaxSparse>,
        at: &Where,
    ) -> Result<(u64, Data)> {
        let stored = entry.stored;
        let content = match (pax_sparse, entry.sparse.take()) {
            (Some(s), _) => match s.map {
                SparseMap::InData => Content::SparseInData(s.real),
                SparseMap::Segments(segments) => {
                    check_segments(&segments, s.real, stored).map_err(|k| at.fail(k))?;
                    Content::Segments(segments, s.real)
                }
            },
            (None, Some((segments, real))) => Content::Segments(segments, real),
            (None, None) => Content::Plain,
        };
        let size = content.size(stored);
        if !matches!(content, Content::Plain) {
            self.budget.sparse(size).map_err(|k| at.fail(k))?;
        }
        let chunk_size = u64::from(self.options.chunk_size);
        self.budget.file(size, chunk_size).map_err(|k| at.fail(k))?;
        self.report.files += 1;
        self.report.file_bytes += size;
        let writer = match &mut self.out {
            Out::Rafs(w) => w,
            Out::Tarfs { chunks, .. } => {
                return tarfs_data(self.options, chunks, entry, &content, size, at)
            }
        };
        if self.zran.is_some() && !matches!(content, Content::Plain) {
            return Err(at.fail(K::Unrepresentable(
                "targz-ref cannot point into a sparse file's data".into(),
            )));
        }
        let read = ByteCount::default();
        let result = {
            let stream = &mut self.stream;
            let mut source: Box<dyn Read + '_> = match content {
                Content::Plain => Box::new(stream),
                Content::SparseInData(real) => {
                    Box::new(SparseReader::new(stream, stored, real).map_err(|k| at.fail(k))?)
                }
                Content::Segments(segments, real) => {
                    Box::new(SparseReader::from_segments(stream, segments, real))
                }
            };
            let mut counted = Counting::new(&mut source, read.clone());
            match &mut self.zran {
                Some(spans) => writer.add_zran_file(&mut counted, size, spans),
                None => writer.add_file(&mut counted, size),
            }
        };
        let fid = result
            .map_err(|e| data_error(e, size, read.get(), &|k| at.fail(k), self.tar_count.get()))?;
        Ok((size, Data::Blob(fid.0)))
    }

    /// The stream is done: the blob is finished and the bootstrap encoded.
    fn finish(self, started: Instant) -> Result<BuildOutput<W>> {
        let Run {
            options,
            stream,
            input_count,
            tar_count,
            out,
            mut report,
            tree,
            zran,
            ..
        } = self;
        let tar_digest = stream
            .into_inner()
            .finish()
            .map_err(|e| tar_error(e, tar_count.get()))?;
        report.input_bytes = input_count.get();
        report.tar_bytes = tar_count.get();
        report.stream_time = started.elapsed();
        let finishing = Instant::now();
        let superblock = superblock_of(options);
        let (bootstrap, image, sink, implicit_dirs) = match out {
            Out::Rafs(w) => {
                let data = match zran {
                    Some(side) => {
                        let (contexts, digest, size) = side
                            .with(|g| g.finish())
                            .map_err(|e| tar_error(e, tar_count.get()))?;
                        report.input_bytes = size;
                        w.finish_zran(contexts, rafs_format::hex(&digest), size)?
                    }
                    None => w.finish_data()?,
                };
                // Listed once the chunk buffers are gone: they would add to the peak.
                let implicit_dirs = tree.implicit_dirs();
                let onto = OntoParent {
                    options,
                    implicit_dirs: &implicit_dirs,
                };
                let (bootstrap, image, sink) =
                    finish_blob(data, tree, superblock, &onto, &mut report)?;
                (bootstrap, image, sink, implicit_dirs)
            }
            Out::Tarfs {
                sink,
                chunks: tarfs_chunks,
            } => {
                let digest = tar_digest.ok_or(Error::Internal("tarfs input was not hashed"))?;
                let blob = tarfs_blob(options, &digest, tarfs_chunks, report.tar_bytes);
                report.blob_id = Some(blob.blob_id.clone());
                let implicit_dirs = tree.implicit_dirs();
                let model = tree.into_model(|d| match d {
                    Data::Tarfs(c) => std::mem::take(c).into_vec(),
                    _ => Vec::new(),
                });
                let image = finish_image(superblock, vec![blob], model, options);
                (rafs_format::encode(&image)?, image, sink, implicit_dirs)
            }
        };
        report.chunk_refs = image
            .tree
            .inodes
            .iter()
            .map(|i| i.chunks.len() as u64)
            .sum();
        report.paths = image.tree.nodes.len() as u64;
        report.bootstrap_size = bootstrap.len() as u64;
        report.finish_time = finishing.elapsed();
        Ok(BuildOutput {
            bootstrap,
            image,
            sink,
            report,
            implicit_dirs,
        })
    }
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

fn blob_writer<W: Write>(options: &BuildOptions, sink: W) -> Result<BlobWriter<W>> {
    let mut b = BlobOptions::new(options.fs_version);
    b.compressor = options.compressor;
    b.digester = options.digester;
    b.chunk_size = options.chunk_size;
    b.aligned_chunk = options.aligned_chunk;
    b.inline_bootstrap = options.inline_bootstrap;
    b.blob_toc = options.blob_toc;
    b.threads = options.threads;
    b.batch_size = options.batch_size;
    b.zran = options.conversion == ConversionType::TargzRef;
    b.cipher = options.cipher.clone();
    Ok(match &options.chunk_dict {
        Some(d) => BlobWriter::with_dictionary(sink, b, d.clone())?,
        None => BlobWriter::new(sink, b)?,
    })
}

fn superblock_of(options: &BuildOptions) -> Superblock {
    let mut superblock = Superblock::new(options.fs_version);
    superblock.chunk_size = options.chunk_size;
    superblock.compressor = options.compressor;
    superblock.digester = options.digester;
    superblock.explicit_uid_gid = !options.repeatable;
    superblock.tarfs = options.conversion == ConversionType::TarTarfs;
    // As the reference's merge: the image is encrypted if any of its blobs is.
    superblock.encrypted = options.cipher.is_some()
        || options
            .parent
            .as_ref()
            .is_some_and(|p| p.superblock.encrypted);
    superblock
}

/// The blob entry of a tarfs image: the tar itself, named by its sha256 (or `--blob-id`).
fn tarfs_blob(options: &BuildOptions, digest: &[u8; 32], chunks: u32, tar_bytes: u64) -> Blob {
    let id = match &options.blob_id {
        Some(id) => id.clone(),
        None => rafs_format::hex(digest),
    };
    let mut blob = Blob::new(id, Compressor::None, Digester::Sha256, options.chunk_size);
    blob.features = BlobFeatures::CAP_TAR_TOC | BlobFeatures::TARFS;
    blob.chunk_count = chunks;
    blob.compressed_size = tar_bytes;
    blob.uncompressed_size = tar_bytes;
    blob.meta.compressor = Compressor::Lz4Block.to_u32();
    blob
}

/// The options and what applying the layer onto a parent needs.
struct OntoParent<'a> {
    options: &'a BuildOptions,
    implicit_dirs: &'a [Vec<u8>],
}

impl OntoParent<'_> {
    /// The layer's image applied onto `--parent-bootstrap` (as is without one): the parent's
    /// blob table kept whole and first, the layer's markers applied as the whiteout spec says,
    /// and directories the tar left out showing the parent's.
    fn apply(&self, image: Image) -> Result<Image> {
        let Some(parent) = &self.options.parent else {
            return Ok(image);
        };
        let mut m = MergeOptions::default();
        m.parent = Some(Image::clone(parent));
        m.whiteout_spec = self.options.whiteout_spec;
        m.prefetch_patterns = self.options.prefetch_patterns.clone();
        m.keep_blob_order = true;
        if let Some(d) = &self.options.chunk_dict {
            m.dict_blob_ids = d.blobs().iter().map(|b| b.blob_id.clone()).collect();
        }
        let mut merged = merge(
            vec![Layer {
                image: image.clone(),
                blob_id: None,
            }],
            &m,
        )?;
        let parent = m
            .parent
            .take()
            .ok_or(Error::Internal("the parent went missing"))?;
        let layers = [parent, image];
        let implicit: [&[Vec<u8>]; 2] = [&[], self.implicit_dirs];
        inherit_implicit_dirs(&mut merged, &layers, &implicit, self.options.whiteout_spec);
        Ok(merged)
    }
}

/// Finishes the data blob and encodes the bootstrap around it.
fn finish_blob<W: Write>(
    mut data: BlobData<W>,
    tree: BuildTree,
    superblock: Superblock,
    onto: &OntoParent<'_>,
    report: &mut BuildReport,
) -> Result<(Vec<u8>, Image, W)> {
    let options = onto.options;
    // The chunk records move into the model; the finished blob does not need them.
    let mut files = std::mem::take(&mut data.files);
    // Each file id belongs to one build inode (a hard link shares the inode, not the id), and
    // the model asks for each inode once: its list moves, it is not copied.
    let model = tree.into_model(|d| match d {
        Data::Blob(f) => files
            .get_mut(*f as usize)
            .map(std::mem::take)
            .unwrap_or_default(),
        _ => Vec::new(),
    });
    let table = data.blob_table.clone();
    let own_entry = |b: Blob| -> Vec<Blob> {
        table
            .iter()
            .map(|e| match e {
                BlobTableEntry::ThisBlob => b.clone(),
                BlobTableEntry::Dictionary(d) => d.clone(),
            })
            .collect()
    };
    report.chunks_stored = u64::from(data.chunk_count());
    if options.inline_bootstrap {
        let blobs = own_entry(data.inline_blob_entry());
        let image = finish_image(superblock, blobs, model, options);
        let bootstrap = rafs_format::encode(&image)?;
        let finished = data.finish(Some(&bootstrap))?;
        report.blob_id = Some(finished.blob_id.clone());
        note_zran_ids(options, &finished, report);
        report.blob_size = finished.size;
        return Ok((bootstrap, image, finished.sink));
    }
    let finished = data.finish(None)?;
    let mut own = finished.blob.clone();
    if let Some(id) = &options.blob_id {
        own.blob_id = id.clone();
    }
    // A layer without stored chunks has no blob: the table keeps only dictionary blobs its
    // chunks refer to.
    let blobs = own_entry(own.clone());
    let image = onto.apply(finish_image(superblock, blobs, model, options))?;
    let bootstrap = rafs_format::encode(&image)?;
    if finished.size > 0 {
        report.blob_id = Some(own.blob_id.clone());
        note_zran_ids(options, &finished, report);
    }
    report.blob_size = finished.size;
    Ok((bootstrap, image, finished.sink))
}

/// targz-ref: the blob id is the layer's; what was written is the metadata blob.
fn note_zran_ids<W>(
    options: &BuildOptions,
    finished: &rafs_chunker::FinishedBlob<W>,
    report: &mut BuildReport,
) {
    if options.conversion == ConversionType::TargzRef {
        report.blob_id = Some(finished.blob.blob_id.clone());
        report.meta_blob_id = Some(finished.blob_id.clone());
    }
}

/// The image around a finished tree: prefetch targets resolved (only when there are blobs, as
/// the reference writes the table).
fn finish_image(
    superblock: Superblock,
    blobs: Vec<Blob>,
    tree: rafs_format::model::Tree,
    options: &BuildOptions,
) -> Image {
    let prefetch = match &options.prefetch_patterns {
        Some(patterns) if !blobs.is_empty() => {
            rafs_format::model::prefetch_targets(&tree, patterns)
        }
        _ => Vec::new(),
    };
    Image {
        superblock,
        blobs,
        tree,
        prefetch,
        v6_chunk_table: None,
    }
}

/// Classifies an error of the tar stream; `at` is the position reached.
pub(crate) fn stream_error(e: StreamError, at: u64) -> Error {
    match e {
        StreamError::Io(e) => tar_error(e, at),
        StreamError::BadChecksum => Error::Tar {
            offset: at.saturating_sub(512),
            kind: TarErrorKind::BadChecksum,
        },
        StreamError::Malformed(m) => Error::Tar {
            offset: at,
            kind: TarErrorKind::Malformed(m),
        },
    }
}

/// Classifies an error the tar parser passed up.
pub(crate) fn tar_error(e: io::Error, offset: u64) -> Error {
    if let Some(d) = e.get_ref().and_then(|r| r.downcast_ref::<DecodeFailure>()) {
        return Error::Tar {
            offset,
            kind: TarErrorKind::Decompression {
                algorithm: d.algorithm,
                reason: d.reason.clone(),
            },
        };
    }
    let msg = e.to_string();
    let kind = if msg.contains("checksum") || msg.contains("cksum") {
        TarErrorKind::BadChecksum
    } else if e.kind() == io::ErrorKind::UnexpectedEof
        || msg.contains("failed to read entire block")
    {
        TarErrorKind::Truncated(msg)
    } else {
        TarErrorKind::Malformed(msg)
    };
    Error::Tar { offset, kind }
}

/// Classifies a failure while a file's data was read into the blob.
fn data_error(
    e: rafs_chunker::Error,
    declared: u64,
    got: u64,
    fail: &dyn Fn(K) -> Error,
    offset: u64,
) -> Error {
    match e {
        rafs_chunker::Error::Io { source, .. } => {
            if source.get_ref().is_some_and(|r| r.is::<DecodeFailure>()) {
                tar_error(source, offset)
            } else if source.kind() == io::ErrorKind::UnexpectedEof {
                fail(K::DataTruncated { declared, got })
            } else if let Some(k) = source
                .get_ref()
                .and_then(|r| r.downcast_ref::<crate::sparse::SparseError>())
            {
                fail(K::BadSparseMap(k.0.clone()))
            } else {
                tar_error(source, offset)
            }
        }
        other => Error::Blob(other),
    }
}
