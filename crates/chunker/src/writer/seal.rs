//! Sealing a blob: [`BlobData`] (data and metadata sections written) and [`FinishedBlob`]
//! (the inlined bootstrap and the ToC appended).

use super::*;

/// A blob whose chunk data and metadata sections are written; the bootstrap (if inlined) and
/// the ToC are still to come.
pub struct BlobData<W: Write> {
    p: Placement<W>,
    toc: Vec<TocEntry>,
    features: BlobFeatures,
    meta: BlobMetaLocation,
    size_before_bootstrap: u64,
    /// zran: the data blob (the gzip layer): its id and size.
    layer: Option<(String, u64)>,
    /// Chunk records of every file added, indexed by [`FileId`], in file order.
    pub files: Vec<Vec<ChunkInfo>>,
    /// The blob table the records' `blob_index` refers to.
    pub blob_table: Vec<BlobTableEntry>,
}

impl<W: Write> BlobData<W> {
    pub(super) fn seal(mut p: Placement<W>, layer: Option<(String, u64)>) -> Result<Self> {
        p.flush_batch()?;
        let opts = p.opts.clone();
        let chunks = p.entries.len();
        let mut toc = Vec::new();
        let features = sealed_features(&opts, chunks);
        // Without an array, v6 keeps the header's default compressor (lz4_block); v5 has no
        // such field.
        let mut meta = BlobMetaLocation {
            compressor: if opts.fs_version == FsVersion::V6 {
                Compressor::Lz4Block.to_u32()
            } else {
                0
            },
            ..Default::default()
        };
        // A zran blob holds no chunk data, so no `image.blob` section.
        if chunks > 0 && opts.tar_headers() && !opts.zran {
            toc.push(p.write_data_header()?);
        }
        let features = if opts.fs_version == FsVersion::V6 && p.uncompressed_offset > 0 {
            let features = features | BlobFeatures::ALIGNED;
            meta = p.write_blob_meta(features, &mut toc)?;
            features
        } else {
            features
        };
        if opts.blob_toc && chunks > 0 {
            toc.push(p.write_digest_array()?);
        }
        let size_before_bootstrap = p.pos;
        let files = std::mem::take(&mut p.files);
        let blob_table = p.table.clone();
        Ok(BlobData {
            p,
            toc,
            features,
            meta,
            size_before_bootstrap,
            layer,
            files,
            blob_table,
        })
    }

    /// Whether any chunk was stored (a layer of directories and empty files stores none, and
    /// then has no data blob unless a bootstrap is inlined).
    pub fn has_data(&self) -> bool {
        !self.p.entries.is_empty()
    }

    /// Chunks stored in this blob.
    pub fn chunk_count(&self) -> u32 {
        // `store` refused a chunk index past MAX_CHUNKS_PER_BLOB, so the count fits.
        u32::try_from(self.p.entries.len()).unwrap_or(MAX_CHUNKS_PER_BLOB)
    }

    /// Chunk-info entries of the stored chunks, in chunk-index order.
    pub fn chunk_entries(&self) -> &[CiEntry] {
        &self.p.entries
    }

    pub(super) fn blob_entry(&self, blob_id: String, compressed_size: u64) -> Blob {
        let o = &self.p.opts;
        // A zran blob-table entry names the gzip layer, whatever was written.
        let (blob_id, compressed_size) = match &self.layer {
            Some((id, size)) => (id.clone(), *size),
            None => (blob_id, compressed_size),
        };
        let mut b = Blob::new(blob_id, o.compressor, o.digester, o.chunk_size);
        b.chunk_count = self.chunk_count();
        b.features = self.features;
        b.compressed_size = compressed_size;
        b.uncompressed_size = self.p.uncompressed_offset;
        b.meta = self.meta;
        if let Some(cipher) = &o.cipher {
            cipher.record_in(&mut b);
        }
        b
    }

    /// The blob-table entry an **inlined** bootstrap records for this blob: the placeholder
    /// id, and as compressed size the blob's size before the bootstrap (blob.md §9).
    pub fn inline_blob_entry(&self) -> Blob {
        self.blob_entry(
            INLINE_BLOB_ID_PLACEHOLDER.into(),
            self.size_before_bootstrap,
        )
    }

