//! The layers of a manifest converted concurrently, each streamed from the source into a Nydus
//! blob of the target, with progress.

use super::*;

/// A layer's position and what converting it gave.
pub(super) type Converted = (usize, Result<(MergeInput, LayerReport)>);

/// Converts the layers concurrently: one slot per core takes the next layer from a queue when
/// done with one, and the cores' workers are shared out among the slots (each layer streams
/// its source once and writes its blob; outputs do not depend on one another, so the result
/// is the same in any order). Reports come back in manifest order, and the first failure in
/// manifest order is returned.
pub(super) fn convert_layers(
    source: &Layout,
    target: &Layout,
    layers: &[Value],
    options: &ConvertOptions,
    progress: ProgressFn<'_>,
) -> Result<(Vec<MergeInput>, Vec<LayerReport>)> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let wanted = if options.layer_jobs > 0 {
        options.layer_jobs
    } else {
        cores.clamp(1, 8)
    };
    let slots = wanted.min(layers.len().max(1));
    // Layers side by side share the cores: each gets its part of the workers unless asked.
    let mut shared = options.clone();
    if shared.build.threads == 0 {
        shared.build.threads = (cores / slots).max(1);
    }
    if let Some(dict) = &options.chunk_dict {
        shared.build.chunk_dict = Some(dict.verified_chunks(target)?);
    }
    // No layer may spend more than the whole image's budget of file bytes.
    shared.build.limits = options.limits.layer;
    shared.build.limits.max_file_bytes = shared
        .build
        .limits
        .max_file_bytes
        .min(options.limits.max_image_bytes);
    let options = &shared;
    // A work queue: each slot takes the next layer when it is done with one.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Vec<Converted>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..slots)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(layer) = layers.get(index) else {
                            break done;
                        };
                        let at = LayerAt {
                            index,
                            total: layers.len(),
                        };
                        done.push((
                            index,
                            convert_layer(source, target, at, layer, options, progress),
                        ));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![(
                        0,
                        Err(unsupported(
                            "layer conversion",
                            "a conversion thread panicked",
                        )),
                    )]
                })
            })
            .collect()
    });
    let mut ordered: Vec<Converted> = results.into_iter().flatten().collect();
    ordered.sort_by_key(|(i, _)| *i);
    let mut merge_inputs = Vec::with_capacity(layers.len());
    let mut reports = Vec::with_capacity(layers.len());
    for (_, result) in ordered {
        let (input, report) = result?;
        merge_inputs.push(input);
        reports.push(report);
    }
    Ok((merge_inputs, reports))
}

/// The layer media types that are converted: OCI and Docker tar layers, any compression.
pub(super) fn check_layer_type(media: &str, what: &str) -> Result<()> {
    const CONVERTED: [&str; 5] = [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    ];
    if CONVERTED.contains(&media) {
        return Ok(());
    }
    if media.contains("nondistributable") || media.contains("foreign") {
        return Err(unsupported(
            what,
            format!("{media}: a foreign (non-distributable) layer is not in the image to convert"),
        ));
    }
    Err(unsupported(
        what,
        format!("unknown layer media type {media}"),
    ))
}

/// A layer this conversion can take (its media type; gzip for OCI ref); returns its size.
pub(super) fn checked_layer(layer: &Value, what: &str, options: &ConvertOptions) -> Result<u64> {
    let media = layer["mediaType"].as_str().unwrap_or_default();
    check_layer_type(media, what)?;
    if options.oci_ref && !media.ends_with("gzip") {
        return Err(unsupported(
            what,
            format!("{media}: OCI ref indexes gzip layers only"),
        ));
    }
    layer["size"].as_u64().ok_or_else(|| json(what, "no size"))
}

/// Where a layer is in its manifest.
#[derive(Clone, Copy)]
pub(super) struct LayerAt {
    index: usize,
    total: usize,
}

/// Packs one source layer into the target: streamed from the source blob (verified when the
/// stream ends) into a blob of the target named by its digest.
pub(super) fn convert_layer(
    source: &Layout,
    target: &Layout,
    at: LayerAt,
    layer: &Value,
    options: &ConvertOptions,
    progress: ProgressFn<'_>,
) -> Result<(MergeInput, LayerReport)> {
    let started = std::time::Instant::now();
    let index = at.index;
    let digest = layer["digest"].as_str().unwrap_or_default().to_owned();
    let size = checked_layer(layer, &format!("layer {index} ({digest})"), options)?;
    progress(Progress::LayerStarted {
        index,
        total: at.total,
        size,
    });
    let mut input = Counting {
        inner: source.open_blob(&digest, size)?,
        read: 0,
        reported: 0,
        report: &|read| progress(Progress::LayerRead { index, read }),
    };
    let writer = CountingWriter {
        inner: target.layer_writer()?,
        written: 0,
        reported: 0,
        report: &|written| progress(Progress::LayerWritten { index, written }),
    };
    let layer_error = |source| Error::Layer {
        index,
        digest: digest.clone(),
        source,
    };
    // The layout's blob writer hashes what it stores, so the blob is built straight into it
    // (not through `pack_layer`, which would hash every byte a second time).
    let built =
        rafs_tar_build::build_layer(&mut input, &options.build, writer).map_err(layer_error)?;
    let writer = built.sink.inner;
    // The builder may stop at the tar's end marker; the rest must still match the digest.
    std::io::copy(&mut input, &mut std::io::sink()).map_err(|e| Error::Blob {
        digest: digest.clone(),
        reason: e.to_string(),
    })?;
    let (blob_digest, blob_size) = writer.commit()?;
    if options.oci_ref {
        // The original layer is the data blob: it goes into the target under its digest.
        target.copy_blob_from(source, &digest, size)?;
    }
    let blob_meta = if options.build.fs_version == FsVersion::V6 && !options.oci_ref {
        let file = rafs_chunker::FileSource::open(target.blob_path(&blob_digest)?)
            .map_err(crate::error::io(target.root()))?;
        blob_meta_file(file)?
    } else {
        None
    };
    let report = LayerReport {
        source_digest: digest,
        source_size: size,
        digest: blob_digest.clone(),
        size: blob_size,
        seconds: started.elapsed().as_secs_f64(),
        file_bytes: built.report.file_bytes,
    };
    progress(Progress::LayerDone {
        index,
        report: &report,
    });
    Ok((
        MergeInput {
            digest: blob_digest,
            size: blob_size,
            bootstrap: built.bootstrap,
            blob_meta,
            implicit_dirs: built.implicit_dirs,
        },
        report,
    ))
}

/// A reader that reports how much was read, about every MiB.
pub(super) struct Counting<'a, R> {
    inner: R,
    read: u64,
    reported: u64,
    report: &'a (dyn Fn(u64) + Sync),
}

impl<R: std::io::Read> std::io::Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read - self.reported >= 1 << 20 || (n == 0 && self.read > self.reported) {
            self.reported = self.read;
            (self.report)(self.read);
        }
        Ok(n)
    }
}

/// A writer reporting how much went through it, about every MiB.
pub(super) struct CountingWriter<'a, W> {
    inner: W,
    written: u64,
    reported: u64,
    report: &'a (dyn Fn(u64) + Sync),
}

impl<W: std::io::Write> std::io::Write for CountingWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        if self.written - self.reported >= 1 << 20 {
            self.reported = self.written;
            (self.report)(self.written);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
