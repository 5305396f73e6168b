//! Whole-image conversion of images built by umoci (a tool we did not write) from rootfs
//! changes: whiteouts, an opaque directory, hard links, xattrs, omitted parents, a file
//! replaced by a directory. Each converted image is checked rule by rule (spec image.md §4.3),
//! against an independent merge of its layers' own bootstraps, and for determinism.

mod common;
use common::{sh, tempdir};
use oci_spec::image::ImageManifest;
use rafs_format::model::FsVersion;
use rafs_oci::convert::{
    ANNOTATION_FS_VERSION, ANNOTATION_NYDUS_BLOB, ANNOTATION_NYDUS_BOOTSTRAP,
    ANNOTATION_SOURCE_DIGEST,
};
use rafs_oci::layout::{digest_of, sha256_hex, Layout};
use rafs_oci::pack::MEDIA_TYPE_NYDUS_BLOB;
use rafs_oci::{convert_image, ConvertOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether umoci is here; CI installs it, so its absence elsewhere is reported, not hidden.
fn have_umoci() -> bool {
    let ok = Command::new("umoci")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        rafs_testkit::skipped("umoci is not installed");
    }
    ok
}

/// A three-layer image `img:v1` built by umoci in `dir`.
fn umoci_image(dir: &Path) -> Layout {
    sh(dir, include_str!("umoci_image.sh"));
    Layout::open(dir.join("img")).unwrap()
}

/// A umoci image in a fresh directory, converted (v6) into its `out` layout under `tag`;
/// `None`, after saying SKIPPED, where umoci is missing.
fn converted(name: &str, tag: &str) -> Option<(PathBuf, Layout, Layout, rafs_oci::ConvertReport)> {
    if !have_umoci() {
        return None;
    }
    let dir = tempdir(name);
    let source = umoci_image(&dir);
    let target = Layout::create(dir.join("out")).unwrap();
    let report = convert_image(
        &source,
        Some("v1"),
        &target,
        tag,
        &ConvertOptions::new(FsVersion::V6),
    )
    .unwrap();
    Some((dir, source, target, report))
}

fn manifest_of(layout: &Layout, tag: &str) -> (String, ImageManifest) {
    let d = layout.resolve(Some(tag)).unwrap();
    let digest = d.digest().to_string();
    (
        digest.clone(),
        layout.read_json(&digest, "manifest").unwrap(),
    )
}

fn annotation<'a>(d: &'a oci_spec::image::Descriptor, key: &str) -> Option<&'a str> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

#[test]
fn a_umoci_image_converts_to_a_nydus_image_that_meets_every_rule() {
    let Some((dir, source, target, report)) = converted("rules", "v1-nydus") else {
        return;
    };
    let (src_digest, src_manifest) = manifest_of(&source, "v1");
    let (digest, manifest) = manifest_of(&target, "v1-nydus");
    assert_eq!(
        (report.source.as_str(), report.target.as_str()),
        (src_digest.as_str(), digest.as_str())
    );
    assert_eq!(report.manifests.len(), 1);
    assert_eq!(
        report.manifests[0].layers.len(),
        src_manifest.layers().len()
    );
    let layers = manifest.layers();
    assert_eq!(
        layers.len(),
        src_manifest.layers().len() + 1,
        "one blob layer per source layer, then the bootstrap"
    );
    // R1, R2: the last layer is the gzip bootstrap layer, annotated, with image/image.boot.
    let boot = layers.last().unwrap();
    assert_eq!(annotation(boot, ANNOTATION_NYDUS_BOOTSTRAP), Some("true"));
    assert_eq!(annotation(boot, ANNOTATION_FS_VERSION), Some("6"));
    assert_eq!(
        boot.media_type().to_string(),
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let gz = target.read_blob(boot.digest().as_ref(), 1 << 30).unwrap();
    let mut tar_bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(gz.as_slice()),
        &mut tar_bytes,
    )
    .unwrap();
    let entries = tar_entries(&tar_bytes);
    // R4, R8: every other layer is a Nydus blob layer, annotated; diff_id = its digest.
    let config: Value = target
        .read_json(manifest.config().digest().as_ref(), "config")
        .unwrap();
    let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    // R3: one diff_id per layer; the bootstrap's is the uncompressed tar's digest.
    assert_eq!(diff_ids.len(), layers.len());
    assert_eq!(
        diff_ids.last().copied(),
        Some(digest_of(&tar_bytes).as_str())
    );
    let mut blob_hexes = Vec::new();
    for (i, l) in layers[..layers.len() - 1].iter().enumerate() {
        assert_eq!(l.media_type().to_string(), MEDIA_TYPE_NYDUS_BLOB);
        assert_eq!(annotation(l, ANNOTATION_NYDUS_BLOB), Some("true"));
        assert_eq!(diff_ids[i], l.digest().to_string());
        blob_hexes.push(sha256_hex(l.digest().as_ref()).unwrap().to_owned());
    }
    // §2.1: exactly image/, image/image.boot, and a .blob.meta per layer that stores chunks.
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..2], ["image", "image/image.boot"]);
    for n in &names[2..] {
        let hex = n
            .strip_prefix("image/")
            .and_then(|n| n.strip_suffix(".blob.meta"))
            .unwrap();
        assert!(blob_hexes.iter().any(|h| h == hex), "{n} names no layer");
    }
    check_merged_bootstrap(&target, &entries[1].1, &blob_hexes);
    // History: the source's entries, then the converter's.
    let history = config["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["comment"], "Nydus Bootstrap Layer");
    let _ = std::fs::remove_dir_all(&dir);
}

