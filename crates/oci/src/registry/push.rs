//! Pushing a converted image from a layout to a registry: every blob first (skipped when the
//! repository has it, mounted when another repository of the same registry does, streamed
//! from the layout's file or, for a blob the layout only references, from the source
//! registry), then the manifests by digest, and the tag last, so a failure never leaves the
//! tag pointing at an incomplete image.

use super::{registry_error, Registry, RemoteBlob};
use crate::error::Result;
use crate::layout::{Layout, MAX_JSON};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a push did with the blobs.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PushReport {
    /// The pushed manifest's or index's digest.
    pub digest: String,
    /// Blobs uploaded.
    pub uploaded: u64,
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Blobs mounted from another repository of the registry.
    pub mounted: u64,
    /// Blobs the repository already had.
    pub present: u64,
}

/// Counters shared by the threads of one push.
#[derive(Default)]
pub(crate) struct Counts {
    uploaded: AtomicU64,
    uploaded_bytes: AtomicU64,
    mounted: AtomicU64,
    present: AtomicU64,
}

/// Where a push gets its blobs: the converted layout, and the registry the image came from
/// (blobs the layout does not hold are mounted or streamed from there).
#[derive(Debug, Clone, Copy)]
pub struct PushFrom<'a> {
    /// The layout holding the converted image.
    pub layout: &'a Layout,
    /// The source registry, if the image was converted from one.
    pub source: Option<&'a std::sync::Arc<Registry>>,
}

impl Counts {
    /// Blobs handled so far (uploaded, mounted or found present).
    pub(crate) fn settled(&self) -> u64 {
        self.uploaded.load(Ordering::Relaxed)
            + self.mounted.load(Ordering::Relaxed)
            + self.present.load(Ordering::Relaxed)
    }
}

/// Pushes the image `reference` (tag or digest) of `from.layout` to `target` under `tag`, with
/// up to `jobs` blobs moving at once.
pub fn push_image(
    from: PushFrom<'_>,
    reference: &str,
    target: &Registry,
    tag: &str,
    jobs: usize,
) -> Result<PushReport> {
    push_counted(from, reference, target, tag, jobs, Counts::default())
}

/// [`push_image`], adding to `counts` (blobs a caller already pushed).
pub(crate) fn push_counted(
    from: PushFrom<'_>,
    reference: &str,
    target: &Registry,
    tag: &str,
    jobs: usize,
    counts: Counts,
) -> Result<PushReport> {
    let layout = from.layout;
    let desc = layout.resolve(Some(reference))?;
    let digest = desc.digest().to_string();
    let media = desc.media_type().to_string();
    let doc: Value = layout.read_json(&digest, "image")?;
    if let Some(manifests) = doc["manifests"].as_array() {
        for m in manifests {
            let d = m["digest"].as_str().unwrap_or_default();
            let mt = m["mediaType"].as_str().unwrap_or_default();
            push_manifest_tree(from, d, mt, target, &counts, jobs)?;
        }
    } else {
        push_blobs(from, &doc, target, &counts, jobs)?;
    }
    // The tag last: only now is everything it names in the repository.
    target.push_manifest(tag, layout.read_blob(&digest, MAX_JSON)?, &media)?;
    Ok(PushReport {
        digest,
        uploaded: counts.uploaded.into_inner(),
        uploaded_bytes: counts.uploaded_bytes.into_inner(),
        mounted: counts.mounted.into_inner(),
        present: counts.present.into_inner(),
    })
}

/// One manifest of an index: its blobs, then itself by digest.
fn push_manifest_tree(
    from: PushFrom<'_>,
    digest: &str,
    media: &str,
    target: &Registry,
    counts: &Counts,
    jobs: usize,
) -> Result<()> {
    let manifest: Value = from.layout.read_json(digest, "manifest")?;
    push_blobs(from, &manifest, target, counts, jobs)?;
    target.push_manifest(digest, from.layout.read_blob(digest, MAX_JSON)?, media)
}

/// The config and layers of `manifest`, `jobs` at a time.
fn push_blobs(
    from: PushFrom<'_>,
    manifest: &Value,
    target: &Registry,
    counts: &Counts,
    jobs: usize,
) -> Result<()> {
    let layout = from.layout;
    let mut blobs: Vec<(String, u64)> = Vec::new();
    let descs = std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().into_iter().flatten());
    for d in descs {
        if let (Some(digest), Some(size)) = (d["digest"].as_str(), d["size"].as_u64()) {
            if !blobs.iter().any(|(b, _)| b == digest) {
                blobs.push((digest.to_owned(), size));
            }
        }
        // An OCI-ref layer's data is the original layer it names, which nydusd fetches from
        // the same repository; the conversion put it in the layout.
        let original = d["annotations"][crate::convert::ANNOTATION_NYDUS_REF].as_str();
        if let Some(o) = original.filter(|o| !blobs.iter().any(|(b, _)| b == o)) {
            blobs.push((o.to_owned(), layout.blob_size(o)?));
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs.clamp(1, blobs.len().max(1)))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    while let Some((digest, size)) = blobs.get(next.fetch_add(1, Ordering::Relaxed))
                    {
                        push_blob(from, digest, *size, target, counts)?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join().unwrap_or_else(|_| {
                Err(registry_error(
                    target.image(),
                    "upload",
                    "a worker panicked",
                ))
            })
        })
    })
}

/// One blob into the target repository, by the cheapest way there is.
pub(crate) fn push_blob(
    from: PushFrom<'_>,
    digest: &str,
    size: u64,
    target: &Registry,
    counts: &Counts,
) -> Result<()> {
    let layout = from.layout;
    if target.has_blob(digest)? {
        counts.present.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    let source = from.source;
    let same_registry = source.is_some_and(|s| {
        s.image().resolve_registry() == target.image().resolve_registry()
            && s.image().repository() != target.image().repository()
    });
    if let Some(source) = source.filter(|_| same_registry) {
        if target.mount(digest, source.image()) && target.has_blob(digest)? {
            counts.mounted.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
    }
    if layout.has_blob(digest) {
        let file = std::fs::File::open(layout.blob_path(digest)?)
            .map_err(crate::error::io(layout.root()))?;
        target.push_blob(file, digest, size)?;
    } else if let Some(source) = source {
        target.push_blob(RemoteBlob::open(source.clone(), digest)?, digest, size)?;
    } else {
        return Err(registry_error(
            target.image(),
            &format!("blob {digest}"),
            "neither in the converted layout nor in a source registry",
        ));
    }
    counts.uploaded.fetch_add(1, Ordering::Relaxed);
    counts.uploaded_bytes.fetch_add(size, Ordering::Relaxed);
    Ok(())
}
