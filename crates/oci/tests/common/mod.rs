//! What the whole-image tests share: scratch directories, shell steps, and images made by hand
//! from the demo image or from layers built here.

#![allow(dead_code, reason = "each test binary uses its own part")]

use rafs_format::model::FsVersion;
use rafs_oci::layout::{digest_of, Layout};
use rafs_oci::{convert_image, ConvertOptions};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh directory for one test.
pub fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rafs-oci-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs a bash script in `dir`; panics with its output on failure.
pub fn sh(dir: &Path, script: &str) {
    let o = Command::new("bash")
        .arg("-euc")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("bash");
    assert!(
        o.status.success(),
        "{script}\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

pub fn demo() -> Layout {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/images/demo");
    Layout::open(root).unwrap()
}

/// The demo image converted (v6) into a fresh layout under the tag `good`.
pub fn converted(name: &str) -> (PathBuf, Layout) {
    let dir = tempdir(name);
    let target = Layout::create(dir.join("out")).unwrap();
    let options = ConvertOptions::new(FsVersion::V6);
    convert_image(&demo(), Some("v1"), &target, "good", &options).unwrap();
    (dir, target)
}

/// The manifest and config of the image tagged `tag`.
pub fn documents(layout: &Layout, tag: &str) -> (Value, Value) {
    let d = layout.resolve(Some(tag)).unwrap();
    let manifest: Value = layout.read_json(d.digest().as_ref(), "manifest").unwrap();
    let config = layout
        .read_json(manifest["config"]["digest"].as_str().unwrap(), "config")
        .unwrap();
    (manifest, config)
}

/// Tags as `new_tag` the image `tag` after `edit` changed its manifest and config.
pub fn edited(
    layout: &Layout,
    tag: &str,
    new_tag: &str,
    edit: impl FnOnce(&mut Value, &mut Value),
) {
    let (mut manifest, mut config) = documents(layout, tag);
    edit(&mut manifest, &mut config);
    let (cd, cs) = layout.write_json(&config).unwrap();
    manifest["config"]["digest"] = Value::from(cd);
    manifest["config"]["size"] = Value::from(cs);
    let (md, ms) = layout.write_json(&manifest).unwrap();
    let mut index = serde_json::to_value(layout.index().unwrap()).unwrap();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": new_tag},
        }));
    layout
        .write_index(&serde_json::from_value(index).unwrap())
        .unwrap();
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Tags as `new_tag` the image `tag` with `tar` (gzip'ed) as its bootstrap layer, its diff_id
/// right, so only the layer's contents can make check-image fail.
pub fn with_bootstrap_tar(layout: &Layout, tag: &str, new_tag: &str, tar: &[u8]) {
    let gz = gzip(tar);
    let digest = layout.write_blob(&gz).unwrap();
    edited(layout, tag, new_tag, |m, c| {
        let last = m["layers"].as_array_mut().unwrap().last_mut().unwrap();
        last["digest"] = Value::from(digest);
        last["size"] = Value::from(gz.len());
        let ids = c["rootfs"]["diff_ids"].as_array_mut().unwrap();
        *ids.last_mut().unwrap() = Value::from(digest_of(tar));
    });
}

/// A tar of `(name, type, bytes)` members, as Go would write them.
pub fn tar_of(members: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, kind, bytes) in members {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(*kind);
        h.set_mode(0o444);
        h.set_size(bytes.len() as u64);
        if *kind == tar::EntryType::Symlink {
            h.set_size(0);
            h.set_link_name("image.boot").unwrap();
            tar.append_data(&mut h, name, std::io::empty()).unwrap();
        } else {
            tar.append_data(&mut h, name, *bytes).unwrap();
        }
    }
    tar.into_inner().unwrap()
}

/// The rule problems check-image reports for `tag`, joined; empty when it passes.
pub fn problems(layout: &Layout, tag: &str) -> String {
    let report = rafs_oci::check_image(layout, Some(tag), Some((&demo(), Some("v1")))).unwrap();
    let all: Vec<String> = report
        .rules
        .iter()
        .flat_map(|r| r.problems.iter().map(move |p| format!("{}: {p}", r.rule)))
        .collect();
    all.join("\n")
}

pub fn the_bootstrap(layout: &Layout) -> Vec<u8> {
    let (manifest, _) = documents(layout, "good");
    rafs_oci::check::bootstrap_of_manifest(layout, &manifest).unwrap()
}

/// Every `.rafs-tmp-*` name in `dir`.
pub fn temporaries_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(rafs_oci::scratch::PREFIX))
        .collect()
}

/// The file's one chunk record in `image`.
pub fn chunk_of(
    image: &rafs_format::model::Image,
    path: &[&[u8]],
) -> (usize, rafs_format::model::ChunkInfo) {
    let n = image.tree.lookup_components(path.iter().copied()).unwrap();
    let ino = image.tree.node(n).inode.0 as usize;
    assert_eq!(image.tree.inodes[ino].chunks.len(), 1);
    (ino, image.tree.inodes[ino].chunks[0])
}

/// A copy of the demo layout in `dir`.
pub fn demo_copy(dir: &Path) -> Layout {
    let copy = dir.join("demo");
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(demo().root())
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    Layout::open(copy).unwrap()
}

