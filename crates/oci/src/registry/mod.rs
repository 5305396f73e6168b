//! Images in a registry (`docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`, skopeo's spelling), through
//! the OCI distribution API: manifests and blobs read as streams while they are converted (a
//! layer is never copied to disk whole), Nydus blobs and manifests pushed back, the tag last.
//!
//! The HTTP side is `oci-client` (the ORAS project's distribution client: Basic and Bearer
//! token flows from `WWW-Authenticate`, chunked uploads, cross-repository mounts); it is
//! asynchronous, so a [`Registry`] owns a small tokio runtime and offers blocking calls the
//! conversion threads make. Credentials come from where container tools keep them
//! ([`auth`]); [`push`] uploads a converted image.

pub mod auth;
pub mod convert;
pub mod push;
mod stream;

use crate::error::{Error, Result};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use stream::{RemoteBlob, StreamedUpload};

/// Media types a manifest may be fetched as.
const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Attempts of an idempotent request before its error is reported (429, 5xx, dropped
/// connections).
const ATTEMPTS: u32 = 4;

/// How to reach one registry: credentials and TLS, as skopeo's `--creds`, `--authfile`,
/// `--cert-dir` and `--tls-verify` give them.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// `USER:PASSWORD`; otherwise the auth files are searched ([`auth::credentials`]).
    pub creds: Option<String>,
    /// An auth file to read first (`--authfile`).
    pub authfile: Option<PathBuf>,
    /// A directory of `*.crt` CA certificates to trust (`--cert-dir`).
    pub cert_dir: Option<PathBuf>,
    /// `false`: certificates are not verified, and a loopback registry is spoken to in plain
    /// HTTP. With verification, plain HTTP only for a loopback registry without a cert dir.
    pub tls_verify: Option<bool>,
}

/// A registry repository and the client that speaks to it.
pub struct Registry {
    rt: tokio::runtime::Runtime,
    client: Client,
    auth: RegistryAuth,
    image: Reference,
    /// Blobs and bytes uploaded while they were written ([`StreamedUpload`]).
    streamed: (AtomicU64, AtomicU64),
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registry({})", self.image.whole())
    }
}

/// Parses `HOST[:PORT]/REPO[:TAG|@DIGEST]` (after `docker://`); a missing tag is `latest`, a
/// name without a host is Docker Hub's, as Docker spells them.
pub fn parse_reference(s: &str) -> Result<Reference> {
    s.parse::<Reference>()
        .map_err(|e| crate::error::unsupported(format!("docker://{s}"), e.to_string()))
}

/// Whether `host` (with or without port) is a loopback address.
fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The CA certificates in `dir` (`*.crt`, PEM).
fn certificates(dir: &std::path::Path) -> Result<Vec<Certificate>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(crate::error::io(dir))?;
    for e in entries {
        let path = e.map_err(crate::error::io(dir))?.path();
        if path.extension().is_some_and(|x| x == "crt") {
            let data = std::fs::read(&path).map_err(crate::error::io(&path))?;
            out.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
    }
    Ok(out)
}

impl Registry {
    /// A client for the repository of `image`, with credentials and TLS as `options` say.
    pub fn connect(image: Reference, options: &RegistryOptions) -> Result<Self> {
        let host = image.resolve_registry().to_owned();
        let verify = options.tls_verify.unwrap_or(true);
        let plain_http = is_loopback(&host) && (options.cert_dir.is_none() || !verify);
        let mut config = ClientConfig {
            protocol: if plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: !verify,
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: Some(Duration::from_secs(300)),
            ..ClientConfig::default()
        };
        if let Some(dir) = &options.cert_dir {
            config.extra_root_certificates = certificates(dir)?;
        }
        let auth = match auth::credentials(&host, options)? {
            Some((user, pass)) => RegistryAuth::Basic(user, pass),
            None => RegistryAuth::Anonymous,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| registry_error(&image, "starting the HTTP runtime", e))?;
        let client = Client::new(config);
        // Every request of this client carries the credentials (oci-client keeps them per
        // registry; only some calls store them themselves).
        rt.block_on(client.store_auth_if_needed(image.resolve_registry(), &auth));
        Ok(Registry {
            rt,
            client,
            auth,
            image,
            streamed: (AtomicU64::new(0), AtomicU64::new(0)),
        })
    }

