//! zran metadata blobs, well-formed and damaged: a gzip stream indexed as one file reads back
//! chunk by chunk through `BlobReader::open_zran`; corrupt contexts, windows, chunk entries
//! and mismatched layers fail with typed errors naming the structure and field.

use rafs_chunker::zran::{SharedZran, ZranChunk, ZranContext, ZranError, ZranGenerator};
use rafs_chunker::{BlobOptions, BlobReader, BlobWriter, ChunkSpans, Error, Verify};
use rafs_format::model::{Blob, ChunkInfo, Compressor, Digester, FsVersion};
use std::io::Read;

/// Text-like bytes: compressible, so the stream has several deflate blocks.
fn text(n: usize) -> Vec<u8> {
    let words: [&[u8]; 6] = [
        b"zran ",
        b"inflate ",
        b"window ",
        b"block ",
        b"chunk\n",
        b"gzip ",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(words[(state % 6) as usize]);
    }
    out.truncate(n);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    std::io::Write::write_all(&mut e, data).unwrap();
    e.finish().unwrap()
}

/// A change made to the recorded contexts, or to each chunk record.
type ContextDamage = dyn Fn(&mut Vec<ZranContext>);
type ChunkDamage = dyn Fn(&mut ZranChunk);

/// Spans that damage what the generator records.
struct Damaging<'a> {
    inner: SharedZran<&'a [u8]>,
    damage: &'a dyn Fn(&mut ZranChunk),
}

impl ChunkSpans for Damaging<'_> {
    fn begin_chunk(&mut self) -> Result<(), ZranError> {
        self.inner.begin_chunk()
    }
    fn end_chunk(&mut self) -> Result<ZranChunk, ZranError> {
        let mut c = self.inner.end_chunk()?;
        (self.damage)(&mut c);
        Ok(c)
    }
}

/// Indexes `gz` (whose content is `plain`) as one file in 64 KiB chunks, damaging chunk
/// records and contexts as asked; returns the metadata blob, its table entry and the chunks.
fn index(
    gz: &[u8],
    plain: &[u8],
    damage_chunk: &dyn Fn(&mut ZranChunk),
    damage_contexts: &dyn Fn(&mut Vec<ZranContext>),
) -> (Vec<u8>, Blob, Vec<ChunkInfo>) {
    let mut o = BlobOptions::new(FsVersion::V6);
    o.zran = true;
    o.compressor = Compressor::Gzip;
    o.digester = Digester::Sha256;
    o.chunk_size = 0x1_0000;
    let shared = SharedZran::new(ZranGenerator::new(gz, o.chunk_size).unwrap());
    let mut w = BlobWriter::new(Vec::new(), o).unwrap();
    let mut reader = shared.clone();
    let mut spans = Damaging {
        inner: shared.clone(),
        damage: damage_chunk,
    };
    let f = w
        .add_zran_file(&mut reader, plain.len() as u64, &mut spans)
        .unwrap();
    let (mut contexts, digest, size) = shared.with(|g| g.finish()).unwrap();
    damage_contexts(&mut contexts);
    let data = w
        .finish_zran(contexts, rafs_format::hex(&digest), size)
        .unwrap();
    let blob = data.finish(None).unwrap();
    let chunks = blob.files[f.0 as usize].clone();
    (blob.sink, blob.blob, chunks)
}

fn verify() -> Verify {
    Verify {
        digest: Some(Digester::Sha256),
        crc32: true,
    }
}

/// Reads every chunk; returns the data or the first error.
fn read_all(gz: &[u8], meta: &[u8], blob: &Blob, chunks: &[ChunkInfo]) -> Result<Vec<u8>, Error> {
    let r = BlobReader::open_zran(gz.to_vec(), &meta, blob)?;
    let mut out = Vec::new();
    for c in chunks {
        out.extend(r.read_chunk(c, Compressor::Gzip, verify())?);
    }
    Ok(out)
}

fn field(e: &Error) -> String {
    match e.as_blob() {
        Some(b) => format!("{} / {}", b.structure, b.kind),
        None => e.to_string(),
    }
}

