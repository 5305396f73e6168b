//! After the stream: the blob sealed (with the bootstrap inlined when asked), the image put
//! together (onto a parent when there is one), and the errors of the stream located.

use super::*;

pub(super) fn blob_writer<W: Write>(options: &BuildOptions, sink: W) -> Result<BlobWriter<W>> {
    let mut b = BlobOptions::new(options.fs_version);
    b.compressor = options.compressor;
    b.digester = options.digester;
    b.chunk_size = options.chunk_size;
    b.aligned_chunk = options.aligned_chunk;
    b.inline_bootstrap = options.inline_bootstrap;
    b.blob_toc = options.blob_toc;
    b.threads = options.threads;
    b.batch_size = options.batch_size;
    b.zran = options.conversion == ConversionType::TargzRef;
    b.cipher = options.cipher.clone();
    Ok(match &options.chunk_dict {
        Some(d) => BlobWriter::with_dictionary(sink, b, d.clone())?,
        None => BlobWriter::new(sink, b)?,
    })
}

pub(super) fn superblock_of(options: &BuildOptions) -> Superblock {
    let mut superblock = Superblock::new(options.fs_version);
    superblock.chunk_size = options.chunk_size;
    superblock.compressor = options.compressor;
    superblock.digester = options.digester;
    superblock.explicit_uid_gid = !options.repeatable;
    superblock.tarfs = options.conversion == ConversionType::TarTarfs;
    // As the reference's merge: the image is encrypted if any of its blobs is.
    superblock.encrypted = options.cipher.is_some()
        || options
            .parent
            .as_ref()
            .is_some_and(|p| p.superblock.encrypted);
    superblock
}

/// The blob entry of a tarfs image: the tar itself, named by its sha256 (or `--blob-id`).
pub(super) fn tarfs_blob(
    options: &BuildOptions,
    digest: &[u8; 32],
    chunks: u32,
    tar_bytes: u64,
) -> Blob {
    let id = match &options.blob_id {
        Some(id) => id.clone(),
        None => rafs_format::hex(digest),
    };
    let mut blob = Blob::new(id, Compressor::None, Digester::Sha256, options.chunk_size);
    blob.features = BlobFeatures::CAP_TAR_TOC | BlobFeatures::TARFS;
    blob.chunk_count = chunks;
    blob.compressed_size = tar_bytes;
    blob.uncompressed_size = tar_bytes;
    blob.meta.compressor = Compressor::Lz4Block.to_u32();
    blob
}

/// The options and what applying the layer onto a parent needs.
pub(super) struct OntoParent<'a> {
    pub(super) options: &'a BuildOptions,
    pub(super) implicit_dirs: &'a [Vec<u8>],
}

impl OntoParent<'_> {
    /// The layer's image applied onto `--parent-bootstrap` (as is without one): the parent's
    /// blob table kept whole and first, the layer's markers applied as the whiteout spec says,
    /// and directories the tar left out showing the parent's.
    fn apply(&self, image: Image) -> Result<Image> {
        let Some(parent) = &self.options.parent else {
            return Ok(image);
        };
        let mut m = MergeOptions::default();
        m.parent = Some(Image::clone(parent));
        m.whiteout_spec = self.options.whiteout_spec;
        m.prefetch_patterns = self.options.prefetch_patterns.clone();
        m.keep_blob_order = true;
        if let Some(d) = &self.options.chunk_dict {
            m.dict_blob_ids = d.blobs().iter().map(|b| b.blob_id.clone()).collect();
        }
        let mut merged = merge(
            vec![Layer {
                image: image.clone(),
                blob_id: None,
            }],
            &m,
        )?;
        let parent = m
            .parent
            .take()
            .ok_or(Error::Internal("the parent went missing"))?;
        let layers = [parent, image];
        let implicit: [&[Vec<u8>]; 2] = [&[], self.implicit_dirs];
        inherit_implicit_dirs(&mut merged, &layers, &implicit, self.options.whiteout_spec);
        Ok(merged)
    }
}

