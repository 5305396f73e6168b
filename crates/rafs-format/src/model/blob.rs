//! The blob table and chunk records.

use super::*;

bitflags::bitflags! {
    /// `BlobFeatures` bits (shared by v5's extended blob table and v6's blob table).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
    #[serde(transparent)]
    pub struct BlobFeatures: u32 {
        /// Uncompressed chunks are 4 KiB aligned.
        const ALIGNED = 0x0000_0001;
        /// The bootstrap is inlined in the data blob.
        const INLINED_FS_META = 0x0000_0002;
        /// Blob meta uses 24-byte v2 chunk infos.
        const CHUNK_INFO_V2 = 0x0000_0004;
        /// zran (gzip random access) context present.
        const ZRAN = 0x0000_0008;
        /// Blob meta and data in separate blobs.
        const SEPARATE = 0x0000_0010;
        /// Chunk digest array inlined in the data blob.
        const INLINED_CHUNK_DIGEST = 0x0000_0020;
        /// The blob is a layer tar (tarfs).
        const TARFS = 0x0000_0040;
        /// Batch chunks.
        const BATCH = 0x0000_0080;
        /// Encrypted blob.
        const ENCRYPTED = 0x0000_0100;
        /// Produced by chunk-dict generation.
        const IS_CHUNKDICT_GENERATED = 0x0000_0200;
        /// Prefetch blob.
        const IS_SEPARATED_WITH_PREFETCH_FILES = 0x0000_0400;
        /// External blob.
        const EXTERNAL = 0x0000_0800;
        /// Data sections are followed by 512-byte tar headers.
        const HAS_TAR_HEADER = 0x1000_0000;
        /// A ToC sits at the blob's tail.
        const HAS_TOC = 0x2000_0000;
        /// Built by nydus-image 2.2 or later.
        const CAP_TAR_TOC = 0x4000_0000;
    }
}

/// One data blob of the blob table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blob {
    /// Blob id (normally the hex sha256 of the blob file).
    pub blob_id: String,
    /// Chunks allocated in the blob.
    pub chunk_count: u32,
    /// Feature bits.
    pub features: BlobFeatures,
    /// Compressor of the blob's chunks (v5: the superblock's).
    pub compressor: Compressor,
    /// Digester of the blob's chunks (v5: the superblock's).
    pub digester: Digester,
    /// Chunk size (v5: the superblock's).
    pub chunk_size: u32,
    /// Size of the blob file.
    pub compressed_size: u64,
    /// Size of the uncompressed data.
    pub uncompressed_size: u64,
    /// v5 `readahead_offset`.
    pub readahead_offset: u32,
    /// v5 `readahead_size`.
    pub readahead_size: u32,
    /// v6 location of the chunk-info array (blob meta) in the blob.
    pub meta: BlobMetaLocation,
    /// v6 size of the ToC including its tar header.
    pub toc_size: u32,
    /// v6 sha256 of the ToC.
    pub toc_digest: [u8; 32],
    /// v6 digest of a separate meta blob (or the cipher key).
    pub meta_digest: [u8; 32],
    /// v6 size of a separate meta blob (or the first half of the cipher IV).
    pub meta_size: u64,
    /// v6 second half of the cipher IV.
    pub cipher_iv: [u8; 8],
    /// v6 cipher algorithm.
    pub cipher_algo: u32,
}

impl Blob {
    /// A blob with the given id and settings and every other field zero.
    pub fn new(
        blob_id: impl Into<String>,
        compressor: Compressor,
        digester: Digester,
        chunk_size: u32,
    ) -> Self {
        Blob {
            blob_id: blob_id.into(),
            chunk_count: 0,
            features: BlobFeatures::CAP_TAR_TOC,
            compressor,
            digester,
            chunk_size,
            compressed_size: 0,
            uncompressed_size: 0,
            readahead_offset: 0,
            readahead_size: 0,
            meta: BlobMetaLocation::default(),
            toc_size: 0,
            toc_digest: [0; 32],
            meta_digest: [0; 32],
            meta_size: 0,
            cipher_iv: [0; 8],
            cipher_algo: 0,
        }
    }
}

/// Where a blob's chunk-info array lives (v6 `ci_*` fields).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMetaLocation {
    /// Compressor of the array (raw v6 value; tarfs keeps the header default 1).
    pub compressor: u32,
    /// Offset in the blob.
    pub offset: u64,
    /// Stored size.
    pub compressed_size: u64,
    /// Size after decompression.
    pub uncompressed_size: u64,
}

bitflags::bitflags! {
    /// `BlobChunkFlags` of a chunk record.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
    #[serde(transparent)]
    pub struct ChunkFlags: u32 {
        /// Stored compressed.
        const COMPRESSED = 0x01;
        /// Reserved (hole chunk).
        const HOLECHUNK = 0x02;
        /// Encrypted.
        const ENCRYPTED = 0x04;
        /// Batch chunk.
        const BATCH = 0x08;
        /// `crc32` is valid.
        const HAS_CRC32 = 0x10;
        // Readers must not reject bits they do not know.
        const _ = !0;
    }
}

/// One chunk of a regular file: where its data lives and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkInfo {
    /// Digest of the uncompressed data (all zero in tarfs).
    #[serde(with = "hex32")]
    pub digest: [u8; 32],
    /// Index into the blob table.
    pub blob_index: u32,
    /// Chunk index within the blob.
    pub index: u32,
    /// Flags.
    pub flags: ChunkFlags,
    /// Offset of the stored bytes in the blob file.
    pub compressed_offset: u64,
    /// Stored size.
    pub compressed_size: u32,
    /// Offset in the uncompressed blob.
    pub uncompressed_offset: u64,
    /// Size of the chunk's data.
    pub uncompressed_size: u32,
    /// Offset of the chunk within its file.
    pub file_offset: u64,
    /// CRC-32C of the uncompressed data (when `HAS_CRC32`).
    pub crc32: u32,
}

pub(super) mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::hex(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        crate::unhex32(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}
