//! [`BlobWriter`]: the caller's side of the pipeline (reading files into buffers, packing
//! small chunks into jobs, placing results in order) and the worker threads.

use super::*;

/// Writes one data blob. See the [module documentation](crate::writer).
pub struct BlobWriter<W: Write> {
    opts: BlobOptions,
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    /// Taken by [`BlobWriter::finish_data`].
    placement: Option<Placement<W>>,
    /// Buffers not in flight.
    free: Vec<Buffers>,
    /// Buffers made so far (at most `max_in_flight`).
    buffers: usize,
    /// Results that came back before their turn, by sequence number.
    pending: BTreeMap<u64, Done>,
    /// Sequence number of the next job to place.
    next_to_place: u64,
    next_seq: u64,
    files: u32,
    /// Small chunks gathered for the next job.
    packing: Option<(Buffers, Vec<Part>)>,
}

impl<W: Write> BlobWriter<W> {
    /// Starts a blob written to `sink`.
    pub fn new(sink: W, options: BlobOptions) -> Result<Self> {
        Self::start(sink, options, None)
    }

    /// Starts a blob whose chunks are first looked up in a chunk dictionary: a hit becomes a
    /// reference into the dictionary's blob instead of stored data.
    pub fn with_dictionary(sink: W, options: BlobOptions, dict: ChunkDict) -> Result<Self> {
        if dict.digester() != options.digester {
            return Err(Error::InvalidOptions(format!(
                "chunk dictionary uses {}, the build {}",
                dict.digester().name(),
                options.digester.name()
            )));
        }
        Self::start(sink, options, Some(dict))
    }

    pub(super) fn start(sink: W, mut opts: BlobOptions, dict: Option<ChunkDict>) -> Result<Self> {
        opts.validate()?;
        let threads = opts.effective_threads();
        opts.threads = threads;
        if opts.max_in_flight == 0 {
            opts.max_in_flight = 2 * threads + 2;
        }
        let (jobs_tx, jobs_rx) = bounded::<Job>(opts.max_in_flight);
        let (done_tx, done) = unbounded::<Done>();
        let workers = spawn_workers(&opts, &jobs_rx, &done_tx, dict.clone())?;
        Ok(BlobWriter {
            placement: Some(Placement::new(sink, opts.clone(), dict)),
            opts,
            jobs: Some(jobs_tx),
            done,
            workers,
            free: Vec::new(),
            buffers: 0,
            pending: BTreeMap::new(),
            next_to_place: 0,
            next_seq: 0,
            files: 0,
            packing: None,
        })
    }

    /// A buffer for the next chunk: a free one, a new one while the pool is not full, or the
    /// next one placing results gives back.
    pub(super) fn buffer(&mut self) -> Result<Buffers> {
        loop {
            if let Some(b) = self.free.pop() {
                return Ok(b);
            }
            if self.buffers < self.opts.max_in_flight {
                self.buffers += 1;
                // A job holds at most one chunk size of data, and its compressed parts are
                // each smaller than their data: exact room, never grown by doubling.
                let room = self.opts.chunk_size as usize;
                return Ok(Buffers {
                    data: Vec::with_capacity(room),
                    filled: 0,
                    out: Vec::with_capacity(room),
                });
            }
            self.place_one_result()?;
        }
    }

    /// Waits for one result, then places every result whose turn has come.
    pub(super) fn place_one_result(&mut self) -> Result<()> {
        let done = self
            .done
            .recv()
            .map_err(|_| Error::Pipeline("worker threads stopped".into()))?;
        self.pending.insert(done.seq, done);
        while let Some(mut d) = self.pending.remove(&self.next_to_place) {
            self.next_to_place += 1;
            let placed = match d.failure.take() {
                Some(e) => Err(e),
                None => match self.placement.as_mut() {
                    Some(p) => d.pieces().try_for_each(|piece| p.place(&piece)),
                    None => Err(Error::Pipeline("writer already finished".into())),
                },
            };
            self.free.push(d.buf);
            placed?;
        }
        Ok(())
    }

    /// The options in effect (threads and in-flight count resolved).
    pub fn options(&self) -> &BlobOptions {
        &self.opts
    }

    /// Adds a regular file of `size` bytes read from `reader`, cut into chunks. Returns its
    /// handle; its chunk records are in [`BlobData::files`] once the data is finished.
    pub fn add_file(&mut self, reader: &mut dyn Read, size: u64) -> Result<FileId> {
        if self.opts.zran {
            return Err(Error::InvalidOptions(
                "a zran blob takes files through add_zran_file".into(),
            ));
        }
        self.add_file_located(reader, size, None)
    }

