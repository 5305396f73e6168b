//! What the `merge` and `unpack` fuzz targets check, shared with the tests that replay their
//! corpora. Not part of the stable API.

use crate::{merge, unpack_to_dir, unpack_to_tar, BlobSource, ImageReader, Layer, MergeOptions};

/// Input: a little-endian u16 length, that many bytes of a lower bootstrap, the rest an upper
/// bootstrap. When both decode, merging must succeed or fail with a typed error, and a merged
/// image must encode and decode again.
pub fn merge_two(data: &[u8]) -> Result<(), String> {
    if data.len() < 2 {
        return Ok(());
    }
    let n = usize::from(u16::from_le_bytes([data[0], data[1]])).min(data.len() - 2);
    let (a, b) = data[2..].split_at(n);
    let (Ok(lower), Ok(upper)) = (rafs_format::decode(a), rafs_format::decode(b)) else {
        return Ok(());
    };
    let layers = vec![
        Layer {
            image: lower,
            blob_id: Some("a".repeat(64)),
        },
        Layer {
            image: upper,
            blob_id: Some("b".repeat(64)),
        },
    ];
    let Ok(merged) = merge(layers, &MergeOptions::default()) else {
        return Ok(());
    };
    let Ok(bytes) = rafs_format::encode(&merged) else {
        return Ok(());
    };
    rafs_format::decode(&bytes).map_err(|e| format!("merged image does not decode: {e}"))?;
    Ok(())
}

/// Input: a bootstrap (any version) followed by nothing; its blobs are empty. Unpacking to a
/// tar and into a fresh directory must succeed or fail with a typed error, and the directory
/// unpack must not create anything outside its target.
pub fn unpack_any(data: &[u8]) -> Result<(), String> {
    let Ok(image) = rafs_format::decode(data) else {
        return Ok(());
    };
    if image.tree.nodes.len() > 4096 {
        return Ok(()); // keep each run fast; large trees are the decoder's business
    }
    let Ok(reader) = ImageReader::open_with(image, |_| {
        Ok(Some(Box::new(Vec::<u8>::new()) as BlobSource))
    }) else {
        return Ok(());
    };
    let _ = unpack_to_tar(&reader, Vec::new());
    let sandbox = std::env::temp_dir().join(format!("rafs-fuzz-unpack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&sandbox);
    std::fs::create_dir_all(&sandbox).map_err(|e| e.to_string())?;
    let _ = unpack_to_dir(&reader, &sandbox.join("target"));
    let outside: Vec<_> = std::fs::read_dir(&sandbox)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != "target")
        .map(|e| e.path())
        .collect();
    let _ = std::fs::remove_dir_all(&sandbox);
    if !outside.is_empty() {
        return Err(format!("unpack wrote outside its target: {outside:?}"));
    }
    Ok(())
}
