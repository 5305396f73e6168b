//! Batch members of a blob given as its data section alone: what the Go converter's `Unpack`
//! hands the builder (`--blob image.blob`, the packed blob's data without its chunk-info
//! array). A batch member's bootstrap record names no stored range (size 0), and the batch
//! contexts that would are in the array left behind, so the batches are found again from
//! the records: stored chunks are packed back to back in uncompressed order, each unit at a
//! 4 KiB-aligned uncompressed offset, so every gap between stored chunks holds batches. A zstd
//! gap is split at its frames (each frame says its size); an lz4 or raw gap must be one batch.
//! The reference's `unpack` reads such members as empty chunks, which is wrong.

use crate::compress::decompress;
use crate::error::{berr, invalid, BlobErrorKind, Result};
use crate::source::ReadAt;
use rafs_format::model::{ChunkInfo, Compressor};

/// One stored batch of the data section.
#[derive(Debug, Clone, Copy)]
struct Unit {
    compressed_offset: u64,
    compressed_size: u64,
    /// The sum of its members' sizes: members are packed back to back in a batch.
    content_size: u64,
}

/// The batches found in a data section, and where each member lies in its batch.
#[derive(Debug, Clone, Default)]
pub(crate) struct Batches {
    units: Vec<Unit>,
    /// By a member's uncompressed offset: its batch and its offset inside the batch.
    members: std::collections::HashMap<u64, (usize, u64)>,
}

const S: &str = "data section";

fn align4k(v: u64) -> u64 {
    v.div_ceil(4096).saturating_mul(4096)
}

impl Batches {
    /// Finds the batches of the data section `src` (`data_end` bytes) from the chunk
    /// records of its blob; `None` when no record is a batch member.
    pub(crate) fn infer(
        src: &dyn ReadAt,
        data_end: u64,
        records: &[ChunkInfo],
        compressor: Compressor,
    ) -> Result<Option<Batches>> {
        // Members by uncompressed offset (records of one chunk repeat).
        let mut members: Vec<(u64, u64)> = records
            .iter()
            .filter(|c| c.compressed_size == 0 && c.uncompressed_size > 0)
            .map(|c| (c.uncompressed_offset, u64::from(c.uncompressed_size)))
            .collect();
        if members.is_empty() {
            return Ok(None);
        }
        members.sort_unstable();
        members.dedup_by_key(|m| m.0);
        let mut stored: Vec<&ChunkInfo> =
            records.iter().filter(|c| c.compressed_size > 0).collect();
        stored.sort_by_key(|c| c.compressed_offset);
        stored.dedup_by_key(|c| c.compressed_offset);
        let mut found = Batches::default();
        let (mut c, mut u) = (0u64, 0u64);
        let ends = stored.iter().map(|s| Some(*s)).chain(std::iter::once(None));
        for next in ends {
            let (gap_end, u_end) = next.map_or((data_end, u64::MAX), |s| {
                (s.compressed_offset, s.uncompressed_offset)
            });
            // Members are sorted by offset: the gap's are one slice, found by bisection (a
            // scan per stored chunk would be quadratic in the records).
            let from = members.partition_point(|&(o, _)| o < u);
            let to = from + members[from..].partition_point(|&(o, _)| o < u_end);
            let in_gap = &members[from..to];
            if gap_end > c || !in_gap.is_empty() {
                found.split_gap(src, (c, gap_end), in_gap, compressor)?;
            }
            if let Some(s) = next {
                // Records come from the bootstrap: hostile sums saturate, and a gap that makes
                // no sense then finds no batch.
                c = s
                    .compressed_offset
                    .saturating_add(u64::from(s.compressed_size));
                u = align4k(
                    s.uncompressed_offset
                        .saturating_add(u64::from(s.uncompressed_size)),
                );
            }
        }
        Ok(Some(found))
    }

    /// The batches of the stored bytes `start..end`, which hold `members` (by offset): zstd
    /// frames one by one, each taking the members its content size covers; otherwise the
    /// whole stretch as one batch.
    fn split_gap(
        &mut self,
        src: &dyn ReadAt,
        (start, end): (u64, u64),
        members: &[(u64, u64)],
        compressor: Compressor,
    ) -> Result<()> {
        let mut queue = members.iter().copied();
        let mut c = start;
        while c < end {
            let (size, content) = if compressor != Compressor::Zstd {
                (end - c, members.iter().map(|m| m.1).sum())
            } else if is_zstd_frame(src, c, end) {
                zstd_frame(src, c, end)?
            } else {
                // A batch compression did not shrink is stored raw: it ends where the next
                // frame starts, or at the gap's end.
                let mut len = 0;
                for (_, l) in queue.clone() {
                    len += l;
                    let next = c.saturating_add(len);
                    if next >= end || is_zstd_frame(src, next, end) {
                        break;
                    }
                }
                (len, len)
            };
            // Every batch holds a member: so batches are bounded by the records, and the walk
            // advances.
            if content == 0 || size == 0 {
                return Err(invalid(
                    S,
                    c,
                    "batch",
                    "more stored data than batch members",
                ));
            }
            let unit = self.units.len();
            let mut inner = 0;
            while inner < content {
                let (offset, len) = queue
                    .next()
                    .ok_or_else(|| invalid(S, c, "batch", "more stored data than batch members"))?;
                self.members.insert(offset, (unit, inner));
                inner = inner.saturating_add(len);
            }
            if inner != content {
                return Err(invalid(S, c, "batch", "members do not fill the batch"));
            }
            self.units.push(Unit {
                compressed_offset: c,
                compressed_size: size,
                content_size: content,
            });
            c = c.saturating_add(size);
        }
        if queue.next().is_some() {
            return Err(invalid(
                S,
                start,
                "batch",
                "batch members with no stored data",
            ));
        }
        Ok(())
    }

