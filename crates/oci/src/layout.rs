//! An OCI image layout directory (image-spec `image-layout.md`): `oci-layout`, `index.json`,
//! and blobs at `blobs/sha256/<hex>`. A digest from the input is checked to be `sha256:` and 64
//! lowercase hex digits before it names a file, so it can never be a path. Every blob read is
//! verified against its name; every write goes to a temporary file in the layout that is
//! renamed to its digest, so a blob is complete or absent. `index.json` is replaced atomically.

pub use crate::canonical::canonical;
use crate::error::{io, json, Error, Result};
use crate::scratch::TempFile;
use oci_spec::image::{Descriptor, ImageIndex};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Largest JSON document (index, manifest, config) read into memory.
pub const MAX_JSON: u64 = 16 << 20;

/// The `org.opencontainers.image.ref.name` annotation: a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI image layout on disk; or the local cache of an image in a registry (see
/// [`Layout::remote`]), which fetches manifests and configs as they are asked for and streams
/// blobs it does not hold.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    remote: Option<std::sync::Arc<crate::registry::Registry>>,
    /// Layer blobs written here also go to this registry as they are written.
    upload: Option<std::sync::Arc<crate::registry::Registry>>,
}

/// The hex part of a `sha256:` digest, if that is what `digest` is.
pub fn sha256_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

/// `sha256:<hex>` of `bytes`.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", rafs_format::hex(&Sha256::digest(bytes)))
}

