//! The chunk-info array decoded and every entry checked: ranges in the data, uncompressed
//! offsets in order, batch and zran members inside their units.

use super::*;

/// The structure an entry's error names.
pub(super) const ENTRY: &str = "chunk-info entry";

/// The header's entries from the start of `data`; returns them and the array's length.
pub(super) fn read_entries(header: &CiHeader, data: &[u8]) -> Result<(Vec<CiEntry>, usize)> {
    let format = header.format();
    let esize = format.entry_size();
    let n = header.entries as usize;
    let array_len = n
        .checked_mul(esize)
        .filter(|&l| l <= data.len())
        .ok_or_else(|| {
            let reason = format!(
                "{n} entries of {esize} bytes exceed the {} bytes of chunk-info data",
                data.len()
            );
            invalid("blob meta header", 0, "s_ci_entries", reason)
        })?;
    let mut entries = Vec::with_capacity(n);
    for (i, raw) in data[..array_len].chunks_exact(esize).enumerate() {
        let e = match format {
            CiFormat::V1 => CiEntryV1Record::read_from_bytes(raw)
                .map(|r| CiEntry::decode_v1(&r))
                .ok(),
            CiFormat::V2 => CiEntryV2Record::read_from_bytes(raw)
                .map(|r| CiEntry::decode_v2(&r))
                .ok(),
        };
        entries.push(e.ok_or_else(|| invalid(ENTRY, (i * esize) as u64, "entry", "short record"))?);
    }
    Ok((entries, array_len))
}

/// The batch table, after the entry array and inside the chunk-info data.
pub(super) fn read_batches(
    header: &CiHeader,
    data: &[u8],
    array_len: usize,
) -> Result<Vec<BatchContext>> {
    let size = crate::ondisk::BATCH_CONTEXT_SIZE;
    let start = usize::try_from(header.zran_offset).unwrap_or(usize::MAX);
    let end = (header.zran_count as usize)
        .checked_mul(size)
        .and_then(|l| start.checked_add(l));
    let Some(end) = end.filter(|&end| start >= array_len && end <= data.len()) else {
        let reason = "batch table lies outside the chunk-info data";
        return Err(invalid("blob meta header", 0, "s_ci_zran_offset", reason));
    };
    // chunks_exact yields whole records only, so every read succeeds.
    Ok(data[start..end]
        .chunks_exact(size)
        .filter_map(|raw| BatchContextRecord::read_from_bytes(raw).ok())
        .map(|rec| BatchContext {
            compressed_size: rec.compressed_size.get(),
            uncompressed_size: rec.uncompressed_batch_size.get(),
        })
        .collect())
}

/// The zran context table, after the entry array and inside the chunk-info data.
pub(super) fn read_zran(
    header: &CiHeader,
    data: &[u8],
    array_len: usize,
) -> Result<crate::zran::ZranTable> {
    let start = usize::try_from(header.zran_offset).unwrap_or(usize::MAX);
    let end = usize::try_from(header.zran_size)
        .ok()
        .and_then(|l| start.checked_add(l));
    let Some(end) = end.filter(|&end| start >= array_len && end <= data.len()) else {
        let reason = "zran table lies outside the chunk-info data";
        return Err(invalid("blob meta header", 0, "s_ci_zran_offset", reason));
    };
    crate::zran::ZranTable::decode(&data[start..end], header.zran_count).map_err(|f| {
        let field = f.field;
        let reason = match f.context {
            Some(i) => format!("context {i}: {}", f.reason),
            None => f.reason,
        };
        invalid("zran context table", start as u64 + f.offset, field, reason)
    })
}

/// A zran member: its context exists (a blob with zran entries has a table) and its bytes lie
/// inside the context's output.
pub(super) fn check_zran_member(
    e: &CiEntry,
    table: Option<&crate::zran::ZranTable>,
    at: u64,
) -> Result<()> {
    let (ci, inner) = ((e.data >> 32) as u32, e.data & 0xffff_ffff);
    let ctx = table.and_then(|t| t.get(ci)).ok_or_else(|| {
        let n = table.map_or(0, crate::zran::ZranTable::len);
        invalid(ENTRY, at, "zran context", format!("{ci} of {n} contexts"))
    })?;
    if inner + u64::from(e.uncompressed_size) > u64::from(ctx.0.out_len.get()) {
        let reason = format!(
            "{}+{} beyond the context's {} bytes of output",
            inner,
            e.uncompressed_size,
            ctx.0.out_len.get()
        );
        return Err(invalid(ENTRY, at, "zran offset", reason));
    }
    Ok(())
}

