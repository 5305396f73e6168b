//! Reading an image: walk it, stat a path, read a file's bytes (whole or a range) through its
//! blobs, digests verified on request.

use crate::error::{Error, Result};
use rafs_chunker::{BlobReader, FileSource, ReadAt, Verify};
use rafs_format::model::{Blob, BlobFeatures, ChunkInfo, Image, Inode, NodeId};
use sha2::{Digest as _, Sha256};
use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

/// The blob file named by `blob`'s id in `dir`, opened as [`ImageReader::open_dir`] opens
/// it (inside `dir` only, regular files only); `None` when there is none. For callers of
/// [`ImageReader::open_with`] that find some blobs elsewhere.
pub fn blob_in_dir(dir: &Path, blob: &Blob) -> Result<Option<BlobSource>> {
    match FileSource::open_in_dir(dir, &blob.blob_id) {
        Ok(f) => Ok(Some(Box::new(f) as BlobSource)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::BlobInvalid {
            blob_id: blob.blob_id.clone(),
            reason: format!("in {}: {e}", dir.display()),
        }),
    }
}

/// The metadata blob of a zran (`targz-ref`) blob in `dir`: the file named by the hex
/// `blob_meta_digest` its table entry records (`None`: no such record, or no such file).
pub fn zran_meta_in_dir(dir: &Path, blob: &Blob) -> Result<Option<BlobSource>> {
    if blob.meta_digest == [0; 32] {
        return Ok(None);
    }
    let name = rafs_format::hex(&blob.meta_digest);
    match FileSource::open_in_dir(dir, &name) {
        Ok(f) => Ok(Some(Box::new(f) as BlobSource)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::BlobInvalid {
            blob_id: blob.blob_id.clone(),
            reason: format!("metadata blob {name} in {}: {e}", dir.display()),
        }),
    }
}

fn is_zran(blob: &Blob) -> bool {
    blob.features.contains(BlobFeatures::ZRAN)
}

/// A blob source as the reader needs it.
pub type BlobSource = Box<dyn ReadAt + Send + Sync>;

/// An image with its blobs open.
pub struct ImageReader {
    image: Image,
    blobs: Vec<Option<BlobReader<BlobSource>>>,
    verify: bool,
    /// For each tarfs blob, whether the whole tar hashed to its id (checked once, when a
    /// verified read first needs it).
    tar_verified: Vec<OnceLock<std::result::Result<(), String>>>,
}

/// Whether a blob's data is a layer tar read in place (its id is the tar's sha256).
fn is_tarfs(image: &Image, blob: &Blob) -> bool {
    image.superblock.tarfs || blob.features.contains(BlobFeatures::TARFS)
}

impl ImageReader {
    /// Opens an image whose blobs are files named by their blob ids in `dir` (tarfs: the
    /// layer tar under its id). Missing blobs are an error only when a file needs them. A blob
    /// id is only ever a name in `dir`: links leading out of it, FIFOs and devices are refused
    /// ([`FileSource::open_in_dir`]).
    pub fn open_dir(image: Image, dir: &Path) -> Result<Self> {
        Self::open_with_meta(image, |b| blob_in_dir(dir, b), |b| zran_meta_in_dir(dir, b))
    }

    /// Opens an image with blobs from `find` (`None`: not available).
    pub fn open_with(
        image: Image,
        find: impl FnMut(&Blob) -> Result<Option<BlobSource>>,
    ) -> Result<Self> {
        Self::open_with_meta(image, find, |_| Ok(None))
    }

    /// [`open_with`](Self::open_with), with the metadata blobs of zran blobs from
    /// `find_meta` (their data is the gzip layer `find` gives; the chunk-info entries and
    /// inflate contexts are in the metadata blob the build wrote).
    pub fn open_with_meta(
        image: Image,
        mut find: impl FnMut(&Blob) -> Result<Option<BlobSource>>,
        mut find_meta: impl FnMut(&Blob) -> Result<Option<BlobSource>>,
    ) -> Result<Self> {
        let mut blobs = Vec::with_capacity(image.blobs.len());
        for b in &image.blobs {
            if is_zran(b) {
                blobs.push(Self::open_zran(b, find(b)?, find_meta(b)?)?);
                continue;
            }
            blobs.push(match find(b)? {
                Some(src) => {
                    if is_tarfs(&image, b) && src.size() != b.compressed_size {
                        return Err(Error::BlobInvalid {
                            blob_id: b.blob_id.clone(),
                            reason: format!(
                                "the image says the tar has {} bytes, the file has {}",
                                b.compressed_size,
                                src.size()
                            ),
                        });
                    }
                    let failed = |e| Error::Data {
                        path: format!("blob {}", b.blob_id),
                        source: e,
                    };
                    let mut reader = BlobReader::open_for(src, b).map_err(failed)?;
                    // Only a v6 data section given alone (no chunk-info array) needs the
                    // records to find its batches; every other blob skips the walk over all
                    // chunks.
                    let v6 = image.superblock.fs_version == rafs_format::model::FsVersion::V6;
                    if v6 && reader.meta().is_none() {
                        let index = blobs.len();
                        let records: Vec<rafs_format::model::ChunkInfo> = image
                            .tree
                            .inodes
                            .iter()
                            .flat_map(|i| &i.chunks)
                            .filter(|c| c.blob_index as usize == index)
                            .copied()
                            .collect();
                        reader
                            .find_batches(&records, image.superblock.compressor)
                            .map_err(failed)?;
                    }
                    Some(reader)
                }
                None => None,
            });
        }
        let tar_verified = image.blobs.iter().map(|_| OnceLock::new()).collect();
        Ok(ImageReader {
            image,
            blobs,
            verify: false,
            tar_verified,
        })
    }

