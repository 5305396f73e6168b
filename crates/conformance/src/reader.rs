//! Reader mode: the committed images (the reference's outputs of every case: v5 and v6, every
//! compressor, zran, batch, tarfs, inline, merged) fed to a reader that unpacks them to a tar
//! or a directory; what it shows, listed by the corpus' `treelist.py`, must be what the image
//! holds (its listing through our strict reader). The hostile bootstraps must be refused
//! within the time limit, without a crash.

use crate::cases::Manifest;
use crate::exec::run;
use crate::report::{CaseResult, Report, Verdict};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A reader run's settings.
#[derive(Debug, Clone)]
pub struct ReaderRun<'a> {
    /// The cases and deviations.
    pub manifest: &'a Manifest,
    /// The corpus directory (`testdata/conformance`).
    pub corpus: &'a Path,
    /// The hostile bootstraps' directory (`testdata/hostile`), if they are to be fed too.
    pub hostile: Option<&'a Path>,
    /// A shell command template: `{bootstrap} {blob_dir}` and `{out_tar}` or `{out_dir}`.
    pub template: &'a str,
    /// The implementation's name, for its known deviations.
    pub implementation: &'a str,
    /// Only cases whose id starts with this.
    pub filter: Option<&'a str>,
    /// Time limit per run.
    pub limit: Duration,
}

