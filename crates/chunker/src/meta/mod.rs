//! The blob meta ("compression context", blob.md §7): a chunk-info array, v1 (16-byte) or v2
//! (24-byte) entries, optionally batch contexts, followed by a 4096-byte header.
//!
//! Encoding is exact; decoding validates every entry against the blob it came from.

mod checks;

use checks::*;

use crate::error::{berr, invalid, BlobErrorKind, Result};
use crate::ondisk::{
    BatchContextRecord, CiEntryV1Record, CiEntryV2Record, CiHeaderRecord, CI_HEADER_SIZE, CI_MAGIC,
    CI_V1_SIZE, CI_V2_SIZE, U32, U64,
};
use rafs_format::model::BlobFeatures;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

/// Largest chunk the format allows (16 MiB).
const MAX_CHUNK: u64 = crate::compress::MAX_CHUNK_SIZE as u64;

/// Flags of a v2 chunk-info entry.
pub mod ci_flags {
    /// The chunk is stored compressed.
    pub const COMPRESSED: u8 = 0x01;
    /// The chunk lives in a zran (gzip) stream.
    pub const ZRAN: u8 = 0x02;
    /// The chunk lives in a batch buffer.
    pub const BATCH: u8 = 0x04;
    /// The chunk is encrypted.
    pub const ENCRYPTED: u8 = 0x08;
    /// `data` holds the CRC-32C.
    pub const HAS_CRC32: u8 = 0x10;
}

/// Which chunk-info entry format a blob uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CiFormat {
    /// 16-byte entries (plain builds).
    V1,
    /// 24-byte entries with flags and a data word (batch, zran, encryption).
    V2,
}

impl CiFormat {
    /// Bytes per entry.
    pub fn entry_size(self) -> usize {
        match self {
            CiFormat::V1 => CI_V1_SIZE,
            CiFormat::V2 => CI_V2_SIZE,
        }
    }
}

/// One chunk-info entry, version independent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CiEntry {
    /// Offset in the uncompressed blob (4 KiB aligned).
    pub uncompressed_offset: u64,
    /// Size of the chunk's data (1..=16 MiB).
    pub uncompressed_size: u32,
    /// Offset of the stored bytes in the blob (for batch members: of the batch).
    pub compressed_offset: u64,
    /// Stored size (0 for batch members).
    pub compressed_size: u32,
    /// v2 flags ([`ci_flags`]); for v1 entries only `COMPRESSED`, derived from the sizes.
    pub flags: u8,
    /// v2 data word: CRC-32C, or batch/zran index and inner offset.
    pub data: u64,
}

impl CiEntry {
    /// Whether the stored bytes are compressed.
    pub fn is_compressed(&self) -> bool {
        self.flags & ci_flags::COMPRESSED != 0
    }

    /// Whether the chunk is a batch member.
    pub fn is_batch(&self) -> bool {
        self.flags & ci_flags::BATCH != 0
    }

    /// Whether the chunk lives in a zran stream.
    pub fn is_zran(&self) -> bool {
        self.flags & ci_flags::ZRAN != 0
    }

    /// The v1 encoding. Sizes must be 1..=16 MiB and the offset 4 KiB aligned (the writer
    /// guarantees both).
    pub fn encode_v1(&self) -> CiEntryV1Record {
        let u = u64::from(self.uncompressed_size - 1);
        let c = u64::from(self.compressed_size - 1);
        let uncomp_info = ((u >> 20) & 0xf) << 8
            | (self.uncompressed_offset & 0xfff_ffff_f000)
            | (u & 0xf_ffff) << 44;
        let comp_info = (self.compressed_offset & 0xff_ffff_ffff)
            | ((c >> 20) & 0xf) << 40
            | (c & 0xf_ffff) << 44;
        CiEntryV1Record {
            uncomp_info: U64::new(uncomp_info),
            comp_info: U64::new(comp_info),
        }
    }