impl Layout {
    /// Opens an existing layout: `oci-layout` must say version 1.0.0.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let text = read_inside(&root, "oci-layout", 4096)?;
        let v: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| json("oci-layout", e))?;
        if v.get("imageLayoutVersion").and_then(|v| v.as_str()) != Some("1.0.0") {
            return Err(json("oci-layout", "imageLayoutVersion is not 1.0.0"));
        }
        Ok(Layout {
            root,
            remote: None,
            upload: None,
        })
    }

    /// The image of `registry` seen as a layout kept in `scratch` (created if missing): JSON
    /// documents are fetched into it when first read; layer blobs are streamed from the
    /// registry, never stored, unless [`Layout::ensure_local`] asks for them.
    pub fn remote(
        scratch: impl Into<PathBuf>,
        registry: std::sync::Arc<crate::registry::Registry>,
    ) -> Result<Self> {
        let mut layout = Layout::create(scratch)?;
        layout.remote = Some(registry);
        Ok(layout)
    }

    /// This layout, with every layer blob also uploaded to `registry` while it is written
    /// ([`Layout::layer_writer`]): a staging layout whose image goes to that registry.
    pub fn with_upload(mut self, registry: std::sync::Arc<crate::registry::Registry>) -> Self {
        self.upload = Some(registry);
        self
    }

    /// The registry behind this layout, if it is one's cache.
    pub fn registry(&self) -> Option<&std::sync::Arc<crate::registry::Registry>> {
        self.remote.as_ref()
    }

    /// Opens the layout at `root`, creating an empty one (no images) if there is none.
    pub fn create(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let blobs = root.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).map_err(io(&blobs))?;
        let layout = Layout {
            root,
            remote: None,
            upload: None,
        };
        // Temporaries a killed conversion left behind (nobody holds their lock).
        crate::scratch::sweep(&layout.root)?;
        crate::scratch::sweep(&blobs)?;
        if !layout.root.join("oci-layout").exists() {
            layout.replace_file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !layout.root.join("index.json").exists() {
            let empty = serde_json::json!({"schemaVersion": 2, "manifests": []});
            layout.replace_file("index.json", &canonical(&empty))?;
        }
        Layout::open(layout.root)
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` is; refuses anything but `sha256:` and 64 hex digits.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let hex = sha256_hex(digest).ok_or_else(|| Error::Blob {
            digest: digest.into(),
            reason: "not sha256 and 64 lowercase hex digits".into(),
        })?;
        Ok(self.root.join("blobs").join("sha256").join(hex))
    }

    /// The blob's path relative to the layout, checked as [`Layout::blob_path`] checks it.
    fn blob_rel(&self, digest: &str) -> Result<String> {
        let hex = sha256_hex(digest).ok_or_else(|| Error::Blob {
            digest: digest.into(),
            reason: "not sha256 and 64 lowercase hex digits".into(),
        })?;
        Ok(format!("blobs/sha256/{hex}"))
    }

    /// Whether the layout has the blob `digest`: a regular file inside the layout.
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_rel(digest)
            .is_ok_and(|rel| open_inside(&self.root, &rel).is_ok())
    }

    /// Reads the whole blob `digest` of at most `max` bytes, verified.
    pub fn read_blob(&self, digest: &str, max: u64) -> Result<Vec<u8>> {
        if let Some(remote) = self.remote.as_ref().filter(|_| !self.has_blob(digest)) {
            let bytes = crate::registry::fetch_document(remote, digest, max)?;
            self.write_blob(&bytes)?;
        }
        let bytes = read_inside(&self.root, &self.blob_rel(digest)?, max).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::Blob {
                    digest: digest.into(),
                    reason: "missing from the layout".into(),
                }
            }
            other => other,
        })?;
        if digest_of(&bytes) != digest {
            return Err(Error::Blob {
                digest: digest.into(),
                reason: "bytes do not match the digest".into(),
            });
        }
        Ok(bytes)
    }

    /// Opens the blob `digest` for streaming; the reader fails at its end if the bytes did not
    /// match the digest or the expected size, so nothing built from them may be kept before
    /// the stream ended cleanly.
    pub fn open_blob(&self, digest: &str, size: u64) -> Result<VerifiedReader<BlobSource>> {
        if let Some(remote) = self.remote.as_ref().filter(|_| !self.has_blob(digest)) {
            self.blob_rel(digest)?;
            let blob = crate::registry::RemoteBlob::open(remote.clone(), digest)?;
            return Ok(VerifiedReader::new(Box::new(blob), digest, size));
        }
        let (file, _) =
            open_inside(&self.root, &self.blob_rel(digest)?).map_err(|e| Error::Blob {
                digest: digest.into(),
                reason: e.to_string(),
            })?;
        Ok(VerifiedReader::new(Box::new(file), digest, size))
    }

    /// [`Layout::ensure_local`] of a blob whose size no descriptor gives (an OCI-ref layer's
    /// original): stored only if its bytes match `digest`.
    pub fn ensure_local_unsized(&self, digest: &str) -> Result<()> {
        let Some(remote) = self.remote.as_ref().filter(|_| !self.has_blob(digest)) else {
            return Ok(());
        };
        self.blob_rel(digest)?;
        let mut w = self.blob_writer()?;
        let mut blob = crate::registry::RemoteBlob::open(remote.clone(), digest)?;
        std::io::copy(&mut blob, &mut w).map_err(|e| Error::Blob {
            digest: digest.to_owned(),
            reason: e.to_string(),
        })?;
        let (got, _) = w.commit()?;
        if got != digest {
            let _ = std::fs::remove_file(self.blob_path(&got)?);
            return Err(Error::Blob {
                digest: digest.to_owned(),
                reason: format!("the registry served bytes of digest {got}"),
            });
        }
        Ok(())
    }

    /// Makes sure the blob `digest` is a file of this layout, downloading it (verified) from
    /// the registry behind it: for readers that need a file (a Nydus image's data blobs).
    pub fn ensure_local(&self, digest: &str, size: u64) -> Result<()> {
        if self.remote.is_some() {
            self.copy_blob_from(self, digest, size)?;
        }
        Ok(())
    }

    /// Reads and parses a JSON blob, verified.
    pub fn read_json<T: serde::de::DeserializeOwned>(&self, digest: &str, what: &str) -> Result<T> {
        let bytes = self.read_blob(digest, MAX_JSON)?;
        serde_json::from_slice(&bytes).map_err(|e| json(format!("{what} {digest}"), e))
    }

    /// Writes `bytes` as a blob; returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<String> {
        let mut w = self.blob_writer()?;
        w.write_all(bytes).map_err(io(w.temp.path()))?;
        Ok(w.commit()?.0)
    }

    /// Writes `value` as canonical JSON (sorted keys, no spaces); returns digest and size.
    pub fn write_json<T: serde::Serialize>(&self, value: &T) -> Result<(String, u64)> {
        let v = serde_json::to_value(value).map_err(|e| json("document", e))?;
        let bytes = canonical(&v);
        Ok((self.write_blob(&bytes)?, bytes.len() as u64))
    }

    /// A blob being written: a temporary file in the layout, named by its digest on commit.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let dir = self.root.join("blobs").join("sha256");
        let mut temp = TempFile::new_in(&dir)?;
        let file = temp.file().try_clone().map_err(io(&dir))?;
        Ok(BlobWriter {
            file: std::io::BufWriter::new(file),
            temp,
            hash: Sha256::new(),
            size: 0,
            layout: self.clone(),
            upload: None,
        })
    }

    /// A writer for a layer blob: [`Layout::blob_writer`], uploading as it writes when the
    /// layout was made [`Layout::with_upload`].
    pub fn layer_writer(&self) -> Result<BlobWriter> {
        let mut w = self.blob_writer()?;
        w.upload = self
            .upload
            .as_ref()
            .map(crate::registry::Registry::stream_upload);
        Ok(w)
    }

    /// Copies the blob `digest` of `size` bytes from `source` unless this layout has it; the
    /// copy is verified as it streams and committed only when it matched.
    pub fn copy_blob_from(&self, source: &Layout, digest: &str, size: u64) -> Result<()> {
        if self.has_blob(digest) {
            return Ok(());
        }
        let mut w = self.blob_writer()?;
        let mut r = source.open_blob(digest, size)?;
        std::io::copy(&mut r, &mut w).map_err(|e| Error::Blob {
            digest: digest.to_owned(),
            reason: e.to_string(),
        })?;
        w.commit()?;
        Ok(())
    }

    /// The size of the blob `digest` in this layout (not verified).
    pub fn blob_size(&self, digest: &str) -> Result<u64> {
        let (_, size) =
            open_inside(&self.root, &self.blob_rel(digest)?).map_err(|e| Error::Blob {
                digest: digest.into(),
                reason: format!("missing from the layout: {e}"),
            })?;
        Ok(size)
    }

    /// The parsed `index.json`.
    pub fn index(&self) -> Result<ImageIndex> {
        let bytes = read_inside(&self.root, "index.json", MAX_JSON)?;
        serde_json::from_slice(&bytes).map_err(|e| json("index.json", e))
    }

    /// Replaces `index.json` atomically.
    pub fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let v = serde_json::to_value(index).map_err(|e| json("index.json", e))?;
        self.replace_file("index.json", &canonical(&v))
    }

    /// The descriptor `reference` names in `index.json`: a tag (`ref.name`), a digest, or,
    /// with no reference, the only entry.
    pub fn resolve(&self, reference: Option<&str>) -> Result<Descriptor> {
        if let Some(remote) = &self.remote {
            crate::registry::cache_reference(self, remote, reference)?;
        }
        let index = self.index()?;
        let found: Vec<&Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| match reference {
                None => true,
                Some(r) if r.starts_with("sha256:") => d.digest().to_string() == r,
                Some(r) => d
                    .annotations()
                    .as_ref()
                    .and_then(|a| a.get(REF_NAME))
                    .is_some_and(|t| t == r),
            })
            .collect();
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(crate::error::unsupported(
                format!("{}", self.root.display()),
                format!("no image {}", reference.unwrap_or("(the layout is empty)")),
            )),
            _ => Err(crate::error::unsupported(
                format!("{}", self.root.display()),
                format!(
                    "{} entries match {}; name one by tag or digest",
                    found.len(),
                    reference.unwrap_or("nothing")
                ),
            )),
        }
    }

    /// Writes `name` in the layout's root through a temporary file and a rename; on any
    /// failure (a full disk) the temporary file goes and `name` is as it was.
    fn replace_file(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let mut temp = TempFile::new_in(&self.root)?;
        temp.file().write_all(bytes).map_err(io(temp.path()))?;
        temp.persist(&self.root.join(name))
    }

    /// Updates `index.json` as one read-modify-write under an exclusive lock on the layout,
    /// so conversions into one layout at the same time never lose each other's tags. The
    /// index is edited as JSON, so fields of other entries this crate does not know survive.
    pub fn update_index(
        &self,
        edit: impl FnOnce(&mut serde_json::Value) -> Result<()>,
    ) -> Result<()> {
        let lock = File::open(&self.root).map_err(io(&self.root))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io(&self.root)(e.into()))?;
        let bytes = read_inside(&self.root, "index.json", MAX_JSON)?;
        let mut index: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| json("index.json", e))?;
        if !index["manifests"].is_array() {
            return Err(json("index.json", "manifests is not a list"));
        }
        edit(&mut index)?;
        // The lock is released when `lock` goes, after the rename.
        self.replace_file("index.json", &canonical(&index))
    }
}

/// A layer of an image [`Layout::write_image`] writes: its stored bytes, media type and
/// `diff_id` (the digest of the uncompressed tar).
#[derive(Debug, Clone, Copy)]
pub struct ImageLayer<'a> {
    /// The layer as stored (a tar, or a compressed tar).
    pub bytes: &'a [u8],
    /// Its media type.
    pub media_type: &'a str,
    /// The digest of its uncompressed tar.
    pub diff_id: &'a str,
}

impl Layout {
    /// Writes a linux/amd64 image of `layers` and tags it `tag` (replacing an entry of that
    /// tag); returns the manifest's digest. For tools and tests that make source images.
    pub fn write_image(&self, tag: &str, layers: &[ImageLayer<'_>]) -> Result<String> {
        let mut descs = Vec::with_capacity(layers.len());
        for l in layers {
            let digest = self.write_blob(l.bytes)?;
            descs.push(serde_json::json!({"mediaType": l.media_type, "digest": digest, "size": l.bytes.len()}));
        }
        let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id).collect();
        let config = serde_json::json!({"architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids}});
        let (cd, cs) = self.write_json(&config)?;
        let manifest = serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": descs});
        let (md, ms) = self.write_json(&manifest)?;
        let entry = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": ms, "annotations": {REF_NAME: tag}});
        self.update_index(|index| {
            if let Some(list) = index["manifests"].as_array_mut() {
                list.retain(|d| d["annotations"][REF_NAME] != tag);
                list.push(entry);
            }
            Ok(())
        })?;
        Ok(md)
    }
}

/// Where a blob is read from: a file of the layout, or a registry's download.
pub type BlobSource = Box<dyn Read + Send>;

/// A blob being written into a layout. Dropped without [`BlobWriter::commit`], it leaves
/// nothing behind.
pub struct BlobWriter {
    file: std::io::BufWriter<File>,
    temp: TempFile,
    hash: Sha256,
    size: u64,
    layout: Layout,
    upload: Option<crate::registry::StreamedUpload>,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        if let Some(u) = &mut self.upload {
            u.write_all(&buf[..n])?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Names the blob by its digest; returns digest and size.
    pub fn commit(mut self) -> Result<(String, u64)> {
        self.file.flush().map_err(io(self.temp.path()))?;
        let digest = format!("sha256:{}", rafs_format::hex(&self.hash.clone().finalize()));
        if let Some(u) = self.upload.take() {
            u.finish(&digest)?;
        }
        let dest = self.layout.blob_path(&digest)?;
        self.temp.persist(&dest)?;
        Ok((digest, self.size))
    }
}

/// A blob stream checked against its digest and size when it ends.
pub struct VerifiedReader<R> {
    inner: R,
    hash: Sha256,
    expected: String,
    size: u64,
    read: u64,
}

impl<R: Read> VerifiedReader<R> {
    /// `inner`, checked to be `size` bytes whose sha256 is `digest` when it ends.
    pub fn new(inner: R, digest: &str, size: u64) -> Self {
        VerifiedReader {
            inner,
            hash: Sha256::new(),
            expected: digest.to_owned(),
            size,
            read: 0,
        }
    }
}

impl<R: Read> Read for VerifiedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.read += n as u64;
        if self.read > self.size {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("blob {} is longer than its descriptor says", self.expected),
            ));
        }
        if n == 0 && !buf.is_empty() {
            let got = format!("sha256:{}", rafs_format::hex(&self.hash.clone().finalize()));
            if got != self.expected || self.read != self.size {
                let reason = format!(
                    "blob {} does not match its digest and size ({} bytes read, {} expected)",
                    self.expected, self.read, self.size
                );
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, reason));
            }
        }
        Ok(n)
    }
}

/// Opens `rel`, a path inside the layout at `root`, for reading, as blobs are opened in a
/// blob directory (`rafs_chunker::open_file_beneath`): a symlink that stays inside is
/// followed, one leading out is refused (and the error does not say where it leads), a FIFO is
/// never waited on, only a regular file is kept. Returns the file and its size.
fn open_inside(root: &Path, rel: &str) -> Result<(File, u64)> {
    let shown = root.join(rel);
    // The escape is the one PermissionDenied the opener makes itself (no OS error code).
    rafs_chunker::open_file_beneath(root, rel).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied if e.raw_os_error().is_none() => Error::Io {
            path: shown.display().to_string(),
            source: std::io::Error::new(e.kind(), "leads outside the layout"),
        },
        _ => io(&shown)(e),
    })
}

/// Reads `rel` inside the layout ([`open_inside`]), of at most `max` bytes.
fn read_inside(root: &Path, rel: &str, max: u64) -> Result<Vec<u8>> {
    let (file, size) = open_inside(root, rel)?;
    let shown = root.join(rel);
    if size > max {
        return Err(Error::Io {
            path: shown.display().to_string(),
            source: std::io::Error::other(format!("larger than {max} bytes")),
        });
    }
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(io(&shown))?;
    if bytes.len() as u64 > max {
        return Err(Error::Io {
            path: shown.display().to_string(),
            source: std::io::Error::other(format!("larger than {max} bytes")),
        });
    }
    Ok(bytes)
}
