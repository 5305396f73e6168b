//! Builder mode: every case built by the implementation under test, then judged — refused
//! when it must be; otherwise a bootstrap our strict decoder accepts, every chunk read back
//! and verified, the OCI model listing, and byte identity with the reference where asked.

use crate::cases::{Case, Expect, Kind, Manifest};
use crate::exec::{run, Ran};
use crate::report::{CaseResult, Report, Verdict};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How to call the builder under test.
#[derive(Debug, Clone)]
pub enum Builder {
    /// A program taking `nydus-image`'s command line (`create`, `merge`).
    NydusImage(PathBuf),
    /// A shell command template: `{layer} {bootstrap} {blob_dir} {fs_version} {compressor}
    /// {digester} {chunk_size} {whiteout_spec}`. Cases needing other options are skipped.
    Template(String),
}

/// A builder run's settings.
#[derive(Debug, Clone)]
pub struct BuilderRun<'a> {
    /// The cases and deviations.
    pub manifest: &'a Manifest,
    /// The corpus directory (`testdata/conformance`).
    pub corpus: &'a Path,
    /// The builder.
    pub builder: &'a Builder,
    /// The implementation's name, for its known deviations.
    pub implementation: &'a str,
    /// Only cases whose id starts with this.
    pub filter: Option<&'a str>,
    /// Time limit per build.
    pub limit: Duration,
}

/// What one case's build left.
#[derive(Debug, Clone, Default)]
struct Built {
    ran: Option<Ran>,
    bootstrap: Option<PathBuf>,
    /// Blob files the build added to the pool.
    produced: Vec<String>,
    skipped: Option<String>,
}

/// Runs every case (and the cases they need) and judges them.
pub fn run_builder(r: &BuilderRun<'_>) -> Result<Report, String> {
    let work = tempfile::tempdir().map_err(|e| format!("scratch directory: {e}"))?;
    let pool = work.path().join("blobs");
    std::fs::create_dir_all(&pool).map_err(|e| e.to_string())?;
    let mut built: HashMap<String, Built> = HashMap::new();
    let mut results = Vec::new();
    for case in &r.manifest.cases {
        if r.filter.is_some_and(|f| !case.id.starts_with(f)) {
            continue;
        }
        let b = build(r, case, work.path(), &pool, &mut built)?;
        results.push(judge_case(r, case, &b, &pool));
    }
    Ok(Report::new("builder", r.implementation, results))
}

/// Builds `case` after its sources (memoised in `built`).
fn build(
    r: &BuilderRun<'_>,
    case: &Case,
    work: &Path,
    pool: &Path,
    built: &mut HashMap<String, Built>,
) -> Result<Built, String> {
    if let Some(b) = built.get(&case.id) {
        return Ok(b.clone());
    }
    let mut sources = Vec::new();
    for s in &case.sources {
        let source = r
            .manifest
            .case(s)
            .ok_or_else(|| format!("{}: no case {s}", case.id))?;
        let b = build(r, source, work, pool, built)?;
        if b.bootstrap.is_none() {
            let b = Built {
                skipped: Some(format!("needs case {s}, which built nothing")),
                ..Built::default()
            };
            built.insert(case.id.clone(), b.clone());
            return Ok(b);
        }
        sources.push((s.clone(), b));
    }
    let dir = work.join(&case.id);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let before = pool_files(pool);
    let b = match command(r, case, &dir, pool, &sources) {
        Err(why) => Built {
            skipped: Some(why),
            ..Built::default()
        },
        Ok((program, args, boot)) => {
            let ran = run(&program, &args, r.limit)?;
            let produced: Vec<String> = pool_files(pool).difference(&before).cloned().collect();
            link_layer_blob(r, case, pool)?;
            // An inlined bootstrap is in the one blob the build wrote.
            let bootstrap = match boot {
                Some(b) => b.exists().then_some(b),
                None => produced.first().map(|p| pool.join(p)),
            };
            Built {
                ran: Some(ran),
                bootstrap,
                produced,
                skipped: None,
            }
        }
    };
    built.insert(case.id.clone(), b.clone());
    Ok(b)
}

