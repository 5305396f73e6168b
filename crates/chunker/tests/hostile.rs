//! Hostile blobs: each damage to a valid blob must give one specific typed error, never a
//! panic, a hang or an allocation the input chose.

#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "tests: fixture offsets and sizes are small known values, and a scenario reads \
              best top to bottom in one function"
)]

use rafs_chunker::meta::{CiEntry, CiHeader};
use rafs_chunker::ondisk::{CI_HEADER_SIZE, CI_V1_SIZE, TAR_HEADER_SIZE, TOC_ENTRY_SIZE};
use rafs_chunker::toc::tar_header;
use rafs_chunker::{BlobOptions, BlobReader, BlobWriter, Error, FinishedBlob, Verify};
use rafs_format::model::{ChunkFlags, ChunkInfo, Compressor, FsVersion};

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A v6 blob of three files (text, random, more text over several 4 KiB chunks), chunk-info
/// array stored raw (compressor none) so entries can be edited in place.
fn base(compressor: Compressor, inline: bool, toc: bool) -> FinishedBlob<Vec<u8>> {
    let mut o = BlobOptions::new(FsVersion::V6);
    o.compressor = compressor;
    o.chunk_size = 0x1000;
    o.inline_bootstrap = inline;
    o.blob_toc = toc;
    let mut w = BlobWriter::new(Vec::new(), o).unwrap();
    w.add_bytes(&b"hello world\n".repeat(300)).unwrap();
    w.add_bytes(&pseudo_random(5000, 7)).unwrap();
    w.add_bytes(&b"lorem ipsum dolor sit amet ".repeat(800))
        .unwrap();
    let boot = vec![0x42u8; 3000];
    w.finish_data()
        .unwrap()
        .finish(inline.then_some(&boot[..]))
        .unwrap()
}

fn kind(e: &Error) -> &'static str {
    e.blob_kind()
        .unwrap_or_else(|| panic!("not a blob error: {e}"))
        .name()
}

fn all_chunks(b: &FinishedBlob<Vec<u8>>) -> Vec<ChunkInfo> {
    b.files.iter().flatten().copied().collect()
}

fn ci_entry_offset(blob: &[u8], index: usize) -> usize {
    let r = BlobReader::open(blob).unwrap();
    let h = r.meta().unwrap().header;
    assert_eq!(h.ci_compressor, 0, "array must be raw to edit");
    h.ci_offset as usize + index * CI_V1_SIZE
}

fn edit_entry(blob: &mut [u8], index: usize, f: impl FnOnce(&mut CiEntry)) {
    use zerocopy::{FromBytes, IntoBytes};
    let at = ci_entry_offset(blob, index);
    let rec =
        rafs_chunker::ondisk::CiEntryV1Record::read_from_bytes(&blob[at..at + CI_V1_SIZE]).unwrap();
    let mut e = CiEntry::decode_v1(&rec);
    f(&mut e);
    blob[at..at + CI_V1_SIZE].copy_from_slice(e.encode_v1().as_bytes());
}

#[test]
fn valid_base_blobs_read_back() {
    for c in [Compressor::None, Compressor::Lz4Block, Compressor::Zstd] {
        for (inline, toc) in [(false, false), (true, true)] {
            let b = base(c, inline, toc);
            let r = BlobReader::open(b.sink.as_slice()).unwrap();
            for chunk in all_chunks(&b) {
                let v = Verify {
                    digest: Some(b.blob.digester),
                    crc32: true,
                };
                r.read_chunk(&chunk, c, v).unwrap();
            }
        }
    }
}

#[test]
fn truncated_blob_meta_is_refused() {
    let b = base(Compressor::None, false, false);
    // The bootstrap says where the header is; the blob ends before it.
    let cut = &b.sink[..b.sink.len() - 100];
    let e = BlobReader::open_for(cut, &b.blob).err().unwrap();
    assert_eq!(kind(&e), "Truncated", "{e}");
}

#[test]
fn chunk_past_the_data_is_refused() {
    let b = base(Compressor::None, false, false);
    let r = BlobReader::open(b.sink.as_slice()).unwrap();
    let mut c = *all_chunks(&b).last().unwrap();
    c.compressed_offset = r.data_end() - 10;
    let e = r
        .read_chunk(&c, Compressor::None, Verify::default())
        .unwrap_err();
    assert_eq!(kind(&e), "Truncated", "{e}");
}