    fn count_streamed(&self, size: u64) {
        self.streamed.0.fetch_add(1, Ordering::Relaxed);
        self.streamed.1.fetch_add(size, Ordering::Relaxed);
    }

    /// Blobs and bytes uploaded while they were written, so far.
    pub fn streamed(&self) -> (u64, u64) {
        (
            self.streamed.0.load(Ordering::Relaxed),
            self.streamed.1.load(Ordering::Relaxed),
        )
    }

    /// Whether the repository has a manifest under `reference` (a tag or digest).
    pub fn has_manifest(&self, reference: &str) -> Result<bool> {
        let image = self.at(reference);
        let found = self
            .rt
            .block_on(self.client.fetch_manifest_digest(&image, &self.auth));
        match found {
            Ok(_) => Ok(true),
            Err(e) if not_found(&e) => Ok(false),
            Err(e) => Err(registry_error(
                &self.image,
                &format!("manifest {reference}"),
                describe(&e),
            )),
        }
    }

    /// The repository and reference this client was made for.
    pub fn image(&self) -> &Reference {
        &self.image
    }

    /// The same repository at `reference` (a tag or a digest).
    fn at(&self, reference: &str) -> Reference {
        let (registry, repository) = (self.image.registry(), self.image.repository());
        if reference.starts_with("sha256:") {
            Reference::with_digest(registry.into(), repository.into(), reference.into())
        } else {
            Reference::with_tag(registry.into(), repository.into(), reference.into())
        }
    }

    /// Runs `op` until it succeeds or fails for a reason a retry cannot mend.
    fn retrying<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, oci_client::errors::OciDistributionError>>,
    {
        let mut delay = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            match self.rt.block_on(op()) {
                Ok(v) => return Ok(v),
                Err(e) if attempt < ATTEMPTS && transient(&e) => {
                    std::thread::sleep(delay);
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(registry_error(&self.image, what, describe(&e))),
            }
        }
    }

    /// The manifest or index `reference` (tag or digest) names: its bytes, digest and media
    /// type. Fetched by digest, the bytes must match it.
    pub fn manifest(&self, reference: &str) -> Result<(Vec<u8>, String, String)> {
        let image = self.at(reference);
        let what = format!("manifest {reference}");
        let (bytes, digest) = self.retrying(&what, || {
            self.client
                .pull_manifest_raw(&image, &self.auth, &MANIFEST_TYPES)
        })?;
        let computed = crate::layout::digest_of(&bytes);
        if computed != digest || (reference.starts_with("sha256:") && computed != reference) {
            return Err(registry_error(
                &image,
                &what,
                format!("the registry served bytes of digest {computed}"),
            ));
        }
        let media = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_owned))
            .unwrap_or_else(|| MANIFEST_TYPES[0].to_owned());
        Ok((bytes.to_vec(), computed, media))
    }

    /// Whether the repository holds the blob `digest`.
    pub fn has_blob(&self, digest: &str) -> Result<bool> {
        self.retrying(&format!("blob {digest}"), || {
            self.client.blob_exists(&self.image, digest)
        })
    }

    /// Makes the blob `digest` of the repository `from` (same registry) part of this one
    /// without uploading it; `false` when the registry would not.
    pub fn mount(&self, digest: &str, from: &Reference) -> bool {
        self.rt
            .block_on(self.client.mount_blob(&self.image, from, digest))
            .is_ok()
    }

    /// Pushes the manifest `bytes` of `media_type` under `reference` (a tag or its digest).
    pub fn push_manifest(&self, reference: &str, bytes: Vec<u8>, media_type: &str) -> Result<()> {
        let image = self.at(reference);
        let content_type = media_type
            .parse()
            .map_err(|_| registry_error(&image, "manifest", "invalid media type"))?;
        let body = bytes::Bytes::from(bytes);
        self.retrying(&format!("pushing manifest {reference}"), || {
            self.client.push_manifest_raw(
                &image,
                body.clone(),
                std::clone::Clone::clone(&content_type),
            )
        })?;
        Ok(())
    }
}

