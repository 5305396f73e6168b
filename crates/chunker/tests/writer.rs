//! Writer behaviour: the reference's worked example, determinism across thread counts,
//! dedup within a blob and against a chunk dictionary, empty layers, and failures.

#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "tests: fixture offsets and sizes are small known values, and a scenario reads \
              best top to bottom in one function"
)]

use rafs_chunker::{BlobOptions, BlobReader, BlobTableEntry, BlobWriter, ChunkDict, Error, Verify};
use rafs_format::model::{
    mode, Blob, ChunkFlags, Compressor, Digester, FsVersion, Image, Inode, Superblock, Tree,
};

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn hello_blob_is_the_reference_example() {
    // blob.md §12.1: `nydus-image create -t tar-rafs -B boot -b blob tiny.tar`.
    let mut w = BlobWriter::new(Vec::new(), BlobOptions::new(FsVersion::V6)).unwrap();
    w.add_bytes(b"hello\n").unwrap();
    let b = w.finish_data().unwrap().finish(None).unwrap();
    let mut expected = b"hello\n".to_vec();
    expected.extend_from_slice(&[0, 0, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 0, 0x50, 0, 0]);
    let mut header = vec![0u8; 4096];
    header[..0x20].copy_from_slice(&[
        0x0b, 0xb1, 0x0b, 0xb1, 0x01, 0, 0, 0x40, 0, 0, 0, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0,
        0x10, 0, 0, 0, 0, 0, 0, 0,
    ]);
    header[0x20] = 0x10;
    header[4092..].copy_from_slice(&[0x0b, 0xb1, 0x0b, 0xb1]);
    expected.extend_from_slice(&header);
    assert_eq!(b.sink, expected);
    let c = b.files[0][0];
    assert_eq!(
        rafs_format::hex(&c.digest),
        "8e4c7c1b99dbfd50e7a95185fead5ee1448fa904a2fdd778eaf5f2dbfd629a99"
    );
    assert_eq!(c.crc32, 0x353d_d8be);
    assert_eq!(c.flags, ChunkFlags::HAS_CRC32);
}

fn layer() -> Vec<Vec<u8>> {
    let text: Vec<u8> = (0..400_000u32)
        .flat_map(|i| format!("line {i} of a text file\n").into_bytes())
        .collect();
    vec![
        text.clone(),
        pseudo_random(3 << 20, 1),
        Vec::new(),
        b"small".to_vec(),
        text[..100_000].to_vec(),
        text,
        pseudo_random(5000, 2),
    ]
}

fn write(
    files: &[Vec<u8>],
    threads: usize,
    in_flight: usize,
    c: Compressor,
) -> (Vec<u8>, Vec<Vec<rafs_format::model::ChunkInfo>>) {
    let mut o = BlobOptions::new(FsVersion::V6);
    o.threads = threads;
    o.max_in_flight = in_flight;
    o.compressor = c;
    o.blob_toc = true;
    o.chunk_size = 0x4_0000;
    let mut w = BlobWriter::new(Vec::new(), o).unwrap();
    for f in files {
        w.add_bytes(f).unwrap();
    }
    let b = w.finish_data().unwrap().finish(None).unwrap();
    (b.sink, b.files)
}

#[test]
fn output_does_not_depend_on_threads_or_buffers() {
    let files = layer();
    for c in [Compressor::Zstd, Compressor::Lz4Block, Compressor::None] {
        let one = write(&files, 1, 1, c);
        for (t, f) in [(2, 0), (3, 2), (4, 64)] {
            let other = write(&files, t, f, c);
            assert!(one == other, "{}: threads {t}, in flight {f}", c.name());
        }
    }
}