    /// A zran blob's reader, when both the layer and its metadata blob are there.
    fn open_zran(
        b: &Blob,
        layer: Option<BlobSource>,
        meta: Option<BlobSource>,
    ) -> Result<Option<BlobReader<BlobSource>>> {
        let (Some(layer), Some(meta)) = (layer, meta) else {
            return Ok(None);
        };
        BlobReader::open_zran(layer, &meta, b)
            .map(Some)
            .map_err(|e| Error::Data {
                path: format!("blob {}", b.blob_id),
                source: e,
            })
    }

    /// Verify every chunk's digest and CRC while reading.
    pub fn verify_digests(mut self, on: bool) -> Self {
        self.verify = on;
        self
    }

    /// Whether reads verify digests.
    pub fn verifies(&self) -> bool {
        self.verify
    }

    /// The image.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// The node at an absolute path (`/` is the root).
    pub fn lookup(&self, path: &str) -> Option<NodeId> {
        self.image.tree.lookup_components(
            path.as_bytes()
                .split(|&b| b == b'/')
                .filter(|c| !c.is_empty() && *c != b"."),
        )
    }

    /// The inode of a node.
    pub fn stat(&self, node: NodeId) -> &Inode {
        self.image.tree.inode_of(node)
    }

    /// The chunks of a regular file, checked to add up to its size.
    pub(crate) fn file_chunks(&self, node: NodeId) -> Result<&[ChunkInfo]> {
        let tree = &self.image.tree;
        let inode = tree.inode_of(node);
        if !inode.is_reg() {
            return Err(Error::Path {
                path: tree.display_path(node),
                reason: "not a regular file".into(),
            });
        }
        let total: u64 = inode
            .chunks
            .iter()
            .map(|c| u64::from(c.uncompressed_size))
            .sum();
        if total != inode.size {
            return Err(Error::Path {
                path: tree.display_path(node),
                reason: format!("chunks hold {total} bytes, the file {}", inode.size),
            });
        }
        Ok(&inode.chunks)
    }

    /// The uncompressed bytes of one chunk of `node`'s file, verified when `verify` is set.
    pub(crate) fn chunk_data(&self, node: NodeId, c: &ChunkInfo, verify: bool) -> Result<Vec<u8>> {
        let index = c.blob_index as usize;
        let (blob, reader) = match (
            self.image.blobs.get(index),
            self.blobs.get(index).and_then(Option::as_ref),
        ) {
            (Some(b), Some(r)) => (b, r),
            (b, _) => {
                let hint = if b.is_some_and(|b| is_tarfs(&self.image, b)) {
                    "; a tarfs image reads its layer tar in place: give the blob directory \
                     (-D) holding the uncompressed tar named by this id"
                } else if b.is_some_and(is_zran) {
                    "; a zran (targz-ref) blob needs the gzip layer named by this id and the \
                     metadata blob named by its blob_meta_digest in the blob directory"
                } else {
                    ""
                };
                return Err(Error::BlobMissing {
                    blob_id: b.map_or_else(|| format!("#{index}"), |b| b.blob_id.clone()),
                    reason: format!("needed by {}{hint}", self.image.tree.display_path(node)),
                });
            }
        };
        if verify && is_tarfs(&self.image, blob) {
            self.verify_tar(index)?;
        }
        let verify = Verify {
            digest: (verify && !self.image.superblock.tarfs).then_some(blob.digester),
            crc32: verify,
        };
        reader
            .read_chunk(c, blob.compressor, verify)
            .map_err(|e| Error::Data {
                path: self.image.tree.display_path(node),
                source: e,
            })
    }

    /// Reads `len` bytes of a regular file from `offset` (clipped to the file's size).
    pub fn read_range(&self, node: NodeId, offset: u64, len: u64) -> Result<Vec<u8>> {
        let chunks = self.file_chunks(node)?;
        let end = offset.saturating_add(len).min(self.stat(node).size);
        let mut out = Vec::with_capacity(end.saturating_sub(offset).min(1 << 24) as usize);
        let mut at = 0u64;
        for c in chunks {
            let size = u64::from(c.uncompressed_size);
            let (lo, hi) = (at, at + size);
            at = hi;
            if hi <= offset || lo >= end {
                continue;
            }
            let data = self.chunk_data(node, c, self.verify)?;
            let from = offset.max(lo) - lo;
            let to = end.min(hi) - lo;
            let range = usize::try_from(from).ok().zip(usize::try_from(to).ok());
            let part = range.and_then(|(from, to)| data.get(from..to));
            out.extend_from_slice(part.ok_or_else(|| Error::Path {
                path: self.image.tree.display_path(node),
                reason: format!("chunk {} is shorter than its record says", c.index),
            })?);
        }
        Ok(out)
    }

