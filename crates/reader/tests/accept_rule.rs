//! The acceptance rule (hardening round 2): whatever `convert` writes, `check -D` accepts and
//! `unpack` extracts; whatever `check -D` accepts, `unpack --dir` extracts.
//!
//! Random layers are drawn with the unusual and hostile classes in them (global headers with
//! xattrs and times, large xattrs, names that are not UTF-8 or hold control characters or NUL,
//! long and odd link targets, hard links, whiteouts under replaced directories, sparse files
//! in three formats, devices, deep paths). Whenever conversion succeeds, the bootstrap decodes
//! and checks, every chunk reads back verified, unpacking to a tar and to a directory
//! succeeds, and the unpacked tar converts to the same listing. Mutated bootstraps that still
//! pass the check unpack into a directory.

#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "tests: fixture offsets and sizes are small known values, and a scenario reads \
              best top to bottom in one function"
)]

use proptest::prelude::*;
use rafs_format::check::Finding;
use rafs_format::model::{Compressor, FsVersion, Image};
use rafs_reader::{unpack_to_dir, unpack_to_tar, BlobSource, ImageReader};
use rafs_tar_build::{build_layer, BuildOptions};
use rafs_testkit::layer::Layer;
use rafs_testkit::{listing, Data};

/// One entry of a random layer.
#[derive(Debug, Clone)]
enum Op {
    Dir(Vec<u8>),
    File(Vec<u8>, usize, Vec<(u8, usize)>),
    Symlink(Vec<u8>, Vec<u8>),
    HardLink(Vec<u8>, usize),
    Whiteout(Vec<u8>),
    Global(u8, usize),
    Sparse(Vec<u8>, u8, u64),
    Device(Vec<u8>),
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[a-c]{1,2}".prop_map(String::into_bytes),
        1 => Just(b"\xff".to_vec()),
        1 => Just(b"\xfe\x1b[0m".to_vec()),
        1 => Just(b"n\0ul".to_vec()),
        1 => Just(vec![b'L'; 255]),
        1 => Just(vec![b'L'; 256]),
        1 => Just(b"..".to_vec()),
        1 => Just(b".wh.a".to_vec()),
    ]
}

fn path() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(name(), 1..4).prop_map(|c| c.join(&b'/')),
        1 => (1usize..5000).prop_map(|d| vec![&b"d"[..]; d].join(&b'/')),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => path().prop_map(Op::Dir),
        4 => (path(), 0usize..20_000, prop::collection::vec((any::<u8>(), 0usize..70_000), 0..3))
            .prop_map(|(p, n, x)| Op::File(p, n, x)),
        2 => (path(), prop_oneof![
            path(),
            Just(b"t\0x".to_vec()),
            Just(vec![b'/'; 5000]),
            Just(Vec::new()),
        ]).prop_map(|(p, t)| Op::Symlink(p, t)),
        1 => (path(), 0usize..8).prop_map(|(p, i)| Op::HardLink(p, i)),
        1 => path().prop_map(Op::Whiteout),
        1 => (any::<u8>(), 0usize..70_000).prop_map(|(k, n)| Op::Global(k, n)),
        1 => (path(), 0u8..4, 0u64..3_000_000).prop_map(|(p, f, r)| Op::Sparse(p, f, r)),
        1 => path().prop_map(Op::Device),
    ]
}

fn sparse(l: &mut Layer, path: &[u8], format: u8, real: u64) {
    let real_s = real.to_string();
    let data_at = real / 2;
    let len = (real - data_at).min(100);
    let payload = vec![b'S'; len as usize];
    match format {
        0 => {
            let map = format!("{data_at},{len}");
            l.local(&[
                ("GNU.sparse.size", real_s.as_bytes()),
                ("GNU.sparse.map", map.as_bytes()),
                ("GNU.sparse.name", path),
            ]);
            l.file(b"GNUSparseFile.1/x", &payload);
        }
        1 => {
            let (o, n) = (data_at.to_string(), len.to_string());
            l.local(&[
                ("GNU.sparse.size", real_s.as_bytes()),
                ("GNU.sparse.numblocks", b"1"),
                ("GNU.sparse.offset", o.as_bytes()),
                ("GNU.sparse.numbytes", n.as_bytes()),
            ]);
            l.file(path, &payload);
        }
        2 => {
            l.local(&[
                ("GNU.sparse.major", b"1"),
                ("GNU.sparse.minor", b"0"),
                ("GNU.sparse.name", path),
                ("GNU.sparse.realsize", real_s.as_bytes()),
            ]);
            let mut data = format!("1\n{data_at}\n{len}\n").into_bytes();
            data.resize(512, 0);
            data.extend_from_slice(&payload);
            l.file(b"GNUSparseFile.0/x", &data);
        }
        _ => {
            // A map that lies about its segments.
            l.local(&[
                ("GNU.sparse.size", real_s.as_bytes()),
                ("GNU.sparse.map", b"5,5,1,1"),
            ]);
            l.file(path, b"xxxxxx");
        }
    }
}