#[test]
fn chunk_info_entry_past_the_end_is_refused() {
    let mut blob = base(Compressor::None, false, false).sink;
    edit_entry(&mut blob, 2, |e| e.compressed_offset = 1 << 30);
    let e = BlobReader::open(blob.as_slice()).err().unwrap();
    assert_eq!(kind(&e), "Truncated", "{e}");
    assert_eq!(e.as_blob().unwrap().structure, "chunk-info entry");
    assert_eq!(e.as_blob().unwrap().offset, 2 * CI_V1_SIZE as u64);
}

#[test]
fn overlapping_chunks_are_refused() {
    let mut blob = base(Compressor::None, false, false).sink;
    edit_entry(&mut blob, 1, |e| e.compressed_offset = 1);
    let e = BlobReader::open(blob.as_slice()).err().unwrap();
    assert_eq!(
        e.blob_kind(),
        Some(&rafs_chunker::BlobErrorKind::Overlap { index: 1, other: 0 }),
        "{e}"
    );
    let mut blob = base(Compressor::None, false, false).sink;
    edit_entry(&mut blob, 1, |e| e.uncompressed_offset = 0);
    let e = BlobReader::open(blob.as_slice()).err().unwrap();
    assert_eq!(kind(&e), "Overlap", "{e}");
}

#[test]
fn chunk_sizes_of_zero_or_above_16_mib_are_refused() {
    let b = base(Compressor::Zstd, false, false);
    let r = BlobReader::open(b.sink.as_slice()).unwrap();
    let good = all_chunks(&b)[0];
    for (csize, usize_) in [
        (0, good.uncompressed_size),
        (17 << 20, good.uncompressed_size),
        (good.compressed_size, 0),
        (good.compressed_size, 17 << 20),
    ] {
        let c = ChunkInfo {
            compressed_size: csize,
            uncompressed_size: usize_,
            ..good
        };
        let e = r
            .read_chunk(&c, Compressor::Zstd, Verify::default())
            .unwrap_err();
        assert_eq!(kind(&e), "InvalidField", "{csize} {usize_}: {e}");
    }
}

#[test]
fn decompression_bombs_are_refused() {
    let zeros = vec![0u8; 1 << 20];
    for c in [Compressor::Zstd, Compressor::Lz4Block] {
        let mut packed = Vec::new();
        assert!(rafs_chunker::compress::compress(c, &zeros, &mut packed).unwrap());
        let chunk = ChunkInfo {
            digest: [0; 32],
            blob_index: 0,
            index: 0,
            flags: ChunkFlags::COMPRESSED,
            compressed_offset: 0,
            compressed_size: packed.len() as u32,
            uncompressed_offset: 0,
            uncompressed_size: 4096,
            file_offset: 0,
            crc32: 0,
        };
        let r = BlobReader::open(packed.as_slice()).unwrap();
        let e = r.read_chunk(&chunk, c, Verify::default()).unwrap_err();
        assert_eq!(kind(&e), "SizeMismatch", "{}: {e}", c.name());
    }
}

#[test]
fn corrupt_data_fails_its_digest_and_crc() {
    let b = base(Compressor::None, false, false);
    let mut blob = b.sink.clone();
    let c = all_chunks(&b)[1];
    blob[c.compressed_offset as usize + 10] ^= 0xff;
    let r = BlobReader::open(blob.as_slice()).unwrap();
    let e = r
        .read_chunk(
            &c,
            Compressor::None,
            Verify {
                digest: Some(b.blob.digester),
                crc32: false,
            },
        )
        .unwrap_err();
    assert_eq!(kind(&e), "DigestMismatch", "{e}");
    let e = r
        .read_chunk(
            &c,
            Compressor::None,
            Verify {
                digest: None,
                crc32: true,
            },
        )
        .unwrap_err();
    assert_eq!(kind(&e), "CrcMismatch", "{e}");
    // Garbage where zstd data should be.
    let b = base(Compressor::Zstd, false, false);
    let mut blob = b.sink.clone();
    let c = all_chunks(&b)[0];
    assert!(c.flags.contains(ChunkFlags::COMPRESSED));
    for i in 4..c.compressed_size as usize {
        blob[c.compressed_offset as usize + i] = 0xff;
    }
    let r = BlobReader::open(blob.as_slice()).unwrap();
    let e = r
        .read_chunk(&c, Compressor::Zstd, Verify::default())
        .unwrap_err();
    assert!(matches!(kind(&e), "Corrupt" | "SizeMismatch"), "{e}");
}