    /// The finished blob's table entry; a separate bootstrap also records the ToC and, for
    /// zran, the metadata blob nydusd fetches (blob.md §11).
    pub(super) fn separate_entry(
        &self,
        blob_id: String,
        size: u64,
        toc_digest: [u8; 32],
        toc_size: u32,
    ) -> Blob {
        let mut blob = self.blob_entry(blob_id, size);
        if !self.p.opts.inline_bootstrap {
            blob.toc_digest = toc_digest;
            blob.toc_size = toc_size;
            if self.p.opts.zran {
                blob.meta_digest = self.p.hash.clone().finalize().into();
                blob.meta_size = size;
            }
        }
        blob
    }

    /// Appends the inlined bootstrap (when the options ask for one) and the ToC, and returns
    /// the finished blob. `bootstrap` must be `Some` exactly when `inline_bootstrap` is set.
    pub fn finish(mut self, bootstrap: Option<&[u8]>) -> Result<FinishedBlob<W>> {
        let opts = self.p.opts.clone();
        match (opts.inline_bootstrap, bootstrap) {
            (true, Some(boot)) => {
                let (payload, compressor) = if opts.blob_toc {
                    let mut out = Vec::new();
                    if crate::compress::compress(Compressor::Zstd, boot, &mut out)? {
                        (out, Compressor::Zstd)
                    } else {
                        (boot.to_vec(), Compressor::None)
                    }
                } else {
                    (boot.to_vec(), Compressor::None)
                };
                let offset = self.p.pos;
                self.p.write(&payload, true)?;
                self.p
                    .write(&tar_header(ENTRY_BOOTSTRAP, payload.len() as u64), true)?;
                self.toc.push(TocEntry {
                    name: ENTRY_BOOTSTRAP.into(),
                    compressor,
                    uncompressed_digest: Sha256::digest(boot).into(),
                    compressed_offset: offset,
                    compressed_size: payload.len() as u64,
                    uncompressed_size: boot.len() as u64,
                });
            }
            (false, None) => {}
            (true, None) => {
                return Err(Error::InvalidOptions(
                    "inline_bootstrap is set but no bootstrap was given".into(),
                ))
            }
            (false, Some(_)) => {
                return Err(Error::InvalidOptions(
                    "a bootstrap was given but inline_bootstrap is not set".into(),
                ))
            }
        }
        let mut toc_digest = [0u8; 32];
        let mut toc_size = 0u32;
        let wrote_anything = self.p.pos > 0;
        if opts.blob_toc && wrote_anything {
            let mut bytes = Vec::with_capacity(self.toc.len() * 128 + 512);
            for e in &self.toc {
                bytes.extend_from_slice(&e.to_bytes());
            }
            let len = bytes.len() as u64;
            bytes.extend_from_slice(&tar_header(ENTRY_TOC, len));
            self.p.write(&bytes, true)?;
            toc_digest = Sha256::digest(&bytes).into();
            toc_size = field_u32("ToC size", bytes.len())?;
        }
        self.p
            .sink
            .flush()
            .map_err(|e| Error::io("flushing the blob", e))?;
        let size = self.p.pos;
        let blob_id = rafs_format::hex(&self.p.hash.clone().finalize());
        let blob = self.separate_entry(blob_id.clone(), size, toc_digest, toc_size);
        let sink = self
            .p
            .sink
            .into_inner()
            .map_err(|e| Error::io("flushing the blob", e.into_error()))?;
        Ok(FinishedBlob {
            sink,
            blob_id,
            size,
            blob,
            toc: if opts.blob_toc { self.toc } else { Vec::new() },
            files: self.files,
            blob_table: self.blob_table,
        })
    }
}

/// A finished blob.
pub struct FinishedBlob<W> {
    /// The sink, flushed.
    pub sink: W,
    /// The blob id: sha256 of every byte written except the digest array (hex).
    pub blob_id: String,
    /// Bytes written; 0 when there was nothing to write (no chunks, no inlined bootstrap).
    pub size: u64,
    /// The blob-table entry a **separate** bootstrap records for this blob.
    pub blob: Blob,
    /// The ToC entries written (empty without `blob_toc`).
    pub toc: Vec<TocEntry>,
    /// Chunk records of every file added, indexed by [`FileId`].
    pub files: Vec<Vec<ChunkInfo>>,
    /// The blob table the records' `blob_index` refers to.
    pub blob_table: Vec<BlobTableEntry>,
}
