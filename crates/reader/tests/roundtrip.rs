//! tar -> convert -> unpack gives back the input: for every crafted layer (the unpacked tar,
//! listed by the corpus' `treelist.py tar`, equals the layer's ground-truth listing), and for
//! random trees (a proptest comparing normalised entries of both tars).

#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "tests: fixture offsets and sizes are small known values, and a scenario reads \
              best top to bottom in one function"
)]

use proptest::prelude::*;
use rafs_format::model::{Compressor, FsVersion};
use rafs_reader::{unpack_to_tar, BlobSource, ImageReader};
use rafs_tar_build::{build_layer, BuildOptions};
use rafs_testkit::{corpus, run};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;

/// Converts a layer and opens the result for reading, blob in memory.
fn convert_and_open(tar: &[u8], opts: &BuildOptions) -> ImageReader {
    let out = build_layer(tar, opts, Vec::new()).unwrap();
    let blob = std::sync::Arc::new(out.sink);
    let tar_copy = std::sync::Arc::new(tar.to_vec());
    let tarfs = out.image.superblock.tarfs;
    ImageReader::open_with(out.image, move |_| {
        let bytes: Vec<u8> = if tarfs {
            (*tar_copy).clone()
        } else {
            (*blob).clone()
        };
        Ok(Some(Box::new(bytes) as BlobSource))
    })
    .unwrap()
    .verify_digests(true)
}

