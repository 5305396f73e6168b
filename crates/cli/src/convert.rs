//! `rafs convert`: an OCI layer tar to a RAFS bootstrap and data blob, as
//! `nydus-image create --type tar-rafs|tar-tarfs` does, in-process.

use crate::choices::{CompressorArg, DigesterArg, FsVersionArg, WhiteoutArg};
use crate::output::{check_distinct, commit_all, shown, Output};
use crate::CliResult;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rafs_tar_build::{build_layer_with_progress, BuildOptions, ConversionType};
use serde::Serialize;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// Options of `rafs convert`, named as `nydus-image create` names them.
#[derive(Args)]
pub struct ConvertArgs {
    /// The layer: a tar, gzip'ed tar or zstd'ed tar (`-` reads standard input), or a directory
    /// (an unpacked root file system, read as the reference's `dir-rafs` build reads it).
    pub(crate) layer: String,
    /// Where to write the bootstrap (required unless it is inlined into the blob).
    #[arg(long = "bootstrap", short = 'B')]
    pub(crate) bootstrap: Option<PathBuf>,
    /// Directory for the data blob, named by its blob id.
    #[arg(long = "blob-dir", short = 'D', conflicts_with = "blob")]
    pub(crate) blob_dir: Option<PathBuf>,
    /// File for the data blob.
    #[arg(long = "blob", short = 'b')]
    pub(crate) blob: Option<PathBuf>,
    /// tar-rafs (data into a new blob), tar-tarfs (files point into the tar itself) or
    /// targz-ref (zran: files point into the gzip layer itself; the blob written holds only
    /// metadata, named by its sha256, and the layer is the data blob, named by its sha256).
    #[arg(long = "type", short = 't', default_value = "tar-rafs", value_parser = ["tar-rafs", "tar-tarfs", "targz-ref"])]
    pub(crate) conversion: String,
    /// RAFS version.
    #[arg(long = "fs-version", value_enum, default_value = "6")]
    pub(crate) fs_version: FsVersionArg,
    /// Chunk compressor [default: zstd; tar-tarfs: none].
    #[arg(long, short = 'c', value_enum)]
    pub(crate) compressor: Option<CompressorArg>,
    /// Chunk digester [default: blake3; tar-tarfs: sha256].
    #[arg(long, value_enum)]
    pub(crate) digester: Option<DigesterArg>,
    /// Chunk size: a power of two from 0x1000 to 0x1000000 (hex with 0x, or decimal).
    #[arg(long = "chunk-size", short = 'S', default_value = "0x100000")]
    pub(crate) chunk_size: Option<String>,
    /// Whiteout markers: oci, overlayfs or none (a single layer keeps them as entries).
    #[arg(long = "whiteout-spec", value_enum, default_value = "oci")]
    pub(crate) whiteout_spec: WhiteoutArg,
    /// Put the bootstrap into the data blob (a "nydus layer" blob).
    #[arg(long = "blob-inline-meta")]
    pub(crate) blob_inline_meta: bool,
    /// Extra features; `blob-toc` adds the chunk digest array and a ToC to the blob.
    #[arg(long = "features", value_parser = ["blob-toc"])]
    pub(crate) features: Option<String>,
    /// v5: align chunks in the uncompressed blob to 4 KiB (v6 always does).
    #[arg(long = "aligned-chunk")]
    pub(crate) aligned_chunk: bool,
    /// Deduplicate against an existing image: `bootstrap=PATH`.
    #[arg(long = "chunk-dict")]
    pub(crate) chunk_dict: Option<String>,
    /// v6: files of one chunk under half this size are compressed together in batches of up
    /// to this size (a power of two from 0x1000 to the chunk size; hex with 0x, or decimal).
    #[arg(long = "batch-size")]
    pub(crate) batch_size: Option<String>,
    /// Apply the layer onto this bootstrap (same version, compressor, digester and chunk
    /// size): the new bootstrap holds the whole stack, the parent's blobs first.
    #[arg(long = "parent-bootstrap")]
    pub(crate) parent_bootstrap: Option<PathBuf>,
    /// File of prefetch patterns, one absolute path per line (`--prefetch-policy fs`).
    #[arg(long = "prefetch-patterns")]
    pub(crate) prefetch_patterns: Option<PathBuf>,
    /// uid and gid 0 for every entry.
    #[arg(long)]
    pub(crate) repeatable: bool,
    /// Blob id to record instead of the computed one (tarfs: instead of the tar's sha256).
    #[arg(long = "blob-id")]
    pub(crate) blob_id: Option<String>,
    /// Worker threads for compression; 0 = one per core (at most 1024).
    #[arg(long, default_value_t = 0)]
    pub(crate) threads: usize,
    /// v6: encrypt the chunk data and blob meta with AES-128-XTS under a random key, which the
    /// bootstrap's blob table records (as `nydus-image create --encrypt`).
    #[arg(long)]
    pub(crate) encrypt: bool,
    /// Print a JSON summary on standard output.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress bar.
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
}

