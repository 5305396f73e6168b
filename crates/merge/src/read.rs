//! Reading an image: walk it, stat a path, read a file's bytes (whole or a range) through its
//! blobs, digests verified on request.

use crate::error::{Error, Result};
use rafs_chunker::{BlobReader, FileSource, ReadAt, Verify};
use rafs_format::model::{Blob, ChunkInfo, Image, Inode, NodeId};
use std::io::Read;
use std::path::Path;

/// A blob source as the reader needs it.
pub type BlobSource = Box<dyn ReadAt + Send + Sync>;

/// An image with its blobs open.
pub struct ImageReader {
    image: Image,
    blobs: Vec<Option<BlobReader<BlobSource>>>,
    verify: bool,
}

impl ImageReader {
    /// Opens an image whose blobs are files named by their blob ids in `dir` (tarfs: the
    /// layer tar under its id). Missing blobs are an error only when a file needs them.
    pub fn open_dir(image: Image, dir: &Path) -> Result<Self> {
        Self::open_with(image, |b| {
            let p = dir.join(&b.blob_id);
            match FileSource::open(&p) {
                Ok(f) => Ok(Some(Box::new(f) as BlobSource)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(Error::BlobMissing {
                    blob_id: b.blob_id.clone(),
                    reason: format!("{}: {e}", p.display()),
                }),
            }
        })
    }

    /// Opens an image with blobs from `find` (`None`: not available).
    pub fn open_with(
        image: Image,
        mut find: impl FnMut(&Blob) -> Result<Option<BlobSource>>,
    ) -> Result<Self> {
        let mut blobs = Vec::with_capacity(image.blobs.len());
        for b in &image.blobs {
            blobs.push(match find(b)? {
                Some(src) => Some(BlobReader::open_for(src, b).map_err(|e| Error::Data {
                    path: format!("blob {}", b.blob_id),
                    source: e,
                })?),
                None => None,
            });
        }
        Ok(ImageReader {
            image,
            blobs,
            verify: false,
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
        let tree = &self.image.tree;
        let mut cur = rafs_format::model::ROOT;
        for c in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
            cur = *tree
                .node(cur)
                .children
                .iter()
                .find(|&&ch| tree.node(ch).name == c.as_bytes())?;
        }
        Some(cur)
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
                path: tree.path(node),
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
                path: tree.path(node),
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
                return Err(Error::BlobMissing {
                    blob_id: b.map_or_else(|| format!("#{index}"), |b| b.blob_id.clone()),
                    reason: format!("needed by {}", self.image.tree.path(node)),
                })
            }
        };
        let verify = Verify {
            digest: (verify && !self.image.superblock.tarfs).then_some(blob.digester),
            crc32: verify,
        };
        reader
            .read_chunk(c, blob.compressor, verify)
            .map_err(|e| Error::Data {
                path: self.image.tree.path(node),
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
            out.extend_from_slice(&data[from as usize..to as usize]);
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

    /// Reads every chunk of every file, checking digests: `rafs check --blob-dir`.
    pub fn verify_all(&self) -> Result<u64> {
        let mut chunks = 0;
        let tree = &self.image.tree;
        let mut seen = std::collections::HashSet::new();
        for i in 0..tree.nodes.len() {
            let node = NodeId(i as u32);
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
