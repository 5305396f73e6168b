//! `export --block`: one EROFS image holding the metadata and every blob's uncompressed data,
//! which the kernel mounts on its own (`mount -t erofs -o loop,ro`): the bootstrap, then each
//! blob in blob-cache layout (chunks at their uncompressed offsets) at the block address its
//! device slot maps it to.

use crate::error::{io, Error, Result};
use crate::read::ImageReader;
use rafs_format::model::{ChunkInfo, FsVersion, Image};
use std::collections::HashMap;
use std::io::Write;

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportReport {
    /// Size of the image.
    pub size: u64,
    /// Size of the bootstrap part.
    pub bootstrap_size: u64,
    /// Chunks copied.
    pub chunks: u64,
}

/// Writes the block image of `reader`'s image (converted to v6 if it is v5) to `out`.
pub fn export_block<W: Write>(reader: &ImageReader, out: W) -> Result<(W, ExportReport)> {
    let original = reader.image();
    let per_blob = stored_chunks(original);
    let (image, moved) = relaid(original, &per_blob);
    // The plan says where each blob's data goes: its device slot.
    let (bootstrap, plan) = rafs_format::v6::encode_with_plan(&image)?;
    let mut w = Padded {
        out,
        pos: 0,
        zeros: vec![0u8; 1 << 16],
    };
    w.write(&bootstrap)?;
    let mut report = ExportReport {
        bootstrap_size: bootstrap.len() as u64,
        ..Default::default()
    };
    for (i, slot) in plan.devices().iter().enumerate() {
        let block = plan.block_size();
        let start = u64::from(slot.mapped_blkaddr) * block;
        let end = start + u64::from(slot.blocks) * block;
        if start < w.pos {
            let reason = format!("blob {i} is mapped over earlier data");
            return Err(Error::Path {
                path: "/".into(),
                reason,
            });
        }
        w.pad_to(start)?;
        let blob = BlobPlace {
            index: i,
            start,
            end,
        };
        report.chunks += write_blob(reader, &image, &per_blob[i], &moved, blob, &mut w)?;
        w.pad_to(end)?;
    }
    // Whole blocks, so a loop device sees all of it.
    w.pad_to(w.pos.div_ceil(plan.block_size()) * plan.block_size())?;
    report.size = w.pos;
    Ok((w.out, report))
}

/// Each blob's stored chunks, once each, by their place in the uncompressed blob.
fn stored_chunks(image: &Image) -> Vec<Vec<ChunkInfo>> {
    let mut per_blob: Vec<Vec<ChunkInfo>> = vec![Vec::new(); image.blobs.len()];
    let mut seen = std::collections::HashSet::new();
    for inode in image.tree.inodes.iter().filter(|i| i.is_reg()) {
        for c in &inode.chunks {
            if (c.blob_index as usize) < per_blob.len()
                && seen.insert((c.blob_index, c.uncompressed_offset))
            {
                per_blob[c.blob_index as usize].push(*c);
            }
        }
    }
    for chunks in &mut per_blob {
        chunks.sort_by_key(|c| c.uncompressed_offset);
    }
    per_blob
}

/// Where chunks moved: (blob, old uncompressed offset) -> new offset.
type Moves = HashMap<(u32, u64), u64>;

/// The image to export, as v6. Its data may be laid out afresh, as it is self-contained:
/// chunks 4 KiB aligned in the order they had (v5 blobs pack them tightly, which EROFS block
/// addresses cannot express). tarfs data stays where it is in the tar.
fn relaid(original: &Image, per_blob: &[Vec<ChunkInfo>]) -> (Image, Moves) {
    let mut image: Image = original.clone();
    let mut moved = Moves::new();
    if !original.superblock.tarfs {
        for (i, chunks) in per_blob.iter().enumerate() {
            let mut next = 0u64;
            for c in chunks {
                // Blob indexes come from the image's blob table, at most 255 long.
                moved.insert((c.blob_index, c.uncompressed_offset), next);
                next += u64::from(c.uncompressed_size).div_ceil(4096) * 4096;
            }
            image.blobs[i].uncompressed_size = next;
        }
        for c in image
            .tree
            .inodes
            .iter_mut()
            .flat_map(|i| i.chunks.iter_mut())
        {
            if let Some(&n) = moved.get(&(c.blob_index, c.uncompressed_offset)) {
                c.uncompressed_offset = n;
            }
        }
        image.v6_chunk_table = None;
    }
    if image.superblock.fs_version != FsVersion::V6 {
        image = image.converted_to(FsVersion::V6);
    }
    (image, moved)
}

/// The output with its position, padded with zeros up to where data goes.
struct Padded<W> {
    out: W,
    pos: u64,
    zeros: Vec<u8>,
}

impl<W: Write> Padded<W> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(io("writing the image"))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn pad_to(&mut self, to: u64) -> Result<()> {
        while self.pos < to {
            let n = usize::try_from(to - self.pos)
                .map_or(self.zeros.len(), |n| n.min(self.zeros.len()));
            self.out
                .write_all(&self.zeros[..n])
                .map_err(io("writing the image"))?;
            self.pos += n as u64;
        }
        Ok(())
    }
}

/// A blob's place in the image: its index and byte range.
#[derive(Clone, Copy)]
struct BlobPlace {
    index: usize,
    start: u64,
    end: u64,
}

/// One blob's chunks, read and verified, at their places; returns how many were written.
fn write_blob<W: Write>(
    reader: &ImageReader,
    image: &Image,
    chunks: &[ChunkInfo],
    moved: &Moves,
    place: BlobPlace,
    w: &mut Padded<W>,
) -> Result<u64> {
    let blob = &image.blobs[place.index];
    let blob_reader = reader
        .blob_reader(place.index)
        .ok_or_else(|| Error::BlobMissing {
            blob_id: blob.blob_id.clone(),
            reason: "export needs every blob".into(),
        })?;
    for c in chunks {
        let data = blob_reader
            .read_chunk(c, blob.compressor, rafs_chunker::Verify::default())
            .map_err(|e| Error::Data {
                path: format!("blob {} chunk {}", blob.blob_id, c.index),
                source: e,
            })?;
        let off = if image.superblock.tarfs {
            c.uncompressed_offset
        } else {
            moved[&(c.blob_index, c.uncompressed_offset)]
        };
        let at = place.start + off;
        if at < w.pos || at + data.len() as u64 > place.end {
            let reason = format!(
                "chunk {} overlaps another or lies outside its blob",
                c.index
            );
            return Err(Error::Path {
                path: format!("blob {}", blob.blob_id),
                reason,
            });
        }
        w.pad_to(at)?;
        w.write(&data)?;
    }
    Ok(chunks.len() as u64)
}
