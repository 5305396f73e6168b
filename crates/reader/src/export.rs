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
pub fn export_block<W: Write>(reader: &ImageReader, mut out: W) -> Result<(W, ExportReport)> {
    let original = reader.image();
    let tarfs = original.superblock.tarfs;
    // Each blob's stored chunks, once each, by their place in the uncompressed blob.
    let mut per_blob: Vec<Vec<ChunkInfo>> = vec![Vec::new(); original.blobs.len()];
    let mut seen = std::collections::HashSet::new();
    for inode in &original.tree.inodes {
        if inode.is_reg() {
            for c in &inode.chunks {
                if (c.blob_index as usize) < per_blob.len()
                    && seen.insert((c.blob_index, c.uncompressed_offset))
                {
                    per_blob[c.blob_index as usize].push(*c);
                }
            }
        }
    }
    for chunks in &mut per_blob {
        chunks.sort_by_key(|c| c.uncompressed_offset);
    }
    // The exported image is self-contained, so its data may be laid out afresh: chunks
    // 4 KiB aligned in the order they had (v5 blobs pack them tightly, which EROFS block
    // addresses cannot express). tarfs data stays where it is in the tar.
    let mut image: Image = original.clone();
    let mut moved: HashMap<(u32, u64), u64> = HashMap::new();
    if !tarfs {
        for (i, chunks) in per_blob.iter().enumerate() {
            let mut next = 0u64;
            for c in chunks {
                moved.insert((i as u32, c.uncompressed_offset), next);
                next += u64::from(c.uncompressed_size).div_ceil(4096) * 4096;
            }
            image.blobs[i].uncompressed_size = next;
        }
        for inode in &mut image.tree.inodes {
            for c in &mut inode.chunks {
                if let Some(&n) = moved.get(&(c.blob_index, c.uncompressed_offset)) {
                    c.uncompressed_offset = n;
                }
            }
        }
        image.v6_chunk_table = None;
    }
    if image.superblock.fs_version != FsVersion::V6 {
        image = image.converted_to(FsVersion::V6);
    }
    // The plan says where each blob's data goes: its device slot.
    let (bootstrap, plan) = rafs_format::v6::encode_with_plan(&image)?;
    let block = plan.block_size();
    let mut report = ExportReport {
        bootstrap_size: bootstrap.len() as u64,
        ..Default::default()
    };
    out.write_all(&bootstrap).map_err(io("writing the image"))?;
    let mut pos = bootstrap.len() as u64;
    let zeros = vec![0u8; 1 << 16];
    let pad = |out: &mut W, pos: &mut u64, to: u64| -> Result<()> {
        while *pos < to {
            let n = (to - *pos).min(zeros.len() as u64) as usize;
            out.write_all(&zeros[..n])
                .map_err(io("writing the image"))?;
            *pos += n as u64;
        }
        Ok(())
    };
    for (i, slot) in plan.devices().iter().enumerate() {
        let start = u64::from(slot.mapped_blkaddr) * block;
        let end = start + u64::from(slot.blocks) * block;
        if start < pos {
            return Err(Error::Path {
                path: "/".into(),
                reason: format!("blob {i} is mapped over earlier data"),
            });
        }
        pad(&mut out, &mut pos, start)?;
        let blob = &image.blobs[i];
        let blob_reader = reader.blob_reader(i).ok_or_else(|| Error::BlobMissing {
            blob_id: blob.blob_id.clone(),
            reason: "export needs every blob".into(),
        })?;
        for c in &per_blob[i] {
            let data = blob_reader
                .read_chunk(c, blob.compressor, rafs_chunker::Verify::default())
                .map_err(|e| Error::Data {
                    path: format!("blob {} chunk {}", blob.blob_id, c.index),
                    source: e,
                })?;
            let off = if tarfs {
                c.uncompressed_offset
            } else {
                moved[&(i as u32, c.uncompressed_offset)]
            };
            let at = start + off;
            if at < pos || at + data.len() as u64 > end {
                return Err(Error::Path {
                    path: format!("blob {}", blob.blob_id),
                    reason: format!(
                        "chunk {} overlaps another or lies outside its blob",
                        c.index
                    ),
                });
            }
            pad(&mut out, &mut pos, at)?;
            out.write_all(&data).map_err(io("writing the image"))?;
            pos += data.len() as u64;
            report.chunks += 1;
        }
        pad(&mut out, &mut pos, end)?;
    }
    // Whole blocks, so a loop device sees all of it.
    let rounded = pos.div_ceil(block) * block;
    pad(&mut out, &mut pos, rounded)?;
    report.size = pos;
    Ok((out, report))
}
