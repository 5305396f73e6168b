//! The conversion: one pass over the tar, chunks to the blob writer as they stream by, the
//! tree built alongside, then the bootstrap.

use crate::entry::{full_mode, makedev, normalise, Kind, Pax, MAX_SYMLINK};
use crate::error::{EntryError, EntryErrorKind as K, Error, Result, TarErrorKind};
use crate::input::{self, Counting, DecodeFailure, Hashing};
use crate::options::{BuildOptions, ConversionType};
use crate::reader::{StreamError, TarStream};
use crate::sparse::SparseReader;
use crate::tree::{BuildTree, Data, NameAttrs};
use rafs_chunker::{BlobOptions, BlobTableEntry, BlobWriter};
use rafs_format::model::{
    Blob, BlobFeatures, ChunkFlags, ChunkInfo, Compressor, Digester, Image, Inode, Superblock,
    NON_DEVICE_RDEV,
};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Paths the reference always drops (eStargz bookkeeping), at the root only.
const DROPPED: [&[u8]; 3] = [
    b"stargz.index.json",
    b".prefetch.landmark",
    b".no.prefetch.landmark",
];

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
    /// Paths in the image (root included).
    pub paths: u64,
    /// Chunks stored in the data blob.
    pub chunks_stored: u64,
    /// Chunk references in the image (stored, deduplicated or in the dictionary).
    pub chunk_refs: u64,
    /// Blob id (`None` when the layer has no data blob).
    pub blob_id: Option<String>,
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
}

/// Converts one OCI layer (plain, gzip or zstd tar, read once front to back) into a RAFS
/// bootstrap and a data blob written to `sink`.
pub fn build_layer<R: Read, W: Write + Send + 'static>(
    input: R,
    options: &BuildOptions,
    sink: W,
) -> Result<BuildOutput<W>> {
    build_layer_with_progress(input, options, sink, &mut |_| {})
}