#[derive(Serialize)]
struct Summary {
    bootstrap: Option<String>,
    bootstrap_size: u64,
    blob: Option<String>,
    blob_id: Option<String>,
    meta_blob_id: Option<String>,
    blob_size: u64,
    fs_version: u8,
    conversion: &'static str,
    compressor: &'static str,
    digester: &'static str,
    input_compression: &'static str,
    input_bytes: u64,
    tar_bytes: u64,
    entries: u64,
    files: u64,
    file_bytes: u64,
    hardlinks: u64,
    paths: u64,
    chunks_stored: u64,
    chunk_refs: u64,
    seconds: Seconds,
    tar_mb_per_s: f64,
}

#[derive(Serialize)]
struct Seconds {
    stream: f64,
    finish: f64,
    total: f64,
}

/// `--chunk-size`: hex with `0x`, or decimal.
pub(crate) fn parse_chunk_size(cs: &str) -> CliResult<u32> {
    parse_size(cs, "--chunk-size")
}

/// A size option: hex with `0x`, or decimal.
fn parse_size(text: &str, option: &str) -> CliResult<u32> {
    let v = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Ok(v.map_err(|_| format!("{option} {text:?} is not a number"))?)
}

/// The build options the flags give.
pub(crate) fn options(a: &ConvertArgs) -> CliResult<BuildOptions> {
    let tarfs = a.conversion == "tar-tarfs";
    let zran = a.conversion == "targz-ref";
    if zran && (a.compressor.is_some() || a.digester.is_some()) {
        return Err(
            "targz-ref keeps the layer's gzip data and sha256 digests: --compressor and \
             --digester do not apply"
                .into(),
        );
    }
    let mut o = if tarfs {
        BuildOptions::tarfs()
    } else if zran {
        BuildOptions::targz_ref()
    } else {
        BuildOptions::new(a.fs_version.into())
    };
    if tarfs && a.fs_version != FsVersionArg::V6 {
        return Err("tar-tarfs needs --fs-version 6".into());
    }
    if zran && a.fs_version != FsVersionArg::V6 {
        return Err("targz-ref needs --fs-version 6".into());
    }
    if let Some(c) = a.compressor {
        o.compressor = c.into();
    }
    if let Some(d) = a.digester {
        o.digester = d.into();
    }
    if let Some(cs) = &a.chunk_size {
        o.chunk_size = parse_chunk_size(cs)?;
    }
    o.whiteout_spec = a.whiteout_spec.into();
    o.inline_bootstrap = a.blob_inline_meta;
    o.blob_toc = a.features.as_deref() == Some("blob-toc");
    o.aligned_chunk = a.aligned_chunk;
    o.repeatable = a.repeatable;
    o.blob_id = a.blob_id.clone();
    o.threads = a.threads;
    if a.encrypt {
        o.cipher = Some(rafs_chunker::BlobCipher::random()?);
    }
    if let Some(b) = &a.batch_size {
        o.batch_size = parse_size(b, "--batch-size")?;
    }
    if let Some(spec) = &a.chunk_dict {
        let path = spec
            .strip_prefix("bootstrap=")
            .ok_or_else(|| format!("--chunk-dict {spec:?}: expected bootstrap=PATH"))?;
        let src = rafs_format::source::Bootstrap::open(Path::new(path))?;
        o.chunk_dict = Some(rafs_chunker::ChunkDict::from_bootstrap(src.bytes())?);
    }
    if let Some(p) = &a.parent_bootstrap {
        let src = rafs_format::source::Bootstrap::open(p)?;
        o.parent = Some(std::sync::Arc::new(rafs_format::decode(src.bytes())?));
    }
    if let Some(p) = &a.prefetch_patterns {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        o.prefetch_patterns = Some(text.lines().map(str::to_owned).collect());
    }
    // A directory is streamed as a tar in the reference's dir-rafs order (see `execute`).
    o.directory_source = Path::new(&a.layer).is_dir();
    o.validate()?;
    Ok(o)
}

