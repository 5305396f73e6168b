//! One tar streamed through: each entry read, its data chunked into the blob (or located in
//! the tar for tarfs), its inode added to the tree.

use super::*;

impl<'a, 'o, W: Write> Run<'a, 'o, W> {
    pub(super) fn start(
        decoded: Box<dyn Read + 'a>,
        compression: input::Compression,
        input_count: ByteCount,
        options: &'o BuildOptions,
        sink: W,
    ) -> Result<Self> {
        let tarfs = options.conversion == ConversionType::TarTarfs;
        let tar_count = ByteCount::default();
        let hashing = Hashing::new(Counting::new(decoded, tar_count.clone()), tarfs);
        let out = if tarfs {
            Out::Tarfs { sink, chunks: 0 }
        } else {
            Out::Rafs(Box::new(blob_writer(options, sink)?))
        };
        Ok(Run {
            options,
            stream: TarStream::new(hashing),
            input_count,
            tar_count,
            out,
            report: BuildReport {
                compression: compression.name(),
                ..Default::default()
            },
            tree: BuildTree::with_v5_link_flag(!options.directory_source),
            budget: Budget::new(options.limits),
            index: 0,
            zran: None,
        })
    }

    pub(super) fn progress(&self) -> Progress {
        Progress {
            input_bytes: self.input_count.get(),
            tar_bytes: self.tar_count.get(),
            entries: self.report.entries,
        }
    }

    pub(super) fn next_entry(&mut self) -> Result<Option<Entry>> {
        self.stream
            .next_entry()
            .map_err(|e| stream_error(e, self.stream.position()))
    }

    /// Takes one entry of the stream into the tree (and its data into the blob).
    pub(super) fn entry(&mut self, mut entry: Entry) -> Result<()> {
        let at = Where {
            index: self.index,
            path: entry.path.clone(),
            offset: entry.header_pos,
        };
        self.index += 1;
        if entry.header.entry_type().is_pax_global_extensions() {
            return self.global_header(&entry, &at);
        }
        let Some(h) = self.header(&entry).map_err(|k| at.fail(k))? else {
            return Ok(());
        };
        self.budget.entry().map_err(|k| at.fail(k))?;
        self.budget.xattrs(&h.xattrs).map_err(|k| at.fail(k))?;
        if self.is_redundant_whiteout(&h) {
            // The entry's parent was replaced by a non-directory earlier in this layer: the
            // whiteout hides a child of a directory that no longer exists here.
            self.report.whiteouts_dropped += 1;
            return Ok(());
        }
        self.report.entries += 1;
        match h.kind {
            Kind::HardLink(ref target) => {
                self.report.hardlinks += 1;
                self.tree
                    .link(&h.path, target, h.attrs, h.xattrs)
                    .map_err(|k| at.fail(k))?;
            }
            _ => {
                let path = h.path.clone();
                let (inode, data) = self.inode(h, &mut entry, &at)?;
                self.tree.add(&path, inode, data).map_err(|k| at.fail(k))?;
            }
        }
        self.budget
            .paths(self.tree.len() as u64)
            .map_err(|k| at.fail(k))
    }

    /// A PAX global header: read within the layer's budget and checked to parse, as Go's
    /// reader does, then not applied. containerd's applier skips global headers ("found and
    /// ignored"), so their records (an mtime, an xattr) are not part of any entry; the
    /// reference refuses such layers, GNU tar would apply them.
    pub(super) fn global_header(&mut self, entry: &Entry, at: &Where) -> Result<()> {
        let max = self.options.limits.max_global_pax_bytes;
        if entry.stored > max {
            return Err(at.fail(K::LimitExceeded {
                limit: "max_global_pax_bytes",
                value: entry.stored,
                max,
            }));
        }
        let mut data = Vec::new();
        (&mut self.stream)
            .take(entry.stored)
            .read_to_end(&mut data)
            .map_err(|e| tar_error(e, self.stream.position()))?;
        crate::reader::parse_pax(&data).map_err(|r| {
            at.fail(K::BadField {
                field: "PAX global header",
                reason: r,
            })
        })?;
        Ok(())
    }