/// Whether a failed request may succeed when sent again.
fn transient(e: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::OciDistributionError as E;
    match e {
        E::RequestError(r) => {
            r.is_timeout()
                || r.is_connect()
                || r.status()
                    .is_some_and(|s| s.as_u16() == 429 || s.is_server_error())
        }
        E::ServerError { code, .. } => *code == 429 || *code >= 500,
        E::IoError(_) => true,
        _ => false,
    }
}

/// Whether a request failed because what it named does not exist.
fn not_found(e: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
    match e {
        E::RegistryError { envelope, .. } => envelope.errors.iter().any(|x| {
            matches!(
                x.code,
                C::ManifestUnknown | C::NameUnknown | C::NotFound | C::BlobUnknown
            )
        }),
        E::ImageManifestNotFoundError(_) => true,
        _ => describe(e).starts_with("404"),
    }
}

/// A failed request in words a user can act on: a refusal says which credentials count.
fn describe(e: &oci_client::errors::OciDistributionError) -> String {
    use oci_client::errors::OciDistributionError as E;
    let status = match e {
        E::RequestError(r) => r.status().map(|s| s.as_u16()),
        E::ServerError { code, .. } => Some(*code),
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => Some(401),
        _ => None,
    };
    match status {
        Some(401) => format!(
            "401 unauthorized: no or wrong credentials (--src-creds/--dest-creds USER:PASS, \
             --authfile, or an auth file of podman or Docker) ({e})"
        ),
        Some(403) => format!("403 forbidden: these credentials may not do this ({e})"),
        Some(404) => format!("404 not found ({e})"),
        _ => e.to_string(),
    }
}

/// An error of a request about `image`.
pub(crate) fn registry_error(image: &Reference, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Registry {
        reference: format!("docker://{}", image.whole()),
        reason: format!("{what}: {e}"),
    }
}

/// Fetches the JSON document `digest` (a config is a blob, a manifest or index is not) of at
/// most `max` bytes.
pub(crate) fn fetch_document(
    registry: &std::sync::Arc<Registry>,
    digest: &str,
    max: u64,
) -> Result<Vec<u8>> {
    let as_blob = || -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        let blob = RemoteBlob::open(registry.clone(), digest)?;
        std::io::Read::read_to_end(&mut std::io::Read::take(blob, max + 1), &mut bytes)
            .map_err(|e| registry_error(&registry.image, &format!("blob {digest}"), e))?;
        Ok(bytes)
    };
    let bytes = match as_blob() {
        Ok(b) if crate::layout::digest_of(&b) == digest => b,
        _ => registry.manifest(digest)?.0,
    };
    if bytes.len() as u64 > max {
        return Err(registry_error(
            &registry.image,
            &format!("document {digest}"),
            format!("larger than {max} bytes"),
        ));
    }
    Ok(bytes)
}

/// Puts the manifest `reference` names (the registry reference's own tag or digest when
/// `None`) into the cache `layout`'s index, tagged, unless it is there.
pub(crate) fn cache_reference(
    layout: &crate::layout::Layout,
    registry: &Registry,
    reference: Option<&str>,
) -> Result<()> {
    let wanted = match reference {
        Some(r) => r.to_owned(),
        None => registry
            .image
            .digest()
            .or(registry.image.tag())
            .unwrap_or("latest")
            .to_owned(),
    };
    let index = layout.index()?;
    let cached = index.manifests().iter().any(|d| {
        d.digest().to_string() == wanted
            || d.annotations()
                .as_ref()
                .and_then(|a| a.get(crate::layout::REF_NAME))
                .is_some_and(|t| *t == wanted)
    });
    if cached {
        return Ok(());
    }
    let (bytes, digest, media) = registry.manifest(&wanted)?;
    layout.write_blob(&bytes)?;
    let mut desc = serde_json::json!({"mediaType": media, "digest": digest, "size": bytes.len()});
    if !wanted.starts_with("sha256:") {
        desc["annotations"] = serde_json::json!({ crate::layout::REF_NAME: wanted });
    }
    layout.update_index(|index| {
        if let Some(list) = index["manifests"].as_array_mut() {
            list.push(desc);
        }
        Ok(())
    })
}
