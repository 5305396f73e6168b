//! `nydus-image create`: one layer (tar, gzip'ed or zstd'ed tar; a file, a FIFO or `-`) to a
//! bootstrap and blob, through `rafs convert`'s code. The blob may be a FIFO or a pipe: it is
//! written front to back, once, and never renamed or reopened.

use super::LogArgs;
use crate::choices::{CompressorArg, DigesterArg, FsVersionArg, WhiteoutArg};
use crate::convert::{execute, options, ConvertArgs};
use crate::CliResult;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// The reference's `create` options that we support, by its names.
#[derive(Args)]
pub(crate) struct CreateArgs {
    /// source from which to build the RAFS filesystem
    source: String,
    /// Conversion type: [default: dir-rafs]
    #[arg(short = 't', long = "type",
          value_parser = ["directory", "dir-rafs", "tar-rafs", "tar-tarfs", "targz-rafs", "targz-ref"])]
    conversion: Option<String>,
    /// The old name of `--type directory`.
    #[arg(long = "source-type", hide = true, value_parser = ["directory"], conflicts_with = "conversion")]
    source_type: Option<String>,
    /// File path to save the generated RAFS metadata blob
    #[arg(short = 'B', long = "bootstrap")]
    bootstrap: Option<PathBuf>,
    /// Directory path to save generated RAFS metadata and data blobs
    #[arg(short = 'D', long = "blob-dir")]
    blob_dir: Option<PathBuf>,
    /// File path to save the generated RAFS data blob
    #[arg(short = 'b', long = "blob")]
    blob: Option<PathBuf>,
    /// Inline RAFS metadata and blob metadata into the data blob
    #[arg(long = "blob-inline-meta", alias = "inline-bootstrap")]
    blob_inline_meta: bool,
    /// OSS object id for the generated RAFS data blob
    #[arg(long = "blob-id")]
    blob_id: Option<String>,
    /// Set the size of data chunks, must be power of two and between 0x1000-0x1000000:
    #[arg(long = "chunk-size")]
    chunk_size: Option<String>,
    /// Set the batch size to merge small chunks, must be power of two, between 0x1000-0x1000000 or be zero:
    #[arg(long = "batch-size", default_value = "0")]
    batch_size: String,
    /// Algorithm to compress data chunks:
    #[arg(long, value_enum)]
    compressor: Option<CompressorArg>,
    /// Algorithm to digest data chunks:
    #[arg(long, value_enum)]
    digester: Option<DigesterArg>,
    /// Set RAFS format version number:
    #[arg(short = 'v', long = "fs-version", value_enum, default_value = "6")]
    fs_version: FsVersionArg,
    /// Enable/disable features
    #[arg(long, value_parser = ["blob-toc"])]
    features: Option<String>,
    /// File path of chunk dictionary for data deduplication
    #[arg(long = "chunk-dict")]
    chunk_dict: Option<String>,
    /// File path of the parent/referenced RAFS metadata blob (optional)
    #[arg(long = "parent-bootstrap")]
    parent_bootstrap: Option<PathBuf>,
    /// Align uncompressed data chunks to 4K, only for RAFS V5
    #[arg(long = "aligned-chunk")]
    aligned_chunk: bool,
    /// Generate reproducible RAFS metadata
    #[arg(long)]
    repeatable: bool,
    /// Set the type of whiteout specification:
    #[arg(long = "whiteout-spec", value_enum, default_value = "oci")]
    whiteout_spec: WhiteoutArg,
    /// Set data prefetch policy (fs: patterns on standard input)
    #[arg(long = "prefetch-policy", default_value = "none", value_parser = ["fs", "none"])]
    prefetch_policy: String,
    /// File path to save operation result in JSON format
    #[arg(short = 'J', long = "output-json")]
    output_json: Option<PathBuf>,
    /// Encrypt the generated RAFS metadata and data blobs
    #[arg(short = 'E', long = "encrypt")]
    encrypt: bool,
    #[command(flatten)]
    log: LogArgs,
}

impl CreateArgs {
    /// The `rafs convert` arguments these are.
    fn convert_args(&self) -> CliResult<ConvertArgs> {
        let directory = matches!(
            self.conversion.as_deref().or(self.source_type.as_deref()),
            None | Some("directory" | "dir-rafs")
        );
        if directory && !std::path::Path::new(&self.source).is_dir() {
            return Err(format!(
                "{}: a directory source (dir-rafs) is not a directory",
                self.source
            )
            .into());
        }
        // A directory is streamed as a tar in the reference's order, so one builder does both.
        let conversion = match self.conversion.as_deref() {
            Some("tar-rafs" | "targz-rafs") => "tar-rafs",
            Some(other) if !directory => other,
            _ => "tar-rafs",
        };
        let batch =
            (!matches!(self.batch_size.as_str(), "0" | "0x0")).then(|| self.batch_size.clone());
        Ok(ConvertArgs {
            layer: self.source.clone(),
            bootstrap: self.bootstrap.clone(),
            // The reference takes -D with tar-tarfs and writes nothing there (the tar is the blob).
            blob_dir: self.blob_dir.clone().filter(|_| conversion != "tar-tarfs"),
            blob: self.blob.clone(),
            conversion: conversion.to_owned(),
            fs_version: self.fs_version,
            compressor: self.compressor,
            digester: self.digester,
            chunk_size: self.chunk_size.clone(),
            whiteout_spec: self.whiteout_spec,
            blob_inline_meta: self.blob_inline_meta,
            features: self.features.clone(),
            aligned_chunk: self.aligned_chunk,
            chunk_dict: self.chunk_dict.clone(),
            batch_size: batch,
            parent_bootstrap: self.parent_bootstrap.clone(),
            prefetch_patterns: None,
            repeatable: self.repeatable,
            blob_id: self.blob_id.clone(),
            threads: 0,
            encrypt: self.encrypt,
            json: false,
            quiet: true,
        })
    }
}

/// Runs `nydus-image create`.
pub(crate) fn run(a: &CreateArgs) -> CliResult<ExitCode> {
    let _ = &a.log;
    let args = a.convert_args()?;
    if a.source == "-" && a.prefetch_policy == "fs" {
        return Err(
            "--prefetch-policy fs reads patterns from standard input, which the source `-` uses"
                .into(),
        );
    }
    let mut opts = options(&args)?;
    opts.prefetch_patterns = super::stdin_patterns(Some(&a.prefetch_policy))?;
    opts.validate()?;
    let done = execute(&args, &opts)?;
    if let Some(json) = &a.output_json {
        let mut image = rafs_format::decode(&done.bootstrap)?;
        // An inlined bootstrap records a placeholder for its own blob; the result names it.
        for b in &mut image.blobs {
            if b.blob_id.starts_with("xxxxxxxx") {
                if let Some(id) = &done.report.blob_id {
                    b.blob_id.clone_from(id);
                }
            }
        }
        super::write_output_json(json, a.bootstrap.as_deref(), &image)?;
    }
    Ok(ExitCode::SUCCESS)
}
