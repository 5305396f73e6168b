//! Phase 2: the blob table with its device slots, and the chunk table.

use super::superblock::Layout;
use crate::error::{DecodeErrorKind as K, Result};
use crate::model::*;
use crate::ondisk::v6 as raw;
use crate::ondisk::ChunkInfoRecord;
use crate::read::{invalid, offset_in, record, slice, At};
use std::collections::{hash_map, HashMap, HashSet};

/// Reads every blob record and checks its device slot.
pub(super) fn read_blob_table(data: &[u8], layout: &Layout) -> Result<Vec<Blob>> {
    let mut blobs = Vec::with_capacity(layout.nblobs);
    let mut ids = HashSet::new();
    for k in 0..layout.nblobs {
        let at = At::new(
            "v6 blob record",
            layout.blob_table.offset + (k * raw::BLOB_RECORD_SIZE) as u64,
        );
        let r: raw::BlobRecord = record(data, at.base, at.structure)?;
        let blob = check_blob_record(&r, at, k, layout.chunk_size)?;
        check_device_slot(data, k)?;
        if !ids.insert(blob.blob_id.clone()) {
            return Err(at.invalid(0, "blob_id", k as u64, "duplicate blob id"));
        }
        blobs.push(blob);
    }
    Ok(blobs)
}

/// One blob record, the `k`th, into the model.
fn check_blob_record(r: &raw::BlobRecord, at: At, k: usize, chunk_size: u64) -> Result<Blob> {
    type B = raw::BlobRecord;
    let id =
        blob_id(&r.blob_id).ok_or_else(|| at.invalid(0, "blob_id", 0, "empty or not UTF-8"))?;
    crate::rules::check_blob_id(&id).map_err(|reason| at.invalid(0, "blob_id", 0, reason))?;
    if u64::from(r.blob_index.get()) != k as u64 {
        return Err(invalid!(
            at,
            B,
            blob_index,
            r.blob_index.get(),
            "must equal the record's position"
        ));
    }
    if u64::from(r.chunk_size.get()) != chunk_size {
        return Err(invalid!(
            at,
            B,
            chunk_size,
            r.chunk_size.get(),
            "differs from s_chunk_size"
        ));
    }
    if r.chunk_count.get() > 1 << 24 {
        return Err(invalid!(
            at,
            B,
            chunk_count,
            r.chunk_count.get(),
            "more than 2^24 chunks"
        ));
    }
    let compressor = Compressor::from_u32(r.compression_algo.get())
        .ok_or_else(|| invalid!(at, B, compression_algo, r.compression_algo.get(), "unknown"))?;
    let digester = Digester::from_u32(r.digest_algo.get())
        .ok_or_else(|| invalid!(at, B, digest_algo, r.digest_algo.get(), "unknown"))?;
    let features = check_features(r, at)?;
    check_sizes(r, at)?;
    Ok(Blob {
        blob_id: id,
        chunk_count: r.chunk_count.get(),
        features,
        compressor,
        digester,
        chunk_size: r.chunk_size.get(),
        compressed_size: r.compressed_size.get(),
        uncompressed_size: r.uncompressed_size.get(),
        readahead_offset: 0,
        readahead_size: 0,
        meta: BlobMetaLocation {
            compressor: r.ci_compressor.get(),
            offset: r.ci_offset.get(),
            compressed_size: r.ci_compressed_size.get(),
            uncompressed_size: r.ci_uncompressed_size.get(),
        },
        toc_size: r.blob_toc_size.get(),
        toc_digest: r.blob_toc_digest,
        meta_digest: r.blob_meta_digest,
        meta_size: r.blob_meta_size.get(),
        cipher_iv: r.cipher_iv,
        cipher_algo: r.cipher_algo.get(),
    })
}

/// Feature bits: known ones only, and ALIGNED exactly when not tarfs.
fn check_features(r: &raw::BlobRecord, at: At) -> Result<BlobFeatures> {
    type B = raw::BlobRecord;
    let bits = r.features.get();
    if bits & 0x8000_F000 != 0 {
        let kind = K::UnknownFlags {
            field: "features",
            bits: u64::from(bits & 0x8000_F000),
        };
        return Err(at.err(offset_in!(B, features), kind));
    }
    let features = BlobFeatures::from_bits_truncate(bits);
    if features.contains(BlobFeatures::TARFS) == features.contains(BlobFeatures::ALIGNED) {
        return Err(invalid!(
            at,
            B,
            features,
            bits,
            "tarfs blobs must not be ALIGNED, others must be"
        ));
    }
    Ok(features)
}

