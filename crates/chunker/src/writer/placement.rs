//! The writer thread's placement of chunks: dedup against the blob and the dictionary, batches,
//! zran records, stored bytes (encrypted when the blob is).

use super::*;

impl<W: Write> Placement<W> {
    pub(super) fn new(sink: W, opts: BlobOptions, dict: Option<ChunkDict>) -> Self {
        Placement {
            sink: BufWriter::with_capacity(256 * 1024, sink),
            pos: 0,
            hash: Sha256::new(),
            opts,
            uncompressed_offset: 0,
            entries: Vec::new(),
            stored_at: Vec::new(),
            seen: HashTable::new(),
            seen_hasher: RandomState::new(),
            dict,
            dict_blob_slots: HashMap::new(),
            table: Vec::new(),
            own_index: None,
            files: Vec::new(),
            batch: Vec::new(),
            batches: Vec::new(),
            batch_out: Vec::new(),
            zran_contexts: Vec::new(),
            late_compress: CompressContext::new(),
            late_out: Vec::new(),
            sealed: Vec::new(),
        }
    }

    pub(super) fn write(&mut self, bytes: &[u8], hashed: bool) -> Result<()> {
        self.sink
            .write_all(bytes)
            .map_err(|e| Error::io("writing the blob", e))?;
        if hashed {
            self.hash.update(bytes);
        }
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Writes one stored unit (a chunk or a batch), encrypted when the blob is; returns the
    /// size written.
    pub(super) fn write_unit(&mut self, unit: &[u8]) -> Result<u32> {
        let mut sealed = std::mem::take(&mut self.sealed);
        let bytes = match &self.opts.cipher {
            Some(cipher) => {
                cipher.encrypt(unit, &mut sealed)?;
                &sealed[..]
            }
            None => unit,
        };
        let size = field_u32("stored chunk size", bytes.len())?;
        if self.pos + u64::from(size) >= 1 << 40 {
            return Err(Error::Unrepresentable(
                "blob data exceeds 2^40 bytes".into(),
            ));
        }
        let written = self.write(bytes, true);
        self.sealed = sealed;
        written.map(|()| size)
    }

    pub(super) fn place(&mut self, d: &Piece<'_>) -> Result<()> {
        let usize_ = field_u32("chunk size", d.data.len())?;
        let key = (d.digest, usize_);
        let mut info = if let Some((dict_blob, chunk)) =
            self.dict.as_ref().and_then(|dict| dict.lookup(&key))
        {
            let slot = match self.dict_blob_slots.get(&dict_blob) {
                Some(&s) => s,
                None => {
                    let blob = self
                        .dict
                        .as_ref()
                        .and_then(|dict| dict.blob(dict_blob))
                        .cloned()
                        .ok_or_else(|| Error::Pipeline("dictionary blob vanished".into()))?;
                    self.table.push(BlobTableEntry::Dictionary(blob));
                    let s = field_u32("blob table slot", self.table.len() - 1)?;
                    self.dict_blob_slots.insert(dict_blob, s);
                    s
                }
            };
            ChunkInfo {
                blob_index: slot,
                ..chunk
            }
        } else if let Some(info) = self.seen_chunk(&key) {
            info
        } else {
            let info = if d.skipped_duplicate {
                self.compress_and_store(d)?
            } else {
                self.store(d)?
            };
            let at = self.files.get(d.file as usize).map_or(0, Vec::len);
            self.remember(
                &key,
                info.index,
                (d.file, field_u32("chunks of a file", at)?),
            )?;
            info
        };
        info.file_offset = d.file_offset;
        let f = d.file as usize;
        if self.files.len() <= f {
            self.files.resize_with(f + 1, Vec::new);
        }
        let list = &mut self.files[f];
        // Most files have one chunk: room for one, not the four a first push reserves.
        if list.capacity() == 0 {
            list.reserve_exact(1);
        }
        list.push(info);
        Ok(())
    }

    /// Stores a chunk a worker left uncompressed as a duplicate that turned out to need its
    /// own bytes (only if two claim keys collided): compressed here, as the worker would have.
    pub(super) fn compress_and_store(&mut self, d: &Piece<'_>) -> Result<ChunkInfo> {
        let mut out = std::mem::take(&mut self.late_out);
        let compressed = self
            .late_compress
            .compress(self.opts.compressor, d.data, &mut out)?;
        let piece = Piece {
            out: &out,
            compressed,
            skipped_duplicate: false,
            ..*d
        };
        let stored = self.store(&piece);
        self.late_out = out;
        stored
    }

    /// The record of a chunk stored earlier with this digest and size.
    pub(super) fn seen_chunk(&self, key: &([u8; 32], u32)) -> Option<ChunkInfo> {
        let hash = self.seen_hasher.hash_one(key);
        let record = |index: u32| stored_record(&self.files, &self.stored_at, index);
        let &index = self.seen.find(hash, |&i| {
            record(i).is_some_and(|c| (c.digest, c.uncompressed_size) == *key)
        })?;
        record(index).copied()
    }

    /// Notes the chunk just stored as chunk `index` under `key`, its record to be at `at`.
    pub(super) fn remember(
        &mut self,
        key: &([u8; 32], u32),
        index: u32,
        at: (u32, u32),
    ) -> Result<()> {
        if index as usize != self.stored_at.len() {
            return Err(Error::Pipeline(format!(
                "chunk {index} stored out of order (expected {})",
                self.stored_at.len()
            )));
        }
        self.stored_at.push(at);
        let Placement {
            seen,
            seen_hasher,
            files,
            stored_at,
            ..
        } = self;
        let rehash = |&i: &u32| {
            stored_record(files, stored_at, i)
                .map_or(0, |c| seen_hasher.hash_one((c.digest, c.uncompressed_size)))
        };
        // The record is pushed after this; the rehash only looks at earlier ones.
        seen.insert_unique(seen_hasher.hash_one(key), index, rehash);
        Ok(())
    }

    /// The next chunk index and the uncompressed range of a new chunk of `usize_` bytes.
    pub(super) fn next_chunk(&mut self, usize_: u32) -> Result<(u32, u64)> {
        let index = field_u32("chunk index", self.entries.len())?;
        if index >= MAX_CHUNKS_PER_BLOB {
            return Err(Error::Unrepresentable(format!(
                "more than {MAX_CHUNKS_PER_BLOB} chunks in one blob"
            )));
        }
        let uncompressed_offset = self.uncompressed_offset;
        let advance = if self.opts.aligned() {
            u64::from(usize_).div_ceil(4096) * 4096
        } else {
            u64::from(usize_)
        };
        if uncompressed_offset + advance >= 1 << 44 {
            return Err(Error::Unrepresentable(
                "uncompressed blob exceeds 2^44 bytes".into(),
            ));
        }
        self.uncompressed_offset += advance;
        Ok((index, uncompressed_offset))
    }

    /// Adds a new chunk to the current batch (after writing the batch out if the chunk would
    /// fill it) and records it as the reference does (blob.md §10): the chunk-info entry
    /// names the batch and the place in it; the bootstrap record has no stored range.
    pub(super) fn store_batched(&mut self, d: &Piece<'_>) -> Result<ChunkInfo> {
        let usize_ = field_u32("chunk size", d.data.len())?;
        if !self.batch.is_empty()
            && self.batch.len() + d.data.len() >= self.opts.batch_size as usize
        {
            self.flush_batch()?;
        }
        let own = self.own_index()?;
        let (index, uncompressed_offset) = self.next_chunk(usize_)?;
        let batch_index = u64::try_from(self.batches.len()).unwrap_or(u64::MAX);
        self.entries.push(CiEntry {
            uncompressed_offset,
            uncompressed_size: usize_,
            compressed_offset: self.pos,
            compressed_size: 0,
            flags: ci_flags::COMPRESSED | ci_flags::BATCH | self.encrypted_flag(),
            data: batch_index << 32 | self.batch.len() as u64,
        });
        self.batch.extend_from_slice(d.data);
        let crc32 = if self.opts.crc32 { d.crc32 } else { 0 };
        let mut flags = if self.opts.crc32 {
            ChunkFlags::HAS_CRC32
        } else {
            ChunkFlags::empty()
        };
        if self.opts.cipher.is_some() {
            flags |= ChunkFlags::ENCRYPTED;
        }
        let info = ChunkInfo {
            digest: d.digest,
            blob_index: own,
            index,
            flags,
            compressed_offset: 0,
            compressed_size: 0,
            uncompressed_offset,
            uncompressed_size: usize_,
            file_offset: d.file_offset,
            crc32,
        };
        Ok(info)
    }

    /// Writes the current batch as one unit, compressed unless that does not shrink it.
    pub(super) fn flush_batch(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let mut out = std::mem::take(&mut self.batch_out);
        let mut raw = std::mem::take(&mut self.batch);
        let compressed = crate::compress::compress(self.opts.compressor, &raw, &mut out)?;
        let stored = if compressed { &out } else { &raw };
        let context = BatchContext {
            compressed_size: self.write_unit(stored)?,
            uncompressed_size: field_u32("batch size", raw.len())?,
        };
        self.batches.push(context);
        raw.clear();
        self.batch = raw;
        self.batch_out = out;
        Ok(())
    }

    /// Appends a new chunk's stored bytes and records it.
    pub(super) fn store(&mut self, d: &Piece<'_>) -> Result<ChunkInfo> {
        if d.batchable {
            return self.store_batched(d);
        }
        if let Some(z) = d.zran {
            return self.store_zran(d, z);
        }
        // A chunk stored on its own ends the batch being filled (the reference's order).
        self.flush_batch()?;
        let own = self.own_index()?;
        let usize_ = field_u32("chunk size", d.data.len())?;
        let stored: &[u8] = if d.compressed { d.out } else { d.data };
        let compressed_offset = self.pos;
        let (index, uncompressed_offset) = self.next_chunk(usize_)?;
        let csize = self.write_unit(stored)?;
        let crc32 = if self.opts.crc32 { d.crc32 } else { 0 };
        let (flags, ci) = self.chunk_flags(d.compressed);
        let info = ChunkInfo {
            digest: d.digest,
            blob_index: own,
            index,
            flags,
            compressed_offset,
            compressed_size: csize,
            uncompressed_offset,
            uncompressed_size: usize_,
            file_offset: d.file_offset,
            crc32,
        };
        self.entries.push(CiEntry {
            uncompressed_offset,
            uncompressed_size: usize_,
            compressed_offset,
            compressed_size: csize,
            flags: ci,
            data: u64::from(crc32),
        });
        Ok(info)
    }

    /// Records a chunk that stays in the gzip layer (blob.md §11): its stored range is the
    /// input inflate consumed while it was read; the chunk-info entry names its context.
    pub(super) fn store_zran(&mut self, d: &Piece<'_>, z: ZranChunk) -> Result<ChunkInfo> {
        let own = self.own_index()?;
        let usize_ = field_u32("chunk size", d.data.len())?;
        if z.len != usize_ {
            return Err(Error::Pipeline(format!(
                "zran chunk of {} bytes recorded for {usize_} bytes read",
                z.len
            )));
        }
        if z.in_len > 0xff_ffff || z.in_pos >= 1 << 40 {
            return Err(Error::Unrepresentable(format!(
                "a chunk spanning {}+{} bytes of the gzip layer does not fit a chunk-info entry",
                z.in_pos, z.in_len
            )));
        }
        let (index, uncompressed_offset) = self.next_chunk(usize_)?;
        self.entries.push(CiEntry {
            uncompressed_offset,
            uncompressed_size: usize_,
            compressed_offset: z.in_pos,
            compressed_size: z.in_len,
            flags: ci_flags::COMPRESSED | ci_flags::ZRAN,
            data: u64::from(z.context) << 32 | u64::from(z.offset),
        });
        let (flags, _) = self.chunk_flags(true);
        Ok(ChunkInfo {
            digest: d.digest,
            blob_index: own,
            index,
            flags,
            compressed_offset: z.in_pos,
            compressed_size: z.in_len,
            uncompressed_offset,
            uncompressed_size: usize_,
            file_offset: d.file_offset,
            crc32: if self.opts.crc32 { d.crc32 } else { 0 },
        })
    }

    /// This blob's slot in the blob table, taken when it stores its first chunk.
    pub(super) fn own_index(&mut self) -> Result<u32> {
        if let Some(i) = self.own_index {
            return Ok(i);
        }
        let i = field_u32("blob table slot", self.table.len())?;
        self.table.push(BlobTableEntry::ThisBlob);
        self.own_index = Some(i);
        Ok(i)
    }

    /// A chunk's flags in the bootstrap and in the chunk-info entry.
    pub(super) fn chunk_flags(&self, compressed: bool) -> (ChunkFlags, u8) {
        let mut flags = ChunkFlags::empty();
        let mut ci = 0u8;
        if compressed {
            flags |= ChunkFlags::COMPRESSED;
            ci |= ci_flags::COMPRESSED;
        }
        if self.opts.crc32 {
            flags |= ChunkFlags::HAS_CRC32;
            ci |= ci_flags::HAS_CRC32;
        }
        if self.opts.cipher.is_some() {
            flags |= ChunkFlags::ENCRYPTED;
            ci |= ci_flags::ENCRYPTED;
        }
        (flags, ci)
    }

    /// The chunk-info flag of an encrypted blob's chunks.
    pub(super) fn encrypted_flag(&self) -> u8 {
        if self.opts.cipher.is_some() {
            ci_flags::ENCRYPTED
        } else {
            0
        }
    }
}
