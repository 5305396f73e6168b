//! Converting into a registry: the image is built in a staging layout (the caller's private
//! scratch directory), each Nydus blob is uploaded as soon as its layer is sealed, while the
//! later layers still convert, and [`super::push::push_image`] then sends what is left (the
//! bootstrap layer, the config, the manifests) and the tag, last.

use super::push::{push_blob, push_counted, Counts, PushFrom, PushReport};
use super::Registry;
use crate::convert::{
    convert_image_with_progress, ConvertOptions, ConvertReport, Progress, ProgressFn,
};
use crate::error::Result;
use crate::layout::Layout;
use std::sync::{mpsc, Arc, Mutex};

/// Where a registry conversion reads and stages.
#[derive(Debug, Clone, Copy)]
pub struct RegistryConversion<'a> {
    /// The source image (a layout, or a registry's cache from [`Layout::remote`]).
    pub source: &'a Layout,
    /// Tag or digest of the source image; `None`: its only one.
    pub reference: Option<&'a str>,
    /// An empty layout in private scratch space, where the Nydus image is built.
    pub staging: &'a Layout,
    /// Blobs moving to the registry at once.
    pub jobs: usize,
}

/// Converts `c.source` into a Nydus image pushed to `target` under `tag`. When the tag is
/// new, each Nydus blob is uploaded while it is written (`c.staging` must not have been made
/// [`Layout::with_upload`] already); a tag that exists is probably a conversion run again, so
/// blobs are uploaded only once sealed and only if the repository lacks them.
pub fn convert_to_registry(
    c: RegistryConversion<'_>,
    target: &Arc<Registry>,
    tag: &str,
    options: &ConvertOptions,
    progress: ProgressFn<'_>,
) -> Result<(ConvertReport, PushReport)> {
    let staging = if target.has_manifest(tag)? {
        c.staging.clone()
    } else {
        c.staging.clone().with_upload(target.clone())
    };
    let (sealed, queue) = mpsc::channel::<(String, u64)>();
    let queue = Mutex::new(queue);
    let sealed = Mutex::new(sealed);
    let counts = Counts::default();
    let from = PushFrom {
        layout: &staging,
        source: c.source.registry(),
    };
    let (report, uploads) = std::thread::scope(|s| {
        let uploaders: Vec<_> = (0..c.jobs.max(1))
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    while let Ok((digest, size)) = next(&queue) {
                        push_blob(from, &digest, size, target, &counts)?;
                    }
                    Ok(())
                })
            })
            .collect();
        let report =
            convert_image_with_progress(c.source, c.reference, &staging, tag, options, &|p| {
                if let Progress::LayerDone { report, .. } = &p {
                    if let Ok(tx) = sealed.lock() {
                        let _ = tx.send((report.digest.clone(), report.size));
                    }
                }
                progress(p);
            });
        // No more blobs: the uploaders drain the queue and stop.
        if let Ok(mut tx) = sealed.lock() {
            let (closed, _) = mpsc::channel();
            *tx = closed;
        }
        let uploads = uploaders
            .into_iter()
            .try_for_each(|u| u.join().unwrap_or(Ok(())));
        (report, uploads)
    });
    let report = report?;
    uploads?;
    let (streamed, _) = target.streamed();
    // The blobs sent early are found present now; `counts` already says how they went.
    let early = counts.settled();
    let mut pushed = push_counted(from, tag, target, tag, c.jobs, counts)?;
    pushed.present -= early.min(pushed.present);
    // Blobs uploaded while they were written were found present by then.
    pushed.present -= streamed.min(pushed.present);
    pushed.uploaded += streamed;
    pushed.uploaded_bytes += target.streamed().1;
    Ok((report, pushed))
}

/// The next sealed blob to upload; an error once the conversion is over and the queue empty.
fn next(queue: &Mutex<mpsc::Receiver<(String, u64)>>) -> std::result::Result<(String, u64), ()> {
    queue.lock().map_err(|_| ())?.recv().map_err(|_| ())
}