/// Feeds every committed image to the reader and judges what it shows.
pub fn run_reader(r: &ReaderRun<'_>) -> Result<Report, String> {
    let work = tempfile::tempdir().map_err(|e| format!("scratch directory: {e}"))?;
    let pool = work.path().join("blobs");
    reference_pool(r.corpus, &pool)?;
    // Cases whose reference output lives elsewhere (umoci's) bring their blobs.
    for dir in r
        .manifest
        .cases
        .iter()
        .filter_map(|c| c.reference.as_deref())
    {
        for e in std::fs::read_dir(r.corpus.join(dir).join("blobs"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let link = pool.join(e.file_name());
            if !link.exists() {
                std::os::unix::fs::symlink(
                    e.path().canonicalize().map_err(|e| e.to_string())?,
                    link,
                )
                .map_err(|e| e.to_string())?;
            }
        }
    }
    let mut results = Vec::new();
    for case in &r.manifest.cases {
        if r.filter.is_some_and(|f| !case.id.starts_with(f)) {
            continue;
        }
        let Some(image) = reference_image(r.corpus, case) else {
            continue;
        };
        let result = read_case(r, &case.id, &image, &pool, work.path());
        results.push(with_deviation(r, result));
    }
    if let Some(dir) = r.hostile {
        for (id, path) in hostile_images(dir) {
            if r.filter.is_some_and(|f| !id.starts_with(f)) {
                continue;
            }
            let result = hostile_case(r, &id, &path, &pool, work.path());
            results.push(with_deviation(r, result));
        }
    }
    Ok(Report::new("reader", r.implementation, results))
}

fn with_deviation(r: &ReaderRun<'_>, mut c: CaseResult) -> CaseResult {
    if c.verdict == Verdict::Fail {
        if let Some(d) = r.manifest.deviation(r.implementation, "reader", &c.id) {
            c.verdict = Verdict::KnownDeviation;
            c.reason = format!("{} ({})", d.reason, c.reason);
        }
    }
    c
}

/// The reference's pool with every blob as it was written (large ones are stored zstd'ed;
/// tarfs blobs are links to the layer tars).
fn reference_pool(corpus: &Path, pool: &Path) -> Result<(), String> {
    std::fs::create_dir_all(pool).map_err(|e| e.to_string())?;
    let src = corpus.join("nydus-image").join("blobs");
    // Links to layer tars are listed in BLOBS.txt (a checkout may hold them as plain files).
    let listing =
        std::fs::read_to_string(corpus.join("nydus-image").join("BLOBS.txt")).unwrap_or_default();
    let mut links = std::collections::HashSet::new();
    for (id, target) in listing.lines().filter_map(|l| l.split_once(" -> ")) {
        let target =
            std::fs::canonicalize(src.join(target.trim())).map_err(|e| format!("{target}: {e}"))?;
        std::os::unix::fs::symlink(&target, pool.join(id)).map_err(|e| e.to_string())?;
        links.insert(id.to_owned());
    }
    // zran and tarfs images read the layers themselves, by their sha256.
    for layer in layer_files(&corpus.join("layers")) {
        let bytes = std::fs::read(&layer).map_err(|e| e.to_string())?;
        let id = rafs_format::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        if links.insert(id.clone()) {
            std::os::unix::fs::symlink(&layer, pool.join(&id)).map_err(|e| e.to_string())?;
        }
    }
    for e in std::fs::read_dir(&src).map_err(|e| format!("{}: {e}", src.display()))? {
        let e = e.map_err(|e| e.to_string())?;
        let name = e.file_name().to_string_lossy().into_owned();
        if links.contains(&name) {
            continue;
        }
        let from = e.path();
        let target = std::fs::canonicalize(&from).map_err(|e| e.to_string())?;
        if let Some(id) = name.strip_suffix(".zst") {
            let z = std::fs::read(&target).map_err(|e| e.to_string())?;
            let raw = zstd::decode_all(z.as_slice()).map_err(|e| e.to_string())?;
            std::fs::write(pool.join(id), raw).map_err(|e| e.to_string())?;
        } else {
            std::os::unix::fs::symlink(&target, pool.join(&name)).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The layer tars (and gzip'ed ones) of the corpus, absolute.
fn layer_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        let p = e.path();
        if p.is_dir() {
            out.extend(layer_files(&p));
        } else if p.to_string_lossy().ends_with(".tar") || p.to_string_lossy().ends_with(".tar.gz")
        {
            out.extend(std::fs::canonicalize(&p));
        }
    }
    out
}

/// A case's committed image: its bootstrap, or for an inline case the blob holding it.
fn reference_image(corpus: &Path, case: &crate::cases::Case) -> Option<PathBuf> {
    let dir = match &case.reference {
        Some(r) => corpus.join(r),
        None => corpus.join("nydus-image").join(&case.id),
    };
    // A case the reference refused has no image (no `rc` file: it succeeded).
    if std::fs::read_to_string(dir.join("rc")).is_ok_and(|rc| rc.trim() != "0") {
        return None;
    }
    let boot = dir.join("bootstrap");
    if boot.exists() {
        return Some(boot);
    }
    // The blob with the bootstrap inlined (a zran image lists the gzip layer first).
    let listed = std::fs::read_to_string(dir.join("blobs.txt")).ok()?;
    listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|id| corpus.join("nydus-image").join("blobs").join(id))
        .find(|p| crate::judge::read_image(p).is_ok())
}

/// The template filled in for one image; and where its output goes.
fn fill(r: &ReaderRun<'_>, image: &Path, pool: &Path, out: &Path) -> (String, PathBuf, bool) {
    let to_dir = r.template.contains("{out_dir}");
    let target = if to_dir {
        out.join("root")
    } else {
        out.join("out.tar")
    };
    let cmd = r
        .template
        .replace("{bootstrap}", &image.display().to_string())
        .replace("{blob_dir}", &pool.display().to_string())
        .replace("{out_tar}", &target.display().to_string())
        .replace("{out_dir}", &target.display().to_string());
    (cmd, target, to_dir)
}

fn result(id: &str, verdict: Verdict, reason: String, seconds: f64) -> CaseResult {
    CaseResult {
        id: id.to_owned(),
        verdict,
        reason,
        seconds,
    }
}

/// Reads one image with the reader and compares what it shows with what the image holds.
fn read_case(r: &ReaderRun<'_>, id: &str, image: &Path, pool: &Path, work: &Path) -> CaseResult {
    let want = match crate::judge::read_image(image).and_then(|i| crate::listing::listing(i, pool))
    {
        Ok(w) => w,
        Err(e) => {
            return result(
                id,
                Verdict::Skipped,
                format!("the image does not read back here: {e}"),
                0.0,
            )
        }
    };
    let out = work.join(format!("read-{id}"));
    let _ = std::fs::create_dir_all(&out);
    let (cmd, target, to_dir) = fill(r, image, pool, &out);
    let ran = match run("sh", &["-c".into(), cmd], r.limit) {
        Ok(ran) => ran,
        Err(e) => return result(id, Verdict::Fail, e, 0.0),
    };
    let seconds = ran.seconds;
    if let Some(f) = ran.failure() {
        let _ = std::fs::remove_dir_all(&out);
        return result(id, Verdict::Fail, format!("reader failed: {f}"), seconds);
    }
    let shown = treelist(r.corpus, &target, to_dir);
    let _ = std::fs::remove_dir_all(&out);
    let quirk = r.manifest.quirk(r.implementation, "epoch-mtime-as-now");
    let (shown, allowed) = match (shown, quirk) {
        (Ok(got), Some(_)) => {
            let (got, n) = epoch_as_now(&got, &want);
            (Ok(got), n)
        }
        (other, _) => (other, 0),
    };
    match shown {
        Err(e) => result(id, Verdict::Fail, e, seconds),
        Ok(got) if allowed > 0 && listing_equal(&got, &want, to_dir) => result(
            id,
            Verdict::KnownDeviation,
            format!(
                "{} ({allowed} lines: an mtime of 0 shown as the time of the stat call)",
                quirk.map_or("", |q| q.reason.as_str())
            ),
            seconds,
        ),
        Ok(got) => match if to_dir {
            crate::listing::difference(&got, &want)
        } else {
            crate::listing::difference_below_root(&got, &want)
        } {
            None => result(id, Verdict::Pass, String::new(), seconds),
            Some(d) => result(
                id,
                Verdict::Fail,
                format!("shows other than the image holds: {d}"),
                seconds,
            ),
        },
    }
}

/// What the reader wrote, listed by the corpus' `treelist.py`.
fn treelist(corpus: &Path, target: &Path, dir: bool) -> Result<String, String> {
    let tool = corpus.join("tools").join("treelist.py");
    let out = std::process::Command::new("python3")
        .arg(tool)
        .arg(if dir { "dir" } else { "tar" })
        .arg(target)
        .output()
        .map_err(|e| format!("python3 treelist.py: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "listing the reader's output: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or_default()
        ));
    }
    // The mount-time marks `dir` mode appends for a reported link count are not the model's.
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split(" (st_nlink=").next().unwrap_or(l).to_owned() + "\n")
        .collect())
}