/// Replaces the ToC's tar header (end of blob) with one claiming `size`.
fn set_toc_size(blob: &mut [u8], size: u64) {
    let n = blob.len();
    blob[n - TAR_HEADER_SIZE..].copy_from_slice(&tar_header("rafs.blob.toc", size));
}

#[test]
fn toc_with_bad_sizes_is_refused() {
    let good = base(Compressor::Zstd, true, true).sink;
    let toc_len = 5 * TOC_ENTRY_SIZE as u64;
    for (size, expect) in [
        (100, "InvalidField"),
        (0, "InvalidField"),
        (2 << 20, "LimitExceeded"),
        (good.len() as u64 / 128 * 128 + 128, "Truncated"),
    ] {
        let mut blob = good.clone();
        set_toc_size(&mut blob, size);
        let e = BlobReader::open(blob.as_slice())
            .err()
            .unwrap_or_else(|| panic!("size {size} accepted"));
        assert_eq!(kind(&e), expect, "size {size}: {e}");
    }
    // An entry whose payload runs into the ToC itself.
    let mut blob = good.clone();
    let toc_start = blob.len() - TAR_HEADER_SIZE - toc_len as usize;
    blob[toc_start + 64..toc_start + 72].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = BlobReader::open(blob.as_slice()).err().unwrap();
    assert_eq!(kind(&e), "InvalidField", "{e}");
    // An entry that lies about its uncompressed size (image.boot is the last entry).
    let mut blob = good.clone();
    let boot = toc_start + 4 * TOC_ENTRY_SIZE;
    blob[boot + 72..boot + 80].copy_from_slice(&100u64.to_le_bytes());
    let r = BlobReader::open(blob.as_slice()).unwrap();
    let e = r.bootstrap().unwrap_err();
    assert_eq!(kind(&e), "SizeMismatch", "{e}");
    // A huge declared size is refused before allocating.
    blob[boot + 72..boot + 80].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let r = BlobReader::open(blob.as_slice()).unwrap();
    assert_eq!(kind(&r.bootstrap().unwrap_err()), "LimitExceeded");
    // An entry whose digest does not match.
    let mut blob = good.clone();
    blob[boot + 24] ^= 1;
    let r = BlobReader::open(blob.as_slice()).unwrap();
    assert_eq!(kind(&r.bootstrap().unwrap_err()), "DigestMismatch");
    // An unknown compression flag.
    let mut blob = good;
    blob[boot] = 0x3;
    assert_eq!(
        kind(&BlobReader::open(blob.as_slice()).err().unwrap()),
        "UnknownCompressor"
    );
}

#[test]
fn broken_section_headers_are_refused() {
    let good = base(Compressor::Zstd, true, true).sink;
    let r = BlobReader::open(good.as_slice()).unwrap();
    let meta = r
        .sections()
        .iter()
        .find(|s| s.name == "blob.meta")
        .unwrap()
        .clone();
    // Bad checksum in a middle header.
    let mut blob = good.clone();
    blob[meta.header_offset as usize + 5] ^= 1;
    let e = BlobReader::open(blob.as_slice()).err().unwrap();
    assert_eq!(kind(&e), "BadTarHeader", "{e}");
    assert_eq!(e.as_blob().unwrap().offset, meta.header_offset);
    // A section claiming more bytes than precede it.
    let mut blob = good.clone();
    let h = tar_header("blob.meta", meta.header_offset + 1);
    blob[meta.header_offset as usize..meta.header_offset as usize + TAR_HEADER_SIZE]
        .copy_from_slice(&h);
    let e = BlobReader::open(blob.as_slice()).err().unwrap();
    assert_eq!(kind(&e), "Truncated", "{e}");
    // A blob.meta section too small for its header.
    let mut blob = good;
    let h = tar_header("blob.meta", 100);
    blob[meta.header_offset as usize..meta.header_offset as usize + TAR_HEADER_SIZE]
        .copy_from_slice(&h);
    let e = BlobReader::open(blob.as_slice()).err().unwrap();
    assert!(matches!(kind(&e), "InvalidField" | "BadTarHeader"), "{e}");
}

