//! Registry-native conversion (issue 23) against a real `docker-registry` on a loopback port:
//! `docker://` as source and target of `convert-image`, as image and source of `check-image`;
//! the same Nydus image, digest for digest, whatever the transports; nothing uploaded twice;
//! Basic auth over TLS with a private CA; a 401 and a damaged source blob refused with no tag
//! left behind.

mod common;
use common::{s, tempdir};
use rafs_testkit::registry::{start_registry, Registry, RegistrySetup};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn images(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/images")
        .join(name)
}

fn rafs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rafs"))
        .args(args)
        .output()
        .unwrap()
}

fn rafs_ok(args: &[&str]) -> String {
    let out = rafs(args);
    assert!(
        out.status.success(),
        "rafs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `skopeo` with `args`, required to succeed; returns standard output.
fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The digest `tag` names in the layout `dir`.
fn layout_digest(dir: &Path, tag: &str) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The sha256 of what the registry serves for `reference` (skopeo, an independent client).
fn served_digest(reference: &str, tls: &[&str]) -> String {
    let mut args = vec!["inspect", "--raw"];
    args.extend_from_slice(tls);
    args.push(reference);
    let raw = skopeo(&args);
    format!(
        "sha256:{}",
        rafs_format::hex(&<sha2::Sha256 as sha2::Digest>::digest(&raw))
    )
}

/// Requests of `method` to a blob upload path in the registry's log.
fn uploads(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("/blobs/uploads/") && l.contains("response completed"))
        .count()
}

/// Puts `layout:tag` into the plain-HTTP registry as `target` (skopeo, an independent client).
fn push_layout(layout: &Path, tag: &str, target: &str) {
    let source = format!("oci:{}:{tag}", s(layout));
    skopeo(&["copy", "-q", "--dest-tls-verify=false", &source, target]);
}

fn anonymous(dir: &Path) -> Option<Registry> {
    start_registry(&dir.join("registry"), &RegistrySetup::default())
}

#[test]
fn registry_to_registry_gives_the_layout_conversions_image_and_uploads_nothing_twice() {
    let dir = tempdir("registry-anon");
    let Some(reg) = anonymous(&dir) else { return };
    let host = reg.host();
    let src = format!("docker://{host}/demo:v1");
    push_layout(&images("demo"), "v1", &src);

    let out = dir.join("out");
    rafs_ok(&[
        "convert-image",
        "-q",
        &format!("oci:{}:v1", s(&images("demo"))),
        &format!("oci:{}:nydus", s(&out)),
    ]);
    let want = layout_digest(&out, "nydus");

    let target = format!("docker://{host}/demo:v1-nydus");
    rafs_ok(&["convert-image", "-q", &src, &target]);
    let http = ["--tls-verify=false"];
    assert_eq!(served_digest(&target, &http), want, "registry to registry");
    rafs_ok(&[
        "convert-image",
        "-q",
        &format!("oci:{}:v1", s(&images("demo"))),
        &format!("docker://{host}/fromlayout:v1"),
    ]);
    assert_eq!(
        served_digest(&format!("docker://{host}/fromlayout:v1"), &http),
        want,
        "layout to registry"
    );
    let back = dir.join("back");
    rafs_ok(&[
        "convert-image",
        "-q",
        &src,
        &format!("oci:{}:nydus", s(&back)),
    ]);
    assert_eq!(layout_digest(&back, "nydus"), want, "registry to layout");

    // Again into the same repository: every blob is there already.
    let before = uploads(&reg.log());
    let report: serde_json::Value =
        serde_json::from_str(&rafs_ok(&["convert-image", "-q", "--json", &src, &target])).unwrap();
    assert_eq!(report["pushed"]["uploaded"], 0, "{report}");
    assert_eq!(uploads(&reg.log()), before, "the registry saw an upload");
    // Into a new tag of another repository: the Nydus blobs (3 layers) go up while they are
    // written; the config and the bootstrap layer, already in the source repository of the
    // same registry, are mounted.
    let report: serde_json::Value = serde_json::from_str(&rafs_ok(&[
        "convert-image",
        "-q",
        "--json",
        &src,
        &format!("docker://{host}/other:v1"),
    ]))
    .unwrap();
    assert_eq!(report["pushed"]["uploaded"], 3, "{report}");
    assert!(
        report["pushed"]["mounted"].as_u64().unwrap() == 2,
        "{report}"
    );

    let verdict = rafs_ok(&["check-image", &target, "--source", &src]);
    assert_eq!(verdict.matches(": ok").count(), 3, "{verdict}");

    // A chunk dictionary in the registry: its blobs are fetched to verify its chunks.
    let dicted = format!("docker://{host}/dicted:v1");
    rafs_ok(&[
        "convert-image",
        "-q",
        "--chunk-dict",
        &target,
        &src,
        &dicted,
    ]);
    let verdict = rafs_ok(&["check-image", &dicted, "--source", &src]);
    assert_eq!(verdict.matches(": ok").count(), 3, "{verdict}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_merge_platform_index_and_an_oci_ref_image_arrive_whole() {
    let dir = tempdir("registry-kinds");
    let Some(reg) = anonymous(&dir) else { return };
    let host = reg.host();
    let http = ["--tls-verify=false"];
    let src = format!("docker://{host}/multi:v1");
    skopeo(&[
        "copy",
        "-q",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:multi", s(&images("real"))),
        &src,
    ]);
    let out = dir.join("out");
    rafs_ok(&[
        "convert-image",
        "-q",
        "--merge-platform",
        &format!("oci:{}:multi", s(&images("real"))),
        &format!("oci:{}:merged", s(&out)),
    ]);
    let target = format!("docker://{host}/multi:merged");
    rafs_ok(&["convert-image", "-q", "--merge-platform", &src, &target]);
    assert_eq!(served_digest(&target, &http), layout_digest(&out, "merged"));
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &target]);
    let index: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let marked = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["artifactType"] == "application/vnd.nydus.image.manifest.v1+json")
        .count();
    assert_eq!(marked, 2, "{index}");

    // OCI ref: the Nydus layers name the original layers, which the target repository holds.
    let demo = format!("docker://{host}/demo:v1");
    push_layout(&images("demo"), "v1", &demo);
    let refs = format!("docker://{host}/refs:v1");
    let report: serde_json::Value = serde_json::from_str(&rafs_ok(&[
        "convert-image",
        "-q",
        "--json",
        "--oci-ref",
        &demo,
        &refs,
    ]))
    .unwrap();
    // The original layers, which nydusd reads, come into the repository by mount.
    let layers = report["manifests"][0]["layers"].as_array().unwrap().len() as u64;
    assert!(
        report["pushed"]["mounted"].as_u64().unwrap() >= layers,
        "{report}"
    );
    let verdict = rafs_ok(&["check-image", &refs, "--source", &demo]);
    assert_eq!(verdict.matches(": ok").count(), 3, "{verdict}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn basic_auth_over_tls_needs_the_credentials_and_the_ca() {
    let dir = tempdir("registry-tls");
    let setup = RegistrySetup {
        basic_auth: Some(("alice".into(), "s3cret".into())),
        tls: true,
        ..RegistrySetup::default()
    };
    let Some(reg) = start_registry(&dir.join("registry"), &setup) else {
        return;
    };
    let host = reg.host();
    let certs = reg.cert_dir();
    let src = format!("docker://{host}/demo:v1");
    skopeo(&[
        "copy",
        "-q",
        "--dest-cert-dir",
        s(&certs),
        "--dest-creds",
        "alice:s3cret",
        &format!("oci:{}:v1", s(&images("demo"))),
        &src,
    ]);
    let target = format!("docker://{host}/demo:v1-nydus");

    // No credentials: a 401, named; no tag.
    let out = rafs(&[
        "convert-image",
        "-q",
        "--src-cert-dir",
        s(&certs),
        "--dest-cert-dir",
        s(&certs),
        &src,
        &target,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("docker://")
            && (err.contains("401") || err.to_lowercase().contains("unauthorized")),
        "{err}"
    );
    // No CA: the certificate is refused.
    let out = rafs(&[
        "convert-image",
        "-q",
        "--src-creds",
        "alice:s3cret",
        &src,
        &target,
    ]);
    assert!(!out.status.success(), "an unknown CA was trusted");

    // Credentials from a Docker config (base64 USER:PASS) and the CA: converted.
    let auth = dir.join("auth.json");
    std::fs::write(
        &auth,
        format!(r#"{{"auths": {{"{host}": {{"auth": "YWxpY2U6czNjcmV0"}}}}}}"#),
    )
    .unwrap();
    rafs_ok(&[
        "convert-image",
        "-q",
        "--authfile",
        s(&auth),
        "--src-cert-dir",
        s(&certs),
        "--dest-cert-dir",
        s(&certs),
        &src,
        &target,
    ]);
    let tls = ["--cert-dir", s(&certs), "--creds", "alice:s3cret"];
    let out = dir.join("out");
    rafs_ok(&[
        "convert-image",
        "-q",
        &format!("oci:{}:v1", s(&images("demo"))),
        &format!("oci:{}:nydus", s(&out)),
    ]);
    assert_eq!(served_digest(&target, &tls), layout_digest(&out, "nydus"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_source_blob_that_does_not_match_its_digest_fails_the_conversion_and_tags_nothing() {
    let dir = tempdir("registry-bad-blob");
    let Some(reg) = anonymous(&dir) else { return };
    let host = reg.host();
    let src = format!("docker://{host}/demo:v1");
    push_layout(&images("demo"), "v1", &src);
    let manifest: serde_json::Value =
        serde_json::from_slice(&skopeo(&["inspect", "--raw", "--tls-verify=false", &src])).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let data = reg.blob_data(layer);
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&data, bytes).unwrap();

    let target = format!("docker://{host}/demo:bad");
    let out = rafs(&["convert-image", "-q", &src, &target]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(layer), "{err}");
    let tag = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &target])
        .output()
        .unwrap();
    assert!(!tag.status.success(), "a tag points at a failed conversion");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_image_is_named_in_the_error() {
    let dir = tempdir("registry-missing");
    let Some(reg) = anonymous(&dir) else { return };
    let src = format!("docker://{}/nothing:here", reg.host());
    let out = rafs(&[
        "convert-image",
        "-q",
        &src,
        &format!("oci:{}:x", s(&dir.join("out"))),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&src) && err.contains("manifest"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bytes that do not compress (xorshift), so a layer of them takes a while to convert and push.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// A layout with the image `big`: two layers of 24 MiB of noise each.
fn big_layout(dir: &Path) -> PathBuf {
    let root = dir.join("big");
    let layout = rafs_oci::Layout::create(&root).unwrap();
    let tars: Vec<Vec<u8>> = (1..=2u64)
        .map(|seed| {
            let mut layer = rafs_testkit::layer::Layer::new();
            for f in 0..3u64 {
                let name = format!("data/{seed}-{f}.bin");
                layer.file(name.as_bytes(), &noise(8 << 20, seed * 10 + f));
            }
            layer.finish()
        })
        .collect();
    let digests: Vec<String> = tars
        .iter()
        .map(|t| rafs_oci::layout::digest_of(t))
        .collect();
    let layers: Vec<rafs_oci::layout::ImageLayer<'_>> = tars
        .iter()
        .zip(&digests)
        .map(|(t, d)| rafs_oci::layout::ImageLayer {
            bytes: t,
            media_type: "application/vnd.oci.image.layer.v1.tar",
            diff_id: d,
        })
        .collect();
    layout.write_image("big", &layers).unwrap();
    root
}

#[test]
fn a_registry_restarted_mid_conversion_leaves_a_whole_image_or_no_tag() {
    let dir = tempdir("registry-restart");
    let Some(mut reg) = anonymous(&dir) else {
        return;
    };
    let host = reg.host();
    let src = format!("docker://{host}/big:v1");
    let layout = big_layout(&dir);
    push_layout(&layout, "big", &src);
    let target = format!("docker://{host}/big:nydus");
    let child = Command::new(env!("CARGO_BIN_EXE_rafs"))
        .args(["convert-image", "-q", &src, &target])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    reg.restart();
    let out = child.wait_with_output().unwrap();
    let tagged = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &target])
        .output()
        .unwrap()
        .status
        .success();
    eprintln!(
        "conversion across the restart: {}",
        if out.status.success() {
            "succeeded (retried)"
        } else {
            "failed cleanly"
        }
    );
    if out.status.success() {
        // Retried through the restart: the image must be whole.
        let verdict = rafs_ok(&["check-image", &target, "--source", &src]);
        assert_eq!(verdict.matches(": ok").count(), 3, "{verdict}");
    } else {
        assert!(!tagged, "a failed conversion left the tag: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("docker://"), "{err}");
    }
    // Run again, it completes.
    rafs_ok(&["convert-image", "-q", &src, &target]);
    let verdict = rafs_ok(&["check-image", &target, "--source", &src]);
    assert_eq!(verdict.matches(": ok").count(), 3, "{verdict}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bearer_token_auth_gets_pull_and_push_tokens_from_the_realm() {
    let dir = tempdir("registry-token");
    let setup = RegistrySetup {
        token_auth: Some(("alice".into(), "t0ken".into())),
        ..RegistrySetup::default()
    };
    let Some(reg) = start_registry(&dir.join("registry"), &setup) else {
        return;
    };
    let host = reg.host();
    let src = format!("docker://{host}/demo:v1");
    skopeo(&[
        "copy",
        "-q",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:t0ken",
        &format!("oci:{}:v1", s(&images("demo"))),
        &src,
    ]);
    let target = format!("docker://{host}/demo:v1-nydus");
    let out = rafs(&["convert-image", "-q", &src, &target]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("401"), "{err}");
    let creds = ["--src-creds", "alice:t0ken", "--dest-creds", "alice:t0ken"];
    let mut args = vec!["convert-image", "-q"];
    args.extend_from_slice(&creds);
    args.extend([src.as_str(), target.as_str()]);
    rafs_ok(&args);
    let out = dir.join("out");
    rafs_ok(&[
        "convert-image",
        "-q",
        &format!("oci:{}:v1", s(&images("demo"))),
        &format!("oci:{}:nydus", s(&out)),
    ]);
    let tls = ["--tls-verify=false", "--creds", "alice:t0ken"];
    assert_eq!(served_digest(&target, &tls), layout_digest(&out, "nydus"));
    let mut check = vec!["check-image", target.as_str(), "--source", src.as_str()];
    check.extend_from_slice(&creds);
    let verdict = rafs_ok(&check);
    assert_eq!(verdict.matches(": ok").count(), 3, "{verdict}");
    let _ = std::fs::remove_dir_all(&dir);
}
