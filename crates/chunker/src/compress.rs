//! Chunk compression and bounded decompression, framed as the reference frames them
//! (blob.md §4): one raw LZ4 block, or one zstd frame from `ZSTD_compress2` at level 3.

use crate::error::{berr, BlobErrorKind, Error, Result};
use rafs_format::model::Compressor;
use std::cell::RefCell;

/// The zstd level the reference uses for chunks, the chunk-info array and inlined bootstraps.
pub const ZSTD_LEVEL: i32 = 3;

/// Largest chunk (and largest decompressed unit) the format allows: 16 MiB.
pub const MAX_CHUNK_SIZE: u32 = 0x100_0000;

/// Reusable compression state (a zstd context), one per worker thread.
pub struct CompressContext {
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl Default for CompressContext {
    fn default() -> Self {
        Self::new()
    }
}

impl CompressContext {
    /// A context; the zstd context is created on first use.
    pub fn new() -> Self {
        CompressContext { zstd: None }
    }

    /// Compresses `input` with `algorithm` into `out` (cleared first), applying the
    /// reference's store-raw rule: when the algorithm is `none`, the input is empty, or the
    /// output is not shorter than the input, `out` receives the raw bytes and the result is
    /// `false` ("not compressed").
    pub fn compress(
        &mut self,
        algorithm: Compressor,
        input: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<bool> {
        out.clear();
        if input.is_empty() {
            return Ok(false); // stored raw: nothing
        }
        match algorithm {
            Compressor::None => {
                out.extend_from_slice(input);
                return Ok(false);
            }
            Compressor::Lz4Block => {
                // liblz4's LZ4_compress_default, as the reference calls it (lz4_flex emits
                // other, equally valid bytes, and so other blob ids).
                let bound = lz4::block::compress_bound(input.len())
                    .map_err(|e| Error::Pipeline(format!("lz4 compression failed: {e}")))?;
                out.resize(bound, 0);
                let mode = Some(lz4::block::CompressionMode::DEFAULT);
                let n = lz4::block::compress_to_buffer(input, mode, false, out)
                    .map_err(|e| Error::Pipeline(format!("lz4 compression failed: {e}")))?;
                out.truncate(n);
            }
            Compressor::Zstd => {
                let cctx = match &mut self.zstd {
                    Some(c) => c,
                    slot => slot.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| {
                        Error::Pipeline(format!("cannot create zstd context: {e}"))
                    })?),
                };
                // A full compress bound, as the reference's `zstd::bulk::compress` allocates:
                // the output must not depend on how much room the encoder was given.
                out.reserve(zstd::zstd_safe::compress_bound(input.len()));
                cctx.compress_to_buffer(input, out)
                    .map_err(|e| Error::Pipeline(format!("zstd compression failed: {e}")))?;
            }
            Compressor::Gzip => {
                return Err(Error::InvalidOptions(
                    "gzip is not a chunk compressor (only zran blobs carry gzip data)".into(),
                ))
            }
        }
        if out.len() >= input.len() {
            out.clear();
            out.extend_from_slice(input);
            return Ok(false);
        }
        Ok(true)
    }
}

/// Compresses with a fresh context (convenience for one-off payloads such as the inlined
/// bootstrap). Returns whether the output is compressed.
pub fn compress(algorithm: Compressor, input: &[u8], out: &mut Vec<u8>) -> Result<bool> {
    CompressContext::new().compress(algorithm, input, out)
}

thread_local! {
    static ZSTD_DCTX: RefCell<Option<zstd::zstd_safe::DCtx<'static>>> = const { RefCell::new(None) };
}