/// [`build_layer`], calling `progress` after every entry.
pub fn build_layer_with_progress<R: Read, W: Write + Send + 'static>(
    input: R,
    options: &BuildOptions,
    sink: W,
    progress: &mut dyn FnMut(Progress),
) -> Result<BuildOutput<W>> {
    options.validate().map_err(Error::InvalidOptions)?;
    let started = Instant::now();
    let tarfs = options.conversion == ConversionType::TarTarfs;
    let input_count = Rc::new(Cell::new(0u64));
    let tar_count = Rc::new(Cell::new(0u64));
    let (decoded, compression) =
        input::open(Counting::new(input, input_count.clone())).map_err(|e| tar_error(e, 0))?;
    let hashing = Hashing::new(Counting::new(decoded, tar_count.clone()), tarfs);
    let mut stream = TarStream::new(hashing);

    // tarfs writes no blob: its sink is handed back untouched.
    let (mut writer, tarfs_sink) = if tarfs {
        (None, Some(sink))
    } else {
        let mut b = BlobOptions::new(options.fs_version);
        b.compressor = options.compressor;
        b.digester = options.digester;
        b.chunk_size = options.chunk_size;
        b.aligned_chunk = options.aligned_chunk;
        b.inline_bootstrap = options.inline_bootstrap;
        b.blob_toc = options.blob_toc;
        b.threads = options.threads;
        let w = match &options.chunk_dict {
            Some(d) => BlobWriter::with_dictionary(sink, b, d.clone())?,
            None => BlobWriter::new(sink, b)?,
        };
        (Some(w), None)
    };
    let mut tarfs_chunks = 0u32;
    let mut report = BuildReport {
        compression: compression.name(),
        ..Default::default()
    };
    let mut tree = BuildTree::new();
    let mut globals: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let chunk_size = u64::from(options.chunk_size);

    {
        let mut index = 0u64;
        loop {
            let mut entry = match stream.next_entry() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => return Err(stream_error(e, stream.position())),
            };
            let raw_path = entry.path.clone();
            let offset = entry.header_pos;
            let fail = |kind: K| {
                Error::Entry(Box::new(EntryError {
                    index,
                    path: String::from_utf8_lossy(&raw_path).into_owned(),
                    offset,
                    kind,
                }))
            };
            let etype = entry.header.entry_type();
            if etype.is_pax_global_extensions() {
                if entry.stored > 1 << 20 {
                    return Err(fail(K::BadField {
                        field: "PAX global header",
                        reason: format!("{} bytes", entry.stored),
                    }));
                }
                let mut data = Vec::new();
                (&mut stream)
                    .take(entry.stored)
                    .read_to_end(&mut data)
                    .map_err(|e| tar_error(e, stream.position()))?;
                let records = crate::reader::parse_pax(&data).map_err(|r| {
                    fail(K::BadField {
                        field: "PAX global header",
                        reason: r,
                    })
                })?;
                globals.extend(records);
                index += 1;
                continue;
            }
            let local = entry.pax.clone();
            let pax = Pax::merged(&globals, local);
            // PAX 1.0 sparse files carry their real name and size in PAX records.
            let sparse = pax.get("GNU.sparse.major") == Some(b"1")
                && pax.get("GNU.sparse.minor") == Some(b"0");
            let path_bytes: Vec<u8> = match (sparse, pax.get("GNU.sparse.name")) {
                (true, Some(n)) => n.to_vec(),
                _ => raw_path.clone(),
            };
            let path = normalise(&path_bytes).map_err(fail)?;
            if path.len() == 1 && DROPPED.contains(&path[0].as_slice()) {
                index += 1;
                continue;
            }
            let header = &entry.header;
            let kind = match etype {
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse => Kind::Regular,
                tar::EntryType::Directory => Kind::Directory,
                tar::EntryType::Symlink => {
                    let target = entry.link.clone();
                    if target.is_empty() {
                        return Err(fail(K::BadField {
                            field: "link name",
                            reason: "symlink without a target".into(),
                        }));
                    }
                    if target.len() > MAX_SYMLINK {
                        return Err(fail(K::BadField {
                            field: "link name",
                            reason: format!("{} bytes exceed 65535", target.len()),
                        }));
                    }
                    Kind::Symlink(target)
                }
                tar::EntryType::Link => Kind::HardLink(normalise(&entry.link).map_err(fail)?),
                tar::EntryType::Char => Kind::Char,
                tar::EntryType::Block => Kind::Block,
                tar::EntryType::Fifo => Kind::Fifo,
                other => return Err(fail(K::UnsupportedType(other.as_byte() as char))),
            };
            let perm = header.mode().map_err(|e| {
                fail(K::BadField {
                    field: "mode",
                    reason: e.to_string(),
                })
            })?;
            let id = |v: io::Result<u64>, pax_key: &'static str| -> std::result::Result<u32, K> {
                // The tar crate has applied local PAX uid/gid; globals are ours to apply.
                // (A local record is already in the header; `pax` also holds the globals.)
                let v = match pax
                    .get(pax_key)
                    .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok())
                {
                    Some(g) => g,
                    None => v.unwrap_or(0),
                };
                u32::try_from(v).map_err(|_| K::BadField {
                    field: pax_key,
                    reason: format!("{v} exceeds 2^32-1"),
                })
            };
            let (uid, gid) = if options.repeatable {
                (0, 0)
            } else {
                (
                    id(header.uid(), "uid").map_err(fail)?,
                    id(header.gid(), "gid").map_err(fail)?,
                )
            };
            let (mtime, mtime_nsec) = match pax.mtime().map_err(fail)? {
                Some(t) => t,
                None => (header.mtime().unwrap_or(0), 0),
            };
            let rdev = match kind {
                Kind::Char | Kind::Block | Kind::Fifo => {
                    let major = header.device_major();
                    let minor = header.device_minor();
                    match (major, minor) {
                        (Ok(Some(ma)), Ok(Some(mi))) => makedev(ma.into(), mi.into()),
                        // GNU tar and CPython write NUL-filled device fields for FIFOs.
                        _ if kind == Kind::Fifo => 0,
                        _ => {
                            return Err(fail(K::BadField {
                                field: "device number",
                                reason: "missing or not octal".into(),
                            }))
                        }
                    }
                }
                _ => NON_DEVICE_RDEV,
            };
            let xattrs = pax.xattrs().map_err(fail)?;
            let full = full_mode(perm, &kind);
            report.entries += 1;
            match kind {
                Kind::HardLink(target) => {
                    report.hardlinks += 1;
                    let attrs = NameAttrs {
                        mode: full,
                        uid,
                        gid,
                        mtime,
                        mtime_nsec,
                    };
                    tree.link(&path, &target, attrs).map_err(fail)?;
                }
                kind => {
                    let mut inode = Inode::new(full);
                    inode.uid = uid;
                    inode.gid = gid;
                    inode.mtime = mtime;
                    inode.mtime_nsec = mtime_nsec;
                    inode.rdev = rdev;
                    inode.xattrs = xattrs;
                    inode.nlink = 1;
                    let mut data = Data::None;
                    match &kind {
                        Kind::Symlink(t) => {
                            inode.size = t.len() as u64;
                            inode.symlink = t.clone();
                        }
                        Kind::Directory => inode.nlink = 2,
                        Kind::Regular => {
                            let (size, file_data) = if sparse {
                                let real = pax
                                    .number("GNU.sparse.realsize")
                                    .map_err(fail)?
                                    .ok_or_else(|| {
                                        fail(K::BadSparseMap("missing GNU.sparse.realsize".into()))
                                    })?;
                                (real, true)
                            } else if let Some((_, real)) = &entry.sparse {
                                (*real, false)
                            } else {
                                (entry.stored, false)
                            };
                            inode.size = size;
                            report.files += 1;
                            report.file_bytes += size;
                            if let Some(w) = writer.as_mut() {
                                let read = Rc::new(Cell::new(0u64));
                                let stored = entry.stored;
                                let result = if file_data {
                                    // PAX 1.0: the map opens the data.
                                    let mut r = Counting::new(
                                        SparseReader::new(&mut stream, stored, size)
                                            .map_err(&fail)?,
                                        read.clone(),
                                    );
                                    w.add_file(&mut r, size)
                                } else if let Some((segments, real)) = entry.sparse.take() {
                                    // Old GNU: the map was in the headers.
                                    let mut r = Counting::new(
                                        SparseReader::from_segments(&mut stream, segments, real),
                                        read.clone(),
                                    );
                                    w.add_file(&mut r, size)
                                } else {
                                    let mut r = Counting::new(&mut stream, read.clone());
                                    w.add_file(&mut r, size)
                                };
                                let fid = result.map_err(|e| {
                                    data_error(e, size, read.get(), &fail, tar_count.get())
                                })?;
                                data = Data::Blob(fid.0);
                            } else {
                                if file_data || entry.sparse.is_some() {
                                    return Err(fail(K::Unrepresentable(
                                        "tarfs cannot point into a sparse file's data".into(),
                                    )));
                                }
                                let pos = entry.data_pos;
                                let mut chunks = Vec::new();
                                let mut off = 0;
                                while off < size {
                                    let len = (size - off).min(chunk_size) as u32;
                                    chunks.push(ChunkInfo {
                                        digest: [0; 32],
                                        blob_index: 0,
                                        index: tarfs_chunks,
                                        flags: ChunkFlags::empty(),
                                        compressed_offset: pos + off,
                                        compressed_size: len,
                                        uncompressed_offset: pos + off,
                                        uncompressed_size: len,
                                        file_offset: off,
                                        crc32: 0,
                                    });
                                    tarfs_chunks += 1;
                                    off += u64::from(len);
                                }
                                data = Data::Tarfs(chunks);
                            }
                        }
                        _ => {}
                    }
                    tree.add(&path, inode, data).map_err(fail)?;
                }
            }
            index += 1;
            progress(Progress {
                input_bytes: input_count.get(),
                tar_bytes: tar_count.get(),
                entries: report.entries,
            });
        }
    }
    let hashing = stream.into_inner();
    let tar_digest = hashing
        .finish()
        .map_err(|e| tar_error(e, tar_count.get()))?;
    report.input_bytes = input_count.get();
    report.tar_bytes = tar_count.get();
    report.stream_time = started.elapsed();
    let finishing = Instant::now();

    let mut superblock = Superblock::new(options.fs_version);
    superblock.chunk_size = options.chunk_size;
    superblock.compressor = options.compressor;
    superblock.digester = options.digester;
    superblock.explicit_uid_gid = !options.repeatable;
    superblock.tarfs = tarfs;

    let (bootstrap, image, sink) = if let Some(w) = writer.take() {
        let mut data = w.finish_data()?;
        // The chunk records move into the model; the finished blob does not need them.
        let files = std::mem::take(&mut data.files);
        let chunk_refs = |d: &Data| -> Vec<ChunkInfo> {
            match d {
                Data::Blob(f) => files.get(*f as usize).cloned().unwrap_or_default(),
                _ => Vec::new(),
            }
        };
        let model = tree.into_model(chunk_refs);
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
            report.blob_size = finished.size;
            (bootstrap, image, finished.sink)
        } else {
            let finished = data.finish(None)?;
            let mut own = finished.blob.clone();
            if let Some(id) = &options.blob_id {
                own.blob_id = id.clone();
            }
            // A layer without stored chunks has no blob: the table keeps only dictionary
            // blobs its chunks refer to.
            let blobs = own_entry(own.clone());
            let image = finish_image(superblock, blobs, model, options);
            let bootstrap = rafs_format::encode(&image)?;
            if finished.size > 0 {
                report.blob_id = Some(own.blob_id.clone());
            }
            report.blob_size = finished.size;
            (bootstrap, image, finished.sink)
        }
    } else {
        let model = tree.into_model(|d| match d {
            Data::Tarfs(c) => c.clone(),
            _ => Vec::new(),
        });
        let digest =
            tar_digest.ok_or_else(|| Error::InvalidOptions("tarfs input was not hashed".into()))?;
        let id = match &options.blob_id {
            Some(id) => id.clone(),
            None => rafs_format::hex(&digest),
        };
        let mut blob = Blob::new(
            id.clone(),
            Compressor::None,
            Digester::Sha256,
            options.chunk_size,
        );
        blob.features = BlobFeatures::CAP_TAR_TOC | BlobFeatures::TARFS;
        blob.chunk_count = tarfs_chunks;
        blob.compressed_size = report.tar_bytes;
        blob.uncompressed_size = report.tar_bytes;
        blob.meta.compressor = Compressor::Lz4Block.to_u32();
        let image = finish_image(superblock, vec![blob], model, options);
        let bootstrap = rafs_format::encode(&image)?;
        report.blob_id = Some(id);
        let Some(sink) = tarfs_sink else {
            return Err(Error::InvalidOptions("tarfs build without its sink".into()));
        };
        (bootstrap, image, sink)
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
    })
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
fn stream_error(e: StreamError, at: u64) -> Error {
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
fn tar_error(e: io::Error, offset: u64) -> Error {
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
