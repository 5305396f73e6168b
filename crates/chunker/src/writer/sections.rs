//! The sections after the chunk data, in the order the reference writes them: the data's
//! tar header, the blob meta, the digest array.

use super::*;

/// The sections after the chunk data, in the order the reference writes them.
impl<W: Write> Placement<W> {
    /// The tar header closing the chunk data; returns its ToC entry.
    pub(super) fn write_data_header(&mut self) -> Result<TocEntry> {
        let data_len = self.pos;
        self.write(&tar_header(ENTRY_BLOB_DATA, data_len), true)?;
        Ok(TocEntry {
            name: ENTRY_BLOB_DATA.into(),
            compressor: Compressor::None,
            uncompressed_digest: self.hash.clone().finalize().into(),
            compressed_offset: 0,
            compressed_size: data_len,
            uncompressed_size: self.uncompressed_offset,
        })
    }

    /// Keeps only the inflate contexts some stored chunk is read through, renumbering the
    /// entries. A chunk stored once for several spans of the layer (8 MiB of zeros) leaves the
    /// others' contexts unused, and nydusd refuses a blob meta with more contexts than chunks
    /// (`validate_header` in its `storage/src/meta/mod.rs`); the reference writes them all.
    pub(super) fn drop_unused_contexts(&mut self) {
        let mut new_index = vec![u32::MAX; self.zran_contexts.len()];
        for e in &self.entries {
            if let Some(slot) = new_index.get_mut((e.data >> 32) as usize) {
                *slot = 0;
            }
        }
        let mut kept = 0u32;
        for slot in &mut new_index {
            if *slot == 0 {
                *slot = kept;
                kept += 1;
            }
        }
        let mut i = 0;
        self.zran_contexts.retain(|_| {
            i += 1;
            new_index[i - 1] != u32::MAX
        });
        for e in &mut self.entries {
            if let Some(&n) = new_index.get((e.data >> 32) as usize) {
                e.data = (u64::from(n) << 32) | (e.data & 0xffff_ffff);
            }
        }
    }

    /// The v6 chunk-info array and its header (blob.md §6); adds their ToC entries and
    /// returns where the array is.
    pub(super) fn write_blob_meta(
        &mut self,
        features: BlobFeatures,
        toc: &mut Vec<TocEntry>,
    ) -> Result<BlobMetaLocation> {
        let opts = self.opts.clone();
        let tabled = opts.batch_size > 0 || opts.zran;
        if opts.zran {
            self.drop_unused_contexts();
        }
        let format = if tabled || opts.cipher.is_some() {
            CiFormat::V2
        } else {
            CiFormat::V1
        };
        let mut raw = encode_entries(&self.entries, format);
        // Batch or zran contexts follow the entries in the same (compressed) array (blob.md
        // §10, §11).
        let zran_offset = raw.len() as u64;
        let zran_count = if opts.zran {
            raw.extend_from_slice(&crate::zran::encode_contexts(&self.zran_contexts));
            self.zran_contexts.len()
        } else {
            for b in &self.batches {
                raw.extend_from_slice(&b.to_bytes());
            }
            self.batches.len()
        };
        let (stored, ci_compressor) = stored_meta(&opts, &raw)?;
        let header = CiHeader {
            features,
            ci_compressor: ci_compressor.to_u32(),
            entries: field_u32("chunk count", self.entries.len())?,
            ci_offset: self.pos,
            ci_compressed_size: stored.len() as u64,
            ci_uncompressed_size: raw.len() as u64,
            zran_offset: if tabled { zran_offset } else { 0 },
            zran_size: raw.len() as u64 - zran_offset,
            zran_count: field_u32("batch count", zran_count)?,
        };
        let hbytes = header.to_bytes();
        let mut sealed_header = Vec::new();
        match &opts.cipher {
            Some(cipher) => cipher.encrypt(&hbytes, &mut sealed_header)?,
            None => sealed_header.extend_from_slice(&hbytes),
        }
        self.write(&stored, true)?;
        self.write(&sealed_header, true)?;
        if opts.tar_headers() {
            self.write(
                &tar_header(ENTRY_BLOB_META, stored.len() as u64 + hbytes.len() as u64),
                true,
            )?;
        }
        toc.push(TocEntry {
            name: ENTRY_BLOB_META.into(),
            compressor: ci_compressor,
            uncompressed_digest: Sha256::digest(&raw).into(),
            compressed_offset: header.ci_offset,
            compressed_size: header.ci_compressed_size,
            uncompressed_size: header.ci_uncompressed_size,
        });
        toc.push(TocEntry {
            name: ENTRY_BLOB_META_HEADER.into(),
            compressor: Compressor::None,
            uncompressed_digest: Sha256::digest(&hbytes).into(),
            compressed_offset: header.ci_offset + header.ci_compressed_size,
            compressed_size: hbytes.len() as u64,
            uncompressed_size: hbytes.len() as u64,
        });
        Ok(BlobMetaLocation {
            compressor: header.ci_compressor,
            offset: header.ci_offset,
            compressed_size: header.ci_compressed_size,
            uncompressed_size: header.ci_uncompressed_size,
        })
    }