/// tarfs and zran images read their data from the layer itself, which a registry (and the
/// pool, here) holds under its sha256: linked there, as `run_reference.sh` does.
fn link_layer_blob(r: &BuilderRun<'_>, case: &Case, pool: &Path) -> Result<(), String> {
    let by_layer = case
        .args
        .iter()
        .any(|a| a == "tar-tarfs" || a == "targz-ref");
    let Some(input) = case.input.as_deref().filter(|_| by_layer) else {
        return Ok(());
    };
    let path = std::fs::canonicalize(r.corpus.join(input)).map_err(|e| format!("{input}: {e}"))?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{input}: {e}"))?;
    let id = rafs_format::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let link = pool.join(id);
    if !link.exists() {
        std::os::unix::fs::symlink(&path, &link).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn pool_files(pool: &Path) -> BTreeSet<String> {
    std::fs::read_dir(pool)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The program, arguments and bootstrap path of a case's build; an error says why it cannot
/// be built by this builder (a skip).
fn command(
    r: &BuilderRun<'_>,
    case: &Case,
    dir: &Path,
    pool: &Path,
    sources: &[(String, Built)],
) -> Result<(String, Vec<String>, Option<PathBuf>), String> {
    let boot = dir.join("bootstrap");
    let show = |p: &Path| p.display().to_string();
    let mut args: Vec<String> = case
        .args
        .iter()
        .map(|a| substitute(a, sources))
        .collect::<Result<_, _>>()?;
    match r.builder {
        Builder::NydusImage(program) => {
            let inline = case.args.iter().any(|a| a == "--blob-inline-meta");
            let mut all = vec![match case.kind {
                Kind::Create => "create".to_string(),
                Kind::Merge => "merge".to_string(),
            }];
            all.append(&mut args);
            if case.kind == Kind::Create {
                all.extend(["-D".into(), show(pool)]);
            }
            if !inline {
                all.extend(["-B".into(), show(&boot)]);
            }
            match (&case.kind, &case.input) {
                (Kind::Create, Some(input)) => all.push(show(&r.corpus.join(input))),
                (Kind::Merge, _) => {
                    for (_, b) in sources {
                        all.extend(b.bootstrap.as_deref().map(show));
                    }
                }
                (Kind::Create, None) => return Err("a create case without input".into()),
            }
            Ok((show(program), all, (!inline).then_some(boot)))
        }
        Builder::Template(template) => {
            let input = case.input.as_deref().filter(|_| case.kind == Kind::Create);
            let input = input.ok_or("the template builds single layers only")?;
            let vars = template_vars(&case.args)?;
            let mut cmd = template.clone();
            for (k, v) in [
                ("{layer}", show(&r.corpus.join(input))),
                ("{bootstrap}", show(&boot)),
                ("{blob_dir}", show(pool)),
            ]
            .into_iter()
            .chain(vars)
            {
                cmd = cmd.replace(k, &v);
            }
            Ok(("sh".into(), vec!["-c".into(), cmd], Some(boot)))
        }
    }
}

/// A case argument with `@BOOTSTRAP:<case>@` and `@DIGESTS@` filled in.
fn substitute(arg: &str, sources: &[(String, Built)]) -> Result<String, String> {
    if let Some(id) = arg
        .strip_prefix("@BOOTSTRAP:")
        .and_then(|a| a.strip_suffix('@'))
    {
        let b = sources.iter().find(|(s, _)| s == id).map(|(_, b)| b);
        let path = b.and_then(|b| b.bootstrap.as_ref());
        return path
            .map(|p| p.display().to_string())
            .ok_or_else(|| format!("no bootstrap of {id}"));
    }
    if arg == "@DIGESTS@" {
        // A layer without a blob (only directories, links, whiteouts) is named by zeros.
        let ids: Vec<String> = sources
            .iter()
            .map(|(_, b)| own_blob(b).unwrap_or_else(|| "0".repeat(64)))
            .collect();
        return Ok(ids.join(","));
    }
    Ok(arg.to_owned())
}

/// The blob id a single-layer build's bootstrap records for its own blob.
fn own_blob(b: &Built) -> Option<String> {
    let bytes = std::fs::read(b.bootstrap.as_ref()?).ok()?;
    let image = rafs_format::decode(&bytes).ok()?;
    image.blobs.last().map(|x| x.blob_id.clone())
}

/// The template's option placeholders from a case's arguments; an error names an option the
/// template cannot pass.
fn template_vars(args: &[String]) -> Result<Vec<(&'static str, String)>, String> {
    let mut vars = vec![
        ("{fs_version}", "6".to_string()),
        ("{compressor}", "zstd".to_string()),
        ("{digester}", "blake3".to_string()),
        ("{chunk_size}", "0x100000".to_string()),
        ("{whiteout_spec}", "oci".to_string()),
    ];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let key = match a.as_str() {
            "-t" | "--type" => match it.next().map(String::as_str) {
                Some("tar-rafs") => continue,
                other => return Err(format!("needs --type {}", other.unwrap_or("?"))),
            },
            "--fs-version" => "{fs_version}",
            "--compressor" => "{compressor}",
            "--digester" => "{digester}",
            "--chunk-size" => "{chunk_size}",
            "--whiteout-spec" => "{whiteout_spec}",
            other => return Err(format!("needs {other}, which the template cannot pass")),
        };
        let v = it.next().ok_or_else(|| format!("{a} without a value"))?;
        if let Some(slot) = vars.iter_mut().find(|(k, _)| *k == key) {
            slot.1.clone_from(v);
        }
    }
    Ok(vars)
}

/// The verdict on one built case.
fn judge_case(r: &BuilderRun<'_>, case: &Case, b: &Built, pool: &Path) -> CaseResult {
    let seconds = b.ran.as_ref().map_or(0.0, |x| x.seconds);
    let verdict = |verdict, reason: String| CaseResult {
        id: case.id.clone(),
        verdict,
        reason,
        seconds,
    };
    if let Some(why) = &b.skipped {
        return verdict(Verdict::Skipped, why.clone());
    }
    let problems = match &b.ran {
        Some(ran) => crate::judge::problems(
            case,
            ran,
            b.bootstrap.as_deref(),
            &b.produced,
            pool,
            r.corpus,
        ),
        None => vec!["not run".into()],
    };
    if problems.is_empty() {
        return verdict(Verdict::Pass, String::new());
    }
    let first = problems.join("; ");
    match r.manifest.deviation(r.implementation, "builder", &case.id) {
        Some(d) => verdict(Verdict::KnownDeviation, format!("{} ({first})", d.reason)),
        None => verdict(Verdict::Fail, first),
    }
}

/// Whether a case asks for `e`.
pub(crate) fn wants(case: &Case, e: Expect) -> bool {
    case.expect.contains(&e)
}