fn layer(ops: &[Op]) -> Vec<u8> {
    let mut l = Layer::new();
    let mut files: Vec<Vec<u8>> = Vec::new();
    for op in ops {
        match op {
            Op::Dir(p) => {
                l.dir(&[p.as_slice(), b"/"].concat());
            }
            Op::File(p, n, xattrs) => {
                let keys: Vec<(String, Vec<u8>)> = xattrs
                    .iter()
                    .map(|(k, len)| (format!("SCHILY.xattr.user.k{k}"), vec![*k; *len]))
                    .collect();
                if !keys.is_empty() {
                    let recs: Vec<(&str, &[u8])> = keys
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_slice()))
                        .collect();
                    l.local(&recs);
                }
                let data: Vec<u8> = (0..*n).map(|i| (i * 31 % 251) as u8).collect();
                l.file(p, &data);
                files.push(p.clone());
            }
            Op::Symlink(p, t) => {
                l.symlink(p, t);
            }
            Op::HardLink(p, i) => {
                let target = files
                    .get(*i)
                    .cloned()
                    .unwrap_or_else(|| b"missing".to_vec());
                l.local(&[("linkpath", &target)]);
                l.symlink(p, b"placeholder");
                // Rewrite the entry type to a hard link: the last header written is ours.
                l.retype_last(b'1');
            }
            Op::Whiteout(p) => {
                l.file(&[p.as_slice(), b"/.wh.x"].concat(), b"");
            }
            Op::Global(k, n) => {
                let v = vec![*k; *n];
                l.global(&[("SCHILY.xattr.user.g", &v), ("mtime", b"1700000000.25")]);
            }
            Op::Sparse(p, f, real) => sparse(&mut l, p, *f, (*real).max(1)),
            Op::Device(p) => {
                l.char_device(p, 1, 3);
            }
        }
    }
    l.finish()
}

fn reader_of(image: Image, blob: Vec<u8>) -> ImageReader {
    ImageReader::open_with(image, move |_| {
        Ok(Some(Box::new(blob.clone()) as BlobSource))
    })
    .unwrap()
    .verify_digests(true)
}

fn options(v5: bool, lz4: bool) -> BuildOptions {
    let mut o = BuildOptions::new(if v5 { FsVersion::V5 } else { FsVersion::V6 });
    if lz4 {
        o.compressor = Compressor::Lz4Block;
    }
    o.chunk_size = 0x4000;
    o
}

fn tmpdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rafs-accept-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `check -D`: decodes, no error finding, every chunk read back and verified.
fn check_passes(bootstrap: &[u8], blob: &[u8]) -> Option<Image> {
    let image = rafs_format::decode(bootstrap).ok()?;
    let findings = rafs_format::check::check(&image, bootstrap);
    if findings.iter().any(|f| matches!(f, Finding::Error(_))) {
        return None;
    }
    let blob = blob.to_vec();
    let r = ImageReader::open_with(image.clone(), move |_| {
        Ok(Some(Box::new(blob.clone()) as BlobSource))
    })
    .ok()?;
    r.verify_all().ok()?;
    Some(image)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, .. ProptestConfig::default() })]

    /// What `convert` writes, `check -D` accepts and `unpack` extracts to the same listing.
    #[test]
    fn what_convert_writes_checks_and_unpacks(
        ops in prop::collection::vec(op(), 1..14),
        v5 in any::<bool>(),
        lz4 in any::<bool>(),
    ) {
        let tar = layer(&ops);
        let opts = options(v5, lz4);
        let Ok(out) = build_layer(tar.as_slice(), &opts, Vec::new()) else {
            return Ok(()); // refused with a typed error: fine
        };
        let image = check_passes(&out.bootstrap, &out.sink)
            .unwrap_or_else(|| panic!("convert wrote what check refuses: {ops:?}"));
        let reader = reader_of(image.clone(), out.sink.clone());
        let (unpacked, _) = unpack_to_tar(&reader, Vec::new()).expect("unpack -o");
        let dir = tmpdir().join(format!("c{}", rand_suffix(&out.bootstrap)));
        let _ = std::fs::remove_dir_all(&dir);
        unpack_to_dir(&reader, &dir).expect("unpack --dir");
        let _ = std::fs::remove_dir_all(&dir);
        let again = build_layer(unpacked.as_slice(), &opts, Vec::new()).expect("reconvert");
        let comp = opts.compressor;
        prop_assert_eq!(
            listing(&image, &Data::Blob(&out.sink, comp)),
            listing(&again.image, &Data::Blob(&again.sink, comp))
        );
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    /// What `check -D` accepts, `unpack --dir` extracts, however the bootstrap was mutated.
    #[test]
    fn what_check_accepts_unpacks(
        ops in prop::collection::vec(op(), 1..8),
        v5 in any::<bool>(),
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let tar = layer(&ops);
        let Ok(out) = build_layer(tar.as_slice(), &options(v5, false), Vec::new()) else {
            return Ok(());
        };
        let mut boot = out.bootstrap.clone();
        for (at, value) in &mutations {
            let i = at.index(boot.len());
            boot[i] = *value;
        }
        let Some(image) = check_passes(&boot, &out.sink) else {
            return Ok(());
        };
        let reader = reader_of(image, out.sink.clone());
        let dir = tmpdir().join(format!("m{}", rand_suffix(&boot)));
        let _ = std::fs::remove_dir_all(&dir);
        let result = unpack_to_dir(&reader, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        prop_assert!(result.is_ok(), "check accepted, unpack --dir failed: {:?}", result.err());
        prop_assert!(unpack_to_tar(&reader, Vec::new()).is_ok());
    }
}

/// A directory name from the bytes (cases run one after another; the digest keeps names
/// apart if a failed case left one behind).
fn rand_suffix(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    rafs_format::hex(&sha2::Sha256::digest(bytes)[..8])
}
