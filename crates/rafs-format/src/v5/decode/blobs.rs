//! Phase 2: the blob table (`u32 readahead offset, u32 readahead size, id, NUL`) and the
//! extended blob table.

use super::superblock::{Layout, SB};
use crate::common::flags;
use crate::error::Result;
use crate::model::*;
use crate::ondisk::v5 as raw;
use crate::read::{invalid, record, slice, At};

/// Reads the blob table, then the extended entries when there are any.
pub(super) fn read_blobs(data: &[u8], layout: &Layout) -> Result<Vec<Blob>> {
    let bt = layout.blob_table;
    let table = slice(data, bt.offset, bt.size, "v5 blob table")?;
    let mut blobs = Vec::new();
    let mut pos = 0usize;
    // The last record's NUL may be missing; a remainder of 8 bytes or less holds no id.
    while table.len() - pos > 8 {
        let at = At::new("v5 blob table", bt.offset + pos as u64);
        let (blob, next) = read_blob(&table[pos..], at, layout)?;
        blobs.push(blob);
        pos = (pos + next).min(table.len());
    }
    if layout.ext_entries > 0 {
        read_extended(data, layout, &mut blobs)?;
    }
    Ok(blobs)
}

/// One record at the start of `rest`; returns the blob and the length of the record.
fn read_blob(rest: &[u8], at: At, layout: &Layout) -> Result<(Blob, usize)> {
    let word = |k: usize| u32::from_le_bytes([rest[k], rest[k + 1], rest[k + 2], rest[k + 3]]);
    let id_end = rest[8..]
        .iter()
        .position(|b| *b == 0)
        .map_or(rest.len(), |p| 8 + p);
    let id = std::str::from_utf8(&rest[8..id_end])
        .map_err(|_| at.invalid(0, "blob_id", 0, "not UTF-8"))?;
    if id.is_empty() {
        return Err(at.invalid(0, "blob_id", 0, "empty"));
    }
    crate::rules::check_blob_id(id).map_err(|reason| at.invalid(8, "blob_id", 0, reason))?;
    let compressor = flags::compressor(layout.flags);
    let digester = flags::digester(layout.flags);
    let mut blob = Blob::new(id, compressor, digester, layout.chunk_size);
    blob.features = BlobFeatures::empty();
    blob.readahead_offset = word(0);
    blob.readahead_size = word(4);
    Ok((blob, id_end + 1))
}

/// Chunk counts, features and sizes from the extended table, one entry per blob.
fn read_extended(data: &[u8], layout: &Layout, blobs: &mut [Blob]) -> Result<()> {
    let n = layout.ext_entries;
    if n < blobs.len() as u64 {
        let field = "fewer than the blobs";
        return Err(invalid!(
            SB,
            raw::SuperBlock,
            s_extended_blob_table_entries,
            n,
            field
        ));
    }
    for (i, blob) in blobs.iter_mut().enumerate() {
        let at = layout.ext_blob_table.offset + (i * raw::EXT_BLOB_ENTRY_SIZE) as u64;
        let e: raw::ExtBlobEntry = record(data, at, "v5 extended blob entry")?;
        blob.chunk_count = e.chunk_count.get();
        // The reference truncates unknown feature bits with a warning.
        blob.features = BlobFeatures::from_bits_truncate(e.features.get());
        blob.uncompressed_size = e.uncompressed_size.get();
        blob.compressed_size = e.compressed_size.get();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::testing::*;

    #[test]
    fn a_blob_id_that_is_not_utf8_is_reported_at_its_record() {
        let mut record = 0;
        let e = decode_corrupted(FsVersion::V5, |b| {
            record = usize::try_from(u64_at(b, 48)).unwrap();
            b[record + 8] = 0xff;
        });
        assert_eq!((e.structure, e.offset), ("v5 blob table", record as u64));
        assert!(matches!(
            e.kind,
            K::InvalidField {
                field: "blob_id",
                reason: "not UTF-8",
                ..
            }
        ));
    }
}
