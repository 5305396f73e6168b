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
