//! One layer: an OCI layer stream to a Nydus blob layer (Go `Pack`), and the bootstrap read
//! back out of such a layer through its ToC (Go `UnpackEntry`).

use crate::error::{Error, Result};
use rafs_tar_build::{build_layer, BuildOptions};
use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};

/// The media type of a Nydus blob layer.
pub const MEDIA_TYPE_NYDUS_BLOB: &str = "application/vnd.oci.image.layer.nydus.blob.v1";

/// What [`pack_layer`] wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PackedLayer {
    /// `sha256:` digest of the Nydus blob layer (also its diff_id).
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
    /// The layer's own bootstrap (its blob id is the inline placeholder until merged).
    pub bootstrap: Vec<u8>,
    /// Directories the layer's tar left out (see `BuildOutput::implicit_dirs`).
    pub implicit_dirs: Vec<Vec<u8>>,
}

/// The options of the Go converter's `Pack` for a filesystem version: blob meta and bootstrap
/// inlined, a ToC (v6), whiteouts kept for the merge, prefetch `/`, zstd, 1 MiB chunks.
pub fn pack_options(fs_version: rafs_format::model::FsVersion) -> BuildOptions {
    let mut options = BuildOptions::go_converter();
    options.fs_version = fs_version;
    options.blob_toc = fs_version == rafs_format::model::FsVersion::V6;
    options
}

/// Converts the OCI layer `input` (plain, gzip or zstd tar) into a Nydus blob layer written
/// to `out`, in one streaming pass; the digest is computed while writing.
pub fn pack_layer<R: Read + Send, W: Write>(
    input: R,
    options: &BuildOptions,
    out: W,
) -> Result<(PackedLayer, W)> {
    if !options.inline_bootstrap {
        return Err(crate::error::unsupported(
            "pack options",
            "a Nydus blob layer inlines its bootstrap",
        ));
    }
    let hashing = HashingWriter {
        inner: out,
        hash: Sha256::new(),
        size: 0,
    };
    let built = build_layer(input, options, hashing).map_err(|source| Error::Layer {
        index: 0,
        digest: String::new(),
        source,
    })?;
    let HashingWriter { inner, hash, size } = built.sink;
    let digest = format!("sha256:{}", rafs_format::hex(&hash.finalize()));
    Ok((
        PackedLayer {
            digest,
            size,
            bootstrap: built.bootstrap,
            implicit_dirs: built.implicit_dirs,
        },
        inner,
    ))
}

/// The bootstrap inlined in a Nydus blob layer, found through its ToC (or, for v5 layers,
/// by walking the tar headers from the end) without reading the data before it.
pub fn bootstrap_of(blob: &[u8]) -> Result<Vec<u8>> {
    Ok(rafs_chunker::BlobReader::open_sections(blob)?.bootstrap()?)
}

/// A writer that hashes what passes through.
struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    size: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
