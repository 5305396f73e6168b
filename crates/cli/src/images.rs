//! `rafs merge`, `unpack`, `ls`, `cat`, `export`: thin commands over `rafs-merge`.

use crate::choices::{FsVersionArg, WhiteoutArg};
use crate::output::{check_distinct, commit_all, shown, write_output, Output};
use crate::source::ImageFile;
use crate::CliResult;
use clap::Args;
use rafs_format::model::{mode, Image};
use rafs_merge::{Layer, LayerBlobArgs, MergeOptions};
use rafs_reader::ImageReader;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn load(path: &Path) -> CliResult<Image> {
    ImageFile::open(path)?.decode()
}

/// Options of `rafs merge`, named as `nydus-image merge` names them.
#[derive(Args)]
pub struct MergeArgs {
    /// Per-layer bootstraps, lowest layer first.
    #[arg(required = true)]
    pub(crate) sources: Vec<PathBuf>,
    /// Where to write the merged bootstrap.
    #[arg(long = "bootstrap", short = 'B')]
    pub(crate) bootstrap: PathBuf,
    /// Version to write (default: the layers').
    #[arg(long = "fs-version", value_enum)]
    pub(crate) fs_version: Option<FsVersionArg>,
    /// Each layer's blob id, comma separated, in source order. Without it a layer keeps the
    /// blob id its bootstrap records, or, for an inlined bootstrap (which records a
    /// placeholder), takes its file name without extensions, as the reference does.
    /// For a zran (targz-ref) layer, whose blob is the gzip layer itself, the digest names
    /// its metadata blob instead (`blob_meta_digest`), as the Go converter passes it.
    #[arg(long = "blob-digests", value_delimiter = ',')]
    pub(crate) blob_digests: Option<Vec<String>>,
    /// Each layer's blob size, comma separated (zran: its metadata blob's size).
    #[arg(long = "blob-sizes", value_delimiter = ',')]
    pub(crate) blob_sizes: Option<Vec<u64>>,
    /// Each layer's blob ToC digest, comma separated (64 hex digits each).
    #[arg(long = "blob-toc-digests", value_delimiter = ',')]
    pub(crate) blob_toc_digests: Option<Vec<String>>,
    /// Each layer's blob ToC size, comma separated.
    #[arg(long = "blob-toc-sizes", value_delimiter = ',')]
    pub(crate) blob_toc_sizes: Option<Vec<u32>>,
    /// Each layer's blob id when its bootstrap does not name it (an inlined bootstrap's
    /// placeholder), comma separated, instead of the bootstrap's file name; `--blob-digests`
    /// still wins.
    #[arg(long = "original-blob-ids", value_delimiter = ',')]
    pub(crate) original_blob_ids: Option<Vec<String>>,
    /// An image the layers go on top of.
    #[arg(long = "parent-bootstrap")]
    pub(crate) parent_bootstrap: Option<PathBuf>,
    /// A chunk dictionary (`bootstrap=PATH`): its blobs are not any layer's own.
    #[arg(long = "chunk-dict")]
    pub(crate) chunk_dict: Option<String>,
    /// File of prefetch patterns, one absolute path per line.
    #[arg(long = "prefetch-patterns")]
    pub(crate) prefetch_patterns: Option<PathBuf>,
    /// Whiteout markers of upper layers: oci (the reference's merge), overlayfs, or none.
    #[arg(long = "whiteout-spec", value_enum, default_value = "oci")]
    pub(crate) whiteout_spec: WhiteoutArg,
    /// Print a JSON summary (blob ids in blob-table order, as the reference's `--output-json`).
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Serialize)]
struct MergeSummary {
    bootstrap: String,
    fs_version: u8,
    compressor: &'static str,
    blobs: Vec<String>,
    paths: usize,
}