/// Runs `f` on a thread and fails the test if it takes longer than 10 s (a blocked open).
pub fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("blocked for 10 s")
}

pub fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
}

/// A docker archive of the demo image: its config and its layers uncompressed, under the
/// names `manifest.json` gives; `member` may replace a layer's member.
pub fn docker_archive(path: &Path, member: impl Fn(usize, &mut tar::Header, Vec<u8>) -> Vec<u8>) {
    let demo = demo();
    let (manifest, _) = documents(&demo, "v1");
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config = demo.read_blob(config_digest, 1 << 20).unwrap();
    let mut tar = tar::Builder::new(std::fs::File::create(path).unwrap());
    let mut names = Vec::new();
    for (i, l) in manifest["layers"].as_array().unwrap().iter().enumerate() {
        let gz = demo
            .read_blob(l["digest"].as_str().unwrap(), 1 << 30)
            .unwrap();
        let mut layer = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut layer)
            .unwrap();
        let name = format!("l{i}/layer.tar");
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        let layer = member(i, &mut h, layer);
        h.set_size(layer.len() as u64);
        tar.append_data(&mut h, &name, layer.as_slice()).unwrap();
        names.push(name);
    }
    let m =
        serde_json::json!([{"Config": "config.json", "RepoTags": ["demo:v1"], "Layers": names}]);
    for (name, bytes) in [
        ("config.json", config),
        ("manifest.json", serde_json::to_vec(&m).unwrap()),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        tar.append_data(&mut h, name, bytes.as_slice()).unwrap();
    }
    tar.into_inner().unwrap();
}

/// A layout at `dir` holding `img:v1`: one uncompressed layer per tar of `layers`.
pub fn image_of_layers(dir: &Path, layers: &[Vec<u8>]) -> Layout {
    let layout = Layout::create(dir).unwrap();
    let descs: Vec<Value> = layers
        .iter()
        .map(|tar| {
            let digest = layout.write_blob(tar).unwrap();
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": digest, "size": tar.len()})
        })
        .collect();
    let diff_ids: Vec<&Value> = descs.iter().map(|d| &d["digest"]).collect();
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids}});
    let (cd, cs) = layout.write_json(&config).unwrap();
    let m = serde_json::json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": descs});
    let (md, ms) = layout.write_json(&m).unwrap();
    layout
        .update_index(|index| {
            index["manifests"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
                "size": ms, "annotations": {"org.opencontainers.image.ref.name": "v1"}}));
            Ok(())
        })
        .unwrap();
    layout
}

/// A ustar header for `name`.
pub fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_path(name).unwrap();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    h
}

/// Appends a PAX header (`x` local or `g` global) of `records`.
pub fn pax(out: &mut Vec<u8>, kind: tar::EntryType, records: &[(&str, &[u8])]) {
    let mut body = Vec::new();
    for (k, v) in records {
        let rest = k.len() + v.len() + 3;
        let mut len = rest + rest.to_string().len();
        if len.to_string().len() != rest.to_string().len() {
            len += 1;
        }
        body.extend_from_slice(format!("{len} {k}=").as_bytes());
        body.extend_from_slice(v);
        body.push(b'\n');
    }
    member(out, header("pax", kind, body.len() as u64), &body);
}

pub fn member(out: &mut Vec<u8>, h: tar::Header, data: &[u8]) {
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
}

/// Converts `img:v1` of `layout` to `nydus` in the same layout and checks it against its
/// source; returns the problems (empty: it passes) or the conversion's error.
pub fn convert_and_check(layout: &Layout) -> Result<String, String> {
    let options = ConvertOptions::new(FsVersion::V6);
    convert_image(layout, Some("v1"), layout, "nydus", &options).map_err(|e| e.to_string())?;
    let report = rafs_oci::check_image(layout, Some("nydus"), Some((layout, Some("v1")))).unwrap();
    Ok(report
        .rules
        .iter()
        .flat_map(|r| r.problems.clone())
        .collect::<Vec<_>>()
        .join("\n"))
}

/// The converted image's file at `path`, if any, and its xattrs.
pub fn converted_file(layout: &Layout, path: &[u8]) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let (manifest, _) = documents(layout, "nydus");
    let boot = rafs_oci::check::bootstrap_of_manifest(layout, &manifest).unwrap();
    let image = rafs_format::decode(&boot).unwrap();
    let reader =
        rafs_reader::ImageReader::open_dir(image, &layout.root().join("blobs/sha256")).unwrap();
    let node = reader.lookup(std::str::from_utf8(path).unwrap())?;
    let xattrs = reader
        .stat(node)
        .xattrs
        .iter()
        .map(|x| x.name.clone())
        .collect();
    Some((reader.read_file(node).unwrap_or_default(), xattrs))
}

/// The converted image's `path`: mode (permissions) and owner.
pub fn mode_of(layout: &Layout, path: &str) -> Option<(u32, u32, u32)> {
    let (manifest, _) = documents(layout, "nydus");
    let boot = rafs_oci::check::bootstrap_of_manifest(layout, &manifest).unwrap();
    let image = rafs_format::decode(&boot).unwrap();
    let comps: Vec<&[u8]> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .map(str::as_bytes)
        .collect();
    let n = image.tree.lookup_components(comps)?;
    let i = image.tree.inode_of(n);
    Some((i.mode & 0o7777, i.uid, i.gid))
}