    /// Adds a regular file of a gzip layer (zran): `spans` says where each chunk's bytes are
    /// in the layer, asked just before and just after they are read from `reader` (the
    /// layer's decompressed stream, usually through the same [`ZranGenerator`]).
    ///
    /// [`ZranGenerator`]: crate::zran::ZranGenerator
    pub fn add_zran_file(
        &mut self,
        reader: &mut dyn Read,
        size: u64,
        spans: &mut dyn ChunkSpans,
    ) -> Result<FileId> {
        if !self.opts.zran {
            return Err(Error::InvalidOptions(
                "add_zran_file needs BlobOptions::zran".into(),
            ));
        }
        self.add_file_located(reader, size, Some(spans))
    }

    pub(super) fn add_file_located(
        &mut self,
        reader: &mut dyn Read,
        size: u64,
        mut spans: Option<&mut dyn ChunkSpans>,
    ) -> Result<FileId> {
        let cs = u64::from(self.opts.chunk_size);
        let nchunks = size.div_ceil(cs);
        if nchunks > 1 << 24 {
            return Err(Error::Unrepresentable(format!(
                "a file of {size} bytes needs {nchunks} chunks, more than 2^24"
            )));
        }
        let file = self.files;
        self.files = self
            .files
            .checked_add(1)
            .ok_or_else(|| Error::Unrepresentable("more than 2^32 files".into()))?;
        let mut file_offset = 0u64;
        while file_offset < size {
            // At most one chunk: 16 MiB, or the options would not have validated.
            let len = usize::try_from((size - file_offset).min(cs))
                .map_err(|_| Error::Unrepresentable("a chunk larger than memory".into()))?;
            let part = Part {
                file,
                file_offset,
                batchable: self.opts.batchable(nchunks, len),
                zran: None,
                start: 0,
                len,
            };
            self.pack_chunk(reader, part, size, &mut spans)?;
            file_offset += len as u64;
        }
        Ok(FileId(file))
    }

    /// Reads one chunk into the job being gathered, sending that job first if the chunk would
    /// not fit in a chunk size's worth of buffer (so a job never holds more than one chunk
    /// size of data, as before gathering).
    pub(super) fn pack_chunk(
        &mut self,
        reader: &mut dyn Read,
        mut part: Part,
        file_size: u64,
        spans: &mut Option<&mut dyn ChunkSpans>,
    ) -> Result<()> {
        let limit = self.opts.chunk_size as usize;
        if let Some((buf, parts)) = &self.packing {
            if buf.filled + part.len > limit || parts.len() >= MAX_PARTS_PER_JOB {
                self.send_packed()?;
            }
        }
        let (mut buf, mut parts) = match self.packing.take() {
            Some(p) => p,
            None => {
                let mut buf = self.buffer()?;
                buf.filled = 0;
                (buf, Vec::new())
            }
        };
        part.start = buf.filled;
        buf.filled += part.len;
        if buf.data.len() < buf.filled {
            buf.data.resize(buf.filled, 0);
        }
        let at = part.file_offset;
        let zran_fail = |e: ZranError| {
            Error::io(
                format!("locating file data at offset {at} in the gzip layer"),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        };
        if let Some(s) = spans {
            s.begin_chunk().map_err(zran_fail)?;
        }
        reader
            .read_exact(&mut buf.data[part.start..buf.filled])
            .map_err(|e| {
                Error::io(
                    format!("reading file data at offset {at} of {file_size} bytes"),
                    e,
                )
            })?;
        if let Some(s) = spans {
            part.zran = Some(s.end_chunk().map_err(zran_fail)?);
        }
        parts.push(part);
        self.packing = Some((buf, parts));
        Ok(())
    }

    /// Hands the gathered chunks to the workers.
    pub(super) fn send_packed(&mut self) -> Result<()> {
        let Some((buf, parts)) = self.packing.take() else {
            return Ok(());
        };
        let job = Job {
            seq: self.next_seq,
            parts,
            buf,
        };
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| Error::Pipeline("writer already finished".into()))?;
        jobs.send(job)
            .map_err(|_| Error::Pipeline("worker threads stopped".into()))?;
        self.next_seq += 1;
        Ok(())
    }

    /// Adds a file held in memory.
    pub fn add_bytes(&mut self, data: &[u8]) -> Result<FileId> {
        let mut r = data;
        self.add_file(&mut r, data.len() as u64)
    }

    /// Waits for every chunk, then writes the sections that follow the chunk data: the
    /// `image.blob` header, the blob meta and the digest array, as the options ask.
    pub fn finish_data(self) -> Result<BlobData<W>> {
        if self.opts.zran {
            return Err(Error::InvalidOptions(
                "a zran blob is finished with finish_zran".into(),
            ));
        }
        self.finish_with(None)
    }