    /// What the entry is; `None` for an entry the reference always drops.
    pub(super) fn header(&self, entry: &Entry) -> std::result::Result<Option<Header>, K> {
        let pax = Pax::new(&entry.pax);
        let sparse = pax_sparse(&entry.pax)?;
        let path_bytes = match sparse.as_ref().and_then(|s| s.name.as_deref()) {
            Some(name) => name,
            None => &entry.path,
        };
        let path = normalise(path_bytes)?;
        if path.len() == 1 && DROPPED.contains(&path[0].as_slice()) {
            return Ok(None);
        }
        let kind = entry_kind(entry, self.options.fs_version)?;
        let attrs = name_attrs(entry, &pax, &kind, self.options.repeatable)?;
        let mut rdev = device_number(&entry.header, &kind)?;
        if self.options.directory_source && rdev == rafs_format::model::NON_DEVICE_RDEV {
            rdev = 0;
        }
        let xattrs = pax.xattrs()?;
        rafs_format::rules::check_xattrs_storable(self.options.fs_version, &xattrs)
            .map_err(K::XattrsUnstorable)?;
        Ok(Some(Header {
            path,
            kind,
            attrs,
            rdev,
            xattrs,
            sparse,
        }))
    }

    pub(super) fn is_redundant_whiteout(&self, h: &Header) -> bool {
        let name = h.path.last().map_or(&b""[..], |n| n.as_slice());
        let marker = match self.options.whiteout_spec {
            WhiteoutSpec::Oci => name.starts_with(b".wh."),
            WhiteoutSpec::Overlayfs => h.kind == Kind::Char && h.rdev == 0,
            // The Go converter keeps OCI markers as entries here and merges them later; one
            // under a path an earlier entry replaced by a non-directory (umoci writes these
            // after `rm -r dir; ln -s x dir`) hides nothing the replacement did not, and the
            // reference drops it.
            WhiteoutSpec::None => name.starts_with(b".wh."),
        };
        marker && self.tree.parent_replaced(&h.path)
    }

    /// The inode of a non-link entry, with its data stored.
    pub(super) fn inode(
        &mut self,
        h: Header,
        entry: &mut Entry,
        at: &Where,
    ) -> Result<(Inode, Data)> {
        let mut inode = Inode::new(h.attrs.mode);
        inode.uid = h.attrs.uid;
        inode.gid = h.attrs.gid;
        inode.mtime = h.attrs.mtime;
        inode.mtime_nsec = h.attrs.mtime_nsec;
        inode.rdev = h.rdev;
        inode.xattrs = h.xattrs;
        inode.nlink = 1;
        let mut data = Data::None;
        match h.kind {
            Kind::Symlink(target) => {
                inode.size = target.len() as u64;
                inode.symlink = target;
            }
            Kind::Directory => inode.nlink = 2,
            Kind::Regular => {
                let (size, d) = self.file_data(entry, h.sparse, at)?;
                inode.size = size;
                data = d;
            }
            _ => {}
        }
        Ok((inode, data))
    }

