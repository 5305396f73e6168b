//! [`BlobOptions`]: how to lay out a blob, and the checks `nydus-image` makes on them.

use super::*;

/// How to lay out a blob; the `nydus-image create` options that affect blob bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlobOptions {
    /// RAFS version of the bootstrap: v6 aligns uncompressed offsets and writes blob meta.
    pub fs_version: FsVersion,
    /// Chunk compressor (`--compressor`, default zstd).
    pub compressor: Compressor,
    /// Chunk digester (`--digester`, default blake3).
    pub digester: Digester,
    /// Chunk size (`--chunk-size`): a power of two from 4 KiB to 16 MiB, default 1 MiB.
    pub chunk_size: u32,
    /// v5 `--aligned-chunk`: align uncompressed offsets to 4 KiB (v6 always does).
    pub aligned_chunk: bool,
    /// `--blob-inline-meta`: the bootstrap goes into the blob, sections get tar headers.
    pub inline_bootstrap: bool,
    /// `--features blob-toc`: a digest array and a ToC, sections get tar headers.
    pub blob_toc: bool,
    /// Record CRC-32C of each chunk (the reference does since v2.3.2).
    pub crc32: bool,
    /// v6 `--batch-size`: a file of one chunk smaller than half of it shares a compressed
    /// unit (a batch) with its neighbours; 0 = off.
    pub batch_size: u32,
    /// Worker threads for digest and compression; 0 means one per core.
    pub threads: usize,
    /// Chunks in flight (read but not yet written); 0 means `2 * threads + 2`.
    pub max_in_flight: usize,
    /// `--type targz-ref`: the chunks stay in the gzip layer they are read from; the blob
    /// written is only metadata (blob.md §11). Needs v6, the `gzip` compressor and
    /// [`BlobWriter::add_zran_file`].
    pub zran: bool,
    /// `--encrypt`: stored chunks, batches and the blob meta encrypted with this key (v6
    /// only; see [`crate::cipher`]). The key is recorded in the blob-table entry.
    pub cipher: Option<BlobCipher>,
}

impl BlobOptions {
    /// The reference's defaults for a bootstrap version: zstd, blake3, 1 MiB chunks, CRC-32C,
    /// separate bootstrap, no ToC.
    pub fn new(fs_version: FsVersion) -> Self {
        BlobOptions {
            fs_version,
            compressor: Compressor::Zstd,
            digester: Digester::Blake3,
            chunk_size: 0x10_0000,
            aligned_chunk: false,
            inline_bootstrap: false,
            blob_toc: false,
            crc32: true,
            batch_size: 0,
            threads: 0,
            max_in_flight: 0,
            zran: false,
            cipher: None,
        }
    }

    /// Checks the options as `nydus-image` does.
    pub fn validate(&self) -> Result<()> {
        let cs = self.chunk_size;
        if !cs.is_power_of_two() || !(0x1000..=MAX_CHUNK_SIZE).contains(&cs) {
            return Err(Error::InvalidOptions(format!(
                "chunk size {cs:#x} is not a power of two from 0x1000 to 0x1000000"
            )));
        }
        if self.zran {
            self.validate_zran()?;
        } else if self.compressor == Compressor::Gzip {
            return Err(Error::InvalidOptions(
                "gzip is not a chunk compressor".into(),
            ));
        }
        self.validate_batch()?;
        if self.cipher.is_some() && (self.fs_version != FsVersion::V6 || self.zran) {
            // A v5 blob table has no room for the key: the reference writes such an image,
            // which no reader can decrypt.
            return Err(Error::InvalidOptions(
                "encryption needs RAFS v6 and chunks stored in the blob (not zran)".into(),
            ));
        }
        if self.threads > MAX_THREADS {
            return Err(Error::InvalidOptions(format!(
                "{} threads; at most {MAX_THREADS}",
                self.threads
            )));
        }
        if self.max_in_flight > MAX_IN_FLIGHT {
            return Err(Error::InvalidOptions(format!(
                "{} chunks in flight; at most {MAX_IN_FLIGHT}",
                self.max_in_flight
            )));
        }
        Ok(())
    }

    /// `--batch-size`: v6 only, a power of two from 4 KiB to the chunk size.
    pub(super) fn validate_batch(&self) -> Result<()> {
        let b = self.batch_size;
        if b == 0 {
            return Ok(());
        }
        if self.fs_version != FsVersion::V6 {
            return Err(Error::InvalidOptions("batch chunks need RAFS v6".into()));
        }
        if !b.is_power_of_two() || b < 0x1000 || b > self.chunk_size {
            return Err(Error::InvalidOptions(format!(
                "batch size {b:#x} is not a power of two from 0x1000 to the chunk size {:#x}",
                self.chunk_size
            )));
        }
        Ok(())
    }

    /// zran: v6, chunks "compressed" by the layer's gzip, no batches.
    pub(super) fn validate_zran(&self) -> Result<()> {
        if self.fs_version != FsVersion::V6 {
            return Err(Error::InvalidOptions("zran needs RAFS v6".into()));
        }
        if self.compressor != Compressor::Gzip {
            return Err(Error::InvalidOptions(
                "zran chunks are compressed by the layer's gzip: the compressor must be gzip"
                    .into(),
            ));
        }
        if self.batch_size != 0 {
            return Err(Error::InvalidOptions(
                "zran and batch chunks do not mix".into(),
            ));
        }
        Ok(())
    }

    /// Whether a chunk of `len` bytes, its file's only one, goes into a batch.
    pub(super) fn batchable(&self, chunks_in_file: u64, len: usize) -> bool {
        self.batch_size > 0 && chunks_in_file == 1 && len < (self.batch_size / 2) as usize
    }

    pub(super) fn effective_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
        }
    }

    pub(super) fn aligned(&self) -> bool {
        self.fs_version == FsVersion::V6 || self.aligned_chunk
    }

    pub(super) fn tar_headers(&self) -> bool {
        self.inline_bootstrap || self.blob_toc
    }
}
