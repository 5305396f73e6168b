//! `nydus-image merge`, `check`, `export --block` and `unpack`, by the reference's names,
//! through `rafs merge`, `rafs check`, `rafs export` and `rafs unpack`'s code.

use super::LogArgs;
use crate::images::{ExportArgs as RafsExport, ImageArgs, MergeArgs as RafsMerge};
use crate::CliResult;
use clap::Args;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// The reference's `merge` options that we support.
#[derive(Args)]
pub(crate) struct MergeArgs {
    /// bootstrap paths (allow one or more)
    #[arg(required = true)]
    sources: Vec<PathBuf>,
    /// File path of the parent/referenced RAFS metadata blob (optional)
    #[arg(long = "parent-bootstrap")]
    parent_bootstrap: Option<PathBuf>,
    /// Output path of nydus overlaid bootstrap
    #[arg(short = 'B', long = "bootstrap", required = true)]
    bootstrap: PathBuf,
    /// File path of chunk dictionary for data deduplication
    #[arg(long = "chunk-dict")]
    chunk_dict: Option<String>,
    /// Set data prefetch policy (fs: patterns on standard input)
    #[arg(long = "prefetch-policy", default_value = "none", value_parser = ["fs", "none"])]
    prefetch_policy: String,
    /// File path to save operation result in JSON format
    #[arg(short = 'J', long = "output-json")]
    output_json: Option<PathBuf>,
    /// RAFS blob digest list separated by comma
    #[arg(long = "blob-digests", value_delimiter = ',')]
    blob_digests: Option<Vec<String>>,
    /// RAFS blob size list separated by comma
    #[arg(long = "blob-sizes", value_delimiter = ',')]
    blob_sizes: Option<Vec<u64>>,
    /// RAFS blob toc digest list separated by comma
    #[arg(long = "blob-toc-digests", value_delimiter = ',')]
    blob_toc_digests: Option<Vec<String>>,
    /// RAFS blob toc size list separated by comma
    #[arg(long = "blob-toc-sizes", value_delimiter = ',')]
    blob_toc_sizes: Option<Vec<u32>>,
    /// original blob id list separated by comma, it may usually be a sha256 hex string
    #[arg(long = "original-blob-ids", value_delimiter = ',')]
    original_blob_ids: Option<Vec<String>>,
    #[command(flatten)]
    log: LogArgs,
}

