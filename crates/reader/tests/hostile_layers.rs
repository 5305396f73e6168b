//! Hardening, round 2, at the library level: small hostile layers must not buy large costs,
//! what `build_layer` writes must decode, check and unpack, and unusual but valid inputs (PAX
//! sparse 0.0/0.1, directories at the depth limit, names that are not UTF-8) must convert to
//! the right bytes. Each test names the issue item it covers.

use rafs_format::model::FsVersion;
use rafs_reader::{unpack_to_tar, BlobSource, ImageReader};
use rafs_tar_build::{build_layer, BuildLimits, BuildOptions, EntryErrorKind, Error};
use rafs_testkit::layer::Layer;
use std::time::{Duration, Instant};

/// What a conversion gave: the image and its blob (the tar itself for tarfs).
struct Converted {
    image: rafs_format::model::Image,
    bootstrap: Vec<u8>,
    blob: Vec<u8>,
}

fn convert(tar: &[u8], opts: &BuildOptions) -> Result<Converted, Error> {
    let out = build_layer(tar, opts, Vec::new())?;
    let blob = if out.image.superblock.tarfs {
        tar.to_vec()
    } else {
        out.sink
    };
    Ok(Converted {
        image: out.image,
        bootstrap: out.bootstrap,
        blob,
    })
}

fn reader(c: &Converted) -> ImageReader {
    let blob = c.blob.clone();
    ImageReader::open_with(c.image.clone(), move |_| {
        Ok(Some(Box::new(blob.clone()) as BlobSource))
    })
    .unwrap()
}

fn limit_of(e: &Error) -> Option<&'static str> {
    match &e.as_entry()?.kind {
        EntryErrorKind::LimitExceeded { limit, .. } => Some(limit),
        _ => None,
    }
}

fn v6() -> BuildOptions {
    BuildOptions::new(FsVersion::V6)
}

fn v5() -> BuildOptions {
    BuildOptions::new(FsVersion::V5)
}

