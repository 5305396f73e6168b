//! What the fuzz targets check, shared with the test that replays their corpora so a fixed
//! crash stays fixed. Not part of the stable API.

use crate::model::FsVersion;

/// Decodes `data` as the given version; when that succeeds, encodes the model again and
/// checks that the encoding decodes to the same tree. Returns a description of a violated
/// property (a panic, if any, is the caller's finding).
pub fn decode_then_encode(data: &[u8], version: FsVersion) -> Result<(), String> {
    let decoded = match version {
        FsVersion::V5 => crate::v5::decode(data),
        FsVersion::V6 => crate::v6::decode(data),
    };
    let Ok(image) = decoded else { return Ok(()) };
    let Ok(bytes) = crate::encode(&image) else {
        return Ok(());
    };
    let again =
        crate::decode(&bytes).map_err(|e| format!("our own encoding does not decode: {e}"))?;
    if let Some(d) = image.tree_difference(&again) {
        return Err(format!("re-encoding changed the tree: {d}"));
    }
    // Encoding is a function of the model: a second pass gives the same bytes.
    match crate::encode(&again) {
        Ok(b) if b == bytes => Ok(()),
        Ok(_) => Err("encoding is not stable across a decode".into()),
        Err(e) => Err(format!("re-encoding failed: {e}")),
    }
}

/// Structure-aware: byte 0 picks one of `seeds` (valid bootstraps), the rest is a list of
/// patches, each a little-endian u16 offset (scaled to the seed's size) and a byte written
/// there. The patched bootstrap then goes through [`decode_then_encode`].
pub fn mutate_then_decode(data: &[u8], seeds: &[&[u8]]) -> Result<(), String> {
    if data.is_empty() || seeds.is_empty() {
        return Ok(());
    }
    let mut image = seeds[data[0] as usize % seeds.len()].to_vec();
    if image.is_empty() {
        return Ok(());
    }
    for p in data[1..].chunks_exact(3) {
        let off = usize::from(u16::from_le_bytes([p[0], p[1]])) * image.len() / 65536;
        image[off] = p[2];
    }
    let Ok(version) = crate::detect(&image) else {
        return Ok(());
    };
    decode_then_encode(&image, version)
}
