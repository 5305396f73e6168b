//! What the `tar_build` fuzz target checks, shared with the test that replays its corpus.
//! Not part of the stable API.

use crate::{build_layer, BuildOptions};
use rafs_format::model::{Compressor, FsVersion};
use std::io::Write;

/// Input layout: byte 0 picks the framing (0 plain, 1 gzip of the rest, 2 zstd of the rest,
/// 3 the rest as is whatever it starts with) and byte 1 the options (v5/v6/tarfs, inline
/// bootstrap with ToC; 0x10 lz4, 0x20 batch chunks, 0x40 the layer built onto itself as its
/// parent bootstrap). Building must succeed or fail with a typed error; on success the
/// bootstrap must decode to the image the build reports.
pub fn build_any(data: &[u8]) -> Result<(), String> {
    if data.len() < 2 {
        return Ok(());
    }
    let body = &data[2..];
    let framed: Vec<u8> = match data[0] % 4 {
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(body).map_err(|e| e.to_string())?;
            e.finish().map_err(|e| e.to_string())?
        }
        2 => zstd::encode_all(body, 1).map_err(|e| e.to_string())?,
        _ => body.to_vec(),
    };
    let mut opts = match data[1] % 4 {
        0 => BuildOptions::new(FsVersion::V6),
        1 => BuildOptions::new(FsVersion::V5),
        2 => BuildOptions::tarfs(),
        _ => BuildOptions::go_converter(),
    };
    if data[1] & 0x10 != 0 && opts.conversion == crate::ConversionType::TarRafs {
        opts.compressor = Compressor::Lz4Block;
    }
    opts.chunk_size = 0x1000;
    opts.threads = 1;
    let rafs_v6 =
        opts.conversion == crate::ConversionType::TarRafs && opts.fs_version == FsVersion::V6;
    if data[1] & 0x20 != 0 && rafs_v6 {
        opts.batch_size = 0x1000;
    }
    let Ok(mut out) = build_layer(framed.as_slice(), &opts, Vec::new()) else {
        return Ok(());
    };
    if data[1] & 0x40 != 0
        && opts.conversion == crate::ConversionType::TarRafs
        && !opts.inline_bootstrap
    {
        opts.parent = Some(std::sync::Arc::new(out.image.clone()));
        let Ok(onto) = build_layer(framed.as_slice(), &opts, Vec::new()) else {
            return Ok(());
        };
        out = onto;
    }
    let back = rafs_format::decode(&out.bootstrap)
        .map_err(|e| format!("our bootstrap does not decode: {e}"))?;
    if let Some(d) = back.tree_difference(&out.image) {
        return Err(format!("bootstrap decodes to another tree: {d}"));
    }
    Ok(())
}
