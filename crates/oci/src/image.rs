//! Reading a converted Nydus image back in-process: [`NydusImage::open`] takes a manifest of a
//! layout (or the one Nydus manifest of an index), reads its bootstrap layer's `image.boot`
//! (strictly, verified against its descriptor) and opens it over the layout's blobs, which are
//! named by digest as the bootstrap's blob ids name them.

use crate::error::{unsupported, Result};
use crate::layout::Layout;
use rafs_reader::ImageReader;
use serde_json::Value;

/// A Nydus image of an OCI layout, open for reading.
pub struct NydusImage {
    manifest: String,
    reader: ImageReader,
}

impl NydusImage {
    /// Opens the Nydus image `reference` (tag or digest; `None`: the only one) of `layout`.
    /// An index must hold exactly one Nydus manifest (a merge-platform index does); for
    /// another index, open one entry with [`NydusImage::open_manifest`].
    pub fn open(layout: &Layout, reference: Option<&str>) -> Result<Self> {
        let desc = layout.resolve(reference)?;
        let digest = if desc.media_type().to_string() == crate::convert::MEDIA_TYPE_OCI_INDEX {
            let entries = crate::check::nydus_entries(layout, &desc, &[])?;
            match entries.as_slice() {
                [one] => one.digest().to_string(),
                more => {
                    return Err(unsupported(
                        format!("index {}", desc.digest()),
                        format!("{} Nydus manifests; open one by digest", more.len()),
                    ))
                }
            }
        } else {
            desc.digest().to_string()
        };
        Self::open_manifest(layout, &digest)
    }

    /// Opens the Nydus manifest `digest` of `layout`, an index entry for instance.
    pub fn open_manifest(layout: &Layout, digest: &str) -> Result<Self> {
        let digest = digest.to_owned();
        let manifest: Value = layout.read_json(&digest, "manifest")?;
        let bootstrap = crate::check::bootstrap_of_manifest(layout, &manifest)?;
        let image = rafs_format::decode(&bootstrap)?;
        let blobs = layout.root().join("blobs").join("sha256");
        let reader = ImageReader::open_dir(image, &blobs)
            .map_err(|e| unsupported(format!("image {digest}"), e.to_string()))?
            .verify_digests(true);
        Ok(NydusImage {
            manifest: digest,
            reader,
        })
    }

    /// The digest of the manifest opened.
    pub fn manifest(&self) -> &str {
        &self.manifest
    }

    /// The reader: listing, lookups, file readers, unpacking (`rafs_reader`).
    pub fn reader(&self) -> &ImageReader {
        &self.reader
    }

    /// The whole content of the regular file at the absolute `path`, every chunk verified
    /// against its digest.
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        let node = self
            .reader
            .lookup(path)
            .ok_or_else(|| unsupported(format!("image {}", self.manifest), format!("no {path}")))?;
        self.reader
            .read_file(node)
            .map_err(|e| unsupported(format!("image {}", self.manifest), e.to_string()))
    }
}