/// Finishes the data blob and encodes the bootstrap around it.
pub(super) fn finish_blob<W: Write>(
    mut data: BlobData<W>,
    tree: BuildTree,
    superblock: Superblock,
    onto: &OntoParent<'_>,
    report: &mut BuildReport,
) -> Result<(Vec<u8>, Image, W)> {
    let options = onto.options;
    // The chunk records move into the model; the finished blob does not need them.
    let mut files = std::mem::take(&mut data.files);
    // Each file id belongs to one build inode (a hard link shares the inode, not the id), and
    // the model asks for each inode once: its list moves, it is not copied.
    let model = tree.into_model(|d| match d {
        Data::Blob(f) => files
            .get_mut(*f as usize)
            .map(std::mem::take)
            .unwrap_or_default(),
        _ => Vec::new(),
    });
    let table = data.blob_table.clone();
    let own_entry = |b: Blob| -> Vec<Blob> {
        table
            .iter()
            .map(|e| match e {
                BlobTableEntry::ThisBlob => b.clone(),
                BlobTableEntry::Dictionary(d) => d.clone(),
            })
            .collect()
    };
    report.chunks_stored = u64::from(data.chunk_count());
    if options.inline_bootstrap {
        let blobs = own_entry(data.inline_blob_entry());
        let image = finish_image(superblock, blobs, model, options);
        let bootstrap = rafs_format::encode(&image)?;
        let finished = data.finish(Some(&bootstrap))?;
        report.blob_id = Some(finished.blob_id.clone());
        note_zran_ids(options, &finished, report);
        report.blob_size = finished.size;
        return Ok((bootstrap, image, finished.sink));
    }
    let finished = data.finish(None)?;
    let mut own = finished.blob.clone();
    if let Some(id) = &options.blob_id {
        own.blob_id = id.clone();
    }
    // A layer without stored chunks has no blob: the table keeps only dictionary blobs its
    // chunks refer to.
    let blobs = own_entry(own.clone());
    let image = onto.apply(finish_image(superblock, blobs, model, options))?;
    let bootstrap = rafs_format::encode(&image)?;
    if finished.size > 0 {
        report.blob_id = Some(own.blob_id.clone());
        note_zran_ids(options, &finished, report);
    }
    report.blob_size = finished.size;
    Ok((bootstrap, image, finished.sink))
}

/// targz-ref: the blob id is the layer's; what was written is the metadata blob.
pub(super) fn note_zran_ids<W>(
    options: &BuildOptions,
    finished: &rafs_chunker::FinishedBlob<W>,
    report: &mut BuildReport,
) {
    if options.conversion == ConversionType::TargzRef {
        report.blob_id = Some(finished.blob.blob_id.clone());
        report.meta_blob_id = Some(finished.blob_id.clone());
    }
}

/// The image around a finished tree: prefetch targets resolved (only when there are blobs, as
/// the reference writes the table).
pub(super) fn finish_image(
    superblock: Superblock,
    blobs: Vec<Blob>,
    tree: rafs_format::model::Tree,
    options: &BuildOptions,
) -> Image {
    let prefetch = match &options.prefetch_patterns {
        Some(patterns) if !blobs.is_empty() => {
            rafs_format::model::prefetch_targets(&tree, patterns)
        }
        _ => Vec::new(),
    };
    Image {
        superblock,
        blobs,
        tree,
        prefetch,
        v6_chunk_table: None,
    }
}

/// Classifies an error of the tar stream; `at` is the position reached.
pub(crate) fn stream_error(e: StreamError, at: u64) -> Error {
    match e {
        StreamError::Io(e) => tar_error(e, at),
        StreamError::BadChecksum => Error::Tar {
            offset: at.saturating_sub(512),
            kind: TarErrorKind::BadChecksum,
        },
        StreamError::Malformed(m) => Error::Tar {
            offset: at,
            kind: TarErrorKind::Malformed(m),
        },
    }
}

/// Classifies an error the tar parser passed up.
pub(crate) fn tar_error(e: io::Error, offset: u64) -> Error {
    if let Some(d) = e.get_ref().and_then(|r| r.downcast_ref::<DecodeFailure>()) {
        return Error::Tar {
            offset,
            kind: TarErrorKind::Decompression {
                algorithm: d.algorithm,
                reason: d.reason.clone(),
            },
        };
    }
    let msg = e.to_string();
    let kind = if msg.contains("checksum") || msg.contains("cksum") {
        TarErrorKind::BadChecksum
    } else if e.kind() == io::ErrorKind::UnexpectedEof
        || msg.contains("failed to read entire block")
    {
        TarErrorKind::Truncated(msg)
    } else {
        TarErrorKind::Malformed(msg)
    };
    Error::Tar { offset, kind }
}

/// Classifies a failure while a file's data was read into the blob.
pub(super) fn data_error(
    e: rafs_chunker::Error,
    declared: u64,
    got: u64,
    fail: &dyn Fn(K) -> Error,
    offset: u64,
) -> Error {
    match e {
        rafs_chunker::Error::Io { source, .. } => {
            if source.get_ref().is_some_and(|r| r.is::<DecodeFailure>()) {
                tar_error(source, offset)
            } else if source.kind() == io::ErrorKind::UnexpectedEof {
                fail(K::DataTruncated { declared, got })
            } else if let Some(k) = source
                .get_ref()
                .and_then(|r| r.downcast_ref::<crate::sparse::SparseError>())
            {
                fail(K::BadSparseMap(k.0.clone()))
            } else {
                tar_error(source, offset)
            }
        }
        other => Error::Blob(other),
    }
}
