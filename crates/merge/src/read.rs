//! Reading an image: walk it, stat a path, read a file's bytes (whole or a range) through its
//! blobs, digests verified on request.

use crate::error::{Error, Result};
use rafs_chunker::{BlobReader, FileSource, ReadAt, Verify};
use rafs_format::model::{Blob, Image, Inode, NodeId};
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

    /// Reads `len` bytes of a regular file from `offset` (clipped to the file's size).
    pub fn read_range(&self, node: NodeId, offset: u64, len: u64) -> Result<Vec<u8>> {
        let tree = &self.image.tree;
        let inode = tree.inode_of(node);
        let path = || tree.path(node);
        if !inode.is_reg() {
            return Err(Error::Path {
                path: path(),
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
                path: path(),
                reason: format!("chunks hold {total} bytes, the file {}", inode.size),
            });
        }
        let end = offset.saturating_add(len).min(inode.size);
        let mut out = Vec::with_capacity(end.saturating_sub(offset).min(1 << 24) as usize);
        let mut at = 0u64;
        for c in &inode.chunks {
            let size = u64::from(c.uncompressed_size);
            let (lo, hi) = (at, at + size);
            at = hi;
            if hi <= offset || lo >= end {
                continue;
            }
            let blob = self.image.blobs.get(c.blob_index as usize);
            let reader = self
                .blobs
                .get(c.blob_index as usize)
                .and_then(Option::as_ref)
                .ok_or_else(|| Error::BlobMissing {
                    blob_id: blob
                        .map_or_else(|| format!("#{}", c.blob_index), |b| b.blob_id.clone()),
                    reason: format!("needed by {}", path()),
                })?;
            let blob = blob.expect("a reader exists for it");
            let verify = Verify {
                digest: (self.verify && !self.image.superblock.tarfs).then_some(blob.digester),
                crc32: self.verify,
            };
            let data = reader
                .read_chunk(c, blob.compressor, verify)
                .map_err(|e| Error::Data {
                    path: path(),
                    source: e,
                })?;
            let from = offset.max(lo) - lo;
            let to = end.min(hi) - lo;
            out.extend_from_slice(&data[from as usize..to as usize]);
        }
        Ok(out)
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
                let blob = &self.image.blobs[c.blob_index as usize];
                let reader = self.blobs[c.blob_index as usize].as_ref().ok_or_else(|| {
                    Error::BlobMissing {
                        blob_id: blob.blob_id.clone(),
                        reason: format!("needed by {}", tree.path(node)),
                    }
                })?;
                let verify = Verify {
                    digest: (!self.image.superblock.tarfs).then_some(blob.digester),
                    crc32: true,
                };
                reader
                    .read_chunk(c, blob.compressor, verify)
                    .map_err(|e| Error::Data {
                        path: tree.path(node),
                        source: e,
                    })?;
                chunks += 1;
            }
        }
        Ok(chunks)
    }

    pub(crate) fn blob_reader(&self, index: usize) -> Option<&BlobReader<BlobSource>> {
        self.blobs.get(index).and_then(Option::as_ref)
    }
}
