//! The drop-in `nydus-image`: the reference builder's command line, as the Go tool chain
//! (nydus-snapshotter `pkg/converter`: buildkit, acceleration-service, nydusify, containerd's
//! converter) calls it, mapped onto the `rafs` commands' code. Every option and value the
//! reference has but we do not support is left undeclared, so `create -h` (which the
//! converter searches for `--type`, `tar-rafs`, `--batch-size`, `--encrypt`) shows exactly
//! what works, and using one is a usage error that names it.

mod commands;
mod create;

use crate::CliResult;
use clap::{Args, Parser, Subcommand};
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "nydus-image",
    about = "Build, check, merge and unpack RAFS filesystems (rafs-rs, a drop-in for the reference builder)",
    disable_version_flag = true
)]
struct Cli {
    /// Print version information.
    #[arg(short = 'V', long = "version")]
    version: bool,
    #[command(flatten)]
    log: LogArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// `--log-level` and `--log-file`, accepted everywhere as the reference accepts them. Only
/// errors are printed (on standard error); a log file receives nothing.
#[derive(Args, Clone)]
pub(crate) struct LogArgs {
    /// Log level:
    #[arg(short = 'l', long = "log-level", global = true, default_value = "info",
          value_parser = ["trace", "debug", "info", "warn", "error"])]
    log_level: String,
    /// Log file path
    #[arg(short = 'L', long = "log-file", global = true)]
    log_file: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Create RAFS filesystems from tar files
    Create(Box<create::CreateArgs>),
    /// Merge multiple bootstraps into a overlaid bootstrap
    Merge(Box<commands::MergeArgs>),
    /// Validate RAFS filesystem metadata
    Check(commands::CheckArgs),
    /// Export RAFS filesystems as raw block disk images
    Export(commands::ExportArgs),
    /// Unpack a RAFS filesystem to a tar file
    Unpack(commands::UnpackArgs),
    /// Inspect RAFS filesystem metadata in request mode
    Inspect(commands::InspectArgs),
}

/// The version text in the reference's shape: acceleration-service records what follows
/// `Version:` (from its `v`) as the image's `containerd.io/snapshot/nydus-builder-version`.
fn version() -> String {
    format!(
        " Version: \tv{} (rafs-rs, a drop-in for nydus-image)\nGit Commit: \tunknown\nBuild Time: \tunknown\nProfile: \trelease\nRustc: \t\tunknown\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Runs the drop-in `nydus-image` on the process's arguments.
pub fn main() -> ExitCode {
    crate::process::fix_malloc_mmap_threshold();
    crate::process::remove_temporaries_on_signal();
    let cli = Cli::parse();
    if cli.version {
        print!("{}", version());
        return ExitCode::SUCCESS;
    }
    let result = match cli.command {
        Some(Command::Create(a)) => create::run(&a),
        Some(Command::Merge(a)) => commands::merge(&a),
        Some(Command::Check(a)) => commands::check(&a),
        Some(Command::Export(a)) => commands::export(&a),
        Some(Command::Unpack(a)) => commands::unpack(&a),
        Some(Command::Inspect(a)) => commands::inspect(&a),
        None => Err(
            "a command is needed (create, merge, check, export, unpack, inspect); see -h".into(),
        ),
    };
    crate::process::exit_status("nydus-image", result)
}

/// The prefetch patterns of `--prefetch-policy fs`, read from standard input as the
/// reference reads them (one per line; none given: no prefetch table).
fn stdin_patterns(policy: Option<&str>) -> CliResult<Option<Vec<String>>> {
    if policy != Some("fs") {
        return Ok(None);
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| format!("reading prefetch patterns from standard input: {e}"))?;
    let patterns: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    Ok((!patterns.is_empty()).then_some(patterns))
}

/// The reference's `--output-json` document: the fields it writes, `blobs` being what the Go
/// converter reads.
#[derive(serde::Serialize)]
struct OutputJson {
    version: String,
    bootstrap: String,
    blobs: Vec<String>,
    external_bootstrap: String,
    external_blobs: Vec<String>,
    fs_version: String,
    compressor: String,
    trace: serde_json::Value,
}

/// Writes `--output-json` (atomically, as every output).
fn write_output_json(
    path: &Path,
    bootstrap: Option<&Path>,
    image: &rafs_format::model::Image,
) -> CliResult<()> {
    let doc = OutputJson {
        version: format!("rafs-rs {}", env!("CARGO_PKG_VERSION")),
        bootstrap: bootstrap
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        blobs: image.blobs.iter().map(|b| b.blob_id.clone()).collect(),
        external_bootstrap: String::new(),
        external_blobs: Vec::new(),
        fs_version: image.superblock.fs_version.number().to_string(),
        compressor: image.superblock.compressor.name().to_string(),
        trace: serde_json::json!({}),
    };
    let text = serde_json::to_string_pretty(&doc)?;
    crate::output::write_output(path, text.as_bytes())?;
    Ok(())
}
