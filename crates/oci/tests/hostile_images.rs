//! Whole images made hostile by hand, starting from the demo image shipped in `testdata/`
//! (so no tool is needed): what check-image, chunk dictionaries and conversion do when an image
//! author, a registry or an operator does not play fair.

mod common;
use common::tempdir;
use rafs_format::model::FsVersion;
use rafs_oci::layout::{digest_of, Layout};
use rafs_oci::{convert_image, ConvertOptions};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

fn demo() -> Layout {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/images/demo");
    Layout::open(root).unwrap()
}

/// The demo image converted (v6) into a fresh layout under the tag `good`.
fn converted(name: &str) -> (PathBuf, Layout) {
    let dir = tempdir(name);
    let target = Layout::create(dir.join("out")).unwrap();
    let options = ConvertOptions::new(FsVersion::V6);
    convert_image(&demo(), Some("v1"), &target, "good", &options).unwrap();
    (dir, target)
}

/// The manifest and config of the image tagged `tag`.
fn documents(layout: &Layout, tag: &str) -> (Value, Value) {
    let d = layout.resolve(Some(tag)).unwrap();
    let manifest: Value = layout.read_json(d.digest().as_ref(), "manifest").unwrap();
    let config = layout
        .read_json(manifest["config"]["digest"].as_str().unwrap(), "config")
        .unwrap();
    (manifest, config)
}