#[test]
fn every_crafted_layer_round_trips() {
    if run("python3", &["--version"]).is_err() {
        rafs_testkit::skipped("crafted-layer round trip: python3 is not installed");
        return;
    }
    let tmp = std::env::temp_dir().join(format!("rafs-roundtrip-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut checked = 0;
    for (name, tar_path) in rafs_testkit::crafted_layers() {
        let tar = std::fs::read(&tar_path).unwrap();
        let expected =
            std::fs::read_to_string(corpus().join(format!("expected/{name}.list"))).unwrap();
        let mut v5 = BuildOptions::new(FsVersion::V5);
        v5.compressor = Compressor::Lz4Block;
        for (label, opts) in [
            ("v6", BuildOptions::new(FsVersion::V6)),
            ("v5", v5),
            ("tarfs", BuildOptions::tarfs()),
        ] {
            if label == "tarfs" && name == "edge-E7-gnu-sparse" {
                continue;
            }
            let reader = convert_and_open(&tar, &opts);
            let (unpacked, report) = unpack_to_tar(&reader, Vec::new()).unwrap();
            let out = tmp.join(format!("{name}-{label}.tar"));
            std::fs::write(&out, &unpacked).unwrap();
            let listing = run(
                "python3",
                &[
                    corpus().join("tools/treelist.py").to_str().unwrap(),
                    "tar",
                    out.to_str().unwrap(),
                ],
            )
            .unwrap();
            assert_eq!(listing.trim_end(), expected.trim_end(), "{name} {label}");
            assert_eq!(report.sockets_skipped, 0);
            checked += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(checked >= 40, "{checked}");
}

/// One entry of a tar, normalised: what a layer means, not how it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    data: Vec<u8>,
    link: Vec<u8>,
    dev: (u32, u32),
    xattrs: BTreeMap<String, Vec<u8>>,
    /// Smallest path of its hard-link group (itself when not linked).
    group: String,
}

fn normalise(tar: &[u8]) -> BTreeMap<String, Entry> {
    let mut out: BTreeMap<String, Entry> = BTreeMap::new();
    let mut groups: HashMap<String, String> = HashMap::new();
    let mut ar = tar::Archive::new(tar);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let raw = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let path = format!(
            "/{}",
            raw.split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .collect::<Vec<_>>()
                .join("/")
        );
        let h = e.header().clone();
        let t = h.entry_type();
        if t == tar::EntryType::Link {
            let target = String::from_utf8_lossy(&e.link_name_bytes().unwrap()).into_owned();
            let target = format!(
                "/{}",
                target
                    .split('/')
                    .filter(|c| !c.is_empty() && *c != ".")
                    .collect::<Vec<_>>()
                    .join("/")
            );
            let root = groups.get(&target).cloned().unwrap_or(target.clone());
            groups.insert(path.clone(), root.clone());
            let mut entry = out[&target].clone();
            entry.group = root.clone();
            out.insert(path.clone(), entry);
            if let Some(t) = out.get_mut(&target) {
                t.group = root.clone();
            }
            // containerd's applier sets the link header's owner, time and xattrs on the new
            // name, the shared inode: every name of the group shows them (the mode stays).
            let mut link_xattrs = BTreeMap::new();
            if let Some(exts) = e.pax_extensions().unwrap() {
                for x in exts {
                    let x = x.unwrap();
                    if let Some(n) = x.key().unwrap().strip_prefix("SCHILY.xattr.") {
                        link_xattrs.insert(n.to_string(), x.value_bytes().to_vec());
                    }
                }
            }
            for (p, g) in &groups {
                if *g != root {
                    continue;
                }
                for name in [p, &root] {
                    if let Some(m) = out.get_mut(name) {
                        m.uid = h.uid().unwrap();
                        m.gid = h.gid().unwrap();
                        m.mtime = h.mtime().unwrap();
                        m.xattrs.extend(link_xattrs.clone());
                    }
                }
            }
            continue;
        }
        let mut xattrs = BTreeMap::new();
        if let Some(exts) = e.pax_extensions().unwrap() {
            for x in exts {
                let x = x.unwrap();
                if let Some(n) = x.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(n.to_string(), x.value_bytes().to_vec());
                }
            }
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let kind = match t {
            tar::EntryType::Regular => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Char => 'c',
            tar::EntryType::Block => 'b',
            tar::EntryType::Fifo => 'p',
            other => panic!("unexpected {other:?}"),
        };
        let dev = if matches!(kind, 'c' | 'b') {
            (
                h.device_major().unwrap().unwrap(),
                h.device_minor().unwrap().unwrap(),
            )
        } else {
            (0, 0)
        };
        out.insert(
            path.clone(),
            Entry {
                kind,
                mode: h.mode().unwrap() & 0o7777,
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                mtime: h.mtime().unwrap(),
                data,
                link: e
                    .link_name_bytes()
                    .map(|l| l.into_owned())
                    .unwrap_or_default(),
                dev,
                xattrs,
                group: path,
            },
        );
    }
    // Name each hard-link group by its smallest path, whichever member the tar wrote first.
    let mut members: HashMap<String, Vec<String>> = HashMap::new();
    for (p, root) in &groups {
        members.entry(root.clone()).or_default().push(p.clone());
    }
    for (root, mut ps) in members {
        ps.push(root);
        let least = ps.iter().min().unwrap().clone();
        for p in ps {
            if let Some(e) = out.get_mut(&p) {
                e.group = least.clone();
            }
        }
    }
    out
}

/// A random layer: directories first, then files, symlinks, devices, FIFOs and hard links,
/// with random modes (setuid/sticky included), owners, times and xattrs.
fn arb_layer() -> impl Strategy<Value = Vec<u8>> {
    let entry = (
        0u8..7,
        0u32..0o7777,
        0u64..70000,
        0u64..70000,
        0u64..2_000_000_000,
        prop::collection::vec(any::<u8>(), 0..3000),
        0usize..4,
        any::<bool>(),
    );
    (prop::collection::vec(entry, 1..25), 0u32..0o7777).prop_map(|(entries, root_mode)| {
        let mut b = tar::Builder::new(Vec::new());
        let hdr = |path: &str,
                   t: tar::EntryType,
                   mode: u32,
                   uid: u64,
                   gid: u64,
                   mtime: u64,
                   size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_path(path).unwrap();
            h.set_entry_type(t);
            h.set_mode(mode);
            h.set_uid(uid);
            h.set_gid(gid);
            h.set_mtime(mtime);
            h.set_size(size);
            h
        };
        let mut root = hdr(
            "./",
            tar::EntryType::Directory,
            root_mode | 0o700,
            0,
            0,
            1_600_000_000,
            0,
        );
        root.set_cksum();
        b.append(&root, std::io::empty()).unwrap();
        let dirs = ["", "a/", "a/b/", "c/"];
        for d in &dirs[1..] {
            let mut h = hdr(d, tar::EntryType::Directory, 0o755, 1, 2, 1_650_000_000, 0);
            h.set_cksum();
            b.append(&h, std::io::empty()).unwrap();
        }
        let mut files: Vec<(String, tar::Header)> = Vec::new();
        for (i, (kind, mode, uid, gid, mtime, data, dir, xattr)) in entries.into_iter().enumerate()
        {
            let path = format!("{}n{i}", dirs[dir]);
            // (The `tar` crate splits PAX records at newlines, so values here have none.)
            let v = data
                .iter()
                .take(40)
                .copied()
                .filter(|&c| c != b'\n')
                .collect::<Vec<u8>>();
            let written = kind < 6 || !files.is_empty();
            if xattr && written {
                b.append_pax_extensions([("SCHILY.xattr.user.k", v.as_slice())])
                    .unwrap();
            }
            let mode = mode & 0o7777;
            match kind {
                0 | 1 => {
                    let mut h = hdr(
                        &path,
                        tar::EntryType::Regular,
                        mode,
                        uid,
                        gid,
                        mtime,
                        data.len() as u64,
                    );
                    h.set_cksum();
                    b.append(&h, data.as_slice()).unwrap();
                    files.push((path, h));
                }
                2 => {
                    let mut h = hdr(&path, tar::EntryType::Symlink, 0o777, uid, gid, mtime, 0);
                    h.set_link_name(format!("target/{}", data.len())).unwrap();
                    h.set_cksum();
                    b.append(&h, std::io::empty()).unwrap();
                }
                3 | 4 => {
                    let t = if kind == 3 {
                        tar::EntryType::Char
                    } else {
                        tar::EntryType::Block
                    };
                    let mut h = hdr(&path, t, mode, uid, gid, mtime, 0);
                    h.set_device_major((uid % 4096) as u32).unwrap();
                    h.set_device_minor((gid % 100_000) as u32).unwrap();
                    h.set_cksum();
                    b.append(&h, std::io::empty()).unwrap();
                }
                5 => {
                    let mut h = hdr(&path, tar::EntryType::Fifo, mode, uid, gid, mtime, 0);
                    h.set_device_major(0).unwrap();
                    h.set_device_minor(0).unwrap();
                    h.set_cksum();
                    b.append(&h, std::io::empty()).unwrap();
                }
                _ => {
                    // A hard link to an earlier file, with the file's own attributes (what
                    // real layer tools write).
                    if let Some((target, th)) = files.last().cloned() {
                        let mut h = th.clone();
                        h.set_path(&path).unwrap();
                        h.set_entry_type(tar::EntryType::Link);
                        h.set_link_name(&target).unwrap();
                        h.set_size(0);
                        h.set_cksum();
                        b.append(&h, std::io::empty()).unwrap();
                    }
                }
            }
        }
        b.into_inner().unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_layers_round_trip(tar in arb_layer(), v5 in any::<bool>(), comp in 0u8..3) {
        let mut opts = BuildOptions::new(if v5 { FsVersion::V5 } else { FsVersion::V6 });
        opts.compressor = [Compressor::None, Compressor::Lz4Block, Compressor::Zstd][comp as usize];
        opts.chunk_size = 0x1000;
        // The bootstrap decodes to the model the build holds, and survives v5 <-> v6.
        let built = build_layer(tar.as_slice(), &opts, Vec::new()).unwrap();
        let decoded = rafs_format::decode(&built.bootstrap).unwrap();
        prop_assert!(decoded.tree_difference(&built.image).is_none(), "{:?}", decoded.tree_difference(&built.image));
        let other = if v5 { FsVersion::V6 } else { FsVersion::V5 };
        let rewritten = rafs_format::encode(&decoded.converted_to(other)).unwrap();
        let back = rafs_format::decode(&rafs_format::encode(&rafs_format::decode(&rewritten).unwrap().converted_to(opts.fs_version)).unwrap()).unwrap();
        prop_assert!(back.tree_difference(&decoded).is_none(), "v5/v6 rewrite: {:?}", back.tree_difference(&decoded));
        let reader = convert_and_open(&tar, &opts);
        let (unpacked, _) = unpack_to_tar(&reader, Vec::new()).unwrap();
        let (a, b) = (normalise(&tar), normalise(&unpacked));
        prop_assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (k, x) in &a {
            prop_assert_eq!(x, &b[k], "{}", k);
        }
    }
}