    /// A regular file's bytes as a stream, holding one chunk at a time.
    pub fn file_reader(&self, node: NodeId) -> Result<FileReader<'_>> {
        FileReader::new(self, node)
    }

    /// Reads a whole regular file.
    pub fn read_file(&self, node: NodeId) -> Result<Vec<u8>> {
        let size = self.stat(node).size;
        self.read_range(node, 0, size)
    }

    /// Reads one chunk record of this image's blobs and checks its data against the record's
    /// digest and CRC: what a chunk-dictionary chunk must pass before a new image refers to it.
    pub fn verify_chunk(&self, chunk: &ChunkInfo) -> Result<()> {
        self.chunk_data(rafs_format::model::ROOT, chunk, true)
            .map(|_| ())
    }

    /// Reads every chunk of every file, checking digests: `rafs check --blob-dir`.
    pub fn verify_all(&self) -> Result<u64> {
        for (i, b) in self.image.blobs.iter().enumerate() {
            if is_tarfs(&self.image, b) {
                self.verify_tar(i)?;
            }
            self.check_runtime_limits(i)?;
        }
        let mut chunks = 0;
        let tree = &self.image.tree;
        let mut seen = std::collections::HashSet::new();
        for i in 0..tree.nodes.len() {
            let node = NodeId::at(i);
            let inode = tree.inode_of(node);
            if !inode.is_reg() || !seen.insert(tree.node(node).inode) {
                continue;
            }
            for c in &inode.chunks {
                self.chunk_data(node, c, true)?;
                chunks += 1;
            }
        }
        Ok(chunks)
    }

    /// What we read but nydusd refuses: a zran blob meta with more inflate contexts than
    /// chunks (its `validate_header`), which the reference writes for layers whose chunks
    /// repeat; every file of such a layer fails to read in a container.
    fn check_runtime_limits(&self, index: usize) -> Result<()> {
        let Some(meta) = self.blob_reader(index).and_then(|r| r.meta()) else {
            return Ok(());
        };
        let contexts = meta
            .zran
            .as_ref()
            .map_or(0, rafs_chunker::zran::ZranTable::len);
        if contexts > meta.entries.len() {
            return Err(Error::BlobInvalid {
                blob_id: self.image.blobs[index].blob_id.clone(),
                reason: format!(
                    "{contexts} zran inflate contexts for {} chunks: nydusd refuses a blob meta \
                     with more contexts than chunks, so no file of it reads in a container",
                    meta.entries.len()
                ),
            });
        }
        Ok(())
    }

    /// Hashes a tarfs blob whole, once, and compares the digest with its id (a tarfs blob id
    /// is the sha256 of the tar; an id that is not a digest cannot be checked and passes).
    fn verify_tar(&self, index: usize) -> Result<()> {
        let (Some(blob), Some(reader)) = (self.image.blobs.get(index), self.blob_reader(index))
        else {
            return Ok(());
        };
        let outcome = self.tar_verified[index].get_or_init(|| {
            if rafs_format::unhex32(&blob.blob_id).is_none() {
                return Ok(());
            }
            let src = reader.source();
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut at = 0u64;
            while at < src.size() {
                let n = usize::try_from(src.size() - at).map_or(buf.len(), |n| n.min(buf.len()));
                src.read_exact_at(&mut buf[..n], at)
                    .map_err(|e| format!("reading the tar: {e}"))?;
                hasher.update(&buf[..n]);
                at += n as u64;
            }
            let got = rafs_format::hex(&hasher.finalize());
            if got.eq_ignore_ascii_case(&blob.blob_id) {
                Ok(())
            } else {
                Err(format!("the tar's sha256 is {got}, not its id"))
            }
        });
        outcome.clone().map_err(|reason| Error::BlobInvalid {
            blob_id: blob.blob_id.clone(),
            reason,
        })
    }

    pub(crate) fn blob_reader(&self, index: usize) -> Option<&BlobReader<BlobSource>> {
        self.blobs.get(index).and_then(Option::as_ref)
    }
}

/// A regular file's bytes as a `Read`, one chunk decompressed at a time.
pub struct FileReader<'a> {
    reader: &'a ImageReader,
    node: NodeId,
    chunks: &'a [ChunkInfo],
    next: usize,
    buf: Vec<u8>,
    at: usize,
}

impl<'a> FileReader<'a> {
    fn new(reader: &'a ImageReader, node: NodeId) -> Result<Self> {
        Ok(FileReader {
            reader,
            node,
            chunks: reader.file_chunks(node)?,
            next: 0,
            buf: Vec::new(),
            at: 0,
        })
    }
}

impl Read for FileReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.buf.len() {
            let Some(c) = self.chunks.get(self.next) else {
                return Ok(0);
            };
            self.next += 1;
            self.buf = self
                .reader
                .chunk_data(self.node, c, self.reader.verifies())
                .map_err(std::io::Error::other)?;
            self.at = 0;
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