    /// Stores a regular file's data (chunks into the blob, or tarfs references) and returns
    /// its size.
    pub(super) fn file_data(
        &mut self,
        entry: &mut Entry,
        pax_sparse: Option<PaxSparse>,
        at: &Where,
    ) -> Result<(u64, Data)> {
        let stored = entry.stored;
        let content = match (pax_sparse, entry.sparse.take()) {
            (Some(s), _) => match s.map {
                SparseMap::InData => Content::SparseInData(s.real),
                SparseMap::Segments(segments) => {
                    check_segments(&segments, s.real, stored).map_err(|k| at.fail(k))?;
                    Content::Segments(segments, s.real)
                }
            },
            (None, Some((segments, real))) => Content::Segments(segments, real),
            (None, None) => Content::Plain,
        };
        let size = content.size(stored);
        if !matches!(content, Content::Plain) {
            self.budget.sparse(size).map_err(|k| at.fail(k))?;
        }
        let chunk_size = u64::from(self.options.chunk_size);
        self.budget.file(size, chunk_size).map_err(|k| at.fail(k))?;
        self.report.files += 1;
        self.report.file_bytes += size;
        let writer = match &mut self.out {
            Out::Rafs(w) => w,
            Out::Tarfs { chunks, .. } => {
                return tarfs_data(self.options, chunks, entry, &content, size, at)
            }
        };
        if self.zran.is_some() && !matches!(content, Content::Plain) {
            return Err(at.fail(K::Unrepresentable(
                "targz-ref cannot point into a sparse file's data".into(),
            )));
        }
        let read = ByteCount::default();
        let result = {
            let stream = &mut self.stream;
            let mut source: Box<dyn Read + '_> = match content {
                Content::Plain => Box::new(stream),
                Content::SparseInData(real) => {
                    Box::new(SparseReader::new(stream, stored, real).map_err(|k| at.fail(k))?)
                }
                Content::Segments(segments, real) => {
                    Box::new(SparseReader::from_segments(stream, segments, real))
                }
            };
            let mut counted = Counting::new(&mut source, read.clone());
            match &mut self.zran {
                Some(spans) => writer.add_zran_file(&mut counted, size, spans),
                None => writer.add_file(&mut counted, size),
            }
        };
        let fid = result
            .map_err(|e| data_error(e, size, read.get(), &|k| at.fail(k), self.tar_count.get()))?;
        Ok((size, Data::Blob(fid.0)))
    }

    /// The stream is done: the blob is finished and the bootstrap encoded.
    pub(super) fn finish(self, started: Instant) -> Result<BuildOutput<W>> {
        let Run {
            options,
            stream,
            input_count,
            tar_count,
            out,
            mut report,
            tree,
            zran,
            ..
        } = self;
        let tar_digest = stream
            .into_inner()
            .finish()
            .map_err(|e| tar_error(e, tar_count.get()))?;
        report.input_bytes = input_count.get();
        report.tar_bytes = tar_count.get();
        report.stream_time = started.elapsed();
        let finishing = Instant::now();
        let superblock = superblock_of(options);
        let (bootstrap, image, sink, implicit_dirs) = match out {
            Out::Rafs(w) => {
                let data = match zran {
                    Some(side) => {
                        let (contexts, digest, size) = side
                            .with(|g| g.finish())
                            .map_err(|e| tar_error(e, tar_count.get()))?;
                        report.input_bytes = size;
                        w.finish_zran(contexts, rafs_format::hex(&digest), size)?
                    }
                    None => w.finish_data()?,
                };
                // Listed once the chunk buffers are gone: they would add to the peak.
                let implicit_dirs = tree.implicit_dirs();
                let onto = OntoParent {
                    options,
                    implicit_dirs: &implicit_dirs,
                };
                let (bootstrap, image, sink) =
                    finish_blob(data, tree, superblock, &onto, &mut report)?;
                (bootstrap, image, sink, implicit_dirs)
            }
            Out::Tarfs {
                sink,
                chunks: tarfs_chunks,
            } => {
                let digest = tar_digest.ok_or(Error::Internal("tarfs input was not hashed"))?;
                let blob = tarfs_blob(options, &digest, tarfs_chunks, report.tar_bytes);
                report.blob_id = Some(blob.blob_id.clone());
                let implicit_dirs = tree.implicit_dirs();
                let model = tree.into_model(|d| match d {
                    Data::Tarfs(c) => std::mem::take(c).into_vec(),
                    _ => Vec::new(),
                });
                let image = finish_image(superblock, vec![blob], model, options);
                (rafs_format::encode(&image)?, image, sink, implicit_dirs)
            }
        };
        report.chunk_refs = image
            .tree
            .inodes
            .iter()
            .map(|i| i.chunks.len() as u64)
            .sum();
        report.paths = image.tree.nodes.len() as u64;
        report.bootstrap_size = bootstrap.len() as u64;
        report.finish_time = finishing.elapsed();
        Ok(BuildOutput {
            bootstrap,
            image,
            sink,
            report,
            implicit_dirs,
        })
    }
}
