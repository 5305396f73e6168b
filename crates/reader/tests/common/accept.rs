// The acceptance rule as the `accept_rule` fuzz target checks it, shared with the test that
// replays its corpus (`include!`d by both: the rule needs the builder and the reader, which
// depend on neither each other nor this file).

/// The acceptance rule on a fuzzed layer: byte 0 picks v5/v6 and the compressor, byte 1
/// tightens budgets (so they trip at random places), byte 2 how many prefetch patterns to
/// derive from the layer's own names; the rest is the tar. When conversion succeeds, the
/// bootstrap must decode, pass `check` with every chunk read back verified, and unpack to a
/// tar; a failure must be a typed error.
pub fn accept_rule(data: &[u8]) -> Result<(), String> {
    if data.len() < 3 {
        return Ok(());
    }
    let tar = &data[3..];
    let mut opts = rafs_tar_build::BuildOptions::new(if data[0] & 1 == 0 {
        rafs_format::model::FsVersion::V6
    } else {
        rafs_format::model::FsVersion::V5
    });
    if data[0] & 2 != 0 {
        opts.compressor = rafs_format::model::Compressor::Lz4Block;
    }
    opts.chunk_size = 0x1000;
    opts.threads = 1;
    if data[1] & 1 != 0 {
        opts.limits.max_xattr_bytes = 4096;
        opts.limits.max_global_pax_bytes = 256;
    }
    if data[1] & 2 != 0 {
        opts.limits.max_chunks = 8;
        opts.limits.max_sparse_bytes = 1 << 16;
    }
    if data[1] & 4 != 0 {
        opts.limits.max_entries = 4;
        opts.limits.max_paths = 16;
    }
    opts.prefetch_patterns = Some(patterns_from(tar, usize::from(data[2])));
    let Ok(out) = rafs_tar_build::build_layer(tar, &opts, Vec::new()) else {
        return Ok(());
    };
    let image = rafs_format::decode(&out.bootstrap)
        .map_err(|e| format!("what convert wrote does not decode: {e}"))?;
    if let Some(rafs_format::check::Finding::Error(e)) = rafs_format::check::check(&image, &out.bootstrap)
        .into_iter()
        .find(|f| matches!(f, rafs_format::check::Finding::Error(_)))
    {
        return Err(format!("what convert wrote fails check: {e}"));
    }
    let blob = out.sink;
    let reader = rafs_reader::ImageReader::open_with(image, move |_| {
        Ok(Some(Box::new(blob.clone()) as rafs_reader::BlobSource))
    })
    .map_err(|e| format!("what convert wrote does not open: {e}"))?;
    reader
        .verify_all()
        .map_err(|e| format!("what convert wrote does not read back: {e}"))?;
    rafs_reader::unpack_to_tar(&reader, Vec::new()).map_err(|e| format!("what convert wrote does not unpack: {e}"))?;
    Ok(())
}

/// Up to `n` absolute patterns made of printable runs of the input (names in the tar).
fn patterns_from(tar: &[u8], n: usize) -> Vec<String> {
    tar.split(|b| !b.is_ascii_graphic())
        .filter(|w| !w.is_empty() && w.len() < 200)
        .take(n)
        .map(|w| format!("/{}", String::from_utf8_lossy(w)))
        .collect()
}
