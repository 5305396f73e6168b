//! Property: merging random layer stacks equals a simple model of OCI overlay semantics
//! written here, independently of the merge code: per upper layer, whiteouts (`.wh.X`) and
//! opaque markers (`.wh..wh..opq`) remove lower entries first, then each entry replaces the
//! lower one (a directory over a directory keeps the lower children; anything else drops the
//! lower subtree). As in the reference, the lowest layer's markers stay as ordinary files.

#![allow(
    clippy::cast_possible_truncation,
    clippy::too_many_lines,
    reason = "tests: fixture offsets and sizes are small known values, and a scenario reads \
              best top to bottom in one function"
)]

use proptest::prelude::*;
use rafs_format::model::{mode, FsVersion, Image, NodeId};
use rafs_merge::{merge, Layer, MergeOptions};
use rafs_tar_build::{build_layer, BuildOptions};
use std::collections::BTreeMap;

/// What a path holds in the model.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir(u32),
    File(u32, Vec<u8>),
    Link(Vec<u8>),
}

/// One layer: entries in tar order (parents before children), path without leading `/`.
type LayerSpec = Vec<(String, Kind)>;

const DIRS: [&str; 3] = ["a", "b", "a/c"];
const NAMES: [&str; 4] = ["x", "y", "z", "a"];

fn arb_layer() -> impl Strategy<Value = LayerSpec> {
    let op = (
        0usize..4,
        0usize..NAMES.len(),
        0u8..6,
        prop::collection::vec(any::<u8>(), 0..40),
        0u32..0o777,
    );
    prop::collection::vec(op, 0..12).prop_map(|ops| {
        let mut out: LayerSpec = Vec::new();
        let mut used = std::collections::HashSet::new();
        for (dir, name, kind, data, perm) in ops {
            // Directory slots: the root, or one of DIRS (emitted as directories first).
            let parent = if dir == 0 {
                String::new()
            } else {
                format!("{}/", DIRS[dir - 1])
            };
            if !parent.is_empty() {
                let mut comps = Vec::new();
                let mut acc = String::new();
                for comp in parent.trim_end_matches('/').split('/') {
                    acc = if acc.is_empty() {
                        comp.to_string()
                    } else {
                        format!("{acc}/{comp}")
                    };
                    comps.push(acc.clone());
                }
                // A parent this layer already made a non-directory: skip the op.
                if comps.iter().any(|c| {
                    out.iter()
                        .any(|(p, k)| p == c && !matches!(k, Kind::Dir(_)))
                }) {
                    continue;
                }
                for c in comps {
                    if used.insert(c.clone()) {
                        out.push((c, Kind::Dir(0o755)));
                    }
                }
            }
            let (path, k) = match kind {
                0 | 1 => (
                    format!("{parent}{}", NAMES[name]),
                    Kind::File(perm | 0o400, data),
                ),
                2 => (format!("{parent}{}", NAMES[name]), Kind::Dir(perm | 0o700)),
                3 => (
                    format!("{parent}{}", NAMES[name]),
                    Kind::Link(
                        data.iter()
                            .map(|b| b'a' + b % 26)
                            .take(8)
                            .chain(*b"t")
                            .collect(),
                    ),
                ),
                4 => (
                    format!("{parent}.wh.{}", NAMES[name]),
                    Kind::File(0o644, vec![]),
                ),
                _ => (format!("{parent}.wh..wh..opq"), Kind::File(0o644, vec![])),
            };
            // One entry per path per layer; a path under a non-directory is skipped.
            let blocked = out
                .iter()
                .any(|(p, k)| !matches!(k, Kind::Dir(_)) && path.starts_with(&format!("{p}/")));
            if blocked || !used.insert(path.clone()) {
                continue;
            }
            out.push((path, k));
        }
        out
    })
}

