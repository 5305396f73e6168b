//! Chunk dictionaries: chunks of an existing image that a new blob references instead of
//! storing again (`--chunk-dict bootstrap=PATH`).

use rafs_format::model::{Blob, ChunkInfo, Digester, Image};
use std::collections::HashMap;
use std::sync::Arc;

/// Chunks of an existing image, keyed by digest and uncompressed size (the reference matches
/// on both). Cloning is cheap: every layer built against one dictionary shares its tables.
#[derive(Debug, Clone)]
pub struct ChunkDict {
    digester: Digester,
    blobs: Arc<Vec<Blob>>,
    chunks: Arc<HashMap<([u8; 32], u32), ChunkInfo>>,
}

impl ChunkDict {
    /// Collects every chunk of every regular file of `image`. Tarfs images have no digests
    /// and contribute nothing.
    pub fn from_image(image: &Image) -> Self {
        let mut chunks = HashMap::new();
        if !image.superblock.tarfs {
            for inode in &image.tree.inodes {
                for c in &inode.chunks {
                    if (c.blob_index as usize) < image.blobs.len() {
                        chunks.entry((c.digest, c.uncompressed_size)).or_insert(*c);
                    }
                }
            }
        }
        ChunkDict {
            digester: image.superblock.digester,
            blobs: Arc::new(image.blobs.clone()),
            chunks: Arc::new(chunks),
        }
    }

    /// Decodes a bootstrap and collects its chunks.
    pub fn from_bootstrap(bytes: &[u8]) -> crate::Result<Self> {
        Ok(Self::from_image(&rafs_format::decode(bytes)?))
    }

    /// The digester of the dictionary's chunks.
    pub fn digester(&self) -> Digester {
        self.digester
    }

    /// Number of distinct chunks.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Whether the dictionary holds no chunk.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The dictionary's blobs, in its image's blob table order.
    pub fn blobs(&self) -> &[Blob] {
        &self.blobs
    }

    /// The dictionary's blob at `index`.
    pub fn blob(&self, index: u32) -> Option<&Blob> {
        self.blobs.get(index as usize)
    }

    /// The chunk with this digest and size, and the index of its blob in the dictionary.
    pub fn lookup(&self, key: &([u8; 32], u32)) -> Option<(u32, ChunkInfo)> {
        self.chunks.get(key).map(|c| (c.blob_index, *c))
    }
}
