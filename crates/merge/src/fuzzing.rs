//! What the `merge` fuzz target checks, shared with the tests that replay their
//! corpora. Not part of the stable API.

use crate::{merge, Layer, MergeOptions};

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