/// R5, R6: a valid merged v6 bootstrap whose every blob id is a blob layer's digest, equal to
/// merging the layers' own inlined bootstraps independently of the converter.
fn check_merged_bootstrap(target: &Layout, merged: &[u8], blob_hexes: &[String]) {
    let image = rafs_format::decode(merged).unwrap();
    assert!(!image.blobs.is_empty());
    for b in &image.blobs {
        assert!(
            blob_hexes.contains(&b.blob_id),
            "blob id {} is not a layer of the manifest",
            b.blob_id
        );
    }
    // The same as merging the layers' own inlined bootstraps independently of the converter.
    let independent: Vec<rafs_merge::Layer> = blob_hexes
        .iter()
        .map(|hex| {
            let blob = target.read_blob(&format!("sha256:{hex}"), 1 << 30).unwrap();
            let boot = rafs_oci::bootstrap_of(&blob[..]).unwrap();
            rafs_merge::Layer {
                image: rafs_format::decode(&boot).unwrap(),
                blob_id: Some(hex.clone()),
            }
        })
        .collect();
    let mut mo = rafs_merge::MergeOptions::default();
    mo.prefetch_patterns = Some(vec!["/".into()]);
    let mut expected = rafs_merge::merge(independent, &mo).unwrap();
    // Directories a layer left out take the lower layer's attributes in the converted image
    // (checked against umoci and the kernel elsewhere); everything else must be identical.
    let ours = rafs_format::decode(merged).unwrap();
    for (theirs, mine) in expected.tree.inodes.iter_mut().zip(&ours.tree.inodes) {
        if theirs.is_dir() && mine.is_dir() {
            (theirs.mode, theirs.uid, theirs.gid) = (mine.mode, mine.uid, mine.gid);
            (theirs.mtime, theirs.mtime_nsec, theirs.xattrs) =
                (mine.mtime, mine.mtime_nsec, mine.xattrs.clone());
        }
    }
    let expected = rafs_format::encode(&expected).unwrap();
    assert!(
        expected == *merged,
        "merged bootstrap differs from an independent merge of the layers"
    );
}

/// (name, content) of every tar entry.
fn tar_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            (name, data)
        })
        .collect()
}

#[test]
fn conversion_is_deterministic_and_a_bad_blob_leaves_the_target_as_it_was() {
    if !have_umoci() {
        return;
    }
    let dir = tempdir("determinism");
    let source = umoci_image(&dir);
    let mut digests = Vec::new();
    for threads in [1, 2, 4] {
        let target = Layout::create(dir.join(format!("out{threads}"))).unwrap();
        let mut options = ConvertOptions::new(FsVersion::V6);
        options.build.threads = threads;
        convert_image(&source, Some("v1"), &target, "n", &options).unwrap();
        digests.push(std::fs::read(target.root().join("index.json")).unwrap());
    }
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "index.json differs between thread counts"
    );
    // One flipped byte in the middle layer: a typed error naming the blob; index.json intact.
    let (_, m) = manifest_of(&source, "v1");
    let victim = source.blob_path(m.layers()[1].digest().as_ref()).unwrap();
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&victim, &bytes).unwrap();
    let target = Layout::create(dir.join("out1")).unwrap();
    let before = std::fs::read(target.root().join("index.json")).unwrap();
    let e = convert_image(
        &source,
        Some("v1"),
        &target,
        "broken",
        &ConvertOptions::new(FsVersion::V6),
    )
    .unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains(&m.layers()[1].digest().to_string()),
        "{shown}"
    );
    assert_eq!(
        std::fs::read(target.root().join("index.json")).unwrap(),
        before
    );
    let leftovers: Vec<_> = std::fs::read_dir(target.root().join("blobs/sha256"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".rafs-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary blobs left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One line per path below `root` of a real directory: type, mode, owner, size, link target,
/// content digest, `user.` xattrs. The root itself is left out, as `nydusify check` does.
fn listing_of_dir(root: &Path) -> Vec<String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
            let ft = m.file_type();
            let (kind, extra) = if ft.is_dir() {
                stack.push(p.clone());
                ("dir", String::new())
            } else if ft.is_symlink() {
                ("sym", std::fs::read_link(&p).unwrap().display().to_string())
            } else if ft.is_file() {
                let content = digest_of(&std::fs::read(&p).unwrap());
                ("reg", format!("{} {content} links={}", m.len(), m.nlink()))
            } else if ft.is_fifo() {
                ("fifo", String::new())
            } else {
                ("dev", format!("{:x}", m.rdev()))
            };
            let xattrs = user_xattrs(&p);
            out.push(format!(
                "{rel} {kind} {:o} {}:{} {extra} {xattrs}",
                m.mode() & 0o7777,
                m.uid(),
                m.gid()
            ));
        }
    }
    out.sort();
    out
}

