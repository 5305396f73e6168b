//! Chunks read back: stored on their own, batch members, zran chunks from a gzip layer.

use super::*;

impl<S: ReadAt> BlobReader<S> {
    /// The chunk-info entry of chunk `index`.
    pub fn chunk_entry(&self, index: u32) -> Result<&CiEntry> {
        self.meta_and_entry(index).map(|(_, e)| e)
    }

    pub(super) fn meta_and_entry(&self, index: u32) -> Result<(&BlobMeta, &CiEntry)> {
        let meta = self.meta.as_ref().ok_or_else(|| {
            berr(
                "blob",
                0,
                BlobErrorKind::Unsupported("blob has no chunk-info array".into()),
            )
        })?;
        let e = meta.entries.get(index as usize).ok_or_else(|| {
            berr(
                "chunk-info array",
                meta.header.ci_offset,
                BlobErrorKind::ChunkNotFound {
                    index,
                    // The header counts entries in a u32.
                    count: u32::try_from(meta.entries.len()).unwrap_or(u32::MAX),
                },
            )
        })?;
        Ok((meta, e))
    }

    /// The stored bytes of a chunk record, decompressed with `compressor` (the blob's) and
    /// checked as `verify` asks.
    pub fn read_chunk(
        &self,
        chunk: &ChunkInfo,
        compressor: Compressor,
        verify: Verify,
    ) -> Result<Vec<u8>> {
        let usize_ = u64::from(chunk.uncompressed_size);
        if usize_ == 0 || usize_ > u64::from(MAX_CHUNK_SIZE) {
            let reason = format!("{usize_} not in 1..=16 MiB");
            return Err(invalid(
                CHUNK,
                chunk.compressed_offset,
                "uncompressed size",
                reason,
            ));
        }
        let data = if self.in_batch(chunk) {
            self.read_batch_member(chunk, compressor)?
        } else if self.is_zran(chunk) {
            self.read_zran(chunk)?
        } else {
            self.read_stored(chunk, compressor)?
        };
        check_chunk(chunk, &data, verify)?;
        Ok(data)
    }

    /// Whether a chunk lives in a batch. Bootstrap records of batch members carry no batch
    /// flag and a stored size of 0; only the chunk-info entry knows where their batch is.
    pub(super) fn in_batch(&self, chunk: &ChunkInfo) -> bool {
        chunk.flags.contains(ChunkFlags::BATCH)
            || (chunk.compressed_size == 0
                && self
                    .meta
                    .as_ref()
                    .and_then(|m| m.entries.get(chunk.index as usize))
                    .is_some_and(|e| e.is_batch()))
    }

    /// A chunk stored on its own: read inside the data, then decompressed or taken raw.
    pub(super) fn read_stored(&self, chunk: &ChunkInfo, compressor: Compressor) -> Result<Vec<u8>> {
        let at = chunk.compressed_offset;
        let usize_ = u64::from(chunk.uncompressed_size);
        let csize = u64::from(chunk.compressed_size);
        if let (0, None, Some(b)) = (csize, &self.meta, &self.batches) {
            return b.read(&self.src, chunk, compressor);
        }
        if csize == 0 && self.meta.is_none() {
            let reason = "0: a batch member, whose batch only the blob meta locates, and the \
                          blob file given holds no blob meta (only the data)";
            return Err(invalid(CHUNK, at, "compressed size", reason));
        }
        if csize == 0 || csize > u64::from(MAX_CHUNK_SIZE) {
            return Err(invalid(
                CHUNK,
                at,
                "compressed size",
                format!("{csize} not in 1..=16 MiB"),
            ));
        }
        let end = at.saturating_add(csize);
        if end > self.data_end {
            let kind = BlobErrorKind::Truncated {
                needed: end,
                available: self.data_end,
            };
            return Err(berr(CHUNK, at, kind));
        }
        let mut stored = self.read_vec(at, csize, CHUNK)?;
        self.decrypt(&mut stored, CHUNK, at)?;
        if chunk.flags.contains(ChunkFlags::COMPRESSED) {
            return decompress(
                compressor,
                &stored,
                usize_,
                u64::from(MAX_CHUNK_SIZE),
                CHUNK,
                at,
            );
        }
        if stored.len() as u64 != usize_ {
            let reason = "raw chunk whose stored size differs from its size";
            return Err(invalid(CHUNK, at, "compressed size", reason));
        }
        Ok(stored)
    }