    /// The chunk digest array and its tar header; returns its ToC entry.
    pub(super) fn write_digest_array(&mut self) -> Result<TocEntry> {
        // Digests by chunk index, from the records (the writer keeps no copy of them).
        let mut array = Vec::with_capacity(32 * self.stored_at.len());
        for &(file, at) in &self.stored_at {
            let record = record_at(&self.files, (file, at))
                .ok_or_else(|| Error::Pipeline(format!("file {file} has no record {at}")))?;
            array.extend_from_slice(&record.digest);
        }
        let offset = self.pos;
        // The digest array is left out of the blob hash (blob.md §9); its header is not.
        self.write(&array, false)?;
        self.write(&tar_header(ENTRY_BLOB_DIGEST, array.len() as u64), true)?;
        Ok(TocEntry {
            name: ENTRY_BLOB_DIGEST.into(),
            compressor: Compressor::None,
            uncompressed_digest: Sha256::digest(&array).into(),
            compressed_offset: offset,
            compressed_size: array.len() as u64,
            uncompressed_size: array.len() as u64,
        })
    }
}

/// The chunk-info array as stored and the compressor it records: compressed unless that does
/// not shrink it (a zran blob's meta always with zstd, the reference's choice), then encrypted
/// when the blob is (its recorded size is the encrypted one).
pub(super) fn stored_meta(opts: &BlobOptions, raw: &[u8]) -> Result<(Vec<u8>, Compressor)> {
    let meta_compressor = if opts.zran {
        Compressor::Zstd
    } else {
        opts.compressor
    };
    let mut stored = Vec::new();
    let compressed = crate::compress::compress(meta_compressor, raw, &mut stored)?;
    let ci_compressor = if compressed {
        meta_compressor
    } else {
        Compressor::None
    };
    if let Some(cipher) = &opts.cipher {
        let plain = std::mem::take(&mut stored);
        cipher.encrypt(&plain, &mut stored)?;
    }
    Ok((stored, ci_compressor))
}

/// The blob features the options and chunk count give (ALIGNED is added with the blob meta).
pub(super) fn sealed_features(opts: &BlobOptions, chunks: usize) -> BlobFeatures {
    let mut features = BlobFeatures::CAP_TAR_TOC;
    if opts.inline_bootstrap {
        features |= BlobFeatures::INLINED_FS_META;
    }
    if opts.tar_headers() {
        features |= BlobFeatures::HAS_TAR_HEADER;
    }
    if opts.batch_size > 0 {
        features |= BlobFeatures::BATCH | BlobFeatures::CHUNK_INFO_V2;
    }
    if opts.zran {
        features |= BlobFeatures::ZRAN | BlobFeatures::SEPARATE | BlobFeatures::CHUNK_INFO_V2;
    }
    if opts.cipher.is_some() {
        features |= BlobFeatures::ENCRYPTED | BlobFeatures::CHUNK_INFO_V2;
    }
    if opts.blob_toc {
        features |= BlobFeatures::HAS_TOC;
        if chunks > 0 {
            features |= BlobFeatures::INLINED_CHUNK_DIGEST;
        }
    }
    features
}