#[test]
fn bad_blob_meta_headers_are_refused() {
    let b = base(Compressor::None, false, false);
    let hdr_at = b.sink.len() - CI_HEADER_SIZE;
    let header = CiHeader::parse(&b.sink[hdr_at..], hdr_at as u64).unwrap();
    let with = |h: CiHeader| {
        let mut blob = b.sink.clone();
        blob[hdr_at..].copy_from_slice(&h.to_bytes());
        blob
    };
    let cases = [
        (
            CiHeader {
                entries: u32::MAX,
                ..header
            },
            "LimitExceeded",
        ),
        (
            CiHeader {
                entries: header.entries + 1000,
                ..header
            },
            "InvalidField",
        ),
        (
            CiHeader {
                ci_compressor: 9,
                ..header
            },
            "UnknownCompressor",
        ),
        (
            CiHeader {
                ci_offset: header.ci_offset + 1,
                ..header
            },
            "InvalidField",
        ),
        (
            CiHeader {
                ci_uncompressed_size: 1 << 40,
                ..header
            },
            "LimitExceeded",
        ),
        (
            CiHeader {
                ci_uncompressed_size: 20,
                ..header
            },
            "InvalidField",
        ),
        (
            CiHeader {
                ci_uncompressed_size: header.ci_uncompressed_size + 8,
                ..header
            },
            "SizeMismatch",
        ),
        (
            CiHeader {
                ci_compressor: 3,
                ..header
            },
            "Corrupt",
        ),
    ];
    for (h, expect) in cases {
        let e = BlobReader::open_for(with(h).as_slice(), &b.blob)
            .err()
            .unwrap_or_else(|| panic!("{h:?} accepted"));
        assert_eq!(kind(&e), expect, "{h:?}: {e}");
    }
    // Bad second magic: not recognised as a header on its own, refused when the bootstrap
    // says one is there.
    let mut blob = b.sink.clone();
    let n = blob.len();
    blob[n - 1] ^= 1;
    let e = BlobReader::open_for(blob.as_slice(), &b.blob)
        .err()
        .unwrap();
    assert_eq!(kind(&e), "BadMagic", "{e}");
}

/// A v6 batch blob (`--batch-size 0x1000`), everything stored raw so the chunk-info array,
/// the batch table and the batch bytes can be edited in place: three small files share
/// batch 0, a large one is stored on its own.
fn batch_base() -> FinishedBlob<Vec<u8>> {
    let mut o = BlobOptions::new(FsVersion::V6);
    o.compressor = Compressor::None;
    o.chunk_size = 0x4000;
    o.batch_size = 0x1000;
    let mut w = BlobWriter::new(Vec::new(), o).unwrap();
    w.add_bytes(b"first small file\n").unwrap();
    w.add_bytes(b"second\n").unwrap();
    w.add_bytes(&pseudo_random(900, 3)).unwrap();
    w.add_bytes(&pseudo_random(9000, 5)).unwrap();
    w.finish_data().unwrap().finish(None).unwrap()
}

/// Where entry `index` of the raw v2 array is, and where batch context `k` is.
fn v2_entry_at(blob: &[u8], index: usize) -> usize {
    let h = BlobReader::open(blob).unwrap().meta().unwrap().header;
    assert_eq!(h.ci_compressor, 0, "array must be raw to edit");
    h.ci_offset as usize + index * 24
}

fn batch_context_at(blob: &[u8], k: usize) -> usize {
    let h = BlobReader::open(blob).unwrap().meta().unwrap().header;
    h.ci_offset as usize + h.zran_offset as usize + k * 40
}

fn edit_v2(blob: &mut [u8], index: usize, f: impl FnOnce(&mut CiEntry)) {
    use zerocopy::{FromBytes, IntoBytes};
    let at = v2_entry_at(blob, index);
    let rec = rafs_chunker::ondisk::CiEntryV2Record::read_from_bytes(&blob[at..at + 24]).unwrap();
    let mut e = CiEntry::decode_v2(&rec);
    f(&mut e);
    blob[at..at + 24].copy_from_slice(e.encode_v2().as_bytes());
}

