//! The blob meta (chunk-info array and its header) read, checked, decrypted and inflated.

use super::*;

impl<S: ReadAt> BlobReader<S> {
    /// Reads the header at `header_at` and the array before it; returns where chunk data ends.
    pub(super) fn load_meta(
        &mut self,
        header_at: u64,
        expected_ci_offset: Option<u64>,
    ) -> Result<u64> {
        let mut hbytes = self.read_vec(header_at, CI_HEADER_SIZE as u64, META_HEADER)?;
        self.decrypt(&mut hbytes, META_HEADER, header_at)?;
        let header = CiHeader::parse(&hbytes, header_at)?;
        self.check_meta_header(&header, header_at, expected_ci_offset)?;
        let compressor = Compressor::from_u32(header.ci_compressor).ok_or_else(|| {
            let at = header_at
                + core::mem::offset_of!(crate::ondisk::CiHeaderRecord, s_ci_compressor) as u64;
            berr(
                META_HEADER,
                at,
                BlobErrorKind::UnknownCompressor(header.ci_compressor),
            )
        })?;
        let mut stored = self.read_vec(
            header.ci_offset,
            header.ci_compressed_size,
            "chunk-info array",
        )?;
        self.decrypt(&mut stored, "chunk-info array", header.ci_offset)?;
        let data = self.inflate(
            compressor,
            &stored,
            header.ci_uncompressed_size,
            "chunk-info array",
            header.ci_offset,
        )?;
        // Chunk data ends where its tar header starts (packed) or where the array starts.
        let data_end = if header.features.contains(BlobFeatures::SEPARATE) {
            u64::MAX
        } else if self.sections.is_empty() {
            header.ci_offset
        } else {
            self.data_end
        };
        self.meta = Some(BlobMeta::decode(header, &data, data_end)?);
        Ok(header.ci_offset)
    }

    /// The header's counts and ranges: within the limits, the array right before the header
    /// (and where the ToC says it is), large enough for its entries.
    pub(super) fn check_meta_header(
        &self,
        header: &CiHeader,
        header_at: u64,
        expected_ci_offset: Option<u64>,
    ) -> Result<()> {
        if header.entries > self.limits.max_chunks {
            let kind = BlobErrorKind::LimitExceeded {
                what: "chunk-info entries",
                value: header.entries.into(),
                limit: self.limits.max_chunks.into(),
            };
            return Err(berr(META_HEADER, header_at, kind));
        }
        if header.ci_offset.checked_add(header.ci_compressed_size) != Some(header_at) {
            let reason = format!(
                "array [{}, +{}) does not end at the header",
                header.ci_offset, header.ci_compressed_size
            );
            return Err(invalid(META_HEADER, header_at, "ci_offset", reason));
        }
        if let Some(exp) = expected_ci_offset.filter(|exp| *exp != header.ci_offset) {
            let reason = format!(
                "{} but the blob.meta section starts at {exp}",
                header.ci_offset
            );
            return Err(invalid(META_HEADER, header_at, "ci_offset", reason));
        }
        let needed = u64::from(header.entries) * header.format().entry_size() as u64;
        if header.ci_uncompressed_size < needed {
            let reason = format!(
                "{} is less than {needed} for the entries",
                header.ci_uncompressed_size
            );
            return Err(invalid(
                META_HEADER,
                header_at,
                "ci_uncompressed_size",
                reason,
            ));
        }
        Ok(())
    }

    /// Decrypts a unit read at `offset` when the blob is encrypted.
    pub(super) fn decrypt(
        &self,
        unit: &mut Vec<u8>,
        what: &'static str,
        offset: u64,
    ) -> Result<()> {
        let Some(cipher) = &self.cipher else {
            return Ok(());
        };
        cipher.decrypt(unit).map_err(|reason| {
            berr(
                what,
                offset,
                BlobErrorKind::Corrupt {
                    algorithm: "aes-128-xts",
                    reason: reason.into(),
                },
            )
        })
    }

    /// Decompresses a metadata payload, allocating only as the data actually inflates.
    pub(super) fn inflate(
        &self,
        compressor: Compressor,
        stored: &[u8],
        declared: u64,
        what: &'static str,
        offset: u64,
    ) -> Result<Vec<u8>> {
        let limit = self.limits.max_entry_size;
        if declared > limit {
            return Err(berr(
                what,
                offset,
                BlobErrorKind::LimitExceeded {
                    what: "declared size",
                    value: declared,
                    limit,
                },
            ));
        }
        let mismatch = |actual: u64| {
            berr(
                what,
                offset,
                BlobErrorKind::SizeMismatch { declared, actual },
            )
        };
        match compressor {
            Compressor::Zstd => {
                let corrupt = |e: std::io::Error| {
                    berr(
                        what,
                        offset,
                        BlobErrorKind::Corrupt {
                            algorithm: "zstd",
                            reason: e.to_string(),
                        },
                    )
                };
                let mut out = Vec::new();
                zstd::stream::read::Decoder::with_buffer(stored)
                    .map_err(corrupt)?
                    .take(declared + 1)
                    .read_to_end(&mut out)
                    .map_err(corrupt)?;
                if out.len() as u64 != declared {
                    return Err(mismatch(out.len() as u64));
                }
                Ok(out)
            }
            Compressor::Lz4Block => {
                // LZ4 cannot expand more than 255:1; a larger claim is a lie.
                if declared > (stored.len() as u64).saturating_mul(255).saturating_add(16) {
                    return Err(mismatch(declared));
                }
                decompress(compressor, stored, declared, limit, what, offset)
            }
            _ => decompress(compressor, stored, declared, limit, what, offset),
        }
    }
}