/// Duplicates spread over many jobs and workers: workers skip compressing a chunk an earlier
/// one duplicates, whichever worker sees which first, so the bytes and records must not
/// depend on the thread count, and each distinct content is stored once, at its first
/// occurrence.
#[test]
fn duplicates_across_workers_are_stored_once_whatever_the_threads() {
    let distinct: Vec<Vec<u8>> = (0..40u64)
        .map(|k| {
            let mut d = format!("content {k} ")
                .repeat(200 + 37 * k as usize)
                .into_bytes();
            d.extend(pseudo_random(3000, k + 10));
            d
        })
        .collect();
    let files: Vec<Vec<u8>> = (0..1200usize)
        .map(|i| distinct[(i * 7 + i / 40) % distinct.len()].clone())
        .collect();
    let one = write(&files, 1, 1, Compressor::Zstd);
    for _ in 0..3 {
        for (t, f) in [(2, 0), (4, 64), (3, 5)] {
            assert!(
                write(&files, t, f, Compressor::Zstd) == one,
                "threads {t}, in flight {f}"
            );
        }
    }
    let (_, recs) = one;
    let mut first_at = std::collections::HashMap::new();
    for (i, f) in files.iter().enumerate() {
        first_at.entry(f.clone()).or_insert(i);
    }
    assert_eq!(first_at.len(), distinct.len());
    for (i, f) in files.iter().enumerate() {
        let first = &recs[first_at[f]];
        assert_eq!(
            recs[i].iter().map(|c| c.index).collect::<Vec<_>>(),
            first.iter().map(|c| c.index).collect::<Vec<_>>(),
            "file {i} does not refer to its first copy's chunks"
        );
    }
    let stored: std::collections::BTreeSet<u32> = recs.iter().flatten().map(|c| c.index).collect();
    let distinct_chunks: usize = first_at.values().map(|&i| recs[i].len()).sum();
    assert_eq!(stored.len(), distinct_chunks);
}

#[test]
fn identical_chunks_are_stored_once() {
    let files = layer();
    let (blob, recs) = write(&files, 2, 0, Compressor::Zstd);
    // The second copy of the text file refers to the first one's chunks.
    assert_eq!(recs[0].len(), recs[5].len());
    for (a, b) in recs[0].iter().zip(&recs[5]) {
        assert_eq!(
            (a.index, a.compressed_offset),
            (b.index, b.compressed_offset)
        );
    }
    // The 100 000-byte prefix is a shorter chunk with another digest: stored.
    assert_ne!(recs[4][0].digest, recs[0][0].digest);
    // Every record reads back to the right bytes.
    let r = BlobReader::open(blob.as_slice()).unwrap();
    for (f, data) in recs.iter().zip(&files) {
        let mut got = Vec::new();
        for c in f {
            got.extend(
                r.read_chunk(
                    c,
                    Compressor::Zstd,
                    Verify {
                        digest: Some(Digester::Blake3),
                        crc32: true,
                    },
                )
                .unwrap(),
            );
        }
        assert_eq!(&got, data);
    }
    assert!(recs[2].is_empty());
}

fn dict_image(chunks: Vec<rafs_format::model::ChunkInfo>) -> Image {
    let mut root = Inode::new(mode::S_IFDIR | 0o755);
    root.nlink = 2;
    let mut tree = Tree::with_root(root);
    let mut file = Inode::new(mode::S_IFREG | 0o644);
    file.chunks = chunks;
    let id = tree.add_inode(file);
    tree.push_child(rafs_format::model::ROOT, b"f".to_vec(), id);
    Image {
        superblock: Superblock::new(FsVersion::V6),
        blobs: vec![
            Blob::new(
                "aa".repeat(32),
                Compressor::Zstd,
                Digester::Blake3,
                0x10_0000,
            ),
            Blob::new(
                "bb".repeat(32),
                Compressor::Zstd,
                Digester::Blake3,
                0x10_0000,
            ),
        ],
        tree,
        prefetch: vec![],
        v6_chunk_table: None,
    }
}

#[test]
fn chunk_dictionary_hits_become_references() {
    // A dictionary whose blob "bb" (index 1) holds the chunk of "small".
    let mut w = BlobWriter::new(Vec::new(), BlobOptions::new(FsVersion::V6)).unwrap();
    w.add_bytes(b"small").unwrap();
    let mut rec = w.finish_data().unwrap().finish(None).unwrap().files[0][0];
    rec.blob_index = 1;
    rec.compressed_offset = 777;
    let dict = ChunkDict::from_image(&dict_image(vec![rec]));
    assert_eq!(dict.len(), 1);

    let mut w =
        BlobWriter::with_dictionary(Vec::new(), BlobOptions::new(FsVersion::V6), dict).unwrap();
    w.add_bytes(b"small").unwrap();
    w.add_bytes(b"something else").unwrap();
    w.add_bytes(b"small").unwrap();
    let b = w.finish_data().unwrap().finish(None).unwrap();
    // The dictionary blob was referenced first, so it is blob 0 and this blob is 1.
    assert_eq!(b.blob_table.len(), 2);
    assert!(
        matches!(&b.blob_table[0], BlobTableEntry::Dictionary(d) if d.blob_id == "bb".repeat(32))
    );
    assert_eq!(b.blob_table[1], BlobTableEntry::ThisBlob);
    assert_eq!(
        (b.files[0][0].blob_index, b.files[0][0].compressed_offset),
        (0, 777)
    );
    assert_eq!(b.files[2][0], b.files[0][0]);
    assert_eq!(b.files[1][0].blob_index, 1);
    assert_eq!(b.files[1][0].index, 0, "dictionary hits allocate no index");
    assert_eq!(b.blob.chunk_count, 1);

    let mut sha = BlobOptions::new(FsVersion::V6);
    sha.digester = Digester::Sha256;
    let dict = ChunkDict::from_image(&dict_image(vec![rec]));
    assert!(matches!(
        BlobWriter::with_dictionary(Vec::new(), sha, dict),
        Err(Error::InvalidOptions(_))
    ));
}

