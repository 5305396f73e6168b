//! A layer means what containerd's unpack makes of it, for convert-image and check-image
//! alike (issue 21 items 4, 7, 10): the end marker, global headers, hard links, omitted
//! parents, markers in the lowest layer, the root, budgets.
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