    /// Decodes a v1 entry.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "each size is masked to 24 bits before the cast, so it fits a u32"
    )]
    pub fn decode_v1(rec: &CiEntryV1Record) -> CiEntry {
        let ui = rec.uncomp_info.get();
        let ci = rec.comp_info.get();
        let usize_ = ((ui >> 8) & 0xf) << 20 | (ui >> 44);
        let csize = ((ci >> 40) & 0xf) << 20 | (ci >> 44);
        let uncompressed_size = (usize_ + 1) as u32;
        let compressed_size = (csize + 1) as u32;
        CiEntry {
            uncompressed_offset: ui & 0xfff_ffff_f000,
            uncompressed_size,
            compressed_offset: ci & 0xff_ffff_ffff,
            compressed_size,
            flags: if compressed_size != uncompressed_size {
                ci_flags::COMPRESSED
            } else {
                0
            },
            data: 0,
        }
    }

    /// The v2 encoding.
    pub fn encode_v2(&self) -> CiEntryV2Record {
        let uncomp_info = (self.uncompressed_offset >> 12) & 0xffff_ffff
            | (u64::from(self.uncompressed_size - 1) & 0xff_ffff) << 32
            | u64::from(self.flags) << 56;
        let comp_info = self.compressed_offset & 0xff_ffff_ffff
            | (u64::from(self.compressed_size) & 0xff_ffff) << 40;
        CiEntryV2Record {
            uncomp_info: U64::new(uncomp_info),
            comp_info: U64::new(comp_info),
            data: U64::new(self.data),
        }
    }

    /// Decodes a v2 entry.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "sizes are masked or shifted to 24 bits and flags to 8 before the cast"
    )]
    pub fn decode_v2(rec: &CiEntryV2Record) -> CiEntry {
        let ui = rec.uncomp_info.get();
        let ci = rec.comp_info.get();
        CiEntry {
            uncompressed_offset: (ui & 0xffff_ffff) << 12,
            uncompressed_size: (((ui >> 32) & 0xff_ffff) + 1) as u32,
            compressed_offset: ci & 0xff_ffff_ffff,
            compressed_size: (ci >> 40) as u32,
            flags: (ui >> 56) as u8,
            data: rec.data.get(),
        }
    }
}

/// A batch context: one compressed unit holding several small chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchContext {
    /// Stored size of the batch.
    pub compressed_size: u32,
    /// Size of the batch buffer before compression.
    pub uncompressed_size: u32,
}

impl BatchContext {
    /// The 40-byte on-disk context.
    pub fn to_bytes(&self) -> Vec<u8> {
        BatchContextRecord {
            compressed_size: U32::new(self.compressed_size),
            uncompressed_batch_size: U32::new(self.uncompressed_size),
            reserved: [0; 32],
        }
        .as_bytes()
        .to_vec()
    }
}

/// The 4096-byte chunk-info header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CiHeader {
    /// Blob feature bits.
    pub features: BlobFeatures,
    /// Compressor id of the stored array (0 when stored raw).
    pub ci_compressor: u32,
    /// Number of entries.
    pub entries: u32,
    /// Offset of the stored array in the blob.
    pub ci_offset: u64,
    /// Stored size of the array.
    pub ci_compressed_size: u64,
    /// Size of the array (plus batch/zran tables) uncompressed.
    pub ci_uncompressed_size: u64,
    /// Offset of the batch/zran table within the uncompressed data.
    pub zran_offset: u64,
    /// Size of that table.
    pub zran_size: u64,
    /// Number of batch/zran contexts.
    pub zran_count: u32,
}

impl CiHeader {
    /// The header's 4096 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut rec = CiHeaderRecord::new_zeroed();
        rec.s_magic = U32::new(CI_MAGIC);
        rec.s_features = U32::new(self.features.bits());
        rec.s_ci_compressor = U32::new(self.ci_compressor);
        rec.s_ci_entries = U32::new(self.entries);
        rec.s_ci_offset = U64::new(self.ci_offset);
        rec.s_ci_compressed_size = U64::new(self.ci_compressed_size);
        rec.s_ci_uncompressed_size = U64::new(self.ci_uncompressed_size);
        rec.s_ci_zran_offset = U64::new(self.zran_offset);
        rec.s_ci_zran_size = U64::new(self.zran_size);
        rec.s_ci_zran_count = U32::new(self.zran_count);
        rec.s_magic2 = U32::new(CI_MAGIC);
        rec.as_bytes().to_vec()
    }

    /// Parses a header read at `offset` of a blob, checking both magics.
    pub fn parse(bytes: &[u8], offset: u64) -> Result<CiHeader> {
        const S: &str = "blob meta header";
        let rec = CiHeaderRecord::read_from_bytes(bytes).map_err(|_| {
            berr(
                S,
                offset,
                BlobErrorKind::Truncated {
                    needed: offset + CI_HEADER_SIZE as u64,
                    available: offset + bytes.len() as u64,
                },
            )
        })?;
        for (m, at) in [(rec.s_magic.get(), 0), (rec.s_magic2.get(), 4092)] {
            if m != CI_MAGIC {
                return Err(berr(
                    S,
                    offset + at,
                    BlobErrorKind::BadMagic { found: m.into() },
                ));
            }
        }
        Ok(CiHeader {
            features: BlobFeatures::from_bits_retain(rec.s_features.get()),
            ci_compressor: rec.s_ci_compressor.get(),
            entries: rec.s_ci_entries.get(),
            ci_offset: rec.s_ci_offset.get(),
            ci_compressed_size: rec.s_ci_compressed_size.get(),
            ci_uncompressed_size: rec.s_ci_uncompressed_size.get(),
            zran_offset: rec.s_ci_zran_offset.get(),
            zran_size: rec.s_ci_zran_size.get(),
            zran_count: rec.s_ci_zran_count.get(),
        })
    }

    /// The entry format the features select.
    pub fn format(&self) -> CiFormat {
        if self.features.contains(BlobFeatures::CHUNK_INFO_V2) {
            CiFormat::V2
        } else {
            CiFormat::V1
        }
    }
}

