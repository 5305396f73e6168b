//! Chunk dictionaries: chunks of an existing image that a new blob references instead of
//! storing again (`--chunk-dict bootstrap=PATH`).

use rafs_format::model::{Blob, ChunkInfo, Digester, Image};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Decides whether a dictionary chunk's stored data decompresses to bytes with the digest its
/// record claims: called at most once per chunk a build would use, from any worker thread.
pub type ChunkVerifier = Arc<dyn Fn(&ChunkInfo) -> bool + Send + Sync>;

/// Key of a dictionary chunk: digest and uncompressed size.
type Key = ([u8; 32], u32);

/// Chunks of an existing image, keyed by digest and uncompressed size (the reference matches
/// on both). Cloning is cheap: every layer built against one dictionary shares its tables.
#[derive(Clone)]
pub struct ChunkDict {
    digester: Digester,
    blobs: Arc<Vec<Blob>>,
    chunks: Arc<HashMap<Key, ChunkInfo>>,
    /// Without one, every chunk is taken as its record says (the reference's trust).
    verifier: Option<ChunkVerifier>,
    /// Each verified chunk's verdict, so the workers and the placement agree and no chunk is
    /// read twice.
    verdicts: Arc<Mutex<HashMap<Key, bool>>>,
}

impl std::fmt::Debug for ChunkDict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkDict")
            .field("digester", &self.digester)
            .field("blobs", &self.blobs.len())
            .field("chunks", &self.chunks.len())
            .field("verified", &self.verifier.is_some())
            .finish()
    }
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
            verifier: None,
            verdicts: Arc::default(),
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

    /// The same dictionary, whose chunks are used only once `verifier` has found their stored
    /// data to be what their records claim; a chunk that fails is a miss (the build stores
    /// its own copy). The verdict of each chunk is kept, so it is the same for every lookup.
    pub fn with_verifier(mut self, verifier: ChunkVerifier) -> Self {
        self.verifier = Some(verifier);
        self.verdicts = Arc::default();
        self
    }

    /// Whether lookups verify the chunks they return.
    pub fn verifies(&self) -> bool {
        self.verifier.is_some()
    }

    /// The chunk with this digest and size, and the index of its blob in the dictionary
    /// (with a verifier: only a chunk whose data was found to match).
    pub fn lookup(&self, key: &Key) -> Option<(u32, ChunkInfo)> {
        let c = self.chunks.get(key)?;
        if let Some(verify) = &self.verifier {
            if !self.verdict(key, c, verify) {
                return None;
            }
        }
        Some((c.blob_index, *c))
    }

    /// The kept verdict of a chunk, or a new one. Two threads may verify the same chunk at
    /// once; both get the same answer from the same bytes.
    fn verdict(&self, key: &Key, c: &ChunkInfo, verify: &ChunkVerifier) -> bool {
        let kept = |v: &Mutex<HashMap<Key, bool>>| {
            v.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(key)
                .copied()
        };
        if let Some(v) = kept(&self.verdicts) {
            return v;
        }
        let ok = verify(c);
        self.verdicts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(*key, ok);
        ok
    }
}