fn tar_of(layer: &LayerSpec) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut root = tar::Header::new_gnu();
    root.set_path("./").unwrap();
    root.set_entry_type(tar::EntryType::Directory);
    root.set_mode(0o755);
    root.set_size(0);
    root.set_cksum();
    b.append(&root, std::io::empty()).unwrap();
    for (path, kind) in layer {
        let mut h = tar::Header::new_gnu();
        let (t, perm, data, link): (_, u32, &[u8], Option<&[u8]>) = match kind {
            Kind::Dir(m) => (tar::EntryType::Directory, *m, &[], None),
            Kind::File(m, d) => (tar::EntryType::Regular, *m, d, None),
            Kind::Link(l) => (tar::EntryType::Symlink, 0o777, &[], Some(l)),
        };
        h.set_path(if matches!(kind, Kind::Dir(_)) {
            format!("{path}/")
        } else {
            path.clone()
        })
        .unwrap();
        h.set_entry_type(t);
        h.set_mode(perm);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(std::str::from_utf8(l).unwrap()).unwrap();
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Removes everything below `dir` (the root: everything).
fn remove_under(state: &mut BTreeMap<String, Kind>, dir: &str) {
    if dir.is_empty() {
        state.clear();
    } else {
        let prefix = format!("{dir}/");
        state.retain(|p, _| !p.starts_with(&prefix));
    }
}

/// The model: apply layers in order.
fn model(layers: &[LayerSpec]) -> BTreeMap<String, Kind> {
    let mut state: BTreeMap<String, Kind> = BTreeMap::new();
    for (i, layer) in layers.iter().enumerate() {
        if i > 0 {
            for (path, _) in layer {
                let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
                if name == ".wh..wh..opq" {
                    remove_under(&mut state, dir);
                } else if let Some(victim) = name.strip_prefix(".wh.") {
                    let v = if dir.is_empty() {
                        victim.to_string()
                    } else {
                        format!("{dir}/{victim}")
                    };
                    state.remove(&v);
                    remove_under(&mut state, &v);
                }
            }
        }
        for (path, kind) in layer {
            let name = path.rsplit('/').next().unwrap();
            if i > 0 && name.starts_with(".wh.") {
                continue;
            }
            let keeps_children =
                matches!(kind, Kind::Dir(_)) && matches!(state.get(path), Some(Kind::Dir(_)));
            if !keeps_children {
                remove_under(&mut state, path);
            }
            state.insert(path.clone(), kind.clone());
        }
    }
    state
}

/// The merged image as the model's map (contents read from the tar data kept in the model).
fn listing(image: &Image, blobs: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Kind> {
    let reader = rafs_reader::ImageReader::open_with(image.clone(), |b| {
        Ok(blobs
            .get(&b.blob_id)
            .map(|v| Box::new(v.clone()) as rafs_reader::BlobSource))
    })
    .unwrap();
    let mut out = BTreeMap::new();
    for i in 1..image.tree.nodes.len() {
        let id = NodeId(i as u32);
        let inode = image.tree.inode_of(id);
        let path = image.tree.path(id).trim_start_matches('/').to_string();
        let kind = match inode.file_type() {
            mode::S_IFDIR => Kind::Dir(inode.mode & 0o7777),
            mode::S_IFLNK => Kind::Link(inode.symlink.clone()),
            _ => Kind::File(inode.mode & 0o7777, reader.read_file(id).unwrap()),
        };
        out.insert(path, kind);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn merge_equals_the_overlay_model(layers in prop::collection::vec(arb_layer(), 1..4), v5 in any::<bool>()) {
        let version = if v5 { FsVersion::V5 } else { FsVersion::V6 };
        let mut built = Vec::new();
        let mut blobs = BTreeMap::new();
        for (i, l) in layers.iter().enumerate() {
            let mut o = BuildOptions::new(version);
            o.chunk_size = 0x1000;
            o.threads = 1;
            let out = build_layer(tar_of(l).as_slice(), &o, Vec::new()).unwrap();
            let id = format!("{i:064x}");
            blobs.insert(id.clone(), out.sink);
            built.push(Layer { image: out.image, blob_id: Some(id) });
        }
        let merged = merge(built, &MergeOptions::default()).unwrap();
        // And it survives its own encoding.
        let merged = rafs_format::decode(&rafs_format::encode(&merged).unwrap()).unwrap();
        let got = listing(&merged, &blobs);
        let want = model(&layers);
        prop_assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
        for (k, v) in &want {
            prop_assert_eq!(v, &got[k], "{}", k);
        }
    }
}