    pub(super) fn read_batch_member(
        &self,
        chunk: &ChunkInfo,
        compressor: Compressor,
    ) -> Result<Vec<u8>> {
        const S: &str = "batch";
        let (meta, e) = self.meta_and_entry(chunk.index)?;
        let e = *e;
        if !e.is_batch() {
            return Err(invalid(
                "chunk-info entry",
                chunk.compressed_offset,
                "flags",
                "record says batch, entry does not",
            ));
        }
        if (e.uncompressed_offset, e.uncompressed_size)
            != (chunk.uncompressed_offset, chunk.uncompressed_size)
        {
            return Err(invalid(
                "chunk-info entry",
                chunk.compressed_offset,
                "uncompressed range",
                "differs from the chunk record",
            ));
        }
        // BlobMeta::decode checked the batch index, the inner range and the stored range.
        let b = *meta.batches.get((e.data >> 32) as usize).ok_or_else(|| {
            invalid(
                S,
                e.compressed_offset,
                "batch index",
                "names no batch context",
            )
        })?;
        let inner = (e.data & 0xffff_ffff) as usize;
        let mut stored = self.read_vec(e.compressed_offset, u64::from(b.compressed_size), S)?;
        self.decrypt(&mut stored, S, e.compressed_offset)?;
        let unit = if stored.len() as u64 == u64::from(b.uncompressed_size) {
            stored
        } else {
            decompress(
                compressor,
                &stored,
                b.uncompressed_size.into(),
                u64::from(MAX_CHUNK_SIZE),
                S,
                e.compressed_offset,
            )?
        };
        let end = inner + chunk.uncompressed_size as usize;
        unit.get(inner..end).map(<[u8]>::to_vec).ok_or_else(|| {
            invalid(
                S,
                e.compressed_offset,
                "offset",
                "chunk extends past its batch",
            )
        })
    }

    /// Chunk `index` of the blob meta as a chunk record (digest unknown), for reading a blob
    /// without its bootstrap.
    pub fn chunk_from_meta(&self, index: u32) -> Result<ChunkInfo> {
        let e = *self.chunk_entry(index)?;
        let mut flags = ChunkFlags::empty();
        if e.is_compressed() {
            flags |= ChunkFlags::COMPRESSED;
        }
        if e.is_batch() {
            flags |= ChunkFlags::BATCH;
        }
        Ok(ChunkInfo {
            digest: [0; 32],
            blob_index: 0,
            index,
            flags,
            compressed_offset: e.compressed_offset,
            compressed_size: e.compressed_size,
            uncompressed_offset: e.uncompressed_offset,
            uncompressed_size: e.uncompressed_size,
            file_offset: 0,
            crc32: 0,
        })
    }
    /// Opens a zran blob (`targz-ref`): `layer` is the gzip layer, which is the data; its
    /// chunk-info entries and inflate contexts come from `meta_blob`, the metadata blob the
    /// build wrote (separate, or holding the bootstrap and a ToC). The blob-table entry must
    /// describe both: the layer's size, the metadata's location.
    pub fn open_zran(layer: S, meta_blob: &dyn ReadAt, blob: &Blob) -> Result<Self> {
        let m = BlobReader::open(meta_blob)?;
        let meta = m.meta.filter(|m| m.zran.is_some()).ok_or_else(|| {
            invalid(
                "zran metadata blob",
                0,
                "blob meta",
                "no chunk-info array with inflate contexts",
            )
        })?;
        let h = &meta.header;
        let loc = &blob.meta;
        if loc.compressed_size > 0
            && (h.ci_offset, h.ci_compressed_size, h.ci_uncompressed_size)
                != (loc.offset, loc.compressed_size, loc.uncompressed_size)
        {
            return Err(invalid(
                "zran metadata blob",
                h.ci_offset,
                "ci_offset",
                "differs from the bootstrap's blob table",
            ));
        }
        if layer.size() != blob.compressed_size {
            let reason = format!(
                "the layer has {} bytes, the blob table says {}",
                layer.size(),
                blob.compressed_size
            );
            return Err(invalid("gzip layer", 0, "size", reason));
        }
        let data_end = layer.size();
        Ok(BlobReader {
            src: layer,
            sections: Vec::new(),
            toc: None,
            meta: Some(meta),
            data_end,
            limits: m.limits,
            batches: None,
            cipher: None,
        })
    }

    /// A zran chunk: inflated from its context in the gzip layer.
    pub(super) fn read_zran(&self, chunk: &ChunkInfo) -> Result<Vec<u8>> {
        const S: &str = "zran chunk";
        let (meta, e) = self.meta_and_entry(chunk.index)?;
        if e.uncompressed_size != chunk.uncompressed_size {
            let reason = "differs from the chunk record";
            return Err(invalid(S, e.compressed_offset, "uncompressed size", reason));
        }
        let (ci, inner) = ((e.data >> 32) as u32, (e.data & 0xffff_ffff) as u32);
        // BlobMeta::decode checked the context exists and holds the chunk.
        let (ctx, dict) = meta
            .zran
            .as_ref()
            .and_then(|t| t.get(ci))
            .ok_or_else(|| invalid(S, e.compressed_offset, "zran context", "missing"))?;
        let mut out = Vec::new();
        crate::zran::read_chunk(&self.src, ctx, dict, inner, e.uncompressed_size, &mut out)
            .map_err(|f| {
                let at = ctx.in_offset.get();
                match f {
                    crate::zran::ChunkFault::Read(r) => Error::io(
                        format!("reading the gzip layer at {at}"),
                        std::io::Error::other(r),
                    ),
                    other => invalid(S, at, "zran context", format!("context {ci}: {other}")),
                }
            })?;
        Ok(out)
    }

    pub(super) fn is_zran(&self, chunk: &ChunkInfo) -> bool {
        self.meta
            .as_ref()
            .and_then(|m| m.entries.get(chunk.index as usize))
            .is_some_and(CiEntry::is_zran)
    }
}
