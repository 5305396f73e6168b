//! What the `image_source` and `bootstrap_layer` fuzz targets check, shared with the tests
//! that replay their corpora. Not part of the stable API.

use crate::{check_image, convert_image, ConvertOptions, ImageRef, Layout};
use rafs_format::model::FsVersion;

/// Input: a selector byte, then an archive: an `oci-archive` (even selector) or a
/// `docker-archive` (odd). Reading it must succeed or fail with a typed error, never panic,
/// block or allocate without bound; and whatever `convert-image` makes of it, `check-image`
/// with the archive as the source must pass (one reading of the layers on both sides).
pub fn image_source(data: &[u8]) -> Result<(), String> {
    let Some((&selector, archive)) = data.split_first() else {
        return Ok(());
    };
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = tempfile::Builder::new()
        .prefix("rafs-fuzz-image-")
        .tempdir_in(base)
        .map_err(|e| e.to_string())?;
    let file = dir.path().join("archive.tar");
    std::fs::write(&file, archive).map_err(|e| e.to_string())?;
    let image = if selector % 2 == 0 {
        ImageRef::OciArchive {
            file,
            reference: None,
        }
    } else {
        ImageRef::DockerArchive { file }
    };
    let Ok((source, reference)) = image.open(&dir.path().join("source")) else {
        return Ok(());
    };
    let target = Layout::create(dir.path().join("target")).map_err(|e| e.to_string())?;
    let mut options = ConvertOptions::new(FsVersion::V6);
    options.build.threads = 1;
    // Small budgets keep each run short; what they refuse is a typed error like any other.
    options.limits.max_layers = 16;
    options.limits.max_manifests = 16;
    options.limits.max_image_bytes = 64 << 20;
    options.limits.layer.max_sparse_bytes = 64 << 20;
    if convert_image(&source, reference.as_deref(), &target, "fuzz", &options).is_err() {
        return Ok(());
    }
    let report = check_image(&target, Some("fuzz"), Some((&source, reference.as_deref())))
        .map_err(|e| format!("check-image fails on what convert-image wrote: {e}"))?;
    if !report.ok() {
        return Err(format!(
            "check-image refuses what convert-image wrote: {:?}",
            report.rules
        ));
    }
    Ok(())
}

/// Input: a selector byte, then a bootstrap layer: its gzip bytes as they are (even
/// selector), or a tar gzip'ed here first (odd: the fuzzer then reaches the tar's structure
/// instead of stopping at gzip checksums). Reading must succeed or fail with a typed error,
/// keep the bootstrap within its budget, and give the same answer twice.
pub fn bootstrap_layer(data: &[u8]) -> Result<(), String> {
    let Some((&selector, rest)) = data.split_first() else {
        return Ok(());
    };
    let gz = if selector % 2 == 0 {
        rest.to_vec()
    } else {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, rest).map_err(|e| e.to_string())?;
        e.finish().map_err(|e| e.to_string())?
    };
    let size = gz.len() as u64;
    let first = crate::bootstrap_read::read_bootstrap_layer(gz.as_slice(), size);
    let second = crate::bootstrap_read::read_bootstrap_layer(gz.as_slice(), size);
    match (&first, &second) {
        (Ok(a), Ok(b)) => {
            if a.bootstrap != b.bootstrap || a.diff_id != b.diff_id {
                return Err("two reads of one layer differ".into());
            }
            if a.bootstrap.len() as u64 > crate::bootstrap_read::MAX_BOOTSTRAP {
                return Err(format!("a bootstrap of {} bytes", a.bootstrap.len()));
            }
            let _ = rafs_format::decode(&a.bootstrap);
        }
        (Err(_), Err(_)) => {}
        _ => return Err("one read of a layer failed, the other did not".into()),
    }
    Ok(())
}