#[test]
fn layers_without_data() {
    // Separate bootstrap: no blob at all.
    let mut w = BlobWriter::new(Vec::new(), BlobOptions::new(FsVersion::V6)).unwrap();
    w.add_bytes(b"").unwrap();
    let b = w.finish_data().unwrap().finish(None).unwrap();
    assert_eq!(b.size, 0);
    assert!(b.sink.is_empty());
    // Inline with ToC: [zstd bootstrap][hdr image.boot][1 ToC entry][hdr rafs.blob.toc].
    let mut o = BlobOptions::new(FsVersion::V6);
    o.inline_bootstrap = true;
    o.blob_toc = true;
    let w = BlobWriter::new(Vec::new(), o).unwrap();
    let boot = vec![0u8; 20480];
    let b = w.finish_data().unwrap().finish(Some(&boot)).unwrap();
    assert_eq!(b.toc.len(), 1);
    let r = BlobReader::open(b.sink.as_slice()).unwrap();
    let names: Vec<_> = r.sections().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["image.boot", "rafs.blob.toc"]);
    assert_eq!(r.bootstrap().unwrap(), boot);
}

#[test]
fn failures_are_typed() {
    let mut o = BlobOptions::new(FsVersion::V6);
    o.chunk_size = 3000;
    assert!(matches!(
        BlobWriter::new(Vec::new(), o),
        Err(Error::InvalidOptions(_))
    ));
    // A reader that ends before the size it promised.
    let mut w = BlobWriter::new(Vec::new(), BlobOptions::new(FsVersion::V6)).unwrap();
    let mut short: &[u8] = b"abc";
    let e = w.add_file(&mut short, 10).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    // A sink that fails.
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut o = BlobOptions::new(FsVersion::V6);
    o.chunk_size = 0x1000;
    let mut w = BlobWriter::new(Broken, o).unwrap();
    let data = pseudo_random(4 << 20, 3);
    let r = w.add_bytes(&data).and_then(|_| w.finish_data().map(|_| ()));
    match r {
        Err(Error::Io { source, .. }) => assert_eq!(source.to_string(), "disk on fire"),
        other => panic!("{:?}", other.err()),
    }
    // Inline options without a bootstrap.
    let mut o = BlobOptions::new(FsVersion::V6);
    o.inline_bootstrap = true;
    let w = BlobWriter::new(Vec::new(), o).unwrap();
    assert!(matches!(
        w.finish_data().unwrap().finish(None),
        Err(Error::InvalidOptions(_))
    ));
}

#[test]
fn a_borrowed_sink_that_is_neither_send_nor_static_works() {
    // Placement runs on the caller's thread, so the sink never crosses threads.
    let written = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    struct Local<'a>(&'a std::rc::Rc<std::cell::RefCell<Vec<u8>>>);
    impl std::io::Write for Local<'_> {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let data = pseudo_random(3 << 20, 7);
    let mut opts = BlobOptions::new(FsVersion::V6);
    opts.threads = 2;
    let mut w = BlobWriter::new(Local(&written), opts.clone()).unwrap();
    w.add_bytes(&data).unwrap();
    let borrowed = w.finish_data().unwrap().finish(None).unwrap();
    let mut owned = BlobWriter::new(Vec::new(), opts).unwrap();
    owned.add_bytes(&data).unwrap();
    let owned = owned.finish_data().unwrap().finish(None).unwrap();
    assert_eq!(borrowed.blob_id, owned.blob_id);
    assert_eq!(*written.borrow(), owned.sink);
    assert_eq!(borrowed.files[0].len(), 3, "three 1 MiB chunks");
}