fn listing_equal(got: &str, want: &str, to_dir: bool) -> bool {
    if to_dir {
        crate::listing::difference(got, want).is_none()
    } else {
        crate::listing::difference_below_root(got, want).is_none()
    }
}

/// `got` with each line that differs from `want`'s line for the same path only by showing a
/// recent time where `want` has mtime 0 replaced by `want`'s; and how many were.
fn epoch_as_now(got: &str, want: &str) -> (String, usize) {
    let wanted: std::collections::HashMap<&str, &str> = want
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(p, _)| (p, l)))
        .collect();
    let mut n = 0;
    let out = got
        .lines()
        .map(|g| {
            let path = g.split(' ').next().unwrap_or_default();
            let Some(w) = wanted.get(path) else {
                return format!("{g}\n");
            };
            let (gf, wf): (Vec<&str>, Vec<&str>) = (g.split(' ').collect(), w.split(' ').collect());
            let same_but_time = gf.len() == wf.len()
                && wf.get(4) == Some(&"0")
                && gf
                    .get(4)
                    .and_then(|t| t.parse::<u64>().ok())
                    .is_some_and(|t| t > 1_000_000_000)
                && gf
                    .iter()
                    .zip(&wf)
                    .enumerate()
                    .all(|(i, (a, b))| i == 4 || a == b);
            if same_but_time {
                n += 1;
                format!("{w}\n")
            } else {
                format!("{g}\n")
            }
        })
        .collect();
    (out, n)
}

/// The hostile bootstraps, by file name.
fn hostile_images(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .filter(|(n, _)| n.starts_with("v5-") || n.starts_with("v6-"))
        .map(|(n, p)| (format!("hostile-{n}"), p))
        .collect();
    out.sort();
    out
}

/// A hostile image must be refused in time, without a crash.
fn hostile_case(r: &ReaderRun<'_>, id: &str, image: &Path, pool: &Path, work: &Path) -> CaseResult {
    let out = work.join(format!("read-{id}"));
    let _ = std::fs::create_dir_all(&out);
    let (cmd, _, _) = fill(r, image, pool, &out);
    let ran = run("sh", &["-c".into(), cmd], r.limit);
    let _ = std::fs::remove_dir_all(&out);
    let ran = match ran {
        Ok(ran) => ran,
        Err(e) => return result(id, Verdict::Fail, e, 0.0),
    };
    // `sh -c` reports a signal that ended its command as 128 + the signal.
    let verdict = match (ran.hung, ran.code) {
        (true, _) => Some("hung on a hostile image".to_string()),
        (false, Some(0)) => Some("accepted a hostile image".to_string()),
        (false, Some(c)) if c > 128 => {
            Some(format!("crashed (signal {}): {}", c - 128, ran.stderr))
        }
        (false, None) => Some(format!("crashed: {}", ran.stderr)),
        _ => None,
    };
    match verdict {
        None => result(id, Verdict::Pass, String::new(), ran.seconds),
        Some(why) => result(id, Verdict::Fail, why, ran.seconds),
    }
}