/// Item 2: global xattrs are not applied (containerd skips global PAX headers), so a 200 KB
/// header buys nothing: 20,000 files convert fast with no xattr on any inode.
#[test]
fn global_xattrs_are_not_applied_and_cost_nothing() {
    let tar = rafs_testkit::layer::global_xattr_layer(20_000);
    for opts in [v6(), v5()] {
        let started = Instant::now();
        let c = convert(&tar, &opts).unwrap();
        assert!(c.image.tree.inodes.iter().all(|i| i.xattrs.is_empty()));
        assert_eq!(c.image.tree.nodes.len(), 20_001);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}

/// Item 3: a 800 KB global header of 50,000 records costs nothing per later entry, and
/// global records in force are bounded per layer.
#[test]
fn global_records_cost_nothing_per_entry_and_are_bounded() {
    let keys: Vec<String> = (0..50_000).map(|i| format!("k{i:06}")).collect();
    let records: Vec<(&str, &[u8])> = keys.iter().map(|k| (k.as_str(), &b"v"[..])).collect();
    let mut l = Layer::new();
    l.global(&records);
    for i in 0..20_000 {
        l.file(format!("f{i}").as_bytes(), b"");
    }
    let started = Instant::now();
    let c = convert(&l.finish(), &v6()).unwrap();
    let took = started.elapsed();
    assert_eq!(c.image.tree.nodes.len(), 20_001);
    println!("20,000 entries after 50,000 global records: {took:?}");
    assert!(
        took < Duration::from_secs(3),
        "20,000 entries took {took:?}"
    );

    // Forty such headers with fresh keys (500 KB of records each): each is read and checked,
    // none is kept. One header over the budget is refused where it is.
    let mut l = Layer::new();
    for h in 0..40 {
        let keys: Vec<String> = (0..50_000).map(|i| format!("h{h}k{i:06}")).collect();
        let records: Vec<(&str, &[u8])> = keys.iter().map(|k| (k.as_str(), &b"v"[..])).collect();
        l.global(&records);
    }
    l.file(b"f", b"");
    let started = Instant::now();
    let c = convert(&l.finish(), &v6()).unwrap();
    assert_eq!(c.image.tree.nodes.len(), 2);
    assert!(started.elapsed() < Duration::from_secs(3));
    let keys: Vec<String> = (0..150_000).map(|i| format!("k{i:07}")).collect();
    let records: Vec<(&str, &[u8])> = keys.iter().map(|k| (k.as_str(), &b"v"[..])).collect();
    let mut l = Layer::new();
    l.file(b"e", b"").global(&records).file(b"f", b"");
    let err = convert(&l.finish(), &v6()).err().expect("over budget");
    assert_eq!(limit_of(&err), Some("max_global_pax_bytes"), "{err}");
    assert_eq!(err.as_entry().unwrap().index, 1);
}

fn sparse_10(layer: &mut Layer, name: &str, real: u64) {
    layer.sparse_pax10(name, real);
}

/// Item 4: holes cost nothing in the tar; the layer's sparse budget refuses a 16 TiB file at
/// once, and the chunk budget counts over all files, not per file.
#[test]
fn sparse_real_sizes_and_chunks_are_bounded_per_layer() {
    let mut l = Layer::new();
    sparse_10(&mut l, "huge", 16 << 40);
    let started = Instant::now();
    let err = convert(&l.finish(), &v6()).err().expect("over budget");
    assert_eq!(limit_of(&err), Some("max_sparse_bytes"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));

    // Two 12 GiB sparse files: each under the budget alone, not together.
    let mut l = Layer::new();
    sparse_10(&mut l, "a", 12 << 30);
    sparse_10(&mut l, "b", 12 << 30);
    let mut opts = v6();
    opts.limits.max_chunks = 16;
    // With a chunk budget of 16 the first file (12 Ki chunks) trips it before any hashing.
    let started = Instant::now();
    let err = convert(&l.finish(), &opts).err().expect("over budget");
    assert_eq!(limit_of(&err), Some("max_chunks"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));

    // The sparse budget is the layer's: two files of 768 KiB pass a 1 MiB budget together.
    let mut l = Layer::new();
    sparse_10(&mut l, "a", 768 << 10);
    sparse_10(&mut l, "b", 768 << 10);
    let mut opts = v6();
    opts.limits.max_sparse_bytes = 1 << 20;
    let err = convert(&l.finish(), &opts).err().expect("over budget");
    assert_eq!(limit_of(&err), Some("max_sparse_bytes"));
    assert_eq!(err.as_entry().unwrap().path, "GNUSparseFile.0/b");

    // The chunk budget is the layer's: 20 files of 4 chunks each pass 64 at the 17th.
    let mut l = Layer::new();
    for i in 0..20 {
        l.file(format!("f{i}").as_bytes(), &vec![7u8; 4 * 4096]);
    }
    let mut opts = v6();
    opts.chunk_size = 4096;
    opts.limits.max_chunks = 64;
    let err = convert(&l.finish(), &opts).err().expect("over budget");
    assert_eq!(limit_of(&err), Some("max_chunks"));
    assert_eq!(err.as_entry().unwrap().index, 16);
}

/// Item 6: prefetch patterns resolve in time linear in their number, however large the
/// directory they name files in.
#[test]
fn many_prefetch_patterns_over_a_wide_directory_resolve_fast() {
    use rafs_format::model::{mode, prefetch_targets, Inode, Tree, ROOT};
    let mut root = Inode::new(mode::S_IFDIR | 0o755);
    root.nlink = 2;
    let mut tree = Tree::with_root(root);
    let dir = tree.add_inode(Inode::new(mode::S_IFDIR | 0o755));
    let d = tree.push_child(ROOT, b"d".to_vec(), dir);
    let mut file = Inode::new(mode::S_IFREG | 0o644);
    file.size = 1;
    for i in 0..200_000 {
        let f = tree.add_inode(file.clone());
        tree.push_child(d, format!("f{i:06}").into_bytes(), f);
    }
    let patterns: Vec<String> = (0..100_000).map(|i| format!("/d/f{:06}", i * 2)).collect();
    let started = Instant::now();
    let found = prefetch_targets(&tree, &patterns);
    let took = started.elapsed();
    assert_eq!(found.len(), 100_000);
    println!("100,000 patterns over 200,000 files: {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    // A pattern under an earlier one is still dropped.
    let found = prefetch_targets(&tree, &["/d".into(), "/d/f000001".into()]);
    assert_eq!(found, vec![d]);
}

/// Item 7: absurd thread counts are refused as options, not panics or aborts.
#[test]
fn thread_counts_are_bounded() {
    let tar = Layer::new().file(b"f", b"x").finish();
    for threads in [100_000usize, u32::MAX as usize] {
        let mut opts = v6();
        opts.threads = threads;
        match convert(&tar, &opts) {
            Err(Error::InvalidOptions(rafs_tar_build::OptionsError::Threads { given, max })) => {
                assert_eq!((given, max), (threads, 1024))
            }
            other => panic!("{threads} threads: {:?}", other.err()),
        }
    }
}

/// Item 8: a directory 4,096 levels deep (the decoder's limit) converts and reads back in
/// both versions; one level more is refused at conversion.
#[test]
fn directories_at_the_depth_limit_read_back() {
    for depth in [4096usize, 4097] {
        let path = vec!["a"; depth].join("/") + "/";
        let tar = Layer::new().dir(path.as_bytes()).finish();
        for opts in [v6(), v5()] {
            match convert(&tar, &opts) {
                Ok(c) => {
                    assert_eq!(depth, 4096);
                    let back = rafs_format::decode(&c.bootstrap).expect("decodes");
                    assert_eq!(back.tree.nodes.len(), 4097);
                    assert!(rafs_format::check::check(&back, &c.bootstrap)
                        .iter()
                        .all(|f| !matches!(f, rafs_format::check::Finding::Error(_))));
                    unpack_to_tar(&reader(&c), Vec::new()).expect("unpacks");
                }
                Err(e) => {
                    assert_eq!(depth, 4097);
                    assert_eq!(e.as_entry().unwrap().kind.name(), "PathTooDeep");
                }
            }
        }
    }
}

/// Item 9: xattrs that do not fit one inode of the version are refused at conversion
/// (v6: the 16-bit xattr count; v5: what a reader accepts), never written corrupt.
#[test]
fn xattrs_too_large_for_one_inode_are_refused() {
    let v = vec![b'v'; 65_535];
    let four: Vec<(String, &[u8])> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| (format!("SCHILY.xattr.user.{n}"), &v[..]))
        .collect();
    let records: Vec<(&str, &[u8])> = four.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let mut l = Layer::new();
    l.local(&records).file(b"f", b"x");
    let tar = l.finish();
    let err = convert(&tar, &v6()).err().expect("v6 cannot count them");
    assert_eq!(
        err.as_entry().unwrap().kind.name(),
        "XattrsUnstorable",
        "{err}"
    );
    // v5 stores them (262 KB) and reads them back.
    let c = convert(&tar, &v5()).unwrap();
    let back = rafs_format::decode(&c.bootstrap).unwrap();
    assert!(back.tree.inodes.iter().any(|i| i.xattrs.len() == 4));
    // 1.3 MB of xattrs on one inode, more than a v5 reader accepts, no longer fits a tar:
    // global records are not applied, and one PAX header is read up to 1 MiB.
    let big = vec![b'g'; 65_535];
    let lkeys: Vec<String> = (0..20).map(|i| format!("SCHILY.xattr.user.l{i}")).collect();
    let locals: Vec<(&str, &[u8])> = lkeys.iter().map(|k| (k.as_str(), &big[..])).collect();
    let mut l = Layer::new();
    l.local(&locals).file(b"f", b"x");
    let err = convert(&l.finish(), &v5()).err().expect("over 1 MiB");
    assert!(err.to_string().contains("extension header of"), "{err}");
}

/// Item 10: NUL inside a link target, a path or an xattr name is refused at conversion.
#[test]
fn nul_in_names_and_link_targets_is_refused() {
    let mut l = Layer::new();
    l.symlink(b"s", &[b"target\0hidden".as_slice(), &[b'x'; 100]].concat());
    let err = convert(&l.finish(), &v6()).err().expect("NUL in linkpath");
    assert!(err.to_string().contains("NUL"), "{err}");
    let mut l = Layer::new();
    l.local(&[("path", b"a\0b")]).file(b"x", b"1");
    let err = convert(&l.finish(), &v6()).err().expect("NUL in path");
    assert!(err.to_string().contains("NUL"), "{err}");
    let mut l = Layer::new();
    l.local(&[("SCHILY.xattr.user.a\0b", b"1")])
        .file(b"x", b"1");
    let err = convert(&l.finish(), &v6())
        .err()
        .expect("NUL in an xattr name");
    assert!(err.to_string().contains("NUL"), "{err}");
}

/// Item 11: GNU tar's PAX sparse formats 0.0, 0.1 and 1.0 all convert to the real file,
/// under its real name; unknown sparse records are refused.
#[test]
fn gnu_sparse_formats_convert_to_the_real_file() {
    let tmp = std::env::temp_dir().join(format!("rafs-sparse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    // 5 MiB with data at 1,000,000 and at the end.
    let mut content = vec![0u8; 5 << 20];
    content[1_000_000..1_000_005].copy_from_slice(b"hello");
    content.extend_from_slice(b"end");
    let f = std::fs::File::create(tmp.join("f")).unwrap();
    f.set_len(content.len() as u64).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"hello", 1_000_000).unwrap();
    f.write_all_at(b"end", 5 << 20).unwrap();
    drop(f);
    for version in ["0.0", "0.1", "1.0"] {
        let tar = tmp.join(format!("s{version}.tar"));
        let status = std::process::Command::new("tar")
            .current_dir(&tmp)
            .args([
                "--sparse",
                &format!("--sparse-version={version}"),
                "--format=posix",
                "-cf",
            ])
            .arg(&tar)
            .arg("f")
            .status()
            .expect("GNU tar");
        assert!(status.success());
        let c = convert(&std::fs::read(&tar).unwrap(), &v6()).unwrap();
        let r = reader(&c);
        let node = r.lookup("/f").unwrap_or_else(|| panic!("{version}: no /f"));
        assert_eq!(r.image().tree.nodes.len(), 2, "{version}: only / and /f");
        assert!(
            r.read_file(node).unwrap() == content,
            "{version}: content differs"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let mut l = Layer::new();
    l.local(&[("GNU.sparse.major", b"2"), ("GNU.sparse.minor", b"0")])
        .file(b"f", b"x");
    let err = convert(&l.finish(), &v6()).err().expect("unknown format");
    assert_eq!(err.as_entry().unwrap().kind.name(), "Unrepresentable");
    let mut l = Layer::new();
    l.local(&[("GNU.sparse.size", b"10")]).file(b"f", b"x");
    assert!(
        convert(&l.finish(), &v6()).is_err(),
        "records of no format are refused"
    );
}

/// Item 12: an inode's nanoseconds of a second or more are refused by both decoders, at the
/// field's exact offset.
#[test]
fn mtime_nanoseconds_of_a_second_or_more_are_refused() {
    let mut l = Layer::new();
    l.local(&[("mtime", b"1700000000.999999999")])
        .file(b"f", b"x");
    let tar = l.finish();
    for opts in [v6(), v5()] {
        let c = convert(&tar, &opts).unwrap();
        let marker = 999_999_999u32.to_le_bytes();
        let at = c
            .bootstrap
            .windows(4)
            .position(|w| w == marker)
            .expect("the nanoseconds are in the bootstrap");
        let mut bad = c.bootstrap.clone();
        bad[at..at + 4].copy_from_slice(&1_000_000_000u32.to_le_bytes());
        let err = rafs_format::decode(&bad).expect_err("refused");
        let d = err.as_decode().unwrap();
        assert_eq!(d.offset, at as u64, "{err}");
        assert!(err.to_string().contains("i_mtime_nsec"), "{err}");
    }
}

/// Item 19: a layer that replaces a directory by a symlink and still carries whiteouts for
/// the old directory's children (what umoci writes) converts in v5 and v6; the whiteouts,
/// which hide nothing the layer has, are dropped.
#[test]
fn whiteouts_under_a_replaced_directory_are_dropped() {
    let mut l = Layer::new();
    l.dir(b"usr/")
        .dir(b"usr/share/")
        .dir(b"usr/share/zoneinfo/")
        .symlink(b"usr/share/zoneinfo/right", b"posix")
        .file(b"usr/share/zoneinfo/right/.wh.UTC", b"")
        .file(b"usr/share/zoneinfo/right/.wh..wh..opq", b"");
    let tar = l.finish();
    for opts in [v6(), v5()] {
        let out = build_layer(tar.as_slice(), &opts, Vec::new()).unwrap();
        assert_eq!(out.report.whiteouts_dropped, 2);
        let back = rafs_format::decode(&out.bootstrap).unwrap();
        let right = back
            .tree
            .lookup_components([&b"usr"[..], b"share", b"zoneinfo", b"right"])
            .unwrap();
        assert!(back.tree.inode_of(right).is_symlink());
    }
    // A file that is not a whiteout under a symlink is still an error.
    let mut l = Layer::new();
    l.symlink(b"right", b"posix").file(b"right/UTC", b"");
    let err = convert(&l.finish(), &v6()).err().expect("not a directory");
    assert_eq!(err.as_entry().unwrap().kind.name(), "ParentNotDirectory");
}

/// Item 13 (library half): a tarfs layer tar edited after conversion fails verification
/// (its sha256 is no longer its id); a tar of another size fails when opened.
#[test]
fn edited_tarfs_tars_fail_verification() {
    let mut l = Layer::new();
    l.file(b"f", b"original content");
    let tar = l.finish();
    let mut c = convert(&tar, &BuildOptions::tarfs()).unwrap();
    assert!(reader(&c).verify_all().is_ok());
    let at = c.blob.windows(8).position(|w| w == b"original").unwrap();
    c.blob[at] = b'O';
    let r = reader(&c).verify_digests(true);
    let err = r.verify_all().expect_err("edited");
    assert!(err.to_string().contains("sha256"), "{err}");
    let node = r.lookup("/f").unwrap();
    assert!(
        r.read_file(node).is_err(),
        "a verified read refuses the edited tar"
    );
    c.blob.truncate(c.blob.len() - 512);
    let blob = c.blob.clone();
    let err = ImageReader::open_with(c.image.clone(), move |_| {
        Ok(Some(Box::new(blob.clone()) as BlobSource))
    })
    .err()
    .expect("wrong size");
    assert!(err.to_string().contains("bytes"), "{err}");
}

/// Item 5: a tarfs bootstrap whose blob claims 16 TiB is refused when its blob is opened,
/// so export writes nothing.
#[test]
fn tarfs_blob_size_claims_are_checked() {
    let tar = Layer::new().file(b"f", b"x").finish();
    let mut c = convert(&tar, &BuildOptions::tarfs()).unwrap();
    c.image.blobs[0].compressed_size = 16 << 40;
    c.image.blobs[0].uncompressed_size = 16 << 40;
    let blob = c.blob.clone();
    let started = Instant::now();
    let err = ImageReader::open_with(c.image.clone(), move |_| {
        Ok(Some(Box::new(blob.clone()) as BlobSource))
    })
    .err()
    .expect("claims more than the tar has");
    assert!(err.to_string().contains("17592186044416"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// Item 20: a v6 merge of layers without xattrs sets HAS_XATTR, as the reference's merge
/// does (its bytes are compared in `reference_merges.rs`); it round-trips.
#[test]
fn v6_merges_set_has_xattr() {
    let tar = Layer::new().file(b"f", b"x").finish();
    let c = convert(&tar, &v6()).unwrap();
    let merged = rafs_merge::merge(
        vec![rafs_merge::Layer {
            image: c.image.clone(),
            blob_id: None,
        }],
        &rafs_merge::MergeOptions::default(),
    )
    .unwrap();
    let bytes = rafs_format::encode(&merged).unwrap();
    let back = rafs_format::decode(&bytes).unwrap();
    assert!(back.superblock.xattr_flag_without_xattrs);
    assert_eq!(rafs_format::encode(&back).unwrap(), bytes);
    assert!(
        !rafs_format::decode(&c.bootstrap)
            .unwrap()
            .superblock
            .xattr_flag_without_xattrs
    );
}

/// Limits can be raised: a layer over the xattr budget converts with a larger one.
#[test]
fn budgets_are_configurable() {
    let big = vec![b'x'; 60_000];
    let mut l = Layer::new();
    for i in 0..1_200 {
        l.local(&[("SCHILY.xattr.user.a", &big)])
            .file(format!("f{i}").as_bytes(), b"");
    }
    let tar = l.finish();
    assert!(convert(&tar, &v6()).is_err());
    let mut opts = v6();
    opts.limits = BuildLimits::default();
    opts.limits.max_xattr_bytes = 1 << 30;
    assert!(convert(&tar, &opts).is_ok());
}

/// Error locations are the fields' own offsets (found by locating the records in a real
/// image, not computed by the decoder under test): a v6 blob record's `uncompressed_size`, a
/// v5 chunk record's `blob_index`.
#[test]
fn decode_errors_point_at_the_field() {
    let tar = Layer::new().file(b"f", b"some data").finish();
    let c = convert(&tar, &v6()).unwrap();
    let id = c.image.blobs[0].blob_id.as_bytes().to_vec();
    // The blob record is the last place the id is written (device slots come first).
    let rec = c
        .bootstrap
        .windows(64)
        .rposition(|w| w == id.as_slice())
        .unwrap();
    let mut bad = c.bootstrap.clone();
    bad[rec + 96..rec + 104].copy_from_slice(&(1u64 << 45).to_le_bytes());
    let err = rafs_format::decode(&bad).err().unwrap();
    assert_eq!(err.as_decode().unwrap().offset, (rec + 96) as u64, "{err}");
    assert!(err.to_string().contains("uncompressed_size"), "{err}");

    let c = convert(&tar, &v5()).unwrap();
    let digest = c
        .image
        .tree
        .inodes
        .iter()
        .find_map(|i| i.chunks.first())
        .unwrap()
        .digest;
    let chunk = c.bootstrap.windows(32).position(|w| w == digest).unwrap();
    let mut bad = c.bootstrap.clone();
    bad[chunk + 32..chunk + 36].copy_from_slice(&7u32.to_le_bytes());
    let err = rafs_format::decode(&bad).err().unwrap();
    assert_eq!(
        err.as_decode().unwrap().offset,
        (chunk + 32) as u64,
        "{err}"
    );
    assert!(err.to_string().contains("blob_index"), "{err}");
}

/// Budgets are per image too: a merge whose result would have more paths than a reader
/// accepts is refused (here with the limit lowered to 3 for two 2-path layers).
#[test]
fn merged_images_are_bounded() {
    let a = convert(&Layer::new().file(b"a", b"1").finish(), &v6()).unwrap();
    let b = convert(&Layer::new().file(b"b", b"2").finish(), &v6()).unwrap();
    let layers = || {
        vec![
            rafs_merge::Layer {
                image: a.image.clone(),
                blob_id: None,
            },
            rafs_merge::Layer {
                image: b.image.clone(),
                blob_id: None,
            },
        ]
    };
    let mut opts = rafs_merge::MergeOptions::default();
    assert_eq!(
        rafs_merge::merge(layers(), &opts).unwrap().tree.nodes.len(),
        3
    );
    opts.max_paths = Some(2);
    let err = rafs_merge::merge(layers(), &opts).expect_err("over the limit");
    assert!(
        matches!(
            err,
            rafs_merge::Error::LimitExceeded {
                value: 3,
                limit: 2,
                ..
            }
        ),
        "{err}"
    );
}