/// Runs `rafs merge`.
pub fn merge(a: &MergeArgs) -> CliResult<ExitCode> {
    let image = merge_with(a, None)?;
    if a.json {
        let s = MergeSummary {
            bootstrap: a.bootstrap.display().to_string(),
            fs_version: image.superblock.fs_version.number(),
            compressor: image.superblock.compressor.name(),
            blobs: image.blobs.iter().map(|b| b.blob_id.clone()).collect(),
            paths: image.tree.nodes.len(),
        };
        println!("{}", serde_json::to_string_pretty(&s)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Merges and commits the bootstrap; `patterns`, when given, are the prefetch patterns (read
/// from standard input by the drop-in `nydus-image`) instead of `--prefetch-patterns`'.
pub(crate) fn merge_with(
    a: &MergeArgs,
    patterns: Option<Vec<String>>,
) -> CliResult<rafs_format::model::Image> {
    merge_as(a, patterns, false)
}

/// [`merge_with`]; with `drop_base_markers` the image is merged as containerd unpacks the
/// layers: the lowest layer's whiteout and opaque markers are dropped (containerd creates
/// neither) instead of kept as files, and directories a layer's tar left out show the
/// directory below.
pub(crate) fn merge_as(
    a: &MergeArgs,
    patterns: Option<Vec<String>>,
    drop_base_markers: bool,
) -> CliResult<rafs_format::model::Image> {
    check_blob_digests(a)?;
    let mut inputs: Vec<&Path> = a.sources.iter().map(PathBuf::as_path).collect();
    inputs.extend(a.parent_bootstrap.as_deref());
    inputs.extend(a.prefetch_patterns.as_deref());
    let dict = a
        .chunk_dict
        .as_deref()
        .and_then(|s| s.strip_prefix("bootstrap="));
    inputs.extend(dict.map(Path::new));
    check_distinct(&[&a.bootstrap], &inputs)?;
    let mut out = Output::open(&a.bootstrap)?;
    let mut options = merge_options(a)?;
    if patterns.is_some() {
        options.prefetch_patterns = patterns;
    }
    options.drop_base_markers = drop_base_markers;
    let layers = a
        .sources
        .iter()
        .enumerate()
        .map(|(i, p)| merge_layer(a, i, p, &options.dict_blob_ids))
        .collect::<CliResult<Vec<_>>>()?;
    let layer_images: Vec<rafs_format::model::Image> = if drop_base_markers {
        layers.iter().map(|l| l.image.clone()).collect()
    } else {
        Vec::new()
    };
    let mut image = rafs_merge::merge(layers, &options)?;
    if drop_base_markers {
        // A layer bootstrap does not say which directories its tar left out; the builder
        // gives those 0755, 0:0, mtime 0, no xattrs, which a real directory entry all but
        // never has. Such a directory takes the attributes of the same directory below, as
        // containerd's overlay shows it (the reference's merge gives it the defaults).
        let implied: Vec<Vec<Vec<u8>>> = layer_images.iter().map(implied_dirs).collect();
        let refs: Vec<&[Vec<u8>]> = implied.iter().map(Vec::as_slice).collect();
        rafs_merge::inherit_implicit_dirs(&mut image, &layer_images, &refs, options.whiteout_spec);
    }
    let bytes = rafs_format::encode(&image)?;
    out.write_all(&bytes)
        .map_err(|e| format!("{}: {e}", shown(&a.bootstrap)))?;
    commit_all(vec![out])?;
    Ok(image)
}

/// The directories of a layer bootstrap with exactly the attributes the builder gives a
/// directory its tar leaves out (0755, 0:0, mtime 0, no xattrs), the root excepted.
fn implied_dirs(image: &rafs_format::model::Image) -> Vec<Vec<u8>> {
    image
        .tree
        .entries()
        .filter(|e| {
            let i = e.inode;
            i.is_dir()
                && e.path != b"/"
                && i.mode & 0o7777 == 0o755
                && (i.uid, i.gid, i.mtime, i.mtime_nsec) == (0, 0, 0, 0)
                && i.xattrs.is_empty()
        })
        .map(|e| e.path)
        .collect()
}

/// `--blob-digests`, `--blob-toc-digests`, `--blob-sizes`: one per source, digests of 64
/// hex digits.
fn check_blob_digests(a: &MergeArgs) -> CliResult<()> {
    let n = a.sources.len();
    for (flag, list) in [
        ("--blob-digests", &a.blob_digests),
        ("--blob-toc-digests", &a.blob_toc_digests),
    ] {
        let Some(d) = list else { continue };
        if d.len() != n {
            return Err(format!("{flag}: {} digests for {n} sources", d.len()).into());
        }
        if let Some(bad) = d.iter().find(|d| rafs_format::unhex32(d).is_none()) {
            return Err(format!("{flag}: {bad:?} is not 64 hex digits").into());
        }
    }
    if let Some(s) = &a.blob_sizes {
        if s.len() != n {
            return Err(format!("--blob-sizes: {} sizes for {n} sources", s.len()).into());
        }
    }
    if let Some(s) = &a.blob_toc_sizes {
        if s.len() != n {
            return Err(format!("--blob-toc-sizes: {} sizes for {n} sources", s.len()).into());
        }
    }
    if let Some(ids) = &a.original_blob_ids {
        if ids.len() != n {
            return Err(format!("--original-blob-ids: {} ids for {n} sources", ids.len()).into());
        }
        if let Some(bad) = ids
            .iter()
            .find(|id| rafs_format::rules::check_blob_id(id).is_err())
        {
            return Err(format!("--original-blob-ids: {bad:?} is not a blob id").into());
        }
    }
    Ok(())
}

/// Source `i` at `p`, with the blob id it merges under. An explicit id wins; a bootstrap that
/// records its blob's real id keeps it; an inlined one (placeholder id) takes its file name
/// without extensions, as the reference does for every layer.
fn merge_layer(a: &MergeArgs, i: usize, p: &Path, dict_ids: &[String]) -> CliResult<Layer> {
    let image = load(p)?;
    let placeholder = image
        .blobs
        .iter()
        .any(|b| b.blob_id.starts_with("xxxxxxxx"));
    let blob_id = placeholder
        .then(|| {
            p.file_name().map(|n| {
                n.to_string_lossy()
                    .split('.')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            })
        })
        .flatten();
    let original = a
        .original_blob_ids
        .as_ref()
        .and_then(|ids| ids.get(i))
        .cloned();
    let blob_id = if placeholder {
        original.or(blob_id)
    } else {
        blob_id
    };
    let mut layer = Layer { image, blob_id };
    // check_blob_digests made sure each list has one valid entry per source.
    let digest = |list: &Option<Vec<String>>| {
        list.as_ref()
            .and_then(|d| d.get(i))
            .and_then(|d| rafs_format::unhex32(d))
    };
    let args = LayerBlobArgs {
        digest: digest(&a.blob_digests),
        size: a.blob_sizes.as_ref().and_then(|s| s.get(i).copied()),
        toc_digest: digest(&a.blob_toc_digests),
        toc_size: a.blob_toc_sizes.as_ref().and_then(|s| s.get(i).copied()),
    };
    layer.apply_blob_args(args, dict_ids);
    Ok(layer)
}

/// The merge options the flags give: parent, chunk dictionary, prefetch patterns, version.
fn merge_options(a: &MergeArgs) -> CliResult<MergeOptions> {
    let mut opts = MergeOptions::default();
    if let Some(p) = &a.parent_bootstrap {
        opts.parent = Some(load(p)?);
    }
    if let Some(spec) = &a.chunk_dict {
        let path = spec
            .strip_prefix("bootstrap=")
            .ok_or("--chunk-dict: expected bootstrap=PATH")?;
        opts.dict_blob_ids = load(Path::new(path))?
            .blobs
            .iter()
            .map(|b| b.blob_id.clone())
            .collect();
    }
    if let Some(p) = &a.prefetch_patterns {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", shown(p)))?;
        opts.prefetch_patterns = Some(text.lines().map(str::to_owned).collect());
    }
    opts.fs_version = a.fs_version.map(Into::into);
    // Was parsed and then left out: the layers' markers were read as OCI whatever was asked.
    opts.whiteout_spec = a.whiteout_spec.into();
    Ok(opts)
}

/// An image and where its blobs are.
#[derive(Args)]
pub struct ImageArgs {
    /// The bootstrap, or a packed ("nydus layer") blob with the bootstrap inlined.
    pub(crate) bootstrap: PathBuf,
    /// Directory holding the blobs, each named by its blob id.
    #[arg(long = "blob-dir", short = 'D')]
    pub(crate) blob_dir: Option<PathBuf>,
    /// The file of the image's own data blob (a packed "nydus layer" blob, say), whatever
    /// its name; other blobs are looked up in the blob directory.
    #[arg(long = "blob", short = 'b')]
    pub(crate) blob: Option<PathBuf>,
    /// Verify every chunk's digest while reading.
    #[arg(long)]
    pub(crate) verify: bool,
}

impl ImageArgs {
    /// Opens the image with its blobs.
    pub(crate) fn open(&self) -> CliResult<ImageReader> {
        let file = ImageFile::open(&self.bootstrap)?;
        let image = file.decode()?;
        Ok(file
            .reader_with_blob(image, self.blob_dir.as_deref(), self.blob.as_deref())?
            .verify_digests(self.verify))
    }
}

/// `rafs unpack`.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["output", "dir"])))]
pub struct UnpackArgs {
    #[command(flatten)]
    pub(crate) image: ImageArgs,
    /// Write an OCI layer tar here (`-`: standard output).
    #[arg(long, short = 'o', short_alias = 'O')]
    pub(crate) output: Option<PathBuf>,
    /// Extract into this directory (which must not exist or be empty).
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
}

/// Runs `rafs unpack`.
pub fn unpack(a: &UnpackArgs) -> CliResult<ExitCode> {
    if let Some(out) = &a.output {
        check_distinct(&[out], &[&a.image.bootstrap])?;
        let mut target = Output::open(out)?;
        let reader = a.image.open()?;
        {
            let (mut w, _) =
                rafs_reader::unpack_to_tar(&reader, std::io::BufWriter::new(&mut target))?;
            w.flush().map_err(|e| format!("{}: {e}", shown(out)))?;
        }
        commit_all(vec![target])?;
    } else if let Some(dir) = &a.dir {
        let reader = a.image.open()?;
        let report = rafs_reader::unpack_to_dir(&reader, dir)?;
        if report.devices_skipped > 0 {
            eprintln!(
                "rafs: warning: {} device nodes not created (creating them needs privilege)",
                report.devices_skipped
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `rafs ls`.
#[derive(Args)]
pub struct LsArgs {
    /// The bootstrap, or a packed blob with the bootstrap inlined.
    bootstrap: PathBuf,
    /// A directory of the image (default: the whole image, recursively).
    path: Option<String>,
    /// Long format: type and mode, owner, size, mtime, name.
    #[arg(short = 'l')]
    long: bool,
}

fn type_char(m: u32) -> char {
    match m & mode::S_IFMT {
        mode::S_IFDIR => 'd',
        mode::S_IFLNK => 'l',
        mode::S_IFCHR => 'c',
        mode::S_IFBLK => 'b',
        mode::S_IFIFO => 'p',
        mode::S_IFSOCK => 's',
        _ => '-',
    }
}

/// Runs `rafs ls`.
pub fn ls(a: &LsArgs) -> CliResult<ExitCode> {
    let image = load(&a.bootstrap)?;
    let reader = ImageReader::open_with(image, |_| Ok(None))?;
    let tree = &reader.image().tree;
    let (nodes, recursive) = match &a.path {
        Some(p) => {
            let n = reader.lookup(p).ok_or_else(|| {
                format!(
                    "{}: no such path in the image",
                    rafs_format::rules::escape_bytes(p.as_bytes())
                )
            })?;
            if tree.inode_of(n).is_dir() {
                (tree.node(n).children.clone(), false)
            } else {
                (vec![n], false)
            }
        }
        None => (tree.dfs_preorder(), true),
    };
    let mut out = std::io::stdout().lock();
    for n in nodes {
        let i = tree.inode_of(n);
        let name = if recursive {
            tree.display_path(n)
        } else {
            rafs_format::rules::escape_bytes(&tree.node(n).name)
        };
        if a.long {
            let mut line = format!(
                "{}{:04o} {:>5}:{:<5} {:>10} {:>11} {}",
                type_char(i.mode),
                i.mode & 0o7777,
                i.uid,
                i.gid,
                i.size,
                i.mtime,
                name
            );
            if i.is_symlink() {
                line.push_str(&format!(
                    " -> {}",
                    rafs_format::rules::escape_bytes(&i.symlink)
                ));
            }
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{name}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `rafs cat`.
#[derive(Args)]
pub struct CatArgs {
    #[command(flatten)]
    image: ImageArgs,
    /// The file to print.
    path: String,
}

/// Runs `rafs cat`.
pub fn cat(a: &CatArgs) -> CliResult<ExitCode> {
    let reader = a.image.open()?;
    let n = reader.lookup(&a.path).ok_or_else(|| {
        format!(
            "{}: no such path in the image",
            rafs_format::rules::escape_bytes(a.path.as_bytes())
        )
    })?;
    // One chunk in memory at a time, whatever the file's size.
    std::io::copy(&mut reader.file_reader(n)?, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

/// `rafs export --block`.
#[derive(Args)]
pub struct ExportArgs {
    #[command(flatten)]
    image: ImageArgs,
    /// Write a block image (the only export format).
    #[arg(long, required = true)]
    block: bool,
    /// The image file to write (`-`: standard output).
    #[arg(long, short = 'o', short_alias = 'O')]
    output: PathBuf,
}

impl ExportArgs {
    /// `rafs export --block` of `image` into `output`.
    pub(crate) fn new(image: ImageArgs, output: PathBuf) -> Self {
        ExportArgs {
            image,
            block: true,
            output,
        }
    }
}

/// Runs `rafs export --block`.
pub fn export(a: &ExportArgs) -> CliResult<ExitCode> {
    check_distinct(&[&a.output], &[&a.image.bootstrap])?;
    let mut target = Output::open(&a.output)?;
    let reader = a.image.open()?;
    {
        let (mut w, _) = rafs_reader::export_block(&reader, std::io::BufWriter::new(&mut target))?;
        w.flush()
            .map_err(|e| format!("{}: {e}", shown(&a.output)))?;
    }
    commit_all(vec![target])?;
    Ok(ExitCode::SUCCESS)
}

/// Writes a rewritten bootstrap (used by `rafs rewrite`).
pub fn rewrite_output(input: &Path, out: &Path, bytes: &[u8]) -> CliResult<()> {
    check_distinct(&[out], &[input])?;
    Ok(write_output(out, bytes)?)
}