/// `user.` xattrs of a path (python3 reads them; std has no xattr call).
fn user_xattrs(p: &Path) -> String {
    let o = Command::new("python3")
        .arg("-c")
        .arg("import os,sys\np=sys.argv[1]\nprint(','.join(sorted(n+'='+os.getxattr(p,n,follow_symlinks=False).hex() for n in os.listxattr(p,follow_symlinks=False) if n.startswith('user.'))))")
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// The same lines for a converted image, read through our reader from the layout's blobs.
fn listing_of_image(target: &Layout, merged: &[u8]) -> Vec<String> {
    use rafs_format::model::mode;
    let image = rafs_format::decode(merged).unwrap();
    let reader =
        rafs_reader::ImageReader::open_dir(image, &target.root().join("blobs/sha256")).unwrap();
    let mut out = Vec::new();
    for e in reader.image().tree.entries() {
        if e.node == rafs_format::model::ROOT {
            continue;
        }
        let i = e.inode;
        let (kind, extra) = match i.file_type() {
            mode::S_IFDIR => ("dir", String::new()),
            mode::S_IFLNK => ("sym", String::from_utf8_lossy(&i.symlink).into_owned()),
            mode::S_IFREG => {
                let content = digest_of(&reader.read_file(e.node).unwrap());
                ("reg", format!("{} {content} links={}", i.size, i.nlink))
            }
            mode::S_IFIFO => ("fifo", String::new()),
            _ => ("dev", format!("{:x}", i.rdev)),
        };
        let mut xattrs: Vec<String> = i
            .xattrs
            .iter()
            .filter(|x| x.name.starts_with(b"user."))
            .map(|x| {
                format!(
                    "{}={}",
                    String::from_utf8_lossy(&x.name),
                    rafs_format::hex(&x.value)
                )
            })
            .collect();
        xattrs.sort();
        let path = String::from_utf8_lossy(&e.path).into_owned();
        out.push(format!(
            "{path} {kind} {:o} {}:{} {extra} {}",
            i.mode & 0o7777,
            i.uid,
            i.gid,
            xattrs.join(",")
        ));
    }
    out.sort();
    out
}

#[test]
fn the_converted_filesystem_is_what_umoci_unpacks() {
    let Some((dir, _, target, _)) = converted("filesystem", "n") else {
        return;
    };
    sh(&dir, "umoci unpack --image img:v1 truth >/dev/null");
    let (_, manifest) = manifest_of(&target, "n");
    let gz = target
        .read_blob(manifest.layers().last().unwrap().digest().as_ref(), 1 << 30)
        .unwrap();
    let mut tar_bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(gz.as_slice()),
        &mut tar_bytes,
    )
    .unwrap();
    let merged = tar_entries(&tar_bytes).swap_remove(1).1;
    let ours = listing_of_image(&target, &merged);
    let truth = listing_of_dir(&dir.join("truth/rootfs"));
    assert!(
        truth.iter().any(|l| l.starts_with("/opaque/new/f reg"))
            && !truth.iter().any(|l| l.starts_with("/gone"))
    );
    assert!(truth.iter().any(|l| l.starts_with("/data/a reg")
        && l.contains("links=2")
        && l.contains("user.note=7631")));
    assert_eq!(ours, truth);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A registry process on 127.0.0.1, stopped when dropped.
struct Registry {
    child: std::process::Child,
    port: u16,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Debian's docker-registry with the config in testdata/, storing under `dir`.
fn start_registry(dir: &Path) -> Option<Registry> {
    if Command::new("docker-registry")
        .arg("--version")
        .output()
        .is_err()
    {
        rafs_testkit::skipped("docker-registry is not installed");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/registry/config.yml");
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(config)
        .env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", dir)
        .env("REGISTRY_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let registry = Registry { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(registry);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("docker-registry did not listen on port {port}");
}

#[test]
fn a_real_registry_takes_the_converted_image_byte_for_byte() {
    let Some((dir, _, target, _)) = converted("registry", "v1-nydus") else {
        return;
    };
    let Some(registry) = start_registry(&dir.join("registry")) else {
        return;
    };
    let remote = format!("docker://127.0.0.1:{}/rafs/x:v1-nydus", registry.port);
    sh(
        &dir,
        &format!(
            "skopeo copy -q --dest-tls-verify=false --preserve-digests oci:out:v1-nydus {remote}"
        ),
    );
    let raw = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw", &remote])
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    let (digest, _) = manifest_of(&target, "v1-nydus");
    assert_eq!(
        digest_of(&raw.stdout),
        digest,
        "the registry serves our manifest byte for byte"
    );
    // Back into a new layout: every blob arrives under its digest and verifies.
    sh(
        &dir,
        &format!(
            "skopeo copy -q --src-tls-verify=false --preserve-digests {remote} oci:back:v1-nydus"
        ),
    );
    let back = Layout::open(dir.join("back")).unwrap();
    let (back_digest, manifest) = manifest_of(&back, "v1-nydus");
    assert_eq!(back_digest, digest);
    for l in manifest.layers() {
        back.read_blob(l.digest().as_ref(), 1 << 30).unwrap();
    }
    back.read_blob(manifest.config().digest().as_ref(), 1 << 20)
        .unwrap();
    drop(registry);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The bootstrap layer's diff_id of the image tagged `tag`.
fn bootstrap_diff_id(layout: &Layout, tag: &str) -> String {
    let (_, manifest) = manifest_of(layout, tag);
    let config: Value = layout
        .read_json(manifest.config().digest().as_ref(), "config")
        .unwrap();
    config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn oci_archive_and_docker_archive_inputs_made_by_skopeo_convert_to_the_same_filesystem() {
    if !have_umoci() {
        return;
    }
    let dir = tempdir("archives");
    let source = umoci_image(&dir);
    sh(&dir, "skopeo copy -q oci:img:v1 oci-archive:o.tar:v1 && skopeo copy -q oci:img:v1 docker-archive:d.tar:rafs/x:v1");
    let target = Layout::create(dir.join("out")).unwrap();
    let options = ConvertOptions::new(FsVersion::V6);
    convert_image(&source, Some("v1"), &target, "from-dir", &options).unwrap();
    let archives = [
        (
            format!("oci-archive:{}:v1", dir.join("o.tar").display()),
            "from-oci-archive",
        ),
        (
            format!("docker-archive:{}", dir.join("d.tar").display()),
            "from-docker-archive",
        ),
    ];
    for (name, tag) in archives {
        let image_ref: rafs_oci::ImageRef = name.parse().unwrap();
        let scratch = dir.join(format!("scratch-{tag}"));
        let (layout, reference) = image_ref.open(&scratch).unwrap();
        convert_image(&layout, reference.as_deref(), &target, tag, &options).unwrap();
    }
    // The same layers give the same Nydus blob layers, so the same bootstrap layer.
    let expected = bootstrap_diff_id(&target, "from-dir");
    assert_eq!(bootstrap_diff_id(&target, "from-oci-archive"), expected);
    assert_eq!(bootstrap_diff_id(&target, "from-docker-archive"), expected);
    assert_eq!(
        manifest_of(&target, "from-oci-archive").0,
        manifest_of(&target, "from-dir").0
    );
    let (_, docker) = manifest_of(&target, "from-docker-archive");
    assert_eq!(
        docker.layers().last().unwrap().media_type().to_string(),
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_archive_member_leaving_the_archive_is_refused_before_anything_is_written() {
    let dir = tempdir("dotdot");
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    // The tar crate refuses to write `..` through set_path; the raw name field takes it.
    h.as_gnu_mut().unwrap().name[..14].copy_from_slice(b"../escaped.txt");
    h.set_cksum();
    tar.append(&h, &b"bad"[..]).unwrap();
    std::fs::write(dir.join("evil.tar"), tar.into_inner().unwrap()).unwrap();
    let image_ref: rafs_oci::ImageRef = format!("oci-archive:{}", dir.join("evil.tar").display())
        .parse()
        .unwrap();
    let scratch = dir.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let e = image_ref.open(&scratch).unwrap_err();
    assert!(matches!(e, rafs_oci::Error::Unsupported { .. }), "{e}");
    assert!(e.to_string().contains("leaves the archive"), "{e}");
    assert!(!dir.join("escaped.txt").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_index_of_two_platforms_converts_each_and_a_nydus_image_passes_unchanged() {
    if !have_umoci() {
        return;
    }
    let dir = tempdir("index");
    let source = umoci_image(&dir);
    let (digest, _) = manifest_of(&source, "v1");
    let entry = |arch: &str| {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": std::fs::metadata(source.blob_path(&digest).unwrap()).unwrap().len(),
            "platform": {"os": "linux", "architecture": arch},
        })
    };
    let index = serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [entry("amd64"), entry("arm64")]});
    let (index_digest, index_size) = source.write_json(&index).unwrap();
    let mut top: Value = serde_json::to_value(source.index().unwrap()).unwrap();
    top["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": index_digest,
            "size": index_size,
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }));
    source
        .write_index(&serde_json::from_value(top).unwrap())
        .unwrap();
    let target = Layout::create(dir.join("out")).unwrap();
    let options = ConvertOptions::new(FsVersion::V6);
    let report = convert_image(&source, Some("multi"), &target, "multi-nydus", &options).unwrap();
    assert_eq!(report.manifests.len(), 2);
    let new_index: Value = target.read_json(&report.target, "index").unwrap();
    let platforms: Vec<&str> = new_index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64"]);
    // skopeo reads an index into Go structs and writes it again before pushing; it keeps our
    // digest only if that gives back our bytes (field order, escaping), which it does.
    if let Some(registry) = start_registry(&dir.join("registry")) {
        let remote = format!("docker://127.0.0.1:{}/rafs/multi:n", registry.port);
        sh(
            &dir,
            &format!("skopeo copy -q --all --dest-tls-verify=false --preserve-digests oci:out:multi-nydus {remote}"),
        );
        let raw = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--raw", &remote])
            .output()
            .unwrap();
        assert_eq!(digest_of(&raw.stdout), report.target);
    }
    // One platform chosen: that manifest alone, not an index.
    let mut arm = ConvertOptions::new(FsVersion::V6);
    arm.platforms = vec!["linux/arm64".into()];
    let one = convert_image(&source, Some("multi"), &target, "arm64-nydus", &arm).unwrap();
    assert_eq!(one.manifests.len(), 1);
    assert_eq!(manifest_of(&target, "arm64-nydus").0, one.target);
    arm.platforms = vec!["linux/s390x".into()];
    assert!(matches!(
        convert_image(&source, Some("multi"), &target, "none", &arm),
        Err(rafs_oci::Error::Unsupported { .. })
    ));
    // A Nydus image passes unchanged: same manifest digest, blobs copied.
    let single = convert_image(&source, Some("v1"), &target, "v1-nydus", &options).unwrap();
    let again = Layout::create(dir.join("again")).unwrap();
    let copied = convert_image(&target, Some("v1-nydus"), &again, "same", &options).unwrap();
    assert!(copied.manifests[0].already_nydus);
    assert_eq!(copied.target, single.target);
    let (_, manifest) = manifest_of(&again, "same");
    for l in manifest.layers() {
        again.read_blob(l.digest().as_ref(), 1 << 30).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rewrites the image tagged `tag` as `new_tag`, after `edit` changed its manifest and config.
fn edited(
    layout: &Layout,
    tag: &str,
    new_tag: &str,
    edit: impl FnOnce(&Layout, &mut Value, &mut Value),
) {
    let (_, manifest) = manifest_of(layout, tag);
    let mut manifest = serde_json::to_value(&manifest).unwrap();
    let mut config: Value = layout
        .read_json(manifest["config"]["digest"].as_str().unwrap(), "config")
        .unwrap();
    edit(layout, &mut manifest, &mut config);
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

/// The rules of `check_image` that fail, by name.
fn failing(layout: &Layout, tag: &str, source: &Layout) -> Vec<&'static str> {
    let report = rafs_oci::check_image(layout, Some(tag), Some((source, Some("v1")))).unwrap();
    report
        .rules
        .iter()
        .filter(|r| !r.problems.is_empty())
        .map(|r| r.rule)
        .collect()
}

/// A new bootstrap layer holding `bootstrap`, put in place of the manifest's last layer.
fn replace_bootstrap(layout: &Layout, manifest: &mut Value, config: &mut Value, bootstrap: &[u8]) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o444);
    h.set_size(bootstrap.len() as u64);
    tar.append_data(&mut h, "image/image.boot", bootstrap)
        .unwrap();
    let tar = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    let digest = layout.write_blob(&gz).unwrap();
    let last = manifest["layers"]
        .as_array_mut()
        .unwrap()
        .last_mut()
        .unwrap();
    last["digest"] = Value::from(digest);
    last["size"] = Value::from(gz.len());
    let ids = config["rootfs"]["diff_ids"].as_array_mut().unwrap();
    *ids.last_mut().unwrap() = Value::from(digest_of(&tar));
}

#[test]
fn check_image_passes_a_converted_image_and_names_the_rule_each_fault_breaks() {
    let Some((dir, source, target, _)) = converted("check", "good") else {
        return;
    };
    let report = rafs_oci::check_image(&target, Some("good"), Some((&source, Some("v1")))).unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.rules.len(), 3);
    // A diff_id that is not its layer's digest, and a layer without its annotation.
    edited(&target, "good", "bad-diff-id", |_, _, c| {
        c["rootfs"]["diff_ids"][0] = Value::from(format!("sha256:{}", "0".repeat(64)))
    });
    assert_eq!(failing(&target, "bad-diff-id", &source), ["manifest"]);
    edited(&target, "good", "no-annotation", |_, m, _| {
        m["layers"][0]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(ANNOTATION_NYDUS_BLOB);
    });
    assert_eq!(failing(&target, "no-annotation", &source), ["manifest"]);
    // A blob id renamed in the merged bootstrap: no layer of the manifest has it.
    edited(&target, "good", "renamed-blob", |l, m, c| {
        let boot = rafs_oci::check::bootstrap_of_manifest(l, m).unwrap();
        let mut image = rafs_format::decode(&boot).unwrap();
        image.blobs[0].blob_id = "f".repeat(64);
        replace_bootstrap(l, m, c, &rafs_format::encode(&image).unwrap());
    });
    // (Its files then cannot be read either, so the filesystem rule fails too.)
    assert_eq!(failing(&target, "renamed-blob", &source)[0], "bootstrap");
    // One flipped byte in a chunk of a blob layer: its chunk no longer matches its digest.
    let (_, manifest) = manifest_of(&target, "good");
    let boot =
        rafs_oci::check::bootstrap_of_manifest(&target, &serde_json::to_value(&manifest).unwrap())
            .unwrap();
    let image = rafs_format::decode(&boot).unwrap();
    let big = image
        .tree
        .lookup_components([b"data".as_slice(), b"big"])
        .unwrap();
    let chunk = image.tree.inode_of(big).chunks[0];
    let path = target
        .blob_path(&format!(
            "sha256:{}",
            image.blobs[chunk.blob_index as usize].blob_id
        ))
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[usize::try_from(chunk.compressed_offset).unwrap() + 10] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(failing(&target, "good", &source)[0], "bootstrap");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_sources_get_typed_errors_and_leave_the_target_index_as_it_was() {
    if !have_umoci() {
        return;
    }
    let dir = tempdir("bad-sources");
    let source = umoci_image(&dir);
    edited(&source, "v1", "foreign", |_, m, _| {
        m["layers"][0]["mediaType"] =
            Value::from("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip");
    });
    edited(&source, "v1", "unknown", |_, m, _| {
        m["layers"][1]["mediaType"] = Value::from("application/x-not-a-layer")
    });
    edited(&source, "v1", "truncated", |l, m, _| {
        let gz = l
            .read_blob(m["layers"][0]["digest"].as_str().unwrap(), 1 << 30)
            .unwrap();
        let half = &gz[..gz.len() / 2];
        m["layers"][0]["digest"] = Value::from(l.write_blob(half).unwrap());
        m["layers"][0]["size"] = Value::from(half.len());
    });
    let mut index = serde_json::to_value(source.index().unwrap()).unwrap();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{}", "e".repeat(64)), "size": 10,
            "annotations": {"org.opencontainers.image.ref.name": "missing"},
        }));
    source
        .write_index(&serde_json::from_value(index).unwrap())
        .unwrap();
    let target = Layout::create(dir.join("out")).unwrap();
    let options = ConvertOptions::new(FsVersion::V6);
    convert_image(&source, Some("v1"), &target, "kept", &options).unwrap();
    let before = std::fs::read(target.root().join("index.json")).unwrap();
    let convert =
        |tag: &str| convert_image(&source, Some(tag), &target, tag, &options).unwrap_err();
    assert!(
        matches!(convert("foreign"), rafs_oci::Error::Unsupported { ref reason, .. } if reason.contains("foreign"))
    );
    assert!(
        matches!(convert("unknown"), rafs_oci::Error::Unsupported { ref reason, .. } if reason.contains("unknown layer media type"))
    );
    assert!(
        matches!(
            convert("truncated"),
            rafs_oci::Error::Layer { index: 0, .. }
        ),
        "{}",
        convert("truncated")
    );
    assert!(
        matches!(convert("missing"), rafs_oci::Error::Blob { ref reason, .. } if reason.contains("missing"))
    );
    assert_eq!(
        std::fs::read(target.root().join("index.json")).unwrap(),
        before
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn each_nydus_blob_layer_is_what_a_single_layer_convert_writes() {
    let Some((dir, source, _, report)) = converted("per-layer", "n") else {
        return;
    };
    // `rafs convert --blob-inline-meta --features blob-toc --whiteout-spec none` with prefetch
    // `/`, i.e. the Go converter's options, on each source layer alone.
    for layer in &report.manifests[0].layers {
        let gz = source.read_blob(&layer.source_digest, 1 << 30).unwrap();
        let alone = rafs_tar_build::build_layer(
            gz.as_slice(),
            &rafs_tar_build::BuildOptions::go_converter(),
            Vec::new(),
        )
        .unwrap();
        assert_eq!(
            digest_of(&alone.sink),
            layer.digest,
            "layer {}",
            layer.source_digest
        );
        assert_eq!(alone.sink.len() as u64, layer.size);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A one-layer image `img:base` whose only file is a copy of `img:v1`'s `/data/big`.
const DICT_BASE: &str = "umoci new --image img:base
umoci unpack --image img:base c >/dev/null
cp b/rootfs/data/big c/rootfs/big-copy
umoci repack --image img:base c";

#[test]
fn a_chunk_dictionary_image_stores_shared_chunks_once_and_its_blob_follows_the_layers() {
    if !have_umoci() {
        return;
    }
    let dir = tempdir("dict");
    let source = umoci_image(&dir);
    sh(&dir, DICT_BASE);
    let dict_layout = Layout::create(dir.join("dict")).unwrap();
    let options = ConvertOptions::new(FsVersion::V6);
    let base = convert_image(&source, Some("base"), &dict_layout, "dict", &options).unwrap();
    let base_blob = base.manifests[0].layers[0].digest.clone();
    let base_size = base.manifests[0].layers[0].size;
    assert!(base_size > 3_000_000, "the dictionary stores /big-copy");

    let target = Layout::create(dir.join("out")).unwrap();
    let mut with_dict = options.clone();
    with_dict.chunk_dict =
        Some(rafs_oci::ChunkDictionary::from_image(&dict_layout, Some("dict")).unwrap());
    let report = convert_image(&source, Some("v1"), &target, "n", &with_dict).unwrap();
    let m = &report.manifests[0];
    assert_eq!(m.dict_blobs, std::slice::from_ref(&base_blob));
    assert!(
        m.layers[0].size < 100_000,
        "layer 0 refers to /data/big's chunks in the dictionary: {} bytes",
        m.layers[0].size
    );
    // Spec §1.5/§6.2: the dictionary blob comes after the layer blobs, as a Nydus blob layer
    // whose diff_id is its digest, and it is in the target layout.
    let (_, manifest) = manifest_of(&target, "n");
    let layers = manifest.layers();
    assert_eq!(layers.len(), 5);
    assert_eq!(layers[3].digest().to_string(), base_blob);
    assert_eq!(layers[3].size(), base_size);
    assert_eq!(layers[3].media_type().to_string(), MEDIA_TYPE_NYDUS_BLOB);
    assert_eq!(annotation(&layers[3], ANNOTATION_NYDUS_BLOB), Some("true"));
    target.read_blob(&base_blob, 1 << 30).unwrap();
    let config: Value = target
        .read_json(manifest.config().digest().as_ref(), "config")
        .unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][3], base_blob.as_str());
    // Every chunk reads back, from the layer blobs and the dictionary's, and every file is
    // the source's.
    let check = rafs_oci::check_image(&target, Some("n"), Some((&source, Some("v1")))).unwrap();
    assert!(check.ok(), "{:?}", check.rules);

    // A bootstrap-file dictionary brings no blobs: into a layout without them the conversion
    // fails naming the blob, and the layout's index is as it was.
    let fresh = Layout::create(dir.join("fresh")).unwrap();
    let index_before = std::fs::read(fresh.root().join("index.json")).unwrap();
    let dict_manifest: Value = dict_layout.read_json(&base.target, "manifest").unwrap();
    let boot = rafs_oci::check::bootstrap_of_manifest(&dict_layout, &dict_manifest).unwrap();
    with_dict.chunk_dict = Some(rafs_oci::ChunkDictionary::from_bootstrap(&boot).unwrap());
    match convert_image(&source, Some("v1"), &fresh, "n", &with_dict) {
        Err(rafs_oci::Error::Blob { digest, .. }) => assert_eq!(digest, base_blob),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        std::fs::read(fresh.root().join("index.json")).unwrap(),
        index_before
    );
    // A dictionary given only to the layer builds would leave its blobs unlisted: refused.
    let mut hidden = options.clone();
    hidden.build.chunk_dict = Some(with_dict.chunk_dict.as_ref().unwrap().chunks().clone());
    assert!(matches!(
        convert_image(&source, Some("v1"), &fresh, "n", &hidden),
        Err(rafs_oci::Error::Unsupported { .. })
    ));
    // With the blob there, it gives the same image as the image dictionary did.
    fresh
        .copy_blob_from(&dict_layout, &base_blob, base_size)
        .unwrap();
    let again = convert_image(&source, Some("v1"), &fresh, "n", &with_dict).unwrap();
    assert_eq!(again.target, report.target);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn merge_platform_lists_the_oci_manifest_first_then_the_nydus_one_and_a_registry_takes_it() {
    if !have_umoci() {
        return;
    }
    let dir = tempdir("merge-platform");
    let source = umoci_image(&dir);
    let (original, _) = manifest_of(&source, "v1");
    let src_manifest: Value = source.read_json(&original, "manifest").unwrap();
    let src_config: Value = source
        .read_json(src_manifest["config"]["digest"].as_str().unwrap(), "config")
        .unwrap();
    let target = Layout::create(dir.join("out")).unwrap();
    let mut options = ConvertOptions::new(FsVersion::V6);
    options.merge_platform = true;
    let report = convert_image(&source, Some("v1"), &target, "merged", &options).unwrap();
    let index: Value = target.read_json(&report.target, "index").unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let (oci, nydus) = (&entries[0], &entries[1]);
    // The source has no platform in index.json: both entries take its config's.
    let platform =
        serde_json::json!({"os": src_config["os"], "architecture": src_config["architecture"]});
    assert_eq!(oci["platform"], platform);
    assert_eq!(nydus["platform"], platform);
    assert_eq!(
        nydus["artifactType"],
        "application/vnd.nydus.image.manifest.v1+json"
    );
    assert!(oci.get("artifactType").is_none());
    assert_eq!(
        oci["annotations"][ANNOTATION_SOURCE_DIGEST],
        original.as_str()
    );
    assert_eq!(
        nydus["digest"],
        report.manifests[0].target_manifest.as_str()
    );
    let nydus_manifest: Value = target
        .read_json(nydus["digest"].as_str().unwrap(), "manifest")
        .unwrap();
    assert_eq!(
        nydus_manifest["config"]["mediaType"],
        "application/vnd.nydus.image.config.v1+json"
    );
    check_oci_entry(&target, oci, &original, &src_manifest, &src_config);
    // check-image takes the entry marked Nydus, as the snapshotter's index detection does.
    let check =
        rafs_oci::check_image(&target, Some("merged"), Some((&source, Some("v1")))).unwrap();
    assert!(check.ok(), "{:?}", check.rules);
    assert_eq!(check.manifest, report.manifests[0].target_manifest);
    push_through_a_registry(&dir, &target, &report.target, oci, nydus);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The OCI entry of a merge-platform index: the empty layer, then the source's layers, all in
/// the target; its config has the empty layer's diff_id and history entry first.
fn check_oci_entry(
    target: &Layout,
    oci: &Value,
    original: &str,
    src_manifest: &Value,
    src_config: &Value,
) {
    let oci_manifest: Value = target
        .read_json(oci["digest"].as_str().unwrap(), "manifest")
        .unwrap();
    let layers = oci_manifest["layers"].as_array().unwrap();
    let src_layers = src_manifest["layers"].as_array().unwrap();
    assert_eq!(&layers[1..], src_layers.as_slice());
    for l in src_layers {
        target
            .read_blob(l["digest"].as_str().unwrap(), 1 << 30)
            .unwrap();
    }
    assert_eq!(
        layers[0]["digest"],
        "sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1"
    );
    assert_eq!(layers[0]["size"], 32);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(
        layers[0]["annotations"]["containerd.io/snapshot/nydus-empty-layer"],
        "true"
    );
    assert_eq!(
        oci_manifest["annotations"][ANNOTATION_SOURCE_DIGEST],
        original
    );
    // The empty layer, unpacked here by flate2: an empty tar (1024 zero bytes), whose sha256
    // is the diff_id put first in the config.
    let gz = target
        .read_blob(layers[0]["digest"].as_str().unwrap(), 64)
        .unwrap();
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut tar).unwrap();
    assert_eq!(tar, vec![0u8; 1024]);
    let config: Value = target
        .read_json(oci_manifest["config"]["digest"].as_str().unwrap(), "config")
        .unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(diff_ids[0], digest_of(&tar).as_str());
    assert_eq!(
        &diff_ids[1..],
        src_config["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .as_slice()
    );
    let history = config["history"].as_array().unwrap();
    assert_eq!(
        history[0],
        serde_json::json!({"created_by": "Nydus Converter", "comment": "Nydus Empty Layer"})
    );
    assert_eq!(
        &history[1..],
        src_config["history"].as_array().unwrap().as_slice()
    );
}

/// Pushes a merge-platform index to a real registry and reads it back.
fn push_through_a_registry(dir: &Path, target: &Layout, index: &str, oci: &Value, nydus: &Value) {
    // A real registry takes the whole index and serves it back byte for byte. Debian's
    // skopeo (1.9) reads an index into image-spec 1.0 structs, which have no artifactType,
    // so it cannot copy this index with its digest kept: it pushes the two manifests, and the
    // index goes up as any client puts a manifest (PUT /v2/<name>/manifests/<tag>).
    let Some(registry) = start_registry(&dir.join("registry")) else {
        return;
    };
    let repo = format!("127.0.0.1:{}/rafs/x", registry.port);
    let mut top: Value = serde_json::to_value(target.index().unwrap()).unwrap();
    for (i, d) in [oci, nydus].into_iter().enumerate() {
        let mut d = d.clone();
        d["annotations"] =
            serde_json::json!({"org.opencontainers.image.ref.name": format!("part{i}")});
        top["manifests"].as_array_mut().unwrap().push(d);
    }
    target
        .write_index(&serde_json::from_value(top).unwrap())
        .unwrap();
    for i in 0..2 {
        sh(
            dir,
            &format!(
                "skopeo copy -q --dest-tls-verify=false --preserve-digests oci:out:part{i} docker://{repo}:part{i}"
            ),
        );
    }
    let index_file = target.blob_path(index).unwrap();
    sh(
        dir,
        &format!(
            "curl -sSf -X PUT -H 'Content-Type: application/vnd.oci.image.index.v1+json' \
             --data-binary @{} http://{}/manifests/merged",
            index_file.display(),
            repo.replacen('/', "/v2/", 1)
        ),
    );
    let raw = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--raw",
            &format!("docker://{repo}:merged"),
        ])
        .output()
        .unwrap();
    assert!(
        raw.status.success(),
        "{}",
        String::from_utf8_lossy(&raw.stderr)
    );
    assert_eq!(digest_of(&raw.stdout), index);
    // The Nydus entry, pulled back by its digest, arrives whole.
    sh(
        dir,
        &format!(
            "skopeo copy -q --src-tls-verify=false --preserve-digests docker://{repo}@{} oci:back:n",
            nydus["digest"].as_str().unwrap()
        ),
    );
    let back = Layout::open(dir.join("back")).unwrap();
    let (back_digest, m) = manifest_of(&back, "n");
    assert_eq!(back_digest, nydus["digest"].as_str().unwrap());
    for l in m.layers() {
        back.read_blob(l.digest().as_ref(), 1 << 30).unwrap();
    }
    drop(registry);
}

/// OCI ref (zran, `nydusify --oci-ref`): each Nydus blob layer holds only metadata and names
/// its original gzip layer, which the target holds unreferenced; every rule of `check_image`
/// holds (the bootstrap rule reads every chunk back out of the original layers), and the
/// filesystem is what umoci unpacks.
#[test]
fn an_oci_ref_conversion_keeps_the_original_layers_as_the_data() {
    if !have_umoci() {
        return;
    }
    let dir = tempdir("oci-ref");
    let source = umoci_image(&dir);
    let target = Layout::create(dir.join("out")).unwrap();
    let report = convert_image(
        &source,
        Some("v1"),
        &target,
        "ref",
        &ConvertOptions::oci_ref(),
    )
    .unwrap();
    let (_, manifest) = manifest_of(&target, "ref");
    let (_, src) = manifest_of(&source, "v1");
    let blob_layers = &manifest.layers()[..manifest.layers().len() - 1];
    assert_eq!(blob_layers.len(), src.layers().len());
    for (nydus, original) in blob_layers.iter().zip(src.layers()) {
        assert_eq!(
            annotation(nydus, "containerd.io/snapshot/nydus-ref"),
            Some(original.digest().to_string().as_str())
        );
        // The original layer is in the target, byte for byte; the Nydus layer is small.
        let copied = target
            .read_blob(original.digest().as_ref(), 1 << 30)
            .unwrap();
        assert_eq!(copied.len() as u64, original.size());
        assert!(nydus.size() < original.size().max(64 << 10));
    }
    // The bootstrap names each original layer as a blob and its Nydus layer as metadata.
    let layout_boot = {
        let m: Value = target.read_json(&report.target, "manifest").unwrap();
        rafs_oci::check::bootstrap_of_manifest(&target, &m).unwrap()
    };
    let image = rafs_format::decode(&layout_boot).unwrap();
    assert_eq!(image.blobs.len(), blob_layers.len());
    for b in &image.blobs {
        // Blobs are in order of first use; each is one original layer.
        let (nydus, _) = blob_layers
            .iter()
            .zip(src.layers())
            .find(|(_, o)| o.digest().to_string().strip_prefix("sha256:") == Some(&b.blob_id))
            .unwrap_or_else(|| panic!("blob {} is no original layer", b.blob_id));
        assert_eq!(
            Some(rafs_format::hex(&b.meta_digest).as_str()),
            nydus.digest().to_string().strip_prefix("sha256:")
        );
        assert_eq!(b.meta_size, nydus.size());
    }
    assert!(failing(&target, "ref", &source).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