/// Decompresses `input` into exactly `out.len()` bytes (the declared uncompressed size).
///
/// Never allocates from the input: output that would exceed `out` is
/// [`BlobErrorKind::SizeMismatch`] (a decompression bomb), as is output that falls short.
/// `structure` and `offset` name the data in errors.
pub fn decompress_into(
    algorithm: Compressor,
    input: &[u8],
    out: &mut [u8],
    structure: &'static str,
    offset: u64,
) -> Result<()> {
    let declared = out.len() as u64;
    let mismatch = |actual: u64| {
        berr(
            structure,
            offset,
            BlobErrorKind::SizeMismatch { declared, actual },
        )
    };
    match algorithm {
        Compressor::None => {
            if input.len() != out.len() {
                return Err(mismatch(input.len() as u64));
            }
            out.copy_from_slice(input);
            Ok(())
        }
        Compressor::Lz4Block => match lz4_flex::block::decompress_into(input, out) {
            Ok(n) if n == out.len() => Ok(()),
            Ok(n) => Err(mismatch(n as u64)),
            Err(lz4_flex::block::DecompressError::OutputTooSmall { expected, .. }) => {
                Err(mismatch(expected.max(out.len() + 1) as u64))
            }
            Err(e) => Err(berr(
                structure,
                offset,
                BlobErrorKind::Corrupt {
                    algorithm: "lz4_block",
                    reason: e.to_string(),
                },
            )),
        },
        Compressor::Zstd => {
            // A frame that states its size must state the declared one; this rejects most
            // bombs before any work.
            if let Ok(Some(n)) = zstd::zstd_safe::get_frame_content_size(input) {
                if n != declared {
                    return Err(mismatch(n));
                }
            }
            let result = ZSTD_DCTX.with(|cell| {
                let mut slot = cell.borrow_mut();
                let dctx = slot.get_or_insert_with(zstd::zstd_safe::DCtx::create);
                dctx.decompress(out, input)
            });
            match result {
                Ok(n) if n == out.len() => Ok(()),
                Ok(n) => Err(mismatch(n as u64)),
                Err(code) => {
                    let name = zstd::zstd_safe::get_error_name(code);
                    if name.contains("Destination buffer is too small") {
                        Err(mismatch(declared + 1))
                    } else {
                        Err(berr(
                            structure,
                            offset,
                            BlobErrorKind::Corrupt {
                                algorithm: "zstd",
                                reason: name.to_string(),
                            },
                        ))
                    }
                }
            }
        }
        Compressor::Gzip => Err(berr(
            structure,
            offset,
            BlobErrorKind::Unsupported("gzip chunk data (zran blobs)".into()),
        )),
    }
}

/// Decompresses into a new buffer of the declared size, refusing sizes above `limit` before
/// allocating.
pub fn decompress(
    algorithm: Compressor,
    input: &[u8],
    declared: u64,
    limit: u64,
    structure: &'static str,
    offset: u64,
) -> Result<Vec<u8>> {
    if declared > limit {
        return Err(berr(
            structure,
            offset,
            BlobErrorKind::LimitExceeded {
                what: "declared uncompressed size",
                value: declared,
                limit,
            },
        ));
    }
    let mut out = vec![0u8; crate::error::len_of(declared, structure, offset)?];
    decompress_into(algorithm, input, &mut out, structure, offset)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_input_is_stored_raw() {
        let mut out = Vec::new();
        assert!(!compress(Compressor::Zstd, b"hello\n", &mut out).unwrap());
        assert_eq!(out, b"hello\n");
        assert!(!compress(Compressor::Lz4Block, b"hello\n", &mut out).unwrap());
        assert_eq!(out, b"hello\n");
    }

    #[test]
    fn zstd_frame_matches_the_reference_bytes() {
        // blob.md §12.3: "hello world\n" x 300 compresses to 29 bytes starting so.
        let input = b"hello world\n".repeat(300);
        let mut out = Vec::new();
        assert!(compress(Compressor::Zstd, &input, &mut out).unwrap());
        assert_eq!(out.len(), 29);
        assert_eq!(
            &out[..23],
            &[
                0x28, 0xb5, 0x2f, 0xfd, 0x60, 0x10, 0x0d, 0x9d, 0x00, 0x00, 0x60, b'h', b'e', b'l',
                b'l', b'o', b' ', b'w', b'o', b'r', b'l', b'd', b'\n'
            ]
        );
    }

    #[test]
    fn lz4_round_trip_and_bomb() {
        let input = b"abcdefgh".repeat(1000);
        let mut out = Vec::new();
        assert!(compress(Compressor::Lz4Block, &input, &mut out).unwrap());
        let back = decompress(Compressor::Lz4Block, &out, 8000, 1 << 24, "chunk", 0).unwrap();
        assert_eq!(back, input);
        let err = decompress(Compressor::Lz4Block, &out, 100, 1 << 24, "chunk", 0).unwrap_err();
        assert_eq!(err.blob_kind().unwrap().name(), "SizeMismatch");
    }

    #[test]
    fn zstd_bomb_is_refused() {
        let input = vec![0u8; 1 << 20];
        let mut out = Vec::new();
        assert!(compress(Compressor::Zstd, &input, &mut out).unwrap());
        let err = decompress(Compressor::Zstd, &out, 4096, 1 << 24, "chunk", 7).unwrap_err();
        assert_eq!(err.blob_kind().unwrap().name(), "SizeMismatch");
        assert_eq!(err.as_blob().unwrap().offset, 7);
    }
}
