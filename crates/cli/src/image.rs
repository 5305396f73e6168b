//! `rafs convert-image`: whole OCI images to Nydus images (rafs-oci), with progress and a
//! `--json` report.

use crate::choices::{CompressorArg, DigesterArg, FsVersionArg};
use crate::CliResult;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rafs_oci::scratch::ScratchDir;
use rafs_oci::{ChunkDictionary, ConvertOptions, ImageRef, Layout, Progress};
use serde::Serialize;
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Mutex;

/// Arguments of `rafs convert-image`.
#[derive(Args)]
pub struct ConvertImageArgs {
    /// The source image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE or
    /// docker://HOST[:PORT]/REPO[:TAG|@DIGEST] (layers streamed from the registry).
    source: String,
    /// The target: oci:DIR:TAG (the layout is created if missing; index.json changes last) or
    /// docker://HOST[:PORT]/REPO:TAG (blobs pushed first, the tag last).
    target: String,
    /// RAFS version.
    #[arg(long = "fs-version", value_enum, default_value = "6")]
    fs_version: FsVersionArg,
    /// Chunk compressor.
    #[arg(long, short = 'c', value_enum, default_value = "zstd")]
    compressor: CompressorArg,
    /// Chunk digester.
    #[arg(long, value_enum, default_value = "blake3")]
    digester: DigesterArg,
    /// Chunk size: a power of two from 0x1000 to 0x1000000 (hex with 0x, or decimal).
    #[arg(long = "chunk-size", short = 'S', default_value = "0x100000")]
    chunk_size: String,
    /// Convert only these platforms of an index (os/arch[/variant]; repeatable); default: all.
    #[arg(long = "platform")]
    platforms: Vec<String>,
    /// Chunk dictionary: bootstrap=PATH (its blobs must be in the target layout), or a Nydus
    /// image oci:DIR[:TAG], oci-archive:FILE[:TAG] (its referenced blobs are copied).
    #[arg(long = "chunk-dict")]
    chunk_dict: Option<String>,
    /// Write one index with the source manifests (an empty layer prepended) and then the
    /// Nydus manifests (artifactType application/vnd.nydus.image.manifest.v1+json).
    #[arg(long = "merge-platform")]
    merge_platform: bool,
    /// OCI ref (zran, nydusify --oci-ref): keep the original gzip layers as the data; each
    /// Nydus layer holds only metadata (v6; --compressor and --digester do not apply: the data
    /// stays gzip, digests are sha256). The original layers are copied into the target.
    #[arg(long = "oci-ref", conflicts_with_all = ["merge_platform", "chunk_dict"])]
    oci_ref: bool,
    /// Worker threads per layer; 0: one per core.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Where to unpack archives (default: a new directory inside the target layout, so the
    /// scratch space is on the target's filesystem and under the user's control).
    #[arg(long = "work-dir")]
    work_dir: Option<std::path::PathBuf>,
    /// Layers converted at once, and blobs moving to a target registry at once; 0: one per
    /// core.
    #[arg(long, default_value_t = 0)]
    jobs: usize,
    #[command(flatten)]
    registry: crate::registry_args::RegistryArgs,
    /// Print the report as JSON on standard output.
    #[arg(long)]
    json: bool,
    /// No progress display.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// The `--json` report.
#[derive(Serialize)]
struct Report {
    source: String,
    target: String,
    manifests: Vec<ManifestJson>,
}

#[derive(Serialize)]
struct ManifestJson {
    source_manifest: String,
    target_manifest: String,
    bootstrap_layer: String,
    already_nydus: bool,
    layers: Vec<LayerJson>,
    dict_blobs: Vec<String>,
}

/// `rafs_oci::LayerReport` in JSON: the same names, but `digest` and `size` are
/// `nydus_digest` and `nydus_size` (which layer they are is not obvious beside the source's).
#[derive(Serialize)]
struct LayerJson {
    source_digest: String,
    source_size: u64,
    nydus_digest: String,
    nydus_size: u64,
    seconds: f64,
    file_bytes: u64,
}

/// Loads `--chunk-dict`; an archive is extracted under `scratch`.
fn chunk_dict(
    spec: &str,
    scratch: &std::path::Path,
    a: &ConvertImageArgs,
) -> CliResult<ChunkDictionary> {
    if let Some(path) = spec.strip_prefix("bootstrap=") {
        let bytes = std::fs::read(path).map_err(|e| format!("--chunk-dict {path}: {e}"))?;
        return Ok(ChunkDictionary::from_bootstrap(&bytes)?);
    }
    let image: ImageRef = spec
        .parse()
        .map_err(|e| format!("--chunk-dict {spec:?}: expected bootstrap=PATH or an image: {e}"))?;
    let (layout, reference) = image.open_with(scratch, &a.registry.source())?;
    Ok(ChunkDictionary::from_image(&layout, reference.as_deref())?)
}

fn options(a: &ConvertImageArgs) -> CliResult<ConvertOptions> {
    if a.oci_ref {
        if a.fs_version != FsVersionArg::V6 {
            return Err("--oci-ref needs --fs-version 6".into());
        }
        let mut o = ConvertOptions::oci_ref();
        o.build.chunk_size = crate::convert::parse_chunk_size(&a.chunk_size)?;
        o.build.threads = a.threads;
        o.layer_jobs = a.jobs;
        o.platforms = a.platforms.clone();
        o.build.validate().map_err(|e| e.to_string())?;
        return Ok(o);
    }
    let mut o = ConvertOptions::new(a.fs_version.into());
    o.build.compressor = a.compressor.into();
    o.build.digester = a.digester.into();
    o.build.chunk_size = crate::convert::parse_chunk_size(&a.chunk_size)?;
    o.build.threads = a.threads;
    o.layer_jobs = a.jobs;
    o.platforms = a.platforms.clone();
    o.merge_platform = a.merge_platform;
    o.build.validate().map_err(|e| e.to_string())?;
    Ok(o)
}

/// Runs `rafs convert-image`.
pub fn run(a: &ConvertImageArgs) -> CliResult<ExitCode> {
    let options = options(a)?;
    let source: ImageRef = a.source.parse()?;
    let (report, pushed) = match a.target.parse::<ImageRef>() {
        Ok(ImageRef::Oci {
            dir,
            reference: Some(tag),
        }) => {
            let target = Layout::create(&dir)?;
            let scratch = ScratchDir::new_in(a.work_dir.as_deref().unwrap_or(target.root()))?;
            (
                convert(a, options, &source, &target, &tag, scratch.path())?,
                None,
            )
        }
        Ok(ImageRef::Docker { reference }) => {
            let (report, pushed) = convert_to_registry(a, options, &source, &reference)?;
            (report, Some(pushed))
        }
        _ => {
            return Err(format!(
                "target {:?}: expected oci:DIR:TAG or docker://HOST/REPO:TAG",
                a.target
            )
            .into())
        }
    };
    if a.json {
        let mut doc = serde_json::to_value(json_report(report))?;
        if let Some(p) = pushed {
            doc["pushed"] = serde_json::to_value(p)?;
        }
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else if !a.quiet {
        eprintln!("{} -> {}", report.source, report.target);
        if let Some(p) = pushed {
            eprintln!(
                "pushed {}: {} blobs uploaded ({} bytes), {} mounted, {} already there",
                a.target, p.uploaded, p.uploaded_bytes, p.mounted, p.present
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The source image opened (scratch space under `scratch`) and the options completed with
/// the chunk dictionary.
fn open_source(
    a: &ConvertImageArgs,
    options: &mut ConvertOptions,
    source: &ImageRef,
    scratch: &std::path::Path,
) -> CliResult<(Layout, Option<String>)> {
    if let Some(spec) = &a.chunk_dict {
        options.chunk_dict = Some(chunk_dict(spec, &scratch.join("dict"), a)?);
    }
    Ok(source.open_with(&scratch.join("source"), &a.registry.source())?)
}

/// Converts `source` into `target` under `tag`, with scratch space under `scratch`.
fn convert(
    a: &ConvertImageArgs,
    mut options: ConvertOptions,
    source: &ImageRef,
    target: &Layout,
    tag: &str,
    scratch: &std::path::Path,
) -> CliResult<rafs_oci::ConvertReport> {
    let (layout, reference) = open_source(a, &mut options, source, scratch)?;
    let bars = Bars::new(a.quiet || a.json);
    let report = rafs_oci::convert_image_with_progress(
        &layout,
        reference.as_deref(),
        target,
        tag,
        &options,
        &|p| bars.show(&p),
    )?;
    bars.finish();
    Ok(report)
}

/// Converts into a private scratch layout, then pushes the image to the registry `reference`
/// (`HOST/REPO:TAG`): blobs first, the tag last.
fn convert_to_registry(
    a: &ConvertImageArgs,
    options: ConvertOptions,
    source: &ImageRef,
    reference: &str,
) -> CliResult<(
    rafs_oci::ConvertReport,
    rafs_oci::registry::push::PushReport,
)> {
    let image = rafs_oci::registry::parse_reference(reference)?;
    let Some(tag) = image
        .tag()
        .filter(|_| image.digest().is_none())
        .map(str::to_owned)
    else {
        return Err(format!("target docker://{reference}: name a tag to push to").into());
    };
    let registry = rafs_oci::registry::Registry::connect(image, &a.registry.target())?;
    let scratch = ScratchDir::new_in(&a.work_dir.clone().unwrap_or_else(std::env::temp_dir))?;
    let staging = Layout::create(scratch.path().join("target"))?;
    let mut options = options;
    let (layout, reference) = open_source(a, &mut options, source, scratch.path())?;
    let jobs = if a.jobs == 0 {
        std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
    } else {
        a.jobs
    };
    let conversion = rafs_oci::registry::convert::RegistryConversion {
        source: &layout,
        reference: reference.as_deref(),
        staging: &staging,
        jobs,
    };
    let bars = Bars::new(a.quiet || a.json);
    let done = rafs_oci::registry::convert::convert_to_registry(
        conversion,
        &std::sync::Arc::new(registry),
        &tag,
        &options,
        &|p| bars.show(&p),
    )?;
    bars.finish();
    Ok(done)
}

/// One bar per layer (bytes of the source layer read) under a total of layers done.
struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    layers: Mutex<BTreeMap<usize, ProgressBar>>,
}

impl Bars {
    fn new(hidden: bool) -> Self {
        let target = if hidden {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let multi = MultiProgress::with_draw_target(target);
        let total = multi.add(ProgressBar::new(0));
        total.set_style(style(
            "{spinner} [{elapsed_precise}] {pos}/{len} layers {msg}",
        ));
        Bars {
            multi,
            total,
            layers: Mutex::new(BTreeMap::new()),
        }
    }

    fn show(&self, p: &Progress<'_>) {
        let mut layers = self
            .layers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match p {
            Progress::LayerStarted { index, total, size } => {
                self.total.set_length(*total as u64);
                let bar = self.multi.add(ProgressBar::new(*size));
                bar.set_style(style(
                    "  layer {prefix:>3} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
                ));
                bar.set_prefix((index + 1).to_string());
                layers.insert(*index, bar);
            }
            Progress::LayerRead { index, read } => {
                if let Some(bar) = layers.get(index) {
                    bar.set_position(*read);
                }
            }
            Progress::LayerWritten { index, written } => {
                if let Some(bar) = layers.get(index) {
                    bar.set_message(format!("-> Nydus blob {}", indicatif::HumanBytes(*written)));
                }
            }
            Progress::LayerDone { index, .. } => {
                if let Some(bar) = layers.remove(index) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                self.total.inc(1);
            }
            Progress::Merging => {
                self.total.set_message("merging bootstraps");
            }
            _ => {}
        }
    }

    fn finish(&self) {
        self.total.finish_and_clear();
        let _ = self.multi.clear();
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

fn json_report(report: rafs_oci::ConvertReport) -> Report {
    let manifests = report
        .manifests
        .into_iter()
        .map(|m| ManifestJson {
            source_manifest: m.source_manifest,
            target_manifest: m.target_manifest,
            bootstrap_layer: m.bootstrap_layer,
            already_nydus: m.already_nydus,
            dict_blobs: m.dict_blobs,
            layers: m
                .layers
                .into_iter()
                .map(|l| LayerJson {
                    source_digest: l.source_digest,
                    source_size: l.source_size,
                    nydus_digest: l.digest,
                    nydus_size: l.size,
                    seconds: l.seconds,
                    file_bytes: l.file_bytes,
                })
                .collect(),
        })
        .collect();
    Report {
        source: report.source,
        target: report.target,
        manifests,
    }
}

/// Arguments of `rafs check-image`.
#[derive(Args)]
pub struct CheckImageArgs {
    /// The Nydus image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE or
    /// docker://HOST/REPO[:TAG|@DIGEST] (reached with the --dest-* options). An index has each
    /// of its Nydus manifests checked.
    image: String,
    /// The source image, to compare every path of the filesystem with (for an index, each
    /// Nydus manifest against the source manifest of its platform).
    #[arg(long)]
    source: Option<String>,
    /// Check only these platforms of an index (os/arch[/variant]; repeatable); default: all.
    #[arg(long = "platform")]
    platforms: Vec<String>,
    /// Where to unpack archives (default: a new directory of a random name in the system's
    /// temporary directory).
    #[arg(long = "work-dir")]
    work_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    registry: crate::registry_args::RegistryArgs,
    /// Print the rules' results as JSON on standard output.
    #[arg(long)]
    json: bool,
}

/// One manifest's verdict in `--json`: `{"manifest", "platform", "ok", "rules"}`.
#[derive(Serialize)]
struct CheckJson {
    manifest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<String>,
    ok: bool,
    rules: Vec<RuleJson>,
}

/// A lone manifest prints its [`CheckJson`]; an index `{"ok", "manifests": [...]}`.
#[derive(Serialize)]
struct IndexCheckJson {
    ok: bool,
    manifests: Vec<CheckJson>,
}

#[derive(Serialize)]
struct RuleJson {
    rule: &'static str,
    ok: bool,
    problems: Vec<String>,
}

fn check_json(report: &rafs_oci::CheckReport) -> CheckJson {
    let rules = report
        .rules
        .iter()
        .map(|r| RuleJson {
            rule: r.rule,
            ok: r.problems.is_empty(),
            problems: r.problems.clone(),
        })
        .collect();
    CheckJson {
        manifest: report.manifest.clone(),
        platform: report.platform.clone(),
        ok: report.ok(),
        rules,
    }
}

fn print_check_text(report: &rafs_oci::CheckReport) {
    if let Some(p) = &report.platform {
        println!("{p} ({}):", report.manifest);
    }
    for r in &report.rules {
        let verdict = if r.problems.is_empty() {
            "ok"
        } else {
            "FAILED"
        };
        println!("{} rule: {verdict}", r.rule);
        for p in &r.problems {
            println!("  {p}");
        }
    }
}

/// Runs `rafs check-image`: exit 0 only when every rule of every manifest holds.
pub fn check(a: &CheckImageArgs) -> CliResult<ExitCode> {
    let scratch = match &a.work_dir {
        Some(dir) => ScratchDir::new_in(dir)?,
        None => ScratchDir::new_in(&std::env::temp_dir())?,
    };
    let scratch = scratch.path();
    let image: ImageRef = a.image.parse()?;
    let (layout, reference) = image.open_with(&scratch.join("image"), &a.registry.target())?;
    let source = match &a.source {
        Some(s) => Some(
            s.parse::<ImageRef>()?
                .open_with(&scratch.join("source"), &a.registry.source())?,
        ),
        None => None,
    };
    let source_arg = source.as_ref().map(|(l, r)| (l, r.as_deref()));
    let limits = rafs_oci::ImageLimits::default();
    let reports = rafs_oci::check_images(
        &layout,
        reference.as_deref(),
        source_arg,
        &a.platforms,
        &limits,
    )?;
    let ok = reports.iter().all(rafs_oci::CheckReport::ok);
    let lone = reports.len() == 1 && reports[0].platform.is_none();
    if a.json {
        let text = if lone {
            serde_json::to_string_pretty(&check_json(&reports[0]))?
        } else {
            let manifests = reports.iter().map(check_json).collect();
            serde_json::to_string_pretty(&IndexCheckJson { ok, manifests })?
        };
        println!("{text}");
    } else {
        reports.iter().for_each(print_check_text);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
