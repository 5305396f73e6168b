//! `rafs merge`, `unpack`, `ls`, `cat`, `export`: thin commands over `rafs-merge`.

use crate::output::{parent_dir, write_atomically, AtomicFile};
use crate::CliResult;
use clap::Args;
use rafs_format::model::{mode, FsVersion, Image};
use rafs_merge::{ImageReader, Layer, MergeOptions};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn load(path: &Path) -> CliResult<Image> {
    let src = rafs_format::source::Bootstrap::open(path)?;
    Ok(rafs_format::decode(src.bytes())?)
}

/// Options of `rafs merge`, named as `nydus-image merge` names them.
#[derive(Args)]
pub struct MergeArgs {
    /// Per-layer bootstraps, lowest layer first.
    #[arg(required = true)]
    sources: Vec<PathBuf>,
    /// Where to write the merged bootstrap.
    #[arg(long = "bootstrap", short = 'B')]
    bootstrap: PathBuf,
    /// Version to write (default: the layers').
    #[arg(long = "fs-version", value_parser = ["5", "6"])]
    fs_version: Option<String>,
    /// Each layer's blob id, comma separated, in source order. Without it a layer keeps the
    /// blob id its bootstrap records, or, for an inlined bootstrap (which records a
    /// placeholder), takes its file name without extensions, as the reference does.
    #[arg(long = "blob-digests", value_delimiter = ',')]
    blob_digests: Option<Vec<String>>,
    /// An image the layers go on top of.
    #[arg(long = "parent-bootstrap")]
    parent_bootstrap: Option<PathBuf>,
    /// A chunk dictionary (`bootstrap=PATH`): its blobs are not any layer's own.
    #[arg(long = "chunk-dict")]
    chunk_dict: Option<String>,
    /// File of prefetch patterns, one absolute path per line.
    #[arg(long = "prefetch-patterns")]
    prefetch_patterns: Option<PathBuf>,
    /// Whiteout markers of upper layers: oci (the reference's merge), overlayfs, or none.
    #[arg(long = "whiteout-spec", default_value = "oci", value_parser = ["oci", "overlayfs", "none"])]
    whiteout_spec: String,
    /// Print a JSON summary (blob ids in blob-table order, as the reference's `--output-json`).
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct MergeSummary {
    bootstrap: String,
    fs_version: u8,
    compressor: &'static str,
    blobs: Vec<String>,
    paths: usize,
}

pub fn merge(a: &MergeArgs) -> CliResult<ExitCode> {
    if let Some(d) = &a.blob_digests {
        if d.len() != a.sources.len() {
            return Err(format!("{} blob digests for {} sources", d.len(), a.sources.len()).into());
        }
    }
    let mut layers = Vec::with_capacity(a.sources.len());
    for (i, p) in a.sources.iter().enumerate() {
        let image = load(p).map_err(|e| format!("{}: {e}", p.display()))?;
        // An explicit id wins; a bootstrap that records its blob's real id keeps it; an
        // inlined one (placeholder id) takes its file name without extensions, as the
        // reference does for every layer.
        let placeholder = image
            .blobs
            .iter()
            .any(|b| b.blob_id.starts_with("xxxxxxxx"));
        let blob_id = match &a.blob_digests {
            Some(d) => Some(d[i].clone()),
            None if placeholder => p.file_name().map(|n| {
                n.to_string_lossy()
                    .split('.')
                    .next()
                    .unwrap_or_default()
                    .to_string()
            }),
            None => None,
        };
        layers.push(Layer { image, blob_id });
    }
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
        opts.prefetch_patterns = Some(
            std::fs::read_to_string(p)?
                .lines()
                .map(str::to_owned)
                .collect(),
        );
    }
    opts.fs_version = a.fs_version.as_deref().map(|v| {
        if v == "5" {
            FsVersion::V5
        } else {
            FsVersion::V6
        }
    });
    let image = rafs_merge::merge(layers, &opts)?;
    let bytes = rafs_format::encode(&image)?;
    write_atomically(&a.bootstrap, &bytes)
        .map_err(|e| format!("{}: {e}", a.bootstrap.display()))?;
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

/// An image and where its blobs are.
#[derive(Args)]
pub struct ImageArgs {
    /// The bootstrap, or a packed ("nydus layer") blob with the bootstrap inlined.
    bootstrap: PathBuf,
    /// Directory holding the blobs, each named by its blob id.
    #[arg(long = "blob-dir", short = 'D')]
    blob_dir: Option<PathBuf>,
    /// Verify every chunk's digest while reading.
    #[arg(long)]
    verify: bool,
}

impl ImageArgs {
    fn open(&self) -> CliResult<ImageReader> {
        let bytes = std::fs::read(&self.bootstrap)
            .map_err(|e| format!("{}: {e}", self.bootstrap.display()))?;
        // A packed blob carries its own bootstrap and data.
        if let Ok(r) = rafs_chunker::BlobReader::open(bytes.as_slice()) {
            if let Ok(boot) = r.bootstrap() {
                let mut image = rafs_format::decode(&boot)?;
                let own = image
                    .blobs
                    .iter()
                    .position(|b| b.blob_id.starts_with("xxxxxxxx"));
                if let Some(i) = own {
                    image.blobs[i].blob_id = format!("{}", self.bootstrap.display());
                }
                let path = self.bootstrap.clone();
                let dir = self.blob_dir.clone();
                let reader = ImageReader::open_with(image, move |b| {
                    let p = if b.blob_id == path.display().to_string() {
                        Some(path.clone())
                    } else {
                        dir.as_ref().map(|d| d.join(&b.blob_id))
                    };
                    Ok(p.and_then(|p| rafs_chunker::FileSource::open(p).ok())
                        .map(|f| Box::new(f) as rafs_merge::BlobSource))
                })?;
                return Ok(reader.verify_digests(self.verify));
            }
        }
        let image = rafs_format::decode(&bytes)?;
        let dir = self
            .blob_dir
            .clone()
            .unwrap_or_else(|| parent_dir(&self.bootstrap));
        Ok(ImageReader::open_dir(image, &dir)?.verify_digests(self.verify))
    }
}

/// `rafs unpack`.
#[derive(Args)]
pub struct UnpackArgs {
    #[command(flatten)]
    image: ImageArgs,
    /// Write an OCI layer tar here.
    #[arg(
        long,
        short = 'o',
        conflicts_with = "dir",
        required_unless_present = "dir"
    )]
    output: Option<PathBuf>,
    /// Extract into this directory (which must not exist or be empty).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn unpack(a: &UnpackArgs) -> CliResult<ExitCode> {
    let reader = a.image.open()?;
    if let Some(out) = &a.output {
        let mut f = AtomicFile::create_in(&parent_dir(out))?;
        {
            let (mut w, _) = rafs_merge::unpack_to_tar(&reader, std::io::BufWriter::new(&mut f))?;
            w.flush()?;
        }
        f.commit(out)
            .map_err(|e| format!("{}: {e}", out.display()))?;
    } else if let Some(dir) = &a.dir {
        rafs_merge::unpack_to_dir(&reader, dir)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `rafs ls`.
#[derive(Args)]
pub struct LsArgs {
    /// The bootstrap.
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

pub fn ls(a: &LsArgs) -> CliResult<ExitCode> {
    let image = load(&a.bootstrap)?;
    let reader = ImageReader::open_with(image, |_| Ok(None))?;
    let tree = &reader.image().tree;
    let (nodes, recursive) = match &a.path {
        Some(p) => {
            let n = reader
                .lookup(p)
                .ok_or_else(|| format!("{p}: no such path"))?;
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
            tree.path(n)
        } else {
            String::from_utf8_lossy(&tree.node(n).name).into_owned()
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
                line.push_str(&format!(" -> {}", String::from_utf8_lossy(&i.symlink)));
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

pub fn cat(a: &CatArgs) -> CliResult<ExitCode> {
    let reader = a.image.open()?;
    let n = reader
        .lookup(&a.path)
        .ok_or_else(|| format!("{}: no such path", a.path))?;
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
    /// The image file to write.
    #[arg(long, short = 'O')]
    output: PathBuf,
}

pub fn export(a: &ExportArgs) -> CliResult<ExitCode> {
    let reader = a.image.open()?;
    let mut f = AtomicFile::create_in(&parent_dir(&a.output))?;
    {
        let (mut w, _) = rafs_merge::export_block(&reader, std::io::BufWriter::new(&mut f))?;
        w.flush()?;
    }
    f.commit(&a.output)
        .map_err(|e| format!("{}: {e}", a.output.display()))?;
    Ok(ExitCode::SUCCESS)
}
