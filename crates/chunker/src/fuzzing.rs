//! What the fuzz targets check, shared with the test that replays their corpora so a fixed
//! crash stays fixed. Not part of the stable API.

use crate::compress::{compress, decompress};
use crate::reader::{BlobReader, ReaderLimits, Verify};
use rafs_format::model::Compressor;

const COMPRESSORS: [Compressor; 3] = [Compressor::None, Compressor::Lz4Block, Compressor::Zstd];

/// Opens `data` as a blob and reads everything it claims to hold: every section and ToC
/// entry, every chunk of its chunk-info array with each compressor. Any failure must be a
/// typed error; returns a description of a violated property.
pub fn blob_meta(data: &[u8]) -> Result<(), String> {
    let limits = ReaderLimits {
        max_entry_size: 4 << 20,
        ..ReaderLimits::default()
    };
    let Ok(r) = BlobReader::open_with_limits(data, limits) else {
        return Ok(());
    };
    for s in r.sections() {
        if s.offset + s.size > data.len() as u64 {
            return Err(format!("section {s:?} extends past the blob"));
        }
        let _ = r.entry(&s.name);
    }
    if let Some(toc) = r.toc() {
        for e in toc {
            let _ = r.entry(&e.name);
        }
    }
    if let Some(meta) = r.meta() {
        for i in 0..meta.header.entries.min(64) {
            let chunk = r
                .chunk_from_meta(i)
                .map_err(|e| format!("entry {i} validated but unusable: {e}"))?;
            for c in COMPRESSORS {
                if let Ok(bytes) = r.read_chunk(&chunk, c, Verify::default()) {
                    if bytes.len() != chunk.uncompressed_size as usize {
                        return Err(format!(
                            "chunk {i} read {} bytes, declared {}",
                            bytes.len(),
                            chunk.uncompressed_size
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Input layout: byte 0 picks the algorithm, bytes 1..4 the declared size (little endian,
/// at most 16 MiB), the rest is compressed data. Decompression must succeed with exactly the
/// declared size or fail with a typed error; and compressing the payload must round-trip.
pub fn decompress_any(data: &[u8]) -> Result<(), String> {
    if data.len() < 4 {
        return Ok(());
    }
    let algorithm = COMPRESSORS[data[0] as usize % 3];
    let declared = u64::from(u32::from_le_bytes([data[1], data[2], data[3], 0]));
    let payload = &data[4..];
    if let Ok(out) = decompress(algorithm, payload, declared, 1 << 24, "fuzz", 0) {
        if out.len() as u64 != declared {
            return Err(format!("{} bytes out, {declared} declared", out.len()));
        }
    }
    let mut packed = Vec::new();
    let compressed = compress(algorithm, payload, &mut packed).map_err(|e| e.to_string())?;
    let back = if compressed {
        decompress(algorithm, &packed, payload.len() as u64, 1 << 24, "fuzz", 0)
            .map_err(|e| format!("own output does not decompress: {e}"))?
    } else {
        packed
    };
    if back != payload {
        return Err("round trip changed the data".into());
    }
    Ok(())
}