#[test]
fn a_batch_blob_reads_back_and_its_damage_is_named() {
    let b = batch_base();
    let chunks = all_chunks(&b);
    let r = BlobReader::open(b.sink.as_slice()).unwrap();
    let meta = r.meta().unwrap();
    assert_eq!(meta.batches.len(), 1, "{:?}", meta.batches);
    assert_eq!(meta.batches[0].uncompressed_size, 17 + 7 + 900);
    for c in &chunks {
        r.read_chunk(c, Compressor::None, Verify::default())
            .unwrap();
    }
    let open_error = |blob: &[u8]| kind(&BlobReader::open(blob).map(|_| ()).unwrap_err());
    // A member that claims to reach past its batch.
    let mut blob = b.sink.clone();
    edit_v2(&mut blob, 1, |e| e.data = 920);
    assert_eq!(open_error(&blob), "InvalidField");
    // A member naming a batch that does not exist.
    let mut blob = b.sink.clone();
    edit_v2(&mut blob, 0, |e| e.data = 7 << 32);
    assert_eq!(open_error(&blob), "InvalidField");
    // A batch whose stored bytes would run past the chunk data.
    let mut blob = b.sink.clone();
    let at = batch_context_at(&blob, 0);
    blob[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(open_error(&blob), "InvalidField");
    // A batch that claims more bytes than a chunk may hold is refused before allocating.
    let mut blob = b.sink.clone();
    let at = batch_context_at(&blob, 0);
    blob[at + 4..at + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    let read = BlobReader::open(blob.as_slice())
        .and_then(|r| r.read_chunk(&chunks[0], Compressor::Zstd, Verify::default()));
    assert_eq!(kind(&read.unwrap_err()), "LimitExceeded");
    // Damaged batch bytes fail the member's digest.
    let mut blob = b.sink.clone();
    let first = meta.entries[0].compressed_offset as usize;
    blob[first] ^= 0xff;
    let r = BlobReader::open(blob.as_slice()).unwrap();
    let digest = Verify {
        digest: Some(b.blob.digester),
        crc32: false,
    };
    let e = r
        .read_chunk(&chunks[0], Compressor::None, digest)
        .unwrap_err();
    assert_eq!(kind(&e), "DigestMismatch");
    // The bootstrap record of a batch member keeps its CRC (the entry's data word holds the
    // batch position instead), so the CRC catches it too.
    let crc = Verify {
        digest: None,
        crc32: true,
    };
    let e = r.read_chunk(&chunks[0], Compressor::None, crc).unwrap_err();
    assert_eq!(kind(&e), "CrcMismatch");
}

/// A data section given alone with hostile chunk records (batch members and stored chunks at
/// arbitrary offsets, sizes near the limits) and hostile bytes (random, zstd magics with
/// arbitrary block headers): finding the batches and reading every member never panics, never
/// loops, and allocates no more than a batch's declared 16 MiB.
#[test]
fn a_data_section_alone_with_hostile_records_fails_cleanly() {
    let started = std::time::Instant::now();
    for seed in 1..300u64 {
        let mut data = pseudo_random(64 + (seed as usize * 37) % 8192, seed);
        // Plant zstd magics (and random frame headers after them) now and then.
        for at in (0..data.len().saturating_sub(8)).step_by(97 + seed as usize % 50) {
            if seed % 3 == 0 {
                data[at..at + 4].copy_from_slice(&[0x28, 0xb5, 0x2f, 0xfd]);
            }
        }
        let r = pseudo_random(64, seed.wrapping_mul(7));
        let word = |i: usize| u64::from_le_bytes(r[i * 8..i * 8 + 8].try_into().unwrap());
        let mut records = Vec::new();
        for i in 0..6 {
            let stored = i % 3 == 0;
            records.push(ChunkInfo {
                digest: [0; 32],
                blob_index: 0,
                index: i as u32,
                flags: ChunkFlags::COMPRESSED,
                compressed_offset: if stored {
                    word(i) % (data.len() as u64 + 10)
                } else {
                    0
                },
                compressed_size: if stored {
                    (word(i + 1) % 5000) as u32
                } else {
                    0
                },
                uncompressed_offset: if i == 5 {
                    u64::MAX - 3
                } else {
                    word(i + 2) % 70_000
                },
                uncompressed_size: (word(i) % 20_000) as u32
                    + u32::from(i == 4) * (u32::MAX - 20_000),
                file_offset: 0,
                crc32: 0,
            });
        }
        for c in [Compressor::Zstd, Compressor::Lz4Block, Compressor::None] {
            let Ok(mut reader) = BlobReader::open(data.as_slice()) else {
                continue;
            };
            if reader.find_batches(&records, c).is_err() {
                continue;
            }
            for chunk in &records {
                let _ = reader.read_chunk(chunk, c, Verify::default());
            }
        }
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "too slow: {:?}",
        started.elapsed()
    );
}