#[test]
fn an_indexed_stream_reads_back_chunk_by_chunk() {
    let plain = text(3 << 20);
    let gz = gzip(&plain);
    let (meta, blob, chunks) = index(&gz, &plain, &|_| {}, &|_| {});
    assert_eq!(chunks.len(), 48);
    let r = BlobReader::open_zran(gz.clone(), &meta.as_slice(), &blob).unwrap();
    let contexts = r.meta().unwrap().zran.as_ref().unwrap().len();
    assert!(
        contexts >= 2,
        "{contexts} contexts for {} bytes of gzip",
        gz.len()
    );
    assert_eq!(read_all(&gz, &meta, &blob, &chunks).unwrap(), plain);
    // Every byte of the stream read once: the blob id is the layer's sha256.
    assert_eq!(blob.compressed_size, gz.len() as u64);
    let mut all = Vec::new();
    flate2::read::GzDecoder::new(gz.as_slice())
        .read_to_end(&mut all)
        .unwrap();
    assert_eq!(all, plain);
}

#[test]
fn damaged_contexts_are_named() {
    let plain = text(1 << 20);
    let gz = gzip(&plain);
    let cases: [(&str, &ContextDamage, &str); 4] = [
        ("ctx_bits 9", &|c| c[0].ctx_bits = 9, "ctx_bits"),
        (
            "input past the layer",
            &|c| c[0].in_offset = 1 << 40,
            "zran context",
        ),
        ("huge input", &|c| c[0].in_len = u32::MAX, "in_len/out_len"),
        (
            "window of the wrong bytes",
            &|c| {
                for ctx in c.iter_mut() {
                    ctx.dict.iter_mut().for_each(|b| *b ^= 0x55);
                    if ctx.dict.is_empty() {
                        ctx.ctx_bits = (ctx.ctx_bits + 3) % 8;
                    }
                }
            },
            "",
        ),
    ];
    for (what, damage, want) in cases {
        let (meta, blob, chunks) = index(&gz, &plain, &|_| {}, damage);
        let e = read_all(&gz, &meta, &blob, &chunks)
            .err()
            .unwrap_or_else(|| panic!("{what}: read back"));
        let text = field(&e);
        assert!(text.contains(want), "{what}: {text}");
        println!("{what}: {text}");
    }
}

#[test]
fn damaged_chunk_entries_are_named() {
    let plain = text(1 << 20);
    let gz = gzip(&plain);
    let cases: [(&str, &ChunkDamage, &str); 2] = [
        ("context 7 of a few", &|c| c.context = 7, "zran context"),
        (
            "offset past the context",
            &|c| c.offset += 1 << 24,
            "zran offset",
        ),
    ];
    for (what, damage, want) in cases {
        let (meta, blob, chunks) = index(&gz, &plain, damage, &|_| {});
        let e = read_all(&gz, &meta, &blob, &chunks).unwrap_err();
        let text = field(&e);
        assert!(text.contains(want), "{what}: {text}");
    }
}

#[test]
fn a_layer_that_is_not_the_indexed_one_is_refused() {
    let plain = text(200_000);
    let gz = gzip(&plain);
    let (meta, blob, chunks) = index(&gz, &plain, &|_| {}, &|_| {});
    let mut other = gz.clone();
    other.push(0);
    let e = read_all(&other, &meta, &blob, &chunks).unwrap_err();
    assert!(field(&e).contains("size"), "{}", field(&e));
    // Same size, other bytes: the chunks fail their digests or inflate.
    let mut flipped = gz.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0xff;
    assert!(read_all(&flipped, &meta, &blob, &chunks).is_err());
    // A metadata blob without contexts is not a zran one.
    let plain_blob = {
        let mut w = BlobWriter::new(Vec::new(), BlobOptions::new(FsVersion::V6)).unwrap();
        w.add_bytes(b"hello").unwrap();
        w.finish_data().unwrap().finish(None).unwrap().sink
    };
    let e = BlobReader::open_zran(gz.clone(), &plain_blob.as_slice(), &blob)
        .err()
        .unwrap();
    assert!(field(&e).contains("inflate contexts"), "{}", field(&e));
}
