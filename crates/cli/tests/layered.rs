//! `rafs convert --parent-bootstrap` (issue 13, layered builds): L2 onto L1 and L3 onto that
//! result, v5 and v6. The reference writes wrong chunk references here (corpus README,
//! Findings); ours must unpack to the OCI model of the stack (the ground-truth listings made
//! without nydus), mount in the kernel as that, keep the reference's blob table, and equal a
//! plain build followed by a merge under every whiteout spec.

use rafs_format::model::WhiteoutSpec;
use rafs_testkit::{assert_listing, corpus, mount_erofs, mount_unavailable, treelist_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

fn rafs(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rafs"))
        .args(args)
        .output()
        .expect("run rafs")
}

fn ok(args: &[&str]) {
    let out = rafs(args);
    assert!(
        out.status.success(),
        "rafs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rafs-layered-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("blobs")).unwrap();
    d
}

fn layer(name: &str) -> String {
    corpus()
        .join("layers")
        .join(format!("{name}.tar"))
        .display()
        .to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `rafs convert` of `name` into `dir` (bootstrap `out`), onto `parent` if given.
fn convert(dir: &Path, name: &str, out: &str, version: &str, extra: &[&str]) -> PathBuf {
    let boot = dir.join(out);
    let blobs = dir.join("blobs");
    let mut args = vec![
        "convert",
        "-q",
        "--fs-version",
        version,
        "--compressor",
        "zstd",
        "--digester",
        "sha256",
        "-D",
        s(&blobs),
        "-B",
        s(&boot),
    ];
    args.extend_from_slice(extra);
    let tar = layer(name);
    args.push(&tar);
    ok(&args);
    boot
}

/// `unpack --verify` of a bootstrap into a new directory, listed by `treelist.py`.
fn unpacked_listing(dir: &Path, boot: &Path, tag: &str) -> String {
    let out = dir.join(format!("unpacked-{tag}"));
    ok(&[
        "unpack",
        "--verify",
        "-D",
        s(&dir.join("blobs")),
        "--dir",
        s(&out),
        s(boot),
    ]);
    treelist_dir(&out).unwrap()
}

fn expected(list: &str) -> String {
    std::fs::read_to_string(corpus().join(format!("expected/{list}.list"))).unwrap()
}

fn blob_ids(boot: &Path) -> Vec<String> {
    let image = rafs_format::decode(&std::fs::read(boot).unwrap()).unwrap();
    image.blobs.iter().map(|b| b.blob_id.clone()).collect()
}

#[test]
fn a_stack_built_onto_parents_unpacks_as_the_oci_model_of_its_layers() {
    for version in ["5", "6"] {
        let dir = tempdir(&format!("v{version}"));
        let l1 = convert(&dir, "L1", "l1", version, &[]);
        let l2 = convert(&dir, "L2", "l2", version, &["--parent-bootstrap", s(&l1)]);
        let l3 = convert(&dir, "L3", "l3", version, &["--parent-bootstrap", s(&l2)]);
        assert_listing(
            &format!("v{version}: L2 onto L1"),
            &unpacked_listing(&dir, &l2, "l2"),
            &expected("oci-L1-L2"),
            &|_, _| false,
        );
        assert_listing(
            &format!("v{version}: L3 onto L1+L2"),
            &unpacked_listing(&dir, &l3, "l3"),
            &expected("oci-L1-L2-L3"),
            &|_, _| false,
        );
        // The parent's blobs first, then the layer's own: each the blob a plain build of that
        // layer writes.
        let plain: Vec<String> = ["L1", "L2", "L3"]
            .iter()
            .flat_map(|l| blob_ids(&convert(&dir, l, &format!("plain-{l}"), version, &[])))
            .collect();
        assert_eq!(blob_ids(&l3), plain, "v{version}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn lookup(image: &rafs_format::model::Image, path: &str) -> rafs_format::model::NodeId {
    let parts = path.split('/').filter(|p| !p.is_empty()).map(str::as_bytes);
    image.tree.lookup_components(parts).unwrap()
}

#[test]
fn the_blob_table_is_the_references_and_the_chunks_point_into_the_right_blob() {
    let dir = tempdir("reference");
    let l1 = convert(&dir, "L1", "l1", "6", &[]);
    let l2 = convert(&dir, "L2", "l2", "6", &["--parent-bootstrap", s(&l1)]);
    let l3 = convert(&dir, "L3", "l3", "6", &["--parent-bootstrap", s(&l2)]);
    for (ours, case) in [
        (&l2, "L2-v6-zstd-sha256-layered"),
        (&l3, "L3-v6-zstd-sha256-layered"),
    ] {
        let theirs = corpus().join("nydus-image").join(case).join("bootstrap");
        let theirs = rafs_format::decode(&std::fs::read(theirs).unwrap()).unwrap();
        let ours = rafs_format::decode(&std::fs::read(ours).unwrap()).unwrap();
        assert_eq!(ours.blobs, theirs.blobs, "{case}: blob table");
        // The reference leaves the new layer's chunks on blob 0 (the parent's); ours name the
        // blob that holds them.
        let own = u32::try_from(ours.blobs.len() - 1).unwrap();
        let added = lookup(&ours, "/data/added-in-l2.txt");
        assert!(ours
            .tree
            .inode_of(added)
            .chunks
            .iter()
            .all(|c| c.blob_index == 1));
        let in_theirs = lookup(&theirs, "/data/added-in-l2.txt");
        assert!(theirs
            .tree
            .inode_of(in_theirs)
            .chunks
            .iter()
            .all(|c| c.blob_index == 0));
        assert!(own >= 1);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn under_every_whiteout_spec_a_layered_build_equals_a_plain_build_then_a_merge() {
    for (spec, name) in [
        (WhiteoutSpec::Oci, "oci"),
        (WhiteoutSpec::Overlayfs, "overlayfs"),
        (WhiteoutSpec::None, "none"),
    ] {
        let dir = tempdir(&format!("spec-{name}"));
        let ws = ["--whiteout-spec", name];
        let l1 = convert(&dir, "L1", "l1", "6", &ws);
        let mut onto = ws.to_vec();
        onto.extend(["--parent-bootstrap", s(&l1)]);
        let layered = convert(&dir, "L2", "l2", "6", &onto);
        let l2 = convert(&dir, "L2", "plain-l2", "6", &ws);
        let decode = |p: &Path| rafs_format::decode(&std::fs::read(p).unwrap()).unwrap();
        let mut options = rafs_merge::MergeOptions::default();
        options.whiteout_spec = spec;
        let merged = rafs_merge::merge(
            vec![
                rafs_merge::Layer {
                    image: decode(&l1),
                    blob_id: None,
                },
                rafs_merge::Layer {
                    image: decode(&l2),
                    blob_id: None,
                },
            ],
            &options,
        )
        .unwrap();
        let merged_path = dir.join("merged");
        std::fs::write(&merged_path, rafs_format::encode(&merged).unwrap()).unwrap();
        let from_merge = unpacked_listing(&dir, &merged_path, "merged");
        let from_layered = unpacked_listing(&dir, &layered, "layered");
        // The merge keeps the builder's defaults on directories L2's tar leaves out (`etc`);
        // the layered build, which has the parent, shows the parent's, as overlay does.
        let implied = |l: &str| l.starts_with("/etc dir ");
        let strip = |t: &str| {
            t.lines()
                .filter(|l| !implied(l))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_listing(
            &format!("spec {name}"),
            &strip(&from_layered).join("\n"),
            &strip(&from_merge).join("\n"),
            &|_, _| false,
        );
        assert!(from_layered.contains("/etc dir 0750 0:42 "), "spec {name}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn the_kernel_mounts_an_exported_layered_stack_as_its_oci_model() {
    if let Some(why) = mount_unavailable() {
        rafs_testkit::skipped(format!("kernel mount of a layered build: {why}"));
        return;
    }
    let dir = tempdir("kernel");
    let l1 = convert(&dir, "L1", "l1", "6", &[]);
    let l2 = convert(&dir, "L2", "l2", "6", &["--parent-bootstrap", s(&l1)]);
    let l3 = convert(&dir, "L3", "l3", "6", &["--parent-bootstrap", s(&l2)]);
    let img = dir.join("export.img");
    ok(&[
        "export",
        "--block",
        "--verify",
        "-D",
        s(&dir.join("blobs")),
        "-o",
        s(&img),
        s(&l3),
    ]);
    let mounted = mount_erofs(&img, &[], &dir.join("mnt")).unwrap();
    let listing = treelist_dir(mounted.dir()).unwrap();
    drop(mounted);
    assert_listing(
        "kernel mount of L1+L2+L3",
        &listing,
        &expected("oci-L1-L2-L3"),
        &|_, _| false,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_parent_of_another_version_or_compressor_is_refused_naming_the_field() {
    let dir = tempdir("refused");
    let l1 = convert(&dir, "L1", "l1", "6", &[]);
    for (args, field) in [
        (vec!["--fs-version", "5"], "fs version is 6, the build's 5"),
        (
            vec!["--compressor", "lz4_block"],
            "compressor is zstd, the build's lz4_block",
        ),
        (
            vec!["--blob-inline-meta"],
            "--parent-bootstrap needs a separate bootstrap",
        ),
    ] {
        let out = dir.join("refused.boot");
        let blobs = dir.join("blobs");
        let mut a = vec![
            "convert",
            "-q",
            "--digester",
            "sha256",
            "--parent-bootstrap",
            s(&l1),
            "-D",
            s(&blobs),
            "-B",
            s(&out),
        ];
        if !args.contains(&"--compressor") {
            a.extend(["--compressor", "zstd"]);
        }
        a.extend(args.iter().copied());
        let tar = layer("L2");
        a.push(&tar);
        let r = rafs(&a);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(field), "{args:?}: {err}");
        assert!(!out.exists(), "{args:?}: left a bootstrap");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
