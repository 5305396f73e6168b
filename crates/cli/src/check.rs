//! `rafs check`: full metadata validation.

use crate::CliResult;
use rafs_format::check::{check, Finding};
use serde::Serialize;
use std::process::ExitCode;

#[derive(Serialize)]
struct CheckReport<'a> {
    valid: bool,
    fs_version: Option<u8>,
    inode_count: Option<usize>,
    blobs: Vec<&'a str>,
    /// Chunks read back and digest-checked (with `--blob-dir`).
    chunks_verified: Option<u64>,
    errors: Vec<String>,
    warnings: Vec<String>,
}

/// Runs `rafs check`.
pub fn run(
    path: &std::path::Path,
    blob_dir: Option<&std::path::Path>,
    json: bool,
) -> CliResult<ExitCode> {
    let file = crate::source::ImageFile::open(path)?;
    let decoded = rafs_format::decode(file.bootstrap());
    let (image, findings) = match &decoded {
        Ok(image) => (Some(image), check(image, file.bootstrap())),
        Err(e) => (None, vec![Finding::Error(e.to_string())]),
    };
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for f in findings {
        match f {
            Finding::Error(e) => errors.push(e),
            Finding::Warning(w) => warnings.push(w),
            _ => {}
        }
    }
    let mut chunks_verified = None;
    if let (Some(dir), Some(image), true) = (blob_dir, image, errors.is_empty()) {
        // Every chunk of every file, through its blob, digest and CRC checked (and a tarfs
        // tar against its id).
        match file
            .reader(image.clone(), Some(dir))
            .map(|r| r.verify_all())
        {
            Ok(Ok(n)) => chunks_verified = Some(n),
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let report = CheckReport {
        chunks_verified,
        valid: errors.is_empty(),
        fs_version: image.map(|i| i.superblock.fs_version.number()),
        inode_count: image.map(|i| i.tree.nodes.len()),
        blobs: image
            .map(|i| i.blobs.iter().map(|b| b.blob_id.as_str()).collect())
            .unwrap_or_default(),
        errors,
        warnings,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(if report.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Findings on standard error with the prefix every command uses; the verdict on standard
/// output.
fn print_text(report: &CheckReport<'_>) {
    for w in &report.warnings {
        eprintln!("rafs: warning: {w}");
    }
    const SHOWN: usize = 20;
    for e in report.errors.iter().take(SHOWN) {
        eprintln!("rafs: {e}");
    }
    if report.errors.len() > SHOWN {
        eprintln!("rafs: ... and {} more errors", report.errors.len() - SHOWN);
    }
    if report.valid {
        let data = match report.chunks_verified {
            Some(n) => format!("; {n} chunks read back and verified"),
            None => String::new(),
        };
        println!(
            "RAFS v{} metadata is valid: {} paths, {} blobs{data}",
            report.fs_version.unwrap_or(0),
            report.inode_count.unwrap_or(0),
            report.blobs.len()
        );
    }
}