/// Blob and blob-meta sizes within what the format can address.
fn check_sizes(r: &raw::BlobRecord, at: At) -> Result<()> {
    type B = raw::BlobRecord;
    const TOO_BIG: &str = "blob larger than the format allows";
    if r.compressed_size.get() > 1 << 40 {
        return Err(invalid!(
            at,
            B,
            compressed_size,
            r.compressed_size.get(),
            TOO_BIG
        ));
    }
    if r.uncompressed_size.get() > 1 << 44 {
        return Err(invalid!(
            at,
            B,
            uncompressed_size,
            r.uncompressed_size.get(),
            TOO_BIG
        ));
    }
    if r.ci_compressed_size.get() > r.ci_uncompressed_size.get() {
        let value = r.ci_compressed_size.get();
        return Err(invalid!(
            at,
            B,
            ci_compressed_size,
            value,
            "larger than ci_uncompressed_size"
        ));
    }
    if r.ci_offset
        .get()
        .checked_add(r.ci_compressed_size.get())
        .is_none()
    {
        let value = r.ci_offset.get();
        return Err(invalid!(
            at,
            B,
            ci_offset,
            value,
            "ci_offset + ci_compressed_size overflows"
        ));
    }
    Ok(())
}

/// The `k`th device slot: present, and its id UTF-8.
fn check_device_slot(data: &[u8], k: usize) -> Result<()> {
    let at = At::new(
        "v6 device slot",
        raw::DEVICE_TABLE_OFFSET as u64 + (k * raw::DEVICE_SLOT_SIZE) as u64,
    );
    let slot: raw::DeviceSlot = record(data, at.base, at.structure)?;
    if std::str::from_utf8(&slot.blob_id).is_err() {
        return Err(at.invalid(
            offset_in!(raw::DeviceSlot, blob_id),
            "blob_id",
            0,
            "not UTF-8",
        ));
    }
    Ok(())
}

/// A blob id: UTF-8, trailing NULs stripped, not empty.
fn blob_id(raw: &[u8; 64]) -> Option<String> {
    let end = raw.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
    let s = std::str::from_utf8(&raw[..end]).ok()?;
    (!s.is_empty()).then(|| s.to_owned())
}

/// A chunk's address in a v6 chunk index: (blob index, chunk index, block address).
pub(super) type ChunkAddress = (u32, u32, u32);

/// The on-disk chunk table, in order and keyed by address as the reference reader keys it.
#[derive(Default)]
pub(super) struct ChunkTable {
    /// Address -> (position in `records`, record). The first record answers an address.
    pub by_address: HashMap<ChunkAddress, (usize, ChunkInfoRecord)>,
    /// Every record, as a model chunk, in table order.
    pub records: Vec<ChunkInfo>,
    /// Whether two different records share an address.
    pub ambiguous: bool,
    /// Whether the (digest, blob) keys strictly increase, as in a table the builder derived.
    pub sorted_unique: bool,
}

/// Reads the chunk table; tarfs tables are kept in order only (their addresses are computed).
pub(super) fn read_chunk_table(data: &[u8], layout: &Layout, tarfs: bool) -> Result<ChunkTable> {
    let ct = layout.chunk_table;
    let mut table = ChunkTable {
        sorted_unique: true,
        ..ChunkTable::default()
    };
    if ct.size == 0 {
        return Ok(table);
    }
    let bytes = slice(data, ct.offset, ct.size, "v6 chunk table")?;
    table.by_address.reserve((ct.size / 80) as usize);
    for (i, c) in bytes.chunks_exact(80).enumerate() {
        let at = At::new("v6 chunk table", ct.offset + 80 * i as u64);
        let r: ChunkInfoRecord = record(c, 0, at.structure)?;
        if r.blob_index.get() as usize >= layout.nblobs {
            return Err(invalid!(
                at,
                ChunkInfoRecord,
                blob_index,
                r.blob_index.get(),
                "no such blob"
            ));
        }
        let chunk = crate::common::chunk_from_record(&r);
        if let Some(prev) = table.records.last() {
            table.sorted_unique &=
                (prev.digest, prev.blob_index) < (chunk.digest, chunk.blob_index);
        }
        table.records.push(chunk);
        if tarfs {
            continue;
        }
        // A record beyond 32-bit block addresses is one no chunk index can name.
        let Ok(block) = u32::try_from(r.uncompressed_offset.get() / layout.block) else {
            continue;
        };
        match table
            .by_address
            .entry((r.blob_index.get(), r.index.get(), block))
        {
            hash_map::Entry::Vacant(v) => {
                v.insert((i, r));
            }
            hash_map::Entry::Occupied(o) => table.ambiguous |= o.get().1 != r,
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use crate::testing::*;

    #[test]
    fn a_misnumbered_blob_record_is_reported_at_its_blob_index() {
        let mut record = 0;
        let e = decode_corrupted(FsVersion::V6, |b| {
            record = usize::try_from(u64_at(b, 1152 + 8)).unwrap();
            b[record + 64] = 5;
        });
        assert_eq!(
            (e.structure, e.offset),
            ("v6 blob record", record as u64 + 64)
        );
        assert!(matches!(
            e.kind,
            K::InvalidField {
                field: "blob_index",
                value: 5,
                ..
            }
        ));
    }
}
