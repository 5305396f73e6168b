//! Chunk dictionaries for whole images (spec image.md §6.2): the chunks of an existing Nydus
//! image that new layers reference instead of storing again. The dictionary's blobs that the
//! merged bootstrap references are listed in the new manifest after the layer blobs (nydusd
//! fetches every blob by its id from the image's repository), so they must be in the target
//! layout: copied from the dictionary image's layout, or, for a bare bootstrap file, already
//! there.

use crate::error::{json, unsupported, Error, Result};
use crate::layout::{sha256_hex, Layout};
use rafs_chunker::ChunkDict;
use rafs_format::model::Image;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A chunk dictionary and where its blobs come from.
#[derive(Clone)]
pub struct ChunkDictionary {
    chunks: ChunkDict,
    /// The dictionary's bootstrap, to read its chunks back through.
    image: Arc<Image>,
    /// The dictionary image's layout and its blob layers' sizes by digest; `None` for a
    /// bootstrap file, whose blobs must already be in the target.
    origin: Option<(Layout, BTreeMap<String, u64>)>,
}

impl std::fmt::Debug for ChunkDictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkDictionary")
            .field("chunks", &self.chunks.len())
            .field("blobs", &self.blob_ids())
            .field("layout", &self.origin.as_ref().map(|(l, _)| l.root()))
            .finish()
    }
}

impl ChunkDictionary {
    /// A dictionary from a merged bootstrap (`--chunk-dict bootstrap=PATH`). Its blobs must be
    /// in the target layout when a converted image references them.
    pub fn from_bootstrap(bytes: &[u8]) -> Result<Self> {
        let image = rafs_format::decode(bytes)?;
        let dict = Self {
            chunks: ChunkDict::from_image(&image),
            image: Arc::new(image),
            origin: None,
        };
        dict.check_blob_ids()?;
        Ok(dict)
    }

    /// A dictionary from the Nydus image `reference` (tag or digest; `None`: the only one) of
    /// `layout`: its bootstrap layer's `image/image.boot`. An index must hold exactly one
    /// Nydus manifest.
    pub fn from_image(layout: &Layout, reference: Option<&str>) -> Result<Self> {
        let desc = layout.resolve(reference)?;
        let digest = desc.digest().to_string();
        let manifest = nydus_manifest(layout, &digest)?;
        let bootstrap = crate::check::bootstrap_of_manifest(layout, &manifest)?;
        let sizes = manifest["layers"]
            .as_array()
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .filter_map(|l| Some((l["digest"].as_str()?.to_owned(), l["size"].as_u64()?)))
            .collect();
        let image = rafs_format::decode(&bootstrap)?;
        let dict = Self {
            chunks: ChunkDict::from_image(&image),
            image: Arc::new(image),
            origin: Some((layout.clone(), sizes)),
        };
        dict.check_blob_ids()?;
        if let Some((_, sizes)) = &dict.origin {
            for id in dict.blob_ids() {
                if !sizes.contains_key(&format!("sha256:{id}")) {
                    return Err(unsupported(
                        format!("chunk dictionary {digest}"),
                        format!("blob id {id} is not a layer of its manifest"),
                    ));
                }
            }
        }
        Ok(dict)
    }

    /// The chunks as their records claim them, unverified.
    pub fn chunks(&self) -> &ChunkDict {
        &self.chunks
    }

    /// The chunks as a build into `target` looks them up: a dictionary chunk is used only
    /// once its stored data, read from the dictionary's blob (in the dictionary image's
    /// layout, or for a bootstrap file in `target`), has decompressed to bytes with the
    /// digest its record claims; one that does not is stored by the layer itself. A
    /// dictionary whose blobs are not at hand cannot be verified and is refused.
    pub fn verified_chunks(&self, target: &Layout) -> Result<ChunkDict> {
        let layout = self.origin.as_ref().map_or(target, |(l, _)| l);
        for id in self.blob_ids() {
            let digest = format!("sha256:{id}");
            // A dictionary in a registry: its blobs are fetched (verified) into its cache.
            if let Some((_, sizes)) = self.origin.as_ref().filter(|(l, _)| l.registry().is_some()) {
                if let Some(&size) = sizes.get(&digest) {
                    layout.ensure_local(&digest, size)?;
                }
            }
            if !layout.has_blob(&digest) {
                return Err(Error::Blob {
                    digest,
                    reason: format!(
                        "a chunk-dictionary blob is not in {}, so its chunks cannot be verified",
                        layout.root().display()
                    ),
                });
            }
        }
        let dir = layout.root().join("blobs").join("sha256");
        let reader = rafs_reader::ImageReader::open_dir(Image::clone(&self.image), &dir)?;
        let reader = Arc::new(reader);
        Ok(self
            .chunks
            .clone()
            .with_verifier(Arc::new(move |c| reader.verify_chunk(c).is_ok())))
    }

    /// The ids of the dictionary's blobs.
    pub fn blob_ids(&self) -> Vec<String> {
        self.chunks
            .blobs()
            .iter()
            .map(|b| b.blob_id.clone())
            .collect()
    }

    /// Blob ids name blobs (`sha256:<id>`) of a layout, so each must be 64 hex digits.
    fn check_blob_ids(&self) -> Result<()> {
        for id in self.blob_ids() {
            if sha256_hex(&format!("sha256:{id}")).is_none() {
                return Err(unsupported(
                    "chunk dictionary",
                    format!("blob id {id:?} is not a sha256 digest, so no layer can carry it"),
                ));
            }
        }
        Ok(())
    }

    /// Makes the dictionary blob `id` present in `target`; returns its digest and size.
    pub(crate) fn provide(&self, id: &str, target: &Layout) -> Result<(String, u64)> {
        let digest = format!("sha256:{id}");
        match &self.origin {
            Some((layout, sizes)) => {
                let size = sizes.get(&digest).copied().unwrap_or_default();
                target.copy_blob_from(layout, &digest, size)?;
                Ok((digest, size))
            }
            None => match target.blob_size(&digest) {
                Ok(size) => Ok((digest, size)),
                Err(_) => Err(Error::Blob {
                    digest,
                    reason: "a chunk-dictionary blob the image references is not in the target \
                             layout (a bootstrap-file dictionary brings no blobs)"
                        .into(),
                }),
            },
        }
    }
}

/// The Nydus manifest `digest` names: itself, or the one Nydus manifest of an index.
fn nydus_manifest(layout: &Layout, digest: &str) -> Result<Value> {
    let doc: Value = layout.read_json(digest, "chunk dictionary image")?;
    if crate::convert::is_nydus(&doc) {
        return Ok(doc);
    }
    let entries = doc["manifests"].as_array().map_or(&[][..], Vec::as_slice);
    crate::ImageLimits::default()
        .check_manifests(entries.len(), &format!("chunk dictionary {digest}"))?;
    let mut found = Vec::new();
    for entry in entries {
        let d = entry["digest"].as_str().unwrap_or_default();
        let m: Value = layout.read_json(d, "manifest")?;
        if crate::convert::is_nydus(&m) {
            found.push(m);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        n => Err(json(
            format!("chunk dictionary {digest}"),
            format!("{n} Nydus manifests; name one by digest"),
        )),
    }
}