/// Tags as `new_tag` the image `tag` after `edit` changed its manifest and config.
fn edited(layout: &Layout, tag: &str, new_tag: &str, edit: impl FnOnce(&mut Value, &mut Value)) {
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

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Tags as `new_tag` the image `tag` with `tar` (gzip'ed) as its bootstrap layer, its diff_id
/// right, so only the layer's contents can make check-image fail.
fn with_bootstrap_tar(layout: &Layout, tag: &str, new_tag: &str, tar: &[u8]) {
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
fn tar_of(members: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
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
fn problems(layout: &Layout, tag: &str) -> String {
    let report = rafs_oci::check_image(layout, Some(tag), Some((&demo(), Some("v1")))).unwrap();
    let all: Vec<String> = report
        .rules
        .iter()
        .flat_map(|r| r.problems.iter().map(move |p| format!("{}: {p}", r.rule)))
        .collect();
    all.join("\n")
}

fn the_bootstrap(layout: &Layout) -> Vec<u8> {
    let (manifest, _) = documents(layout, "good");
    rafs_oci::check::bootstrap_of_manifest(layout, &manifest).unwrap()
}

#[test]
fn a_bootstrap_layer_with_a_second_bootstrap_or_a_stray_member_is_refused() {
    let (dir, target) = converted("bootstrap-layer-members");
    assert_eq!(problems(&target, "good"), "");
    let good = the_bootstrap(&target);
    // A second bootstrap, valid and different (a file's mode changed): containerd would mount
    // the second, a first-wins reader would check the first.
    let mut image = rafs_format::decode(&good).unwrap();
    let n = image.tree.lookup_components([b"etc".as_slice()]).unwrap();
    let ino = image.tree.node(n).inode.0 as usize;
    image.tree.inodes[ino].mode ^= 0o022;
    let evil = rafs_format::encode(&image).unwrap();
    let reg = tar::EntryType::Regular;
    let cases: [(&str, Vec<u8>, &str); 6] = [
        (
            "two-boots",
            tar_of(&[
                ("image/image.boot", reg, &good),
                ("image/image.boot", reg, &evil),
            ]),
            "image/image.boot appears twice",
        ),
        (
            "two-boots-other-spelling",
            tar_of(&[
                ("image/image.boot", reg, &good),
                ("./image//image.boot", reg, &evil),
            ]),
            "image/image.boot appears twice",
        ),
        (
            "stray-file",
            tar_of(&[
                ("image/image.boot", reg, &good),
                ("image/run.sh", reg, b"x"),
            ]),
            "unexpected member image/run.sh (a regular file)",
        ),
        (
            "symlink",
            tar_of(&[
                ("image/image.boot", reg, &good),
                ("image/x.boot", tar::EntryType::Symlink, b""),
            ]),
            "unexpected member image/x.boot (a symlink)",
        ),
        (
            "global-pax",
            tar_of(&[
                ("pax", tar::EntryType::XGlobalHeader, b"9 a=bcd\n"),
                ("image/image.boot", reg, &good),
            ]),
            "a PAX global header",
        ),
        (
            "boot-is-a-dir",
            tar_of(&[("image/image.boot", tar::EntryType::Directory, b"")]),
            "unexpected member image/image.boot (a directory)",
        ),
    ];
    for (tag, tar, why) in &cases {
        with_bootstrap_tar(&target, "good", tag, tar);
        let p = problems(&target, tag);
        assert!(p.contains(why), "{tag}: {p}");
        assert!(
            p.contains("bootstrap:"),
            "{tag}: the bootstrap rule must fail too: {p}"
        );
    }
    // The same layer with one bootstrap passes: the check is on the members, not the writer.
    with_bootstrap_tar(
        &target,
        "good",
        "rewritten",
        &tar_of(&[
            ("image", tar::EntryType::Directory, b""),
            ("image/image.boot", reg, &good),
        ]),
    );
    assert_eq!(problems(&target, "rewritten"), "");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_chunk_dictionary_image_with_two_bootstraps_is_refused() {
    let (dir, target) = converted("dict-two-boots");
    let good = the_bootstrap(&target);
    let reg = tar::EntryType::Regular;
    let tar = tar_of(&[
        ("image/image.boot", reg, &good),
        ("image/image.boot", reg, &good),
    ]);
    with_bootstrap_tar(&target, "good", "two", &tar);
    let err = rafs_oci::ChunkDictionary::from_image(&target, Some("two")).unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_small_gzip_claiming_a_huge_bootstrap_is_refused_without_inflating_it() {
    let (dir, target) = converted("bootstrap-bomb");
    // 1 GiB of zeros as image.boot: about 1 MiB of gzip. Streamed through a gzip encoder so
    // the test itself never holds the tar.
    let size: u64 = 1 << 30;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut h = tar::Header::new_ustar();
    h.set_path("image/image.boot").unwrap();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o444);
    h.set_size(size);
    h.set_cksum();
    gz.write_all(h.as_bytes()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..(size >> 20) {
        gz.write_all(&zeros).unwrap();
    }
    gz.write_all(&[0u8; 1024]).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 2 << 20, "{}", gz.len());
    let digest = target.write_blob(&gz).unwrap();
    edited(&target, "good", "bomb", |m, _| {
        let last = m["layers"].as_array_mut().unwrap().last_mut().unwrap();
        last["digest"] = Value::from(digest);
        last["size"] = Value::from(gz.len());
    });
    let started = std::time::Instant::now();
    let p = problems(&target, "bomb");
    assert!(p.contains("larger than") && p.contains("budget"), "{p}");
    // Refused from the header, before inflating: well under the time 1 GiB takes.
    assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn junk_appended_to_the_bootstrap_layer_or_data_after_one_zero_block_fails_the_check() {
    let (dir, target) = converted("bootstrap-junk");
    let good = the_bootstrap(&target);
    let reg = tar::EntryType::Regular;
    // One zero block, then a header: Go's archive/tar (containerd) fails on this tar.
    let mut tar = tar_of(&[("image/image.boot", reg, &good)]);
    let end = tar.len() - 1024;
    tar.truncate(end + 512);
    tar.extend_from_slice(&tar_of(&[("image/image.boot", reg, b"evil")]));
    with_bootstrap_tar(&target, "good", "after-one-zero", &tar);
    let p = problems(&target, "after-one-zero");
    assert!(p.contains("one zero block followed by data"), "{p}");
    // Two zero blocks, then anything: not part of the layer (its diff_id covers it).
    let mut tar = tar_of(&[("image/image.boot", reg, &good)]);
    tar.extend_from_slice(&tar_of(&[("image/image.boot", reg, b"evil")]));
    with_bootstrap_tar(&target, "good", "after-end", &tar);
    assert_eq!(problems(&target, "after-end"), "");
    // Bytes appended to the gzip blob, its descriptor unchanged: the blob is not the layer.
    let (manifest, _) = documents(&target, "good");
    let boot = manifest["layers"].as_array().unwrap().last().unwrap();
    let path = target.blob_path(boot["digest"].as_str().unwrap()).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"junk");
    std::fs::write(&path, &bytes).unwrap();
    let p = problems(&target, "good");
    assert!(
        p.contains("manifest:") && p.contains("longer than its descriptor"),
        "{p}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every `.rafs-tmp-*` name in `dir`.
fn temporaries_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(rafs_oci::scratch::PREFIX))
        .collect()
}

#[test]
fn a_full_disk_while_writing_index_json_leaves_the_index_as_it_was_and_no_temporary() {
    let dir = tempdir("enospc");
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=256k",
            "tmpfs",
            mnt.to_str().unwrap(),
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED: mounting a small tmpfs needs root");
        return;
    }
    let layout = Layout::create(mnt.join("layout")).unwrap();
    let before = std::fs::read(mnt.join("layout/index.json")).unwrap();
    // Fill the filesystem.
    let mut filler = std::fs::File::create(mnt.join("filler")).unwrap();
    while filler.write_all(&[7u8; 4096]).is_ok() {}
    let result = layout.update_index(|index| {
        let big = "x".repeat(64 << 10);
        index["manifests"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({ "annotations": { "big": big } }));
        Ok(())
    });
    let err = result.unwrap_err().to_string();
    let after = std::fs::read(mnt.join("layout/index.json")).unwrap();
    let left = temporaries_in(&mnt.join("layout"));
    drop(filler);
    let _ = std::process::Command::new("umount").arg(&mnt).status();
    assert!(err.contains("No space left"), "{err}");
    assert_eq!(after, before);
    assert_eq!(left, Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn concurrent_tags_into_one_layout_are_all_kept() {
    let dir = tempdir("concurrent-tags");
    let layout = Layout::create(dir.join("out")).unwrap();
    // Many writers at once, each adding its own tag by read-modify-write: none may be lost.
    std::thread::scope(|s| {
        for t in 0..16 {
            let layout = layout.clone();
            s.spawn(move || {
                for i in 0..8 {
                    layout
                        .update_index(|index| {
                            let tag = format!("t{t}-{i}");
                            index["manifests"]
                                .as_array_mut()
                                .unwrap()
                                .push(serde_json::json!({
                                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "digest": format!("sha256:{}", "0".repeat(64)), "size": 1,
                                "annotations": {"org.opencontainers.image.ref.name": tag}}));
                            Ok(())
                        })
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(layout.index().unwrap().manifests().len(), 16 * 8);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The file's one chunk record in `image`.
fn chunk_of(
    image: &rafs_format::model::Image,
    path: &[&[u8]],
) -> (usize, rafs_format::model::ChunkInfo) {
    let n = image.tree.lookup_components(path.iter().copied()).unwrap();
    let ino = image.tree.node(n).inode.0 as usize;
    assert_eq!(image.tree.inodes[ino].chunks.len(), 1);
    (ino, image.tree.inodes[ino].chunks[0])
}

#[test]
fn a_chunk_dictionary_that_lies_about_a_chunk_cannot_substitute_its_contents() {
    let (dir, target) = converted("dict-lies");
    let mut image = rafs_format::decode(&the_bootstrap(&target)).unwrap();
    // Swap what two chunk records claim: the record holding "hello\n" now claims the digest
    // and size of app.conf's contents, and the other way round. The blob is untouched (its
    // digest still matches), only the dictionary's bootstrap lies.
    let conf: [&[u8]; 3] = [b"etc", b"app", b"app.conf"];
    let hello: [&[u8]; 4] = [b"usr", b"share", b"doc", b"hello"];
    let (a, ca) = chunk_of(&image, &conf);
    let (b, cb) = chunk_of(&image, &hello);
    for (ino, from) in [(a, cb), (b, ca)] {
        let c = &mut image.tree.inodes[ino].chunks[0];
        c.digest = from.digest;
        c.uncompressed_size = from.uncompressed_size;
    }
    let lying = rafs_format::encode(&image).unwrap();
    let dict = rafs_oci::ChunkDictionary::from_bootstrap(&lying).unwrap();
    let mut options = ConvertOptions::new(FsVersion::V6);
    options.chunk_dict = Some(dict);
    convert_image(&demo(), Some("v1"), &target, "again", &options).unwrap();
    // Every file reads back as the source's: the two lying chunks were stored by the layers
    // themselves, every other chunk still comes from the dictionary.
    assert_eq!(problems(&target, "again"), "");
    let (manifest, _) = documents(&target, "again");
    let again =
        rafs_format::decode(&rafs_oci::check::bootstrap_of_manifest(&target, &manifest).unwrap())
            .unwrap();
    let dict_blobs: Vec<&str> = image.blobs.iter().map(|b| b.blob_id.as_str()).collect();
    for path in [&conf[..], &hello[..]] {
        let (_, c) = chunk_of(&again, path);
        let id = &again.blobs[c.blob_index as usize].blob_id;
        assert!(
            !dict_blobs.contains(&id.as_str()),
            "{path:?} refers to the dictionary"
        );
    }
    let numbers: [&[u8]; 4] = [b"usr", b"share", b"doc", b"numbers.txt"];
    let n = again.tree.lookup_components(numbers).unwrap();
    let c = again.tree.inode_of(n).chunks[0];
    assert!(dict_blobs.contains(&again.blobs[c.blob_index as usize].blob_id.as_str()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_chunk_dictionary_the_target_cannot_read_or_whose_blobs_are_absent_is_refused() {
    let (dir, target) = converted("dict-mismatch");
    let mut v5 = ConvertOptions::new(FsVersion::V5);
    convert_image(&demo(), Some("v1"), &target, "v5", &v5).unwrap();
    let (manifest, _) = documents(&target, "v5");
    let boot = rafs_oci::check::bootstrap_of_manifest(&target, &manifest).unwrap();
    // A v5 image names one compressor for all its blobs: zstd dictionary chunks in an
    // lz4_block image would be unreadable.
    v5.build.compressor = rafs_format::model::Compressor::Lz4Block;
    v5.chunk_dict = Some(rafs_oci::ChunkDictionary::from_bootstrap(&boot).unwrap());
    let err = convert_image(&demo(), Some("v1"), &target, "mixed", &v5).unwrap_err();
    assert!(
        err.to_string()
            .contains("chunk dictionary: compressor (v5) is zstd"),
        "{err}"
    );
    // Another chunk size.
    let mut v6 = ConvertOptions::new(FsVersion::V6);
    v6.build.chunk_size = 0x10000;
    v6.chunk_dict =
        Some(rafs_oci::ChunkDictionary::from_bootstrap(&the_bootstrap(&target)).unwrap());
    let err = convert_image(&demo(), Some("v1"), &target, "sizes", &v6).unwrap_err();
    assert!(
        err.to_string()
            .contains("chunk dictionary: chunk size is 0x100000"),
        "{err}"
    );
    // A bootstrap dictionary whose blobs are not in the target: nothing to verify against.
    let elsewhere = Layout::create(dir.join("elsewhere")).unwrap();
    let mut options = ConvertOptions::new(FsVersion::V6);
    options.chunk_dict =
        Some(rafs_oci::ChunkDictionary::from_bootstrap(&the_bootstrap(&target)).unwrap());
    let err = convert_image(&demo(), Some("v1"), &elsewhere, "x", &options).unwrap_err();
    assert!(err.to_string().contains("cannot be verified"), "{err}");
    assert!(elsewhere.resolve(Some("x")).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn references_split_as_skopeo_splits_them_and_are_names_not_paths() {
    use rafs_oci::ImageRef;
    let dir = tempdir("refs");
    let colon_dir = dir.join("a:b");
    std::fs::create_dir_all(&colon_dir).unwrap();
    let d = dir.display();
    let parse = |s: String| s.parse::<ImageRef>();
    // The first `:` separates, so a reference may hold `/` and `:`.
    assert_eq!(
        parse(format!("oci:{d}/out:reg.io/app:1.0")).unwrap(),
        ImageRef::Oci {
            dir: dir.join("out"),
            reference: Some("reg.io/app:1.0".into())
        }
    );
    // Unless a longer prefix is a directory that exists.
    assert_eq!(
        parse(format!("oci:{d}/a:b:v1")).unwrap(),
        ImageRef::Oci {
            dir: colon_dir.clone(),
            reference: Some("v1".into())
        }
    );
    assert_eq!(
        parse(format!("oci:{d}/out")).unwrap(),
        ImageRef::Oci {
            dir: dir.join("out"),
            reference: None
        }
    );
    for bad in ["../../etc/passwd", "", "v1/", "-v1", "a//b", "a:::b"] {
        let err = parse(format!("oci:{d}/out:{bad}")).unwrap_err().to_string();
        assert!(err.contains("not an OCI reference name"), "{bad:?}: {err}");
    }
    // Such a reference names a converted image.
    let target = Layout::create(dir.join("out")).unwrap();
    let options = ConvertOptions::new(FsVersion::V6);
    convert_image(&demo(), Some("v1"), &target, "reg.io/app:1.0", &options).unwrap();
    assert!(target.resolve(Some("reg.io/app:1.0")).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A copy of the demo layout in `dir`.
fn demo_copy(dir: &Path) -> Layout {
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

#[test]
fn converting_onto_the_source_tag_is_refused_unless_the_source_is_nydus() {
    let dir = tempdir("same-tag");
    let layout = demo_copy(&dir);
    let before = std::fs::read(layout.root().join("index.json")).unwrap();
    let options = ConvertOptions::new(FsVersion::V6);
    let err = convert_image(&layout, Some("v1"), &layout, "v1", &options).unwrap_err();
    assert!(err.to_string().contains("would replace it"), "{err}");
    // The same layout reached by another spelling of its path.
    let other = Layout::open(layout.root().join("..").join("demo")).unwrap();
    assert!(convert_image(&layout, None, &other, "v1", &options).is_err());
    assert_eq!(
        std::fs::read(layout.root().join("index.json")).unwrap(),
        before
    );
    // Another tag is fine, and a Nydus image onto itself is the identity.
    convert_image(&layout, Some("v1"), &layout, "nydus", &options).unwrap();
    let nydus = layout.resolve(Some("nydus")).unwrap();
    convert_image(&layout, Some("nydus"), &layout, "nydus", &options).unwrap();
    assert_eq!(
        layout.resolve(Some("nydus")).unwrap().digest(),
        nydus.digest()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `f` on a thread and fails the test if it takes longer than 10 s (a blocked open).
fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("blocked for 10 s")
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
}

#[test]
fn layout_files_are_regular_files_inside_the_layout_opened_without_blocking() {
    let dir = tempdir("layout-files");
    let layout = demo_copy(&dir);
    let root = layout.root().to_owned();
    let secret = dir.join("secret-target-name");
    std::fs::write(&secret, b"{}").unwrap();
    // index.json a link leading out: refused, and the error does not say where it leads.
    std::fs::rename(root.join("index.json"), dir.join("index.json")).unwrap();
    std::os::unix::fs::symlink(&secret, root.join("index.json")).unwrap();
    let err = layout.index().unwrap_err().to_string();
    assert!(
        err.contains("leads outside the layout") && !err.contains("secret"),
        "{err}"
    );
    // A link that stays inside is followed.
    std::fs::remove_file(root.join("index.json")).unwrap();
    std::fs::rename(dir.join("index.json"), root.join("real-index.json")).unwrap();
    std::os::unix::fs::symlink("real-index.json", root.join("index.json")).unwrap();
    let desc = layout.resolve(Some("v1")).unwrap();
    let manifest: Value = layout
        .read_json(desc.digest().as_ref(), "manifest")
        .unwrap();
    // A blob that is a link out, or a FIFO: refused at once, never read, never blocking.
    let config = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let config_path = layout.blob_path(&config).unwrap();
    std::fs::rename(&config_path, dir.join("config")).unwrap();
    std::os::unix::fs::symlink(dir.join("config"), &config_path).unwrap();
    let err = layout.read_blob(&config, 1 << 20).unwrap_err().to_string();
    assert!(err.contains("leads outside the layout"), "{err}");
    assert!(!layout.has_blob(&config));
    std::fs::remove_file(&config_path).unwrap();
    mkfifo(&config_path);
    let (l, c) = (layout.clone(), config.clone());
    let err = within_10s(move || l.read_blob(&c, 1 << 20).unwrap_err().to_string());
    assert!(err.contains("not a regular file"), "{err}");
    let (l, c) = (layout.clone(), config.clone());
    assert!(within_10s(move || l.open_blob(&c, 10).is_err()));
    // index.json larger than any document may be: refused from its size.
    std::fs::remove_file(root.join("index.json")).unwrap();
    let big = std::fs::File::create(root.join("index.json")).unwrap();
    big.set_len(1 << 40).unwrap();
    let err = layout.index().unwrap_err().to_string();
    assert!(err.contains("larger than"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A docker archive of the demo image: its config and its layers uncompressed, under the
/// names `manifest.json` gives; `member` may replace a layer's member.
fn docker_archive(path: &Path, member: impl Fn(usize, &mut tar::Header, Vec<u8>) -> Vec<u8>) {
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

#[test]
fn docker_archive_layers_must_be_the_configs_diff_ids_and_regular_files() {
    use rafs_oci::ImageRef;
    let dir = tempdir("docker-archive");
    let open = |name: &str| {
        let image = ImageRef::DockerArchive {
            file: dir.join(name),
        };
        let scratch = rafs_oci::scratch::ScratchDir::new_in(&dir).unwrap();
        image.open(&scratch.path().join("x")).map(|_| ())
    };
    // As made: converts, and the result is the demo's filesystem.
    docker_archive(&dir.join("good.tar"), |_, _, l| l);
    let image = ImageRef::DockerArchive {
        file: dir.join("good.tar"),
    };
    let scratch = rafs_oci::scratch::ScratchDir::new_in(&dir).unwrap();
    let (source, reference) = image.open(&scratch.path().join("src")).unwrap();
    let target = Layout::create(dir.join("out")).unwrap();
    let options = ConvertOptions::new(FsVersion::V6);
    convert_image(&source, reference.as_deref(), &target, "good", &options).unwrap();
    assert_eq!(problems(&target, "good"), "");
    // A layer whose bytes are not what the config's diff_id names.
    docker_archive(&dir.join("tampered.tar"), |i, _, mut l| {
        if i == 1 {
            l[600] ^= 1;
        }
        l
    });
    let err = open("tampered.tar").unwrap_err().to_string();
    assert!(
        err.contains("layer l1/layer.tar: is not the layer the config's diff_id"),
        "{err}"
    );
    // A layer member that is not a regular file: a hard link, a character device.
    for (name, kind) in [
        ("link.tar", tar::EntryType::Link),
        ("dev.tar", tar::EntryType::Char),
    ] {
        docker_archive(&dir.join(name), |i, h, l| {
            if i == 2 {
                h.set_entry_type(kind);
                h.set_link_name("l0/layer.tar").unwrap();
                return Vec::new();
            }
            l
        });
        let err = open(name).unwrap_err().to_string();
        assert!(
            err.contains("l2/layer.tar is not a regular file"),
            "{name}: {err}"
        );
    }
    // The archive itself a FIFO: refused at once.
    mkfifo(&dir.join("fifo.tar"));
    let fifo = dir.join("fifo.tar");
    let err = within_10s(move || {
        let image = ImageRef::DockerArchive { file: fifo.clone() };
        let scratch = fifo.with_file_name("fifo-scratch");
        image.open(&scratch).map(|_| ()).unwrap_err().to_string()
    });
    assert!(err.contains("must be a regular file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A layout at `dir` holding `img:v1`: one uncompressed layer per tar of `layers`.
fn image_of_layers(dir: &Path, layers: &[Vec<u8>]) -> Layout {
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
fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
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
fn pax(out: &mut Vec<u8>, kind: tar::EntryType, records: &[(&str, &[u8])]) {
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

fn member(out: &mut Vec<u8>, h: tar::Header, data: &[u8]) {
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
}

/// Converts `img:v1` of `layout` to `nydus` in the same layout and checks it against its
/// source; returns the problems (empty: it passes) or the conversion's error.
fn convert_and_check(layout: &Layout) -> Result<String, String> {
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
fn converted_file(layout: &Layout, path: &[u8]) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
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

#[test]
fn a_layer_means_what_containerd_applies_for_convert_and_check_alike() {
    let dir = tempdir("containerd-meaning");
    let reg = tar::EntryType::Regular;
    // Entries after the end marker are not part of the layer.
    let mut after_end = Vec::new();
    member(&mut after_end, header("a", reg, 2), b"a\n");
    after_end.extend_from_slice(&[0; 1024]);
    member(&mut after_end, header("evil", reg, 5), b"evil\n");
    after_end.extend_from_slice(&[0; 1024]);
    let layout = image_of_layers(&dir.join("after-end"), &[after_end]);
    assert_eq!(convert_and_check(&layout).unwrap(), "");
    assert!(converted_file(&layout, b"/a").is_some());
    assert!(converted_file(&layout, b"/evil").is_none());
    // One zero block and then a header: Go's reader refuses the tar, so do we, both ways.
    let mut one_zero = Vec::new();
    member(&mut one_zero, header("a", reg, 2), b"a\n");
    one_zero.extend_from_slice(&[0; 512]);
    member(&mut one_zero, header("evil", reg, 5), b"evil\n");
    one_zero.extend_from_slice(&[0; 1024]);
    let layout = image_of_layers(&dir.join("one-zero"), &[one_zero]);
    let err = convert_and_check(&layout).unwrap_err();
    assert!(err.contains("a zero block followed by a header"), "{err}");
    // A global PAX header is skipped, not applied (containerd ignores it), and is no path.
    let mut global = Vec::new();
    pax(
        &mut global,
        tar::EntryType::XGlobalHeader,
        &[("SCHILY.xattr.user.g", b"1"), ("uid", b"7")],
    );
    member(&mut global, header("f", reg, 2), b"f\n");
    global.extend_from_slice(&[0; 1024]);
    let layout = image_of_layers(&dir.join("global"), &[global]);
    assert_eq!(convert_and_check(&layout).unwrap(), "");
    let (_, xattrs) = converted_file(&layout, b"/f").unwrap();
    assert!(xattrs.is_empty(), "{xattrs:?}");
    assert!(converted_file(&layout, b"/pax").is_none());
    // A binary xattr value holding a newline, a NUL and 0xff reads the same on both sides.
    let mut binary = Vec::new();
    pax(
        &mut binary,
        tar::EntryType::XHeader,
        &[("SCHILY.xattr.user.bin", b"a\nb\0\xff")],
    );
    member(&mut binary, header("x", reg, 2), b"x\n");
    binary.extend_from_slice(&[0; 1024]);
    let layout = image_of_layers(&dir.join("binary-xattr"), &[binary]);
    assert_eq!(convert_and_check(&layout).unwrap(), "");
    // A hard link is the file its target was when the link was read, even when the target
    // path is replaced later in the layer.
    let mut relinked = Vec::new();
    member(&mut relinked, header("t", reg, 4), b"old\n");
    let mut link = header("l", tar::EntryType::Link, 0);
    link.set_link_name("t").unwrap();
    link.set_cksum();
    member(&mut relinked, link, b"");
    member(&mut relinked, header("t", reg, 4), b"new\n");
    relinked.extend_from_slice(&[0; 1024]);
    let layout = image_of_layers(&dir.join("relinked"), &[relinked]);
    assert_eq!(convert_and_check(&layout).unwrap(), "");
    assert_eq!(converted_file(&layout, b"/l").unwrap().0, b"old\n");
    assert_eq!(converted_file(&layout, b"/t").unwrap().0, b"new\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn image_budgets_bound_layers_manifests_and_bytes_in_convert_and_check() {
    let dir = tempdir("image-budgets");
    let reg = tar::EntryType::Regular;
    let mut small = Vec::new();
    member(&mut small, header("f", reg, 2), b"f\n");
    small.extend_from_slice(&[0; 1024]);
    // 1,001 layers (the same blob): refused before any is read.
    let layout = image_of_layers(&dir.join("layers"), &vec![small.clone(); 1001]);
    let err = convert_and_check(&layout).unwrap_err();
    assert!(
        err.contains("1001 layers; at most 1000 (max_layers)"),
        "{err}"
    );
    // An index of 1,001 entries.
    let d = layout.resolve(Some("v1")).unwrap();
    let entries = vec![serde_json::to_value(&d).unwrap(); 1001];
    let (id, is) = layout
        .write_json(&serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}))
        .unwrap();
    layout
        .update_index(|index| {
            index["manifests"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json", "digest": id, "size": is,
                "annotations": {"org.opencontainers.image.ref.name": "many"}}));
            Ok(())
        })
        .unwrap();
    let options = ConvertOptions::new(FsVersion::V6);
    let err = convert_image(&layout, Some("many"), &layout, "x", &options).unwrap_err();
    assert!(err.to_string().contains("(max_manifests)"), "{err}");
    // Bytes of files over the image: a budget of 3 bytes, two layers of 2.
    let layout = image_of_layers(&dir.join("bytes"), &[small.clone(), small.clone()]);
    let mut options = ConvertOptions::new(FsVersion::V6);
    options.limits.max_image_bytes = 3;
    let err = convert_image(&layout, Some("v1"), &layout, "x", &options).unwrap_err();
    assert!(err.to_string().contains("max_image_bytes"), "{err}");
    // The check's reading of the source spends the same budgets: a sparse entry claiming
    // 16 TiB (a few hundred bytes of tar) is refused at once, not hashed for hours.
    let mut sparse = Vec::new();
    pax(
        &mut sparse,
        tar::EntryType::XHeader,
        &[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"huge"),
            ("GNU.sparse.realsize", b"17592186044416"),
        ],
    );
    let map = b"1\n17592186044415\n1\n";
    let mut body = map.to_vec();
    body.resize(512, 0);
    body.push(b'x');
    member(
        &mut sparse,
        header("GNUSparseFile.0/huge", reg, body.len() as u64),
        &body,
    );
    sparse.extend_from_slice(&[0; 1024]);
    let source = image_of_layers(&dir.join("sparse"), &[sparse]);
    let demo_target = converted("sparse-target").1;
    let started = std::time::Instant::now();
    let report =
        rafs_oci::check_image(&demo_target, Some("good"), Some((&source, Some("v1")))).unwrap();
    let fs = report
        .rules
        .iter()
        .find(|r| r.rule == "filesystem")
        .unwrap();
    assert!(
        fs.problems
            .iter()
            .any(|p| p.contains("max_sparse_bytes") || p.contains("max_file_bytes")),
        "{:?}",
        fs.problems
    );
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn other_index_entries_survive_and_platforms_are_carried_fully() {
    let dir = tempdir("index-entries");
    let target = Layout::create(dir.join("out")).unwrap();
    // Another image's entry with fields this converter does not know.
    let other = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{}", "1".repeat(64)), "size": 7,
        "platform": {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1",
                     "os.features": ["win32k"], "variant": "v3"},
        "annotations": {"org.opencontainers.image.ref.name": "other", "x.y": "z"},
        "data": "e30=", "urls": ["https://example.invalid/x"], "x-unknown": {"kept": true}});
    target
        .update_index(|index| {
            index["manifests"]
                .as_array_mut()
                .unwrap()
                .push(other.clone());
            index["x-top-level"] = Value::from("kept too");
            Ok(())
        })
        .unwrap();
    // A source index whose entry names its platform fully.
    let source = demo_copy(&dir);
    let d = source.resolve(Some("v1")).unwrap();
    let mut entry = serde_json::to_value(&d).unwrap();
    entry["annotations"] = Value::Null;
    entry.as_object_mut().unwrap().remove("annotations");
    entry["platform"] = serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8",
        "os.version": "5.15", "os.features": ["a", "b"]});
    let (id, is) = source
        .write_json(&serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [entry]}))
        .unwrap();
    source
        .update_index(|index| {
            index["manifests"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json", "digest": id, "size": is,
                "annotations": {"org.opencontainers.image.ref.name": "multi"}}));
            Ok(())
        })
        .unwrap();
    let options = ConvertOptions::new(FsVersion::V6);
    convert_image(&source, Some("multi"), &target, "nydus", &options).unwrap();
    let index: Value =
        serde_json::from_slice(&std::fs::read(target.root().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0], other);
    assert_eq!(index["x-top-level"], "kept too");
    // The converted entry is the manifest itself (one platform), carrying the platform.
    let converted = &index["manifests"][1];
    let platform = &converted["platform"];
    assert_eq!(platform["variant"], "v8", "{converted}");
    assert_eq!(platform["os.version"], "5.15");
    assert_eq!(platform["os.features"], serde_json::json!(["a", "b"]));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The converted image's `path`: mode (permissions) and owner.
fn mode_of(layout: &Layout, path: &str) -> Option<(u32, u32, u32)> {
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

#[test]
fn omitted_parents_base_markers_and_the_root_read_as_containerd_unpacks_them() {
    let dir = tempdir("containerd-parents");
    let reg = tar::EntryType::Regular;
    let mut base = Vec::new();
    // The root entry says 0700 and owner 5: containerd skips it (its root is 0755, root's).
    let mut root = header("./", tar::EntryType::Directory, 0);
    root.set_mode(0o700);
    root.set_uid(5);
    root.set_cksum();
    member(&mut base, root, b"");
    // A whiteout and an opaque marker in the lowest layer: they hide nothing and containerd
    // creates neither, but it does create their missing parents (0700).
    member(&mut base, header("var/.wh.old", reg, 0), b"");
    member(&mut base, header("opt/.wh..wh..opq", reg, 0), b"");
    // A file whose parents the layer leaves out and nothing below provides.
    member(&mut base, header("usr/lib/x", reg, 2), b"x\n");
    base.extend_from_slice(&[0; 1024]);
    let mut upper = Vec::new();
    // An upper layer's file under a directory it leaves out, which the base has.
    member(&mut upper, header("usr/lib/y", reg, 2), b"y\n");
    upper.extend_from_slice(&[0; 1024]);
    let layout = image_of_layers(&dir.join("img"), &[base, upper]);
    assert_eq!(convert_and_check(&layout).unwrap(), "");
    assert_eq!(mode_of(&layout, "/"), Some((0o755, 0, 0)));
    assert_eq!(mode_of(&layout, "/usr"), Some((0o700, 0, 0)));
    assert_eq!(mode_of(&layout, "/usr/lib"), Some((0o700, 0, 0)));
    assert_eq!(mode_of(&layout, "/var"), Some((0o700, 0, 0)));
    assert_eq!(mode_of(&layout, "/var/.wh.old"), None);
    assert_eq!(mode_of(&layout, "/opt/.wh..wh..opq"), None);
    assert!(converted_file(&layout, b"/usr/lib/y").is_some());
    // Junk appended to a Nydus blob layer: it is not the layer the manifest names.
    let (manifest, _) = documents(&layout, "nydus");
    let blob = manifest["layers"][0]["digest"].as_str().unwrap();
    let path = layout.blob_path(blob).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"junk");
    std::fs::write(&path, bytes).unwrap();
    let report = rafs_oci::check_image(&layout, Some("nydus"), None).unwrap();
    let rule = report.rules.iter().find(|r| r.rule == "bootstrap").unwrap();
    assert!(
        rule.problems
            .iter()
            .any(|p| p.contains("longer than its descriptor")),
        "{:?}",
        rule.problems
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_hard_link_header_sets_owner_and_xattrs_of_the_shared_inode_never_its_mode() {
    let dir = tempdir("hardlink-attrs");
    let reg = tar::EntryType::Regular;
    let mut tar = Vec::new();
    let mut t = header("t", reg, 2);
    t.set_mode(0o600);
    t.set_uid(7);
    t.set_cksum();
    member(&mut tar, t, b"t\n");
    // The link header: another owner, another mode, an xattr. containerd's applier links,
    // then chowns and sets xattrs on the new name (the shared inode); it does not chmod.
    pax(
        &mut tar,
        tar::EntryType::XHeader,
        &[("SCHILY.xattr.user.l", b"1")],
    );
    let mut l = header("l", tar::EntryType::Link, 0);
    l.set_link_name("t").unwrap();
    l.set_mode(0o755);
    l.set_uid(9);
    l.set_cksum();
    member(&mut tar, l, b"");
    tar.extend_from_slice(&[0; 1024]);
    let layout = image_of_layers(&dir.join("img"), &[tar]);
    assert_eq!(convert_and_check(&layout).unwrap(), "");
    for path in ["/t", "/l"] {
        assert_eq!(mode_of(&layout, path), Some((0o600, 9, 0)), "{path}");
        let (_, xattrs) = converted_file(&layout, path.as_bytes()).unwrap();
        assert_eq!(xattrs, [b"user.l".to_vec()], "{path}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn layout_files_are_readable_by_others_as_any_file_is_scratch_space_is_not() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, target) = converted("permissions");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // Temporaries are made 0600 by tempfile; named, a layout's files must not stay so (a
    // registry or nydusd may read them as another user). 0666 less the umask, like any file.
    let umask = {
        let probe = dir.join("probe");
        std::fs::write(&probe, b"").unwrap();
        0o666 & !mode(&probe)
    };
    assert_eq!(mode(&target.root().join("index.json")), 0o666 & !umask);
    assert_eq!(mode(&target.root().join("oci-layout")), 0o666 & !umask);
    for blob in std::fs::read_dir(target.root().join("blobs/sha256")).unwrap() {
        assert_eq!(mode(&blob.unwrap().path()), 0o666 & !umask);
    }
    let scratch = rafs_oci::scratch::ScratchDir::new_in(&dir).unwrap();
    assert_eq!(mode(scratch.path()), 0o700);
    let _ = std::fs::remove_dir_all(&dir);
}