    /// A batch member's bytes: its batch decompressed, the member cut out.
    pub(crate) fn read(
        &self,
        src: &dyn ReadAt,
        chunk: &ChunkInfo,
        compressor: Compressor,
    ) -> Result<Vec<u8>> {
        let at = chunk.uncompressed_offset;
        let (unit, inner) = self
            .members
            .get(&at)
            .map(|&(u, i)| (self.units[u], i))
            .ok_or_else(|| {
                invalid(
                    S,
                    at,
                    "batch",
                    "no batch found in the data section holds this chunk",
                )
            })?;
        let mut stored =
            vec![0u8; crate::error::len_of(unit.compressed_size, S, unit.compressed_offset)?];
        src.read_exact_at(&mut stored, unit.compressed_offset)
            .map_err(|_| {
                let kind = BlobErrorKind::Truncated {
                    needed: unit.compressed_offset + unit.compressed_size,
                    available: src.size(),
                };
                berr(S, unit.compressed_offset, kind)
            })?;
        let data = if compressor == Compressor::None || unit.compressed_size == unit.content_size {
            // Stored raw: compression did not shrink it.
            stored
        } else {
            decompress(
                compressor,
                &stored,
                unit.content_size,
                16 << 20,
                S,
                unit.compressed_offset,
            )
            .map_err(|_| {
                let reason = "several lz4_block batches lie between two stored chunks, and \
                                  without the blob's chunk-info array their bounds are unknown";
                invalid(S, unit.compressed_offset, "batch", reason)
            })?
        };
        let from = usize::try_from(inner).unwrap_or(usize::MAX);
        data.get(from..from.saturating_add(chunk.uncompressed_size as usize))
            .map(<[u8]>::to_vec)
            .ok_or_else(|| invalid(S, at, "batch", "the chunk lies past its batch's data"))
    }
}

/// Whether a zstd frame (its magic) starts at `at`, before `end`.
fn is_zstd_frame(src: &dyn ReadAt, at: u64, end: u64) -> bool {
    let mut magic = [0u8; 4];
    at.saturating_add(4) <= end
        && src.read_exact_at(&mut magic, at).is_ok()
        && magic == [0x28, 0xb5, 0x2f, 0xfd]
}

/// The stored size and content size of the zstd frame at `at` (RFC 8878 §3.1.1), read from
/// its header and block headers, never past `end`.
fn zstd_frame(src: &dyn ReadAt, at: u64, end: u64) -> Result<(u64, u64)> {
    let read = |off: u64, buf: &mut [u8]| -> Result<()> {
        if off + buf.len() as u64 > end {
            return Err(invalid(S, off, "zstd frame", "runs past its gap"));
        }
        src.read_exact_at(buf, off).map_err(|_| {
            berr(
                S,
                off,
                BlobErrorKind::Truncated {
                    needed: off + buf.len() as u64,
                    available: src.size(),
                },
            )
        })
    };
    let mut head = [0u8; 5];
    read(at, &mut head)?;
    if head[..4] != [0x28, 0xb5, 0x2f, 0xfd] {
        return Err(invalid(
            S,
            at,
            "zstd frame",
            "no zstd magic where a batch should start",
        ));
    }
    let fhd = head[4];
    let single_segment = fhd & 0x20 != 0;
    let fcs_len = match (fhd >> 6, single_segment) {
        (0, false) => 0,
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let dict_len = [0u64, 1, 2, 4][usize::from(fhd & 3)];
    let fcs_at = at + 5 + u64::from(!single_segment) + dict_len;
    if fcs_len == 0 {
        return Err(invalid(S, at, "zstd frame", "no content size"));
    }
    let mut fcs = [0u8; 8];
    read(fcs_at, &mut fcs[..fcs_len])?;
    let mut content = u64::from_le_bytes(fcs);
    if fcs_len == 2 {
        content += 256;
    }
    let mut pos = fcs_at + fcs_len as u64;
    loop {
        let mut b = [0u8; 3];
        read(pos, &mut b)?;
        let header = u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
        let last = header & 1 != 0;
        let stored = match (header >> 1) & 3 {
            1 => 1, // RLE: one byte repeated
            3 => return Err(invalid(S, pos, "zstd block", "reserved block type")),
            _ => u64::from(header >> 3),
        };
        pos += 3 + stored;
        if last {
            break;
        }
    }
    if fhd & 4 != 0 {
        pos += 4;
    }
    if pos > end {
        return Err(invalid(S, at, "zstd frame", "runs past its gap"));
    }
    Ok((pos - at, content))
}