/// Encodes entries in chunk-index order.
pub fn encode_entries(entries: &[CiEntry], format: CiFormat) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * format.entry_size());
    for e in entries {
        match format {
            CiFormat::V1 => out.extend_from_slice(e.encode_v1().as_bytes()),
            CiFormat::V2 => out.extend_from_slice(e.encode_v2().as_bytes()),
        }
    }
    out
}

/// A decoded, validated chunk-info array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    /// The header.
    pub header: CiHeader,
    /// Entries in chunk-index order.
    pub entries: Vec<CiEntry>,
    /// Batch contexts (batch blobs only).
    pub batches: Vec<BatchContext>,
    /// Inflate contexts (zran blobs only).
    pub zran: Option<crate::zran::ZranTable>,
}

impl BlobMeta {
    /// Decodes the uncompressed chunk-info data described by `header` and validates each
    /// entry: sizes within 1..=16 MiB, stored bytes inside `[0, data_end)`, uncompressed
    /// ranges in order and disjoint, stored ranges in order and disjoint (except batch and
    /// zran members, which share their unit's bytes), batch indexes in range.
    pub fn decode(header: CiHeader, data: &[u8], data_end: u64) -> Result<BlobMeta> {
        let (entries, array_len) = read_entries(&header, data)?;
        let batches = if header.features.contains(BlobFeatures::BATCH) {
            read_batches(&header, data, array_len)?
        } else {
            Vec::new()
        };
        let zran = if header.features.contains(BlobFeatures::ZRAN) {
            Some(read_zran(&header, data, array_len)?)
        } else {
            None
        };
        let esize = header.format().entry_size();
        let mut last_stored: Option<(u32, u64)> = None;
        for (i, e) in entries.iter().enumerate() {
            let at = (i * esize) as u64;
            // The header counts entries in a u32, so every position fits.
            let idx = u32::try_from(i).unwrap_or(u32::MAX);
            check_uncompressed(e, i.checked_sub(1).map(|p| &entries[p]), idx, at)?;
            if e.is_batch() {
                check_batch_member(e, &batches, at, data_end)?;
                continue;
            }
            if e.is_zran() {
                check_zran_range(e, at, data_end)?;
                check_zran_member(e, zran.as_ref(), at)?;
                continue;
            }
            let end = check_stored(e, at, data_end)?;
            if let Some((p, pend)) = last_stored {
                if e.compressed_offset < pend {
                    return Err(berr(
                        ENTRY,
                        at,
                        BlobErrorKind::Overlap {
                            index: idx,
                            other: p,
                        },
                    ));
                }
            }
            last_stored = Some((idx, end));
        }
        Ok(BlobMeta {
            header,
            entries,
            batches,
            zran,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_encodings_match_the_reference() {
        // blob.md §12.4.
        let cases = [
            (
                3600,
                0,
                29,
                0,
                0x00e0_f000_0000_0000u64,
                0x0001_c000_0000_0000u64,
            ),
            (
                5000,
                0x5000,
                5000,
                87,
                0x0138_7000_0000_5000,
                0x0138_7000_0000_0057,
            ),
            (
                0x10_0000,
                0x7000,
                378,
                5087,
                0xffff_f000_0000_7000,
                0x0017_9000_0000_13df,
            ),
        ];
        for (us, uo, cs, co, ui, ci) in cases {
            let e = CiEntry {
                uncompressed_offset: uo,
                uncompressed_size: us,
                compressed_offset: co,
                compressed_size: cs,
                flags: if cs != us { ci_flags::COMPRESSED } else { 0 },
                data: 0,
            };
            let rec = e.encode_v1();
            assert_eq!((rec.uncomp_info.get(), rec.comp_info.get()), (ui, ci));
            assert_eq!(CiEntry::decode_v1(&rec), e);
        }
    }

    #[test]
    fn v2_round_trip() {
        let e = CiEntry {
            uncompressed_offset: 0x1234_5000,
            uncompressed_size: 0x100_0000,
            compressed_offset: 0xff_ffff_fff0,
            compressed_size: 0x100_0000 - 1,
            flags: ci_flags::COMPRESSED | ci_flags::HAS_CRC32,
            data: 0xdead_beef,
        };
        assert_eq!(CiEntry::decode_v2(&e.encode_v2()), e);
    }
}
