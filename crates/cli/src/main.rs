//! `rafs`: build, read, check and rewrite Nydus RAFS images without `nydus-image`.
//!
//! A thin layer over the libraries: it parses arguments, calls `rafs-format`,
//! `rafs-chunker` and `rafs-tar-build`, and owns the terminal (printing, progress, exit codes)
//! and the output files (written atomically). Dependencies: `clap` parses the command line,
//! `serde` and `serde_json` print the stable `--json` forms documented in the README,
//! `indicatif` draws the progress bar, `signal-hook` turns SIGINT/SIGTERM into a clean-up
//! and exit on a thread of its own, `libc` fixes glibc's mmap threshold (the binary's only
//! `unsafe`, see `fix_malloc_mmap_threshold`). Output files are staged unnamed by
//! `rafs_chunker::StagedFile` and committed together by `output`.

mod check;
mod convert;
mod image;
mod images;
mod inspect;
mod journal;
mod output;
mod source;

use clap::{Parser, Subcommand};
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
    /// Decode a bootstrap and encode it again, in the same or the other version.
    Rewrite {
        /// The bootstrap to read.
        bootstrap_in: PathBuf,
        /// Version to write: 5 or 6.
        #[arg(long = "fs-version", value_parser = ["5", "6"])]
        fs_version: Option<String>,
        /// Where to write the new bootstrap (created atomically; `-`: standard output).
        #[arg(long = "bootstrap", short = 'B')]
        bootstrap_out: PathBuf,
    },
}

/// Fixes glibc's mmap threshold at its default, 128 KiB. Left dynamic, glibc raises it to the
/// size of every large block freed (up to 32 MiB), so after the chunk buffers are freed the end
/// of a build (the model, the bootstrap) is served from heap that is never given back, and
/// peak memory follows the history of allocations instead of the metadata (measured: 46 -> 39
/// MB on a 585 MB small-file layer). Fixed, blocks of 128 KiB and more live in their own
/// mappings and go back to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn fix_malloc_mmap_threshold() {
    // SAFETY: `mallopt` only sets a tunable of glibc's allocator; it runs first thing in `main`,
    // before any other thread exists or allocates, with a valid parameter and value.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_malloc_mmap_threshold() {}

/// SIGINT and SIGTERM (Ctrl-C, `exec.CommandContext`'s kill on timeout, a service manager)
/// end the process at once, after removing every temporary file and scratch directory it
/// made, so a conversion stopped half way leaves nothing behind (outputs staged unnamed
/// vanish by themselves). Exit status 128 + the signal, as a shell reports it.
fn remove_temporaries_on_signal() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("rafs-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                // Outputs being committed are all put in place first (or all taken back).
                let _commit = output::COMMIT_LOCK
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                rafs_oci::scratch::remove_registered();
                std::process::exit(128 + signal);
            }
        });
}

fn main() -> ExitCode {
    fix_malloc_mmap_threshold();
    remove_temporaries_on_signal();
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
        Command::Gc { dirs } => gc(&dirs),
        Command::Rewrite {
            bootstrap_in,
            fs_version,
            bootstrap_out,
        } => rewrite(&bootstrap_in, fs_version.as_deref(), &bootstrap_out),
    };
    match result {
        Ok(code) => code,
        // A reader that stopped early (`rafs inspect | head`) is not a failure.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rafs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Any failure the CLI reports.
pub(crate) type CliResult<T> = Result<T, Box<dyn std::error::Error>>;

fn gc(dirs: &[PathBuf]) -> CliResult<ExitCode> {
    for dir in dirs {
        if !dir.is_dir() {
            return Err(format!("{}: not a directory", dir.display()).into());
        }
        let commits = output::recover_interrupted(dir)?;
        let mut temporaries = 0;
        if dir.join("oci-layout").is_file() {
            temporaries = rafs_oci::scratch::sweep(dir)?
                + rafs_oci::scratch::sweep(&dir.join("blobs").join("sha256"))?;
        }
        println!(
            "{}: {commits} unfinished commits taken back, {temporaries} left-over temporaries removed",
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn rewrite(
    input: &std::path::Path,
    version: Option<&str>,
    out: &std::path::Path,
) -> CliResult<ExitCode> {
    let image = source::ImageFile::open(input)?.decode()?;
    let target = match version {
        Some("5") => rafs_format::model::FsVersion::V5,
        Some("6") => rafs_format::model::FsVersion::V6,
        _ => image.superblock.fs_version,
    };
    let bytes = rafs_format::encode(&image.converted_to(target))?;
    images::rewrite_output(input, out, &bytes)?;
    Ok(ExitCode::SUCCESS)
}
