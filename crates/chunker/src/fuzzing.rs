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
    if let Ok(r) = BlobReader::open_with_limits(data, limits) {
        read_everything(&r, data)?;
    }
    // The same bytes as a blob encrypted under a fixed key: every unit goes through decryption.
    let mut entry = rafs_format::model::Blob::new(
        "fuzz",
        Compressor::Zstd,
        rafs_format::model::Digester::Blake3,
        0x10_0000,
    );
    let mut key = [0x11u8; 32];
    key[16..].fill(0x22);
    if let Ok(cipher) = crate::cipher::BlobCipher::new(key, [0; 16]) {
        cipher.record_in(&mut entry);
    }
    if let Ok(r) = BlobReader::open_for(data, &entry) {
        read_everything(&r, data)?;
    }
    Ok(())
}

/// Reads every section, ToC entry and (up to 64) chunk of an open blob.
fn read_everything(r: &BlobReader<&[u8]>, data: &[u8]) -> Result<(), String> {
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

/// Most decompressed bytes one zran input may produce (gzip bombs are cheap to write).
const ZRAN_MAX_OUT: usize = 8 << 20;

/// zran, both ways. Byte 0 even: the rest is a gzip stream, indexed in chunks whose length
/// byte 0 picks; every chunk read must then read back through its recorded context to the same
/// bytes. Byte 0 odd: a context table and a gzip layer (see `zran_hostile_table`), the table
/// decoded and inflated through: typed errors only. Returns a violated property.
pub fn zran(data: &[u8]) -> Result<(), String> {
    let Some((&mode, rest)) = data.split_first() else {
        return Ok(());
    };
    if mode & 1 == 0 {
        zran_round_trip(rest, usize::from(mode) * 257 + 1)
    } else {
        zran_hostile_table(rest);
        Ok(())
    }
}

fn zran_round_trip(gz: &[u8], chunk: usize) -> Result<(), String> {
    use crate::zran::{encode_contexts, read_chunk, ZranGenerator, ZranTable};
    use std::io::Read;
    let Ok(mut g) = ZranGenerator::new(gz, 0x1000) else {
        return Ok(());
    };
    let mut chunks = Vec::new();
    let mut total = 0;
    // Each read-back inflates from its context's start: a bounded number of chunks keeps an
    // input's cost linear.
    while total < ZRAN_MAX_OUT && chunks.len() < 2048 {
        if g.begin_chunk().is_err() {
            return Ok(());
        }
        let mut buf = vec![0u8; chunk];
        let mut got = 0;
        while got < chunk {
            match g.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(_) => return Ok(()),
            }
        }
        let Ok(z) = g.end_chunk() else {
            return Ok(());
        };
        if z.len as usize != got {
            return Err(format!("chunk of {got} bytes recorded as {}", z.len));
        }
        if got == 0 {
            break;
        }
        buf.truncate(got);
        total += got;
        chunks.push((z, buf));
    }
    let contexts = g.take_contexts();
    let count = u32::try_from(contexts.len()).map_err(|_| "context count")?;
    let table = ZranTable::decode(&encode_contexts(&contexts), count)
        .map_err(|f| format!("our own context table does not decode: {f:?}"))?;
    let mut out = Vec::new();
    for (z, bytes) in &chunks {
        let (ctx, dict) = table.get(z.context).ok_or("chunk names no context")?;
        read_chunk(&gz, ctx, dict, z.offset, z.len, &mut out)
            .map_err(|f| format!("chunk {z:?} does not read back: {f:?}"))?;
        if &out != bytes {
            return Err(format!("chunk {z:?} reads back different bytes"));
        }
    }
    Ok(())
}

/// `[count][table length, u16 LE][table][gzip layer]`: a table decoded and used against the
/// layer.
fn zran_hostile_table(rest: &[u8]) {
    use crate::zran::{read_chunk, ZranTable};
    if rest.len() < 3 {
        return;
    }
    let count = u32::from(rest[0]);
    let len = usize::from(u16::from_le_bytes([rest[1], rest[2]])).min(rest.len() - 3);
    let (table, gz) = rest[3..].split_at(len);
    let Ok(t) = ZranTable::decode(table, count) else {
        return;
    };
    let mut out = Vec::new();
    for i in 0..t.len().min(8) {
        if let Some((ctx, dict)) = u32::try_from(i).ok().and_then(|i| t.get(i)) {
            let len = ctx.out_len.get().min(1 << 16);
            let _ = read_chunk(&gz, ctx, dict, 0, len, &mut out);
        }
    }
}