    /// [`finish_data`](Self::finish_data) for a zran blob: `contexts` are the generator's,
    /// and the data blob is the gzip layer, `layer_id` (hex sha256) of `layer_size` bytes.
    pub fn finish_zran(
        self,
        contexts: Vec<ZranContext>,
        layer_id: String,
        layer_size: u64,
    ) -> Result<BlobData<W>> {
        if !self.opts.zran {
            return Err(Error::InvalidOptions(
                "finish_zran needs BlobOptions::zran".into(),
            ));
        }
        self.finish_with(Some((contexts, layer_id, layer_size)))
    }

    pub(super) fn finish_with(
        mut self,
        zran: Option<(Vec<ZranContext>, String, u64)>,
    ) -> Result<BlobData<W>> {
        self.send_packed()?;
        drop(self.jobs.take());
        while self.next_to_place < self.next_seq {
            self.place_one_result()?;
        }
        for w in self.workers.drain(..) {
            w.join()
                .map_err(|_| Error::Pipeline("a worker thread panicked".into()))?;
        }
        // The chunk buffers are done with; sealing should not hold them.
        self.free = Vec::new();
        let mut p = self
            .placement
            .take()
            .ok_or_else(|| Error::Pipeline("writer already finished".into()))?;
        p.files.resize_with(self.files as usize, Vec::new);
        let layer = zran.map(|(contexts, id, size)| {
            p.zran_contexts = contexts;
            (id, size)
        });
        BlobData::seal(p, layer)
    }
}

impl<W: Write> Drop for BlobWriter<W> {
    fn drop(&mut self) {
        // Closing the job queue ends the workers once they have drained it.
        drop(self.jobs.take());
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Starts the workers: each digests and compresses jobs until the queue closes.
pub(super) fn spawn_workers(
    opts: &BlobOptions,
    jobs: &Receiver<Job>,
    done: &Sender<Done>,
    dict: Option<ChunkDict>,
) -> Result<Vec<JoinHandle<()>>> {
    let mut workers = Vec::with_capacity(opts.threads);
    let claims = Arc::new(Claims::new(dict));
    for _ in 0..opts.threads {
        let (jobs, done, claims) = (jobs.clone(), done.clone(), Arc::clone(&claims));
        let (compressor, digester, crc) = (opts.compressor, opts.digester, opts.crc32);
        let spawned = std::thread::Builder::new().spawn(move || {
            let mut ctx = CompressContext::new();
            let mut scratch = Vec::new();
            for job in jobs {
                if done
                    .send(process(
                        &mut ctx,
                        &mut scratch,
                        &claims,
                        job,
                        compressor,
                        digester,
                        crc,
                    ))
                    .is_err()
                {
                    return;
                }
            }
        });
        workers.push(
            spawned.map_err(|e| Error::Pipeline(format!("cannot start a worker thread: {e}")))?,
        );
    }
    Ok(workers)
}

/// Each part's digest, CRC and compression; compressed bytes go one after another into the
/// job's `out` buffer.
pub(super) fn process(
    ctx: &mut CompressContext,
    scratch: &mut Vec<u8>,
    claims: &Claims,
    mut job: Job,
    compressor: Compressor,
    digester: Digester,
    crc: bool,
) -> Done {
    let mut parts = Vec::with_capacity(job.parts.len());
    let mut failure = None;
    let mut out = std::mem::take(&mut job.buf.out);
    out.clear();
    for (i, part) in (0u64..).zip(&job.parts) {
        let data = &job.buf.data[part.start..part.start + part.len];
        let digest = rafs_format::digest::digest(digester, data);
        let crc32 = if crc { crc32c::crc32c(data) } else { 0 };
        let out_start = out.len();
        let kept_as_is = part.batchable || part.zran.is_some() || failure.is_some();
        // Parts of a job are at most MAX_PARTS_PER_JOB, so positions keep stream order.
        let position = job.seq * MAX_PARTS_PER_JOB as u64 + i;
        let skipped_duplicate =
            !kept_as_is && claims.duplicates_earlier(&digest, data.len(), position);
        let compressed = if kept_as_is || skipped_duplicate {
            false
        } else {
            match ctx.compress(compressor, data, scratch) {
                Ok(c) => {
                    if c {
                        out.extend_from_slice(scratch);
                    }
                    c
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        };
        parts.push(PartDone {
            part: *part,
            out_start,
            out_len: out.len() - out_start,
            digest,
            crc32,
            compressed,
            skipped_duplicate,
        });
    }
    job.buf.out = out;
    Done {
        seq: job.seq,
        parts,
        buf: job.buf,
        failure,
    }
}