/// Runs `nydus-image merge`: the `blobs` of `--output-json` are what the Go converter names in
/// the image manifest.
pub(crate) fn merge(a: &MergeArgs) -> CliResult<ExitCode> {
    let _ = &a.log;
    let args = RafsMerge {
        sources: a.sources.clone(),
        bootstrap: a.bootstrap.clone(),
        fs_version: None,
        blob_digests: a.blob_digests.clone(),
        blob_sizes: a.blob_sizes.clone(),
        blob_toc_digests: a.blob_toc_digests.clone(),
        blob_toc_sizes: a.blob_toc_sizes.clone(),
        original_blob_ids: a.original_blob_ids.clone(),
        parent_bootstrap: a.parent_bootstrap.clone(),
        chunk_dict: a.chunk_dict.clone(),
        prefetch_patterns: None,
        whiteout_spec: crate::choices::WhiteoutArg::Oci,
        json: false,
    };
    let patterns = super::stdin_patterns(Some(&a.prefetch_policy))?;
    // The merged image is what containers start from: the lowest layer's whiteout and opaque
    // markers are dropped, as containerd's applier never creates them (the reference keeps
    // them as files, so a container would see `/etc/.wh.passwd`).
    let image = crate::images::merge_as(&args, patterns, true)?;
    if let Some(json) = &a.output_json {
        super::write_output_json(json, Some(&a.bootstrap), &image)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The reference's `check` options that we support.
#[derive(Args)]
pub(crate) struct CheckArgs {
    /// File path of RAFS metadata
    #[arg(required_unless_present = "bootstrap_flag")]
    bootstrap: Option<PathBuf>,
    /// [Deprecated] File path of RAFS meta blob/bootstrap
    #[arg(short = 'B', long = "bootstrap", conflicts_with = "bootstrap")]
    bootstrap_flag: Option<PathBuf>,
    /// Directory for localfs storage backend, hosting data blobs: every chunk is read back
    #[arg(short = 'D', long = "blob-dir")]
    blob_dir: Option<PathBuf>,
    /// Output message in verbose mode
    #[arg(short = 'v', long)]
    verbose: bool,
    /// File path to save operation result in JSON format
    #[arg(short = 'J', long = "output-json")]
    output_json: Option<PathBuf>,
    #[command(flatten)]
    log: LogArgs,
}

/// Runs `nydus-image check`: exit 0 only when the metadata (and with `-D` every chunk) is
/// valid.
pub(crate) fn check(a: &CheckArgs) -> CliResult<ExitCode> {
    let _ = (&a.log, a.verbose);
    let path = a
        .bootstrap
        .as_ref()
        .or(a.bootstrap_flag.as_ref())
        .ok_or("no bootstrap")?;
    let code = crate::check::run(path, a.blob_dir.as_deref(), false)?;
    if let (Some(json), true) = (&a.output_json, code == ExitCode::SUCCESS) {
        let file = crate::source::ImageFile::open(path)?;
        super::write_output_json(json, Some(path), &file.decode()?)?;
    }
    Ok(code)
}

/// The reference's `export` options that we support.
#[derive(Args)]
pub(crate) struct ExportArgs {
    /// Export RAFS filesystems as raw block disk images
    #[arg(long, required = true)]
    block: bool,
    /// Bootstrap of the RAFS filesystem to be exported
    #[arg(short = 'B', long = "bootstrap", required = true)]
    bootstrap: PathBuf,
    /// Path to the `localfs` working directory, holding the blobs
    #[arg(short = 'D', long = "localfs-dir")]
    localfs_dir: Option<PathBuf>,
    /// File path for saving the exported content
    #[arg(short = 'O', long = "output", required = true)]
    output: PathBuf,
    #[command(flatten)]
    log: LogArgs,
}

/// Runs `nydus-image export --block`.
pub(crate) fn export(a: &ExportArgs) -> CliResult<ExitCode> {
    let _ = (&a.log, a.block);
    crate::images::export(&RafsExport::new(
        image_args(a.bootstrap.clone(), a.localfs_dir.clone()),
        a.output.clone(),
    ))
}

fn image_args(bootstrap: PathBuf, blob_dir: Option<PathBuf>) -> ImageArgs {
    ImageArgs {
        bootstrap,
        blob_dir,
        blob: None,
        verify: false,
    }
}

/// The reference's `unpack` options that we support.
#[derive(Args)]
pub(crate) struct UnpackArgs {
    /// File path of RAFS metadata
    #[arg(required_unless_present = "bootstrap_flag")]
    bootstrap: Option<PathBuf>,
    /// [Deprecated] File path of RAFS meta blob/bootstrap
    #[arg(short = 'B', long = "bootstrap", conflicts_with = "bootstrap")]
    bootstrap_flag: Option<PathBuf>,
    /// Path to RAFS data blob file
    #[arg(short = 'b', long = "blob", conflicts_with = "blob_dir")]
    blob: Option<PathBuf>,
    /// Directory for localfs storage backend, hosting data blobs
    #[arg(short = 'D', long = "blob-dir")]
    blob_dir: Option<PathBuf>,
    /// Path for output tar file (a file, a FIFO or a pipe: written front to back)
    #[arg(long, required = true)]
    output: PathBuf,
    #[command(flatten)]
    log: LogArgs,
}

/// Runs `nydus-image unpack`: the image as the reference's tar (byte for byte: the Go
/// converter's `Unpack` digests it), written front to back into a file, FIFO or pipe.
pub(crate) fn unpack(a: &UnpackArgs) -> CliResult<ExitCode> {
    let _ = &a.log;
    let path = a
        .bootstrap
        .clone()
        .or(a.bootstrap_flag.clone())
        .ok_or("no bootstrap")?;
    crate::output::check_distinct(&[&a.output], &[&path])?;
    let mut image = image_args(path, a.blob_dir.clone());
    image.blob = a.blob.clone();
    let reader = image.open()?;
    // 1 MiB writes: the Go converter reads a FIFO, whose 64 KiB pipe would otherwise take a
    // write per tar header.
    let out = std::io::BufWriter::with_capacity(1 << 20, crate::output::Output::open(&a.output)?);
    let names = owner_names();
    let lookup = |id: u32, group: bool| {
        let table = if group { &names.1 } else { &names.0 };
        table.get(&id).cloned().unwrap_or_default()
    };
    let (out, _) = rafs_reader::unpack_as_reference(&reader, out, &lookup)?;
    let out = out.into_inner().map_err(|e| e.into_error())?;
    crate::output::commit_all(vec![out])?;
    Ok(ExitCode::SUCCESS)
}

/// User and group names by id from `/etc/passwd` and `/etc/group`, which the reference's
/// `getpwuid`/`getgrgid` read on a build host (no directory service is consulted).
fn owner_names() -> (HashMap<u32, String>, HashMap<u32, String>) {
    let table = |file: &str| -> HashMap<u32, String> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let mut map = HashMap::new();
        for line in text.lines() {
            let mut f = line.split(':');
            if let (Some(name), Some(_), Some(Ok(id))) =
                (f.next(), f.next(), f.next().map(str::parse))
            {
                map.entry(id).or_insert_with(|| name.to_owned());
            }
        }
        map
    };
    (table("/etc/passwd"), table("/etc/group"))
}

/// The reference's `inspect` in request mode, as far as nydusify uses it.
#[derive(Args)]
pub(crate) struct InspectArgs {
    /// File path of RAFS metadata
    #[arg(required_unless_present = "bootstrap_flag")]
    bootstrap: Option<PathBuf>,
    /// [Deprecated] File path of RAFS meta blob/bootstrap
    #[arg(short = 'B', long = "bootstrap", conflicts_with = "bootstrap")]
    bootstrap_flag: Option<PathBuf>,
    /// Inspect RAFS filesystem metadata in request mode (the interactive mode is not offered)
    #[arg(short = 'R', long = "request", required = true, value_parser = ["blobs", "stats"])]
    request: String,
    #[command(flatten)]
    log: LogArgs,
}

/// One blob of `inspect -R blobs`, the fields nydusify's checker reads.
#[derive(serde::Serialize)]
struct InspectBlob {
    blob_id: String,
    compressed_size: u64,
    decompressed_size: u64,
    readahead_offset: u32,
    readahead_size: u32,
}

/// Runs `nydus-image inspect -R blobs|stats`: the reference's compact JSON on standard output.
pub(crate) fn inspect(a: &InspectArgs) -> CliResult<ExitCode> {
    let _ = &a.log;
    let path = a
        .bootstrap
        .as_ref()
        .or(a.bootstrap_flag.as_ref())
        .ok_or("no bootstrap")?;
    let image = crate::source::ImageFile::open(path)?.decode()?;
    let text = if a.request == "blobs" {
        let blobs: Vec<InspectBlob> = image
            .blobs
            .iter()
            .map(|b| InspectBlob {
                blob_id: b.blob_id.clone(),
                compressed_size: b.compressed_size,
                decompressed_size: b.uncompressed_size,
                readahead_offset: b.readahead_offset,
                readahead_size: b.readahead_size,
            })
            .collect();
        serde_json::to_string(&blobs)?
    } else {
        // The superblock's count: v5 counts inodes, v6 inode records (one per path).
        let count = match image.superblock.fs_version {
            rafs_format::model::FsVersion::V5 => image.tree.inodes.len(),
            rafs_format::model::FsVersion::V6 => image.tree.nodes.len(),
        };
        serde_json::json!({ "inodes_count": count }).to_string()
    };
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}
