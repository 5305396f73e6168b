//! `export --block`: one EROFS image holding the metadata and every blob's uncompressed data,
//! which the kernel mounts on its own (`mount -t erofs -o loop,ro`): the bootstrap, then each
//! blob in blob-cache layout (chunks at their uncompressed offsets) at the block address its
//! device slot maps it to.

use crate::error::{io, Error, Result};
use crate::read::ImageReader;
use rafs_format::model::{FsVersion, Image};
use rafs_format::ondisk::v6::{DeviceSlot, SuperBlock};
use std::io::Write;
use zerocopy::FromBytes;

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
    let image: Image = if reader.image().superblock.fs_version == FsVersion::V6 {
        reader.image().clone()
    } else {
        reader.image().converted_to(FsVersion::V6)
    };
    let bootstrap = rafs_format::encode(&image)?;
    let sb = SuperBlock::read_from_prefix(&bootstrap[1024..])
        .map(|(s, _)| s)
        .map_err(|_| Error::Path {
            path: "/".into(),
            reason: "encoded bootstrap has no superblock".into(),
        })?;
    let block = 1u64 << sb.s_blkszbits;
    let slot_at = usize::from(sb.s_devt_slotoff.get()) * 128;
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
    for (i, _) in image.blobs.iter().enumerate() {
        let at = slot_at + i * 128;
        let slot = bootstrap
            .get(at..at + 128)
            .and_then(|b| DeviceSlot::read_from_bytes(b).ok())
            .ok_or_else(|| Error::Path {
                path: "/".into(),
                reason: format!("no device slot for blob {i}"),
            })?;
        let start = u64::from(slot.mapped_blkaddr.get()) * block;
        let end = start + u64::from(slot.blocks.get()) * block;
        if start < pos {
            return Err(Error::Path {
                path: "/".into(),
                reason: format!("blob {i} is mapped over earlier data"),
            });
        }
        pad(&mut out, &mut pos, start)?;
        // Each stored chunk once, by uncompressed offset.
        let mut chunks: Vec<(u64, rafs_format::model::NodeId, usize)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for n in 0..image.tree.nodes.len() {
            let node = rafs_format::model::NodeId(n as u32);
            let inode = image.tree.inode_of(node);
            if !inode.is_reg() {
                continue;
            }
            for (k, c) in inode.chunks.iter().enumerate() {
                if c.blob_index as usize == i && seen.insert(c.uncompressed_offset) {
                    chunks.push((c.uncompressed_offset, node, k));
                }
            }
        }
        chunks.sort();
        let blob = &image.blobs[i];
        let blob_reader = reader.blob_reader(i).ok_or_else(|| Error::BlobMissing {
            blob_id: blob.blob_id.clone(),
            reason: "export needs every blob".into(),
        })?;
        for (off, node, k) in chunks {
            let c = &image.tree.inode_of(node).chunks[k];
            let data = blob_reader
                .read_chunk(c, blob.compressor, rafs_chunker::Verify::default())
                .map_err(|e| Error::Data {
                    path: image.tree.path(node),
                    source: e,
                })?;
            let at = start + off;
            if at < pos || at + data.len() as u64 > end {
                return Err(Error::Path {
                    path: image.tree.path(node),
                    reason: "chunk overlaps another or lies outside its blob".into(),
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
