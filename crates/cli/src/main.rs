//! `rafs`: build, read, check and rewrite Nydus RAFS images without `nydus-image`. The
//! commands live in the crate's library (`rafs_cli`), shared with the drop-in `nydus-image`.

use clap::{Parser, Subcommand};
use rafs_cli::{check, convert, image, images, inspect, maintenance, process};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "rafs", version, about = "Nydus RAFS images in pure Rust")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert an OCI layer tar (plain, gzip or zstd) into a RAFS bootstrap and data blob.
    Convert(Box<convert::ConvertArgs>),
    /// Print the superblock, blob table and every inode of a bootstrap.
    Inspect {
        /// The bootstrap (v5 or v6), or a packed blob with the bootstrap inlined.
        bootstrap: PathBuf,
        /// Print the stable JSON form.
        #[arg(long)]
        json: bool,
    },
    /// Validate a bootstrap's metadata fully (and with --blob-dir every chunk's data); exit 0
    /// when valid.
    Check {
        /// The bootstrap (v5 or v6), or a packed blob with the bootstrap inlined.
        bootstrap: PathBuf,
        /// Directory of the blobs (named by blob id): read every chunk and check its digest.
        #[arg(long = "blob-dir", short = 'D')]
        blob_dir: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Overlay per-layer bootstraps (lowest first) into one, as `nydus-image merge` does.
    Merge(Box<images::MergeArgs>),
    /// Convert a whole OCI image (layout, oci-archive or docker-archive) into a Nydus image.
    ConvertImage(Box<image::ConvertImageArgs>),
    /// Check a Nydus image as `nydusify check` does: manifest, bootstrap and (with --source)
    /// filesystem rules; exit 0 only when all hold.
    CheckImage(image::CheckImageArgs),
    /// Write an image back out as an OCI layer tar, or into a directory.
    Unpack(images::UnpackArgs),
    /// List a directory of an image (or the whole image).
    Ls(images::LsArgs),
    /// Print a file of an image.
    Cat(images::CatArgs),
    /// Write one EROFS block image (metadata and data) the kernel mounts on its own.
    Export(images::ExportArgs),
    /// Clean up after killed commands: take back commits a killed process left half done
    /// in these directories, and in OCI layouts remove the temporary files and scratch
    /// directories no running process holds. A command writing there does this too.
    Gc {
        /// Output directories or OCI layout directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Run the conformance kit against a builder or a reader (any implementation), with a
    /// report: a table, --json, --junit; exit 0 when nothing failed.
    #[command(subcommand)]
    Conformance(rafs_cli::conformance::ConformanceCommand),
    /// Decode a bootstrap and encode it again, in the same or the other version.
    Rewrite {
        /// The bootstrap to read.
        bootstrap_in: PathBuf,
        /// Version to write: 5 or 6.
        #[arg(long = "fs-version", value_enum)]
        fs_version: Option<rafs_cli::choices::FsVersionArg>,
        /// Where to write the new bootstrap (created atomically; `-`: standard output).
        #[arg(long = "bootstrap", short = 'B')]
        bootstrap_out: PathBuf,
    },
}

fn main() -> ExitCode {
    process::fix_malloc_mmap_threshold();
    process::remove_temporaries_on_signal();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Convert(args) => convert::run(&args),
        Command::Inspect { bootstrap, json } => inspect::run(&bootstrap, json),
        Command::Check {
            bootstrap,
            blob_dir,
            json,
        } => check::run(&bootstrap, blob_dir.as_deref(), json),
        Command::Merge(args) => images::merge(&args),
        Command::ConvertImage(args) => image::run(&args),
        Command::CheckImage(args) => image::check(&args),
        Command::Unpack(args) => images::unpack(&args),
        Command::Ls(args) => images::ls(&args),
        Command::Cat(args) => images::cat(&args),
        Command::Export(args) => images::export(&args),
        Command::Gc { dirs } => maintenance::gc(&dirs),
        Command::Conformance(c) => rafs_cli::conformance::run(&c),
        Command::Rewrite {
            bootstrap_in,
            fs_version,
            bootstrap_out,
        } => maintenance::rewrite(&bootstrap_in, fs_version, &bootstrap_out),
    };
    process::exit_status("rafs", result)
}