/// Runs `rafs convert`.
pub fn run(a: &ConvertArgs) -> CliResult<ExitCode> {
    let opts = options(a)?;
    let done = execute(a, &opts)?;
    let r = &done.report;
    if a.json {
        let s = summary(a, &opts, r, done.blob_path, done.seconds);
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else if !a.quiet {
        eprintln!(
            "rafs: {} entries, {} MB of tar in {:.2} s; blob {} ({} bytes), bootstrap {} bytes",
            r.entries,
            r.tar_bytes / 1_000_000,
            done.seconds,
            r.blob_id.as_deref().unwrap_or("none"),
            r.blob_size,
            r.bootstrap_size
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// What a conversion made, committed.
pub(crate) struct Converted {
    /// The builder's report.
    pub report: rafs_tar_build::BuildReport,
    /// The bootstrap's bytes.
    pub bootstrap: Vec<u8>,
    /// Where the blob went (`-` for standard output), if one was written.
    pub blob_path: Option<String>,
    /// Wall time.
    pub seconds: f64,
}

/// Converts the layer `a` names with `opts` and commits the outputs.
pub(crate) fn execute(a: &ConvertArgs, opts: &BuildOptions) -> CliResult<Converted> {
    let tarfs = opts.conversion == ConversionType::TarTarfs;
    check_modes(a, opts)?;
    check_paths(a)?;
    // Every output location is checked (and its file started) before any work.
    let bootstrap_out = a.bootstrap.as_deref().map(Output::open).transpose()?;
    let blob_out = open_blob_output(a, tarfs)?;
    let (input, total): (Box<dyn Read + Send>, Option<u64>) = if a.layer == "-" {
        (Box::new(std::io::stdin()), None)
    } else if opts.directory_source {
        if opts.conversion != ConversionType::TarRafs {
            return Err(format!(
                "{}: a directory converts with --type tar-rafs only",
                a.layer
            )
            .into());
        }
        let walk =
            rafs_tar_build::dir_source::directory_layer(Path::new(&a.layer), opts.whiteout_spec)
                .map_err(|e| format!("{}: {e}", a.layer))?;
        (Box::new(walk), None)
    } else {
        let f = std::fs::File::open(&a.layer).map_err(|e| format!("{}: {e}", a.layer))?;
        let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
        crate::output::widen_pipe(&f);
        (Box::new(f), len)
    };
    let bar = progress_bar(total, a.quiet);
    let started = Instant::now();
    let out = build_layer_with_progress(input, opts, Sink(blob_out), &mut |p| {
        bar.set_position(p.input_bytes);
        bar.set_message(format!("{} entries", p.entries));
    });
    bar.finish_and_clear();
    let out = out.map_err(|e| format!("{}: {e}", a.layer))?;
    let blob_path = commit(
        a,
        tarfs,
        bootstrap_out,
        out.sink.0,
        &out.bootstrap,
        &out.report,
    )?;
    Ok(Converted {
        report: out.report,
        bootstrap: out.bootstrap,
        blob_path,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The outputs each conversion type needs, and no others.
fn check_modes(a: &ConvertArgs, opts: &BuildOptions) -> CliResult<()> {
    let tarfs = opts.conversion == ConversionType::TarTarfs;
    if a.bootstrap.is_none() && (tarfs || !opts.inline_bootstrap) {
        return Err(
            "--bootstrap is required unless the bootstrap is inlined (--blob-inline-meta)".into(),
        );
    }
    if !tarfs && a.blob_dir.is_none() && a.blob.is_none() {
        return Err(format!("{} needs --blob-dir or --blob", a.conversion).into());
    }
    if tarfs && (a.blob_dir.is_some() || a.blob.is_some()) {
        return Err("tar-tarfs writes no blob: the layer tar is the blob".into());
    }
    Ok(())
}

/// The blob's output: a named file, or an unnamed one in the blob directory (named by its id
/// at the end); none for tarfs.
fn open_blob_output(a: &ConvertArgs, tarfs: bool) -> CliResult<Option<Output>> {
    Ok(match (&a.blob, &a.blob_dir) {
        _ if tarfs => None,
        (Some(b), _) => Some(Output::open(b)?),
        (None, Some(d)) => {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", shown(d)))?;
            Some(Output::in_dir(d)?)
        }
        (None, None) => None,
    })
}

/// Commits the blob (when one was written) and the bootstrap together, blob first: a
/// bootstrap never names a blob that is not there. Returns the blob's path for the summary.
fn commit(
    a: &ConvertArgs,
    tarfs: bool,
    bootstrap_out: Option<Output>,
    blob: Option<Output>,
    bootstrap: &[u8],
    r: &rafs_tar_build::BuildReport,
) -> CliResult<Option<String>> {
    let mut outputs = Vec::new();
    let mut blob_path = None;
    if let (Some(blob), true) = (blob, !tarfs && r.blob_size > 0) {
        // targz-ref writes the metadata blob; the data blob is the layer itself.
        let id = r
            .meta_blob_id
            .clone()
            .or_else(|| r.blob_id.clone())
            .ok_or("a blob was written without an id")?;
        let blob = match (&a.blob, &a.blob_dir) {
            (None, Some(d)) => {
                let named = blob.named(d.join(&id));
                let path = named.path().map(Path::to_path_buf).unwrap_or_default();
                let boot = a.bootstrap.as_deref().unwrap_or(Path::new("-"));
                check_distinct(&[&path, boot], &inputs(a))?;
                named
            }
            _ => blob,
        };
        blob_path = Some(
            blob.path()
                .map_or_else(|| "-".into(), |p| p.display().to_string()),
        );
        outputs.push(blob);
    }
    if let Some(mut b) = bootstrap_out {
        let shown_b = a.bootstrap.as_deref().map(shown).unwrap_or_default();
        b.write_all(bootstrap)
            .map_err(|e| format!("{shown_b}: {e}"))?;
        outputs.push(b);
    }
    commit_all(outputs)?;
    Ok(blob_path)
}

/// Files `convert` reads.
fn inputs(a: &ConvertArgs) -> Vec<&Path> {
    let mut v = vec![Path::new(a.layer.as_str())];
    if let Some(p) = &a.prefetch_patterns {
        v.push(p);
    }
    if let Some(p) = &a.parent_bootstrap {
        v.push(p);
    }
    if let Some(d) = a
        .chunk_dict
        .as_deref()
        .and_then(|s| s.strip_prefix("bootstrap="))
    {
        v.push(Path::new(d));
    }
    v
}

/// No output on an input, no two outputs on one file, standard output used once.
fn check_paths(a: &ConvertArgs) -> CliResult<()> {
    let outputs: Vec<&Path> = a
        .bootstrap
        .iter()
        .chain(a.blob.iter())
        .map(PathBuf::as_path)
        .collect();
    check_distinct(&outputs, &inputs(a))?;
    if a.json && outputs.iter().any(|p| p.as_os_str() == "-") {
        return Err("--json prints on standard output, which an output already uses".into());
    }
    Ok(())
}

fn summary(
    a: &ConvertArgs,
    opts: &BuildOptions,
    r: &rafs_tar_build::BuildReport,
    blob_path: Option<String>,
    total_time: f64,
) -> Summary {
    Summary {
        bootstrap: a.bootstrap.as_ref().map(|p| p.display().to_string()),
        bootstrap_size: r.bootstrap_size,
        blob: blob_path,
        blob_id: r.blob_id.clone(),
        meta_blob_id: r.meta_blob_id.clone(),
        blob_size: r.blob_size,
        fs_version: opts.fs_version.number(),
        conversion: match opts.conversion {
            ConversionType::TarTarfs => "tar-tarfs",
            ConversionType::TargzRef => "targz-ref",
            _ => "tar-rafs",
        },
        compressor: opts.compressor.name(),
        digester: opts.digester.name(),
        input_compression: r.compression,
        input_bytes: r.input_bytes,
        tar_bytes: r.tar_bytes,
        entries: r.entries,
        files: r.files,
        file_bytes: r.file_bytes,
        hardlinks: r.hardlinks,
        paths: r.paths,
        chunks_stored: r.chunks_stored,
        chunk_refs: r.chunk_refs,
        seconds: Seconds {
            stream: r.stream_time.as_secs_f64(),
            finish: r.finish_time.as_secs_f64(),
            total: total_time,
        },
        tar_mb_per_s: r.tar_bytes as f64 / 1e6 / total_time.max(1e-9),
    }
}

/// Where the blob goes: an output, or nowhere (tarfs).
struct Sink(Option<Output>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            Some(f) => f.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.0 {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// A bar on standard error when it is a terminal (hidden otherwise, or with `--quiet`).
fn progress_bar(total: Option<u64>, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let template = if total.is_some() {
        "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg} [{elapsed}]"
    } else {
        "{spinner} {bytes} {bytes_per_sec} {msg} [{elapsed}]"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