/// A zran member's range of the gzip layer: inside it, and possibly empty. It records the input
/// the inflater consumed while producing the chunk, and a chunk of a few bytes can come wholly
/// from bits read ahead for the one before (the reference writes such entries; nydusd reads
/// them). The chunk is read through its context, not this range.
pub(super) fn check_zran_range(e: &CiEntry, at: u64, data_end: u64) -> Result<()> {
    if u64::from(e.compressed_size) > MAX_CHUNK {
        let reason = format!("{} over 16 MiB", e.compressed_size);
        return Err(invalid(ENTRY, at, "compressed size", reason));
    }
    let end = e
        .compressed_offset
        .saturating_add(u64::from(e.compressed_size));
    if end > data_end {
        let kind = BlobErrorKind::Truncated {
            needed: end,
            available: data_end,
        };
        return Err(berr(ENTRY, at, kind));
    }
    Ok(())
}

/// An entry's uncompressed range: at most 16 MiB, 4 KiB aligned, after the previous one.
pub(super) fn check_uncompressed(
    e: &CiEntry,
    prev: Option<&CiEntry>,
    idx: u32,
    at: u64,
) -> Result<()> {
    if u64::from(e.uncompressed_size) > MAX_CHUNK {
        return Err(invalid(
            ENTRY,
            at,
            "uncompressed size",
            format!("{} > 16 MiB", e.uncompressed_size),
        ));
    }
    if e.uncompressed_offset % 4096 != 0 {
        return Err(invalid(
            ENTRY,
            at,
            "uncompressed offset",
            "not 4 KiB aligned",
        ));
    }
    if let Some(p) = prev {
        if e.uncompressed_offset < p.uncompressed_offset + u64::from(p.uncompressed_size) {
            return Err(berr(
                ENTRY,
                at,
                BlobErrorKind::Overlap {
                    index: idx,
                    other: idx - 1,
                },
            ));
        }
    }
    Ok(())
}

/// A batch member: its batch exists, holds it, and is stored inside the data.
pub(super) fn check_batch_member(
    e: &CiEntry,
    batches: &[BatchContext],
    at: u64,
    data_end: u64,
) -> Result<()> {
    let (bi, inner) = ((e.data >> 32) as usize, e.data & 0xffff_ffff);
    let b = batches.get(bi).ok_or_else(|| {
        invalid(
            ENTRY,
            at,
            "batch index",
            format!("{bi} of {} batches", batches.len()),
        )
    })?;
    if inner + u64::from(e.uncompressed_size) > u64::from(b.uncompressed_size) {
        return Err(invalid(
            ENTRY,
            at,
            "batch offset",
            "chunk extends past its batch",
        ));
    }
    let end = e.compressed_offset + u64::from(b.compressed_size);
    if end > data_end || b.compressed_size == 0 || u64::from(b.compressed_size) > MAX_CHUNK {
        let reason = format!("stored range ends at {end}, data ends at {data_end}");
        return Err(invalid(ENTRY, at, "batch", reason));
    }
    Ok(())
}

/// An entry's stored range: 1..=16 MiB inside the data, raw chunks stored at their size.
/// Returns its end.
pub(super) fn check_stored(e: &CiEntry, at: u64, data_end: u64) -> Result<u64> {
    if e.compressed_size == 0 || u64::from(e.compressed_size) > MAX_CHUNK {
        return Err(invalid(
            ENTRY,
            at,
            "compressed size",
            format!("{} not in 1..=16 MiB", e.compressed_size),
        ));
    }
    let end = e.compressed_offset + u64::from(e.compressed_size);
    if end > data_end {
        return Err(berr(
            ENTRY,
            at,
            BlobErrorKind::Truncated {
                needed: end,
                available: data_end,
            },
        ));
    }
    // An encrypted unit under one AES block is stored padded (crate::cipher).
    let raw_size = if e.flags & ci_flags::ENCRYPTED != 0 {
        crate::cipher::BlobCipher::encrypted_len(e.uncompressed_size as usize) as u64
    } else {
        u64::from(e.uncompressed_size)
    };
    if !e.is_compressed() && u64::from(e.compressed_size) != raw_size {
        return Err(invalid(
            ENTRY,
            at,
            "compressed size",
            "raw chunk whose stored size differs from its size",
        ));
    }
    Ok(end)
}
