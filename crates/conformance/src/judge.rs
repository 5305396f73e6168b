//! The checks a built case must pass, each failure said in words.

use crate::builder::wants;
use crate::cases::{Case, Expect};
use crate::exec::Ran;
use std::path::Path;

/// Everything wrong with a case's outcome (empty: it passes).
pub fn problems(
    case: &Case,
    ran: &Ran,
    bootstrap: Option<&Path>,
    produced: &[String],
    pool: &Path,
    corpus: &Path,
) -> Vec<String> {
    if wants(case, Expect::Refused) {
        return match (ran.hung, ran.code) {
            (true, _) => vec!["hung on an input it must refuse".into()],
            (false, Some(0)) => vec!["accepted an input it must refuse".into()],
            (false, None) => vec![format!("crashed instead of refusing: {}", ran.stderr)],
            // Through `sh -c`, a signal shows as 128 + its number.
            (false, Some(c)) if c > 128 => {
                vec![format!(
                    "crashed (signal {}) instead of refusing: {}",
                    c - 128,
                    ran.stderr
                )]
            }
            (false, Some(_)) => Vec::new(),
        };
    }
    if let Some(f) = ran.failure() {
        return vec![format!("build failed: {f}")];
    }
    let Some(bootstrap) = bootstrap else {
        return vec!["no bootstrap written".into()];
    };
    let image = match read_image(bootstrap) {
        Ok(i) => i,
        Err(e) => return vec![format!("bootstrap: {e}")],
    };
    let mut p = Vec::new();
    if let Err(e) = rafs_reader::ImageReader::open_dir(image.clone(), pool)
        .and_then(|r| r.verify_digests(true).verify_all())
    {
        p.push(format!("chunk data: {e}"));
    }
    if wants(case, Expect::Model) {
        if let Some(d) = model_difference(case, image, pool, corpus) {
            p.push(d);
        }
    }
    if wants(case, Expect::Identical) {
        p.extend(identity(case, bootstrap, produced, pool, corpus));
    }
    p
}

/// The image a bootstrap file holds: a bootstrap, or a blob with one inlined.
pub(crate) fn read_image(path: &Path) -> Result<rafs_format::model::Image, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let inline = rafs_format::detect(&bytes).is_err();
    let bytes = match rafs_format::detect(&bytes) {
        Ok(_) => bytes,
        Err(_) => rafs_chunker::BlobReader::open_sections(bytes.as_slice())
            .and_then(|r| r.bootstrap())
            .map_err(|e| format!("neither a bootstrap nor a blob with one inlined: {e}"))?,
    };
    let mut image = rafs_format::decode(&bytes).map_err(|e| e.to_string())?;
    if inline {
        // An inlined bootstrap names its own blob by a placeholder: the blob is this file.
        if let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) {
            for b in image
                .blobs
                .iter_mut()
                .filter(|b| b.blob_id.starts_with("xxxxxxxx"))
            {
                b.blob_id.clone_from(&name);
            }
            // A zran blob inlining its bootstrap is the metadata blob its entry names.
            if let Some(digest) = parse_hex32(&name) {
                for b in image.blobs.iter_mut().filter(|b| b.meta_digest == [0; 32]) {
                    if b.features.contains(rafs_format::model::BlobFeatures::ZRAN) {
                        b.meta_digest = digest;
                    }
                }
            }
        }
    }
    Ok(image)
}

/// 64 hex digits as 32 bytes.
fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

fn model_difference(
    case: &Case,
    image: rafs_format::model::Image,
    pool: &Path,
    corpus: &Path,
) -> Option<String> {
    let name = case.model.as_deref()?;
    let want = match std::fs::read_to_string(corpus.join("expected").join(format!("{name}.list"))) {
        Ok(w) => w,
        Err(e) => return Some(format!("expected/{name}.list: {e}")),
    };
    match crate::listing::listing(image, pool) {
        Err(e) => Some(format!("reading the image back: {e}")),
        Ok(got) => crate::listing::difference(&got, &want)
            .map(|d| format!("not the OCI model {name}: {d}")),
    }
}

/// Byte identity with the reference's committed output: the bootstrap, and every blob.
fn identity(
    case: &Case,
    bootstrap: &Path,
    produced: &[String],
    pool: &Path,
    corpus: &Path,
) -> Vec<String> {
    let reference = match &case.reference {
        Some(r) => corpus.join(r),
        None => corpus.join("nydus-image").join(&case.id),
    };
    let mut p = Vec::new();
    let ref_boot = reference.join("bootstrap");
    if ref_boot.exists() && std::fs::read(&ref_boot).ok() != std::fs::read(bootstrap).ok() {
        p.push("bootstrap differs from the reference's".to_string());
    }
    // The blobs the reference wrote: listed in blobs.txt, or the files of its blobs/.
    let mut want: Vec<String> = std::fs::read_to_string(reference.join("blobs.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.contains(" tar:"))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    if want.is_empty() {
        want = std::fs::read_dir(reference.join("blobs"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
    }
    for id in &want {
        let ours = std::fs::read(pool.join(id)).ok();
        if ours.is_none() {
            p.push(format!("no blob {id} (the reference's)"));
        } else if ours != reference_blob(corpus, &reference, id) {
            p.push(format!("blob {id} differs from the reference's"));
        }
    }
    // A blob only we wrote (other bytes, so another id) is a difference too.
    for id in produced.iter().filter(|id| !want.contains(id)) {
        p.push(format!("blob {id} is not the reference's"));
    }
    p
}

/// The reference's blob `id`: beside its case's output, or in the corpus pool (stored
/// zstd-compressed when large).
fn reference_blob(corpus: &Path, case_dir: &Path, id: &str) -> Option<Vec<u8>> {
    if let Ok(b) = std::fs::read(case_dir.join("blobs").join(id)) {
        return Some(b);
    }
    let pool = corpus.join("nydus-image").join("blobs");
    if let Ok(b) = std::fs::read(pool.join(id)) {
        return Some(b);
    }
    let z = std::fs::read(pool.join(format!("{id}.zst"))).ok()?;
    zstd::decode_all(z.as_slice()).ok()
}
