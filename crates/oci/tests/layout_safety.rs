//! Layouts, archives and references as a careless operator or a hostile author meets them
//! (issue 21 items 1, 5, 6, 8, 9, 11, 12): full disks, concurrent tags, links out of the layout,
//! FIFOs, docker archives, other index entries, references, permissions.
//! Every image starts from the demo image in `testdata/` or is built here, so no tool is needed.

#![allow(
    unused_imports,
    reason = "each file uses its own part of the shared helpers"
)]

mod common;
use common::*;
use rafs_format::model::FsVersion;
use rafs_oci::layout::Layout;
use rafs_oci::{convert_image, ConvertOptions};
use serde_json::Value;
use std::io::Write;
use std::path::Path;

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
        rafs_testkit::skipped("mounting a small tmpfs needs root");
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
