//! `rafs conformance builder|reader`: the conformance kit (`rafs-conformance`) run against any
//! implementation, with its report on the terminal, in JSON and in JUnit.

use crate::CliResult;
use clap::{Args, Subcommand};
use rafs_conformance::{Builder, BuilderRun, Manifest, ReaderRun, Report};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// `rafs conformance`.
#[derive(Subcommand)]
pub enum ConformanceCommand {
    /// Build every case with a builder and judge its outputs.
    Builder(BuilderArgs),
    /// Feed every committed image (and the hostile ones) to a reader and judge what it shows.
    Reader(ReaderArgs),
}

/// What every run takes.
#[derive(Args)]
pub struct Common {
    /// The implementation's name, whose declared deviations apply (e.g. nydus-image, rafs).
    #[arg(long = "impl", default_value = "unnamed")]
    implementation: String,
    /// The corpus (default: testdata/conformance here, else the one this build came from).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Only the cases whose id starts with this.
    #[arg(long)]
    cases: Option<String>,
    /// Write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the report as JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Seconds a single run may take before it counts as hung.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// `rafs conformance builder`.
#[derive(Args)]
pub struct BuilderArgs {
    /// A builder with nydus-image's command line (create, merge).
    #[arg(
        long = "nydus-image",
        conflicts_with = "cmd",
        required_unless_present = "cmd"
    )]
    nydus_image: Option<PathBuf>,
    /// A command template: {layer} {bootstrap} {blob_dir} {fs_version} {compressor}
    /// {digester} {chunk_size} {whiteout_spec}.
    #[arg(long)]
    cmd: Option<String>,
    #[command(flatten)]
    common: Common,
}

/// `rafs conformance reader`.
#[derive(Args)]
pub struct ReaderArgs {
    /// A command template: {bootstrap} {blob_dir} and {out_tar} or {out_dir}.
    #[arg(long)]
    cmd: String,
    /// The hostile bootstraps (default: the corpus' sibling `hostile`); `none` leaves them out.
    #[arg(long)]
    hostile: Option<PathBuf>,
    #[command(flatten)]
    common: Common,
}

fn corpus(c: &Common) -> PathBuf {
    c.corpus.clone().unwrap_or_else(|| {
        let here = PathBuf::from("testdata/conformance");
        if here.join("expected").is_dir() {
            here
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance")
        }
    })
}

/// Prints and writes the report; exit 0 only when nothing failed.
fn finish(report: &Report, c: &Common) -> CliResult<ExitCode> {
    print!("{}", report.table());
    if let Some(p) = &c.json {
        std::fs::write(p, report.json()).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if let Some(p) = &c.junit {
        std::fs::write(p, report.junit()).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs `rafs conformance`.
pub fn run(command: &ConformanceCommand) -> CliResult<ExitCode> {
    let manifest = Manifest::builtin()?;
    match command {
        ConformanceCommand::Builder(a) => {
            let builder = match (&a.nydus_image, &a.cmd) {
                (Some(p), _) => Builder::NydusImage(p.clone()),
                (None, Some(t)) => Builder::Template(t.clone()),
                (None, None) => return Err("give --nydus-image PATH or --cmd TEMPLATE".into()),
            };
            let corpus = corpus(&a.common);
            let report = rafs_conformance::run_builder(&BuilderRun {
                manifest: &manifest,
                corpus: &corpus,
                builder: &builder,
                implementation: &a.common.implementation,
                filter: a.common.cases.as_deref(),
                limit: Duration::from_secs(a.common.timeout),
            })?;
            finish(&report, &a.common)
        }
        ConformanceCommand::Reader(a) => {
            let corpus = corpus(&a.common);
            let hostile = match &a.hostile {
                Some(p) if p.as_os_str() == "none" => None,
                Some(p) => Some(p.clone()),
                None => Some(corpus.join("../hostile")).filter(|p| p.is_dir()),
            };
            let report = rafs_conformance::run_reader(&ReaderRun {
                manifest: &manifest,
                corpus: &corpus,
                hostile: hostile.as_deref(),
                template: &a.cmd,
                implementation: &a.common.implementation,
                filter: a.common.cases.as_deref(),
                limit: Duration::from_secs(a.common.timeout),
            })?;
            finish(&report, &a.common)
        }
    }
}
