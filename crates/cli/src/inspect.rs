//! `rafs inspect`: the image as text or as stable JSON (schema in the README).

use crate::CliResult;
use rafs_format::model::{mode, Image, NodeId};
use serde::Serialize;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// The JSON document of `rafs inspect --json`.
#[derive(Serialize)]
pub struct Report {
    /// 5 or 6.
    pub fs_version: u8,
    /// Chunk size in bytes.
    pub chunk_size: u32,
    /// `none`, `lz4_block`, `gzip` or `zstd`.
    pub compressor: &'static str,
    /// `blake3` or `sha256`.
    pub digester: &'static str,
    /// Whether inodes carry real uid/gid.
    pub explicit_uid_gid: bool,
    /// v6 tarfs mode.
    pub tarfs: bool,
    /// Number of paths.
    pub inode_count: usize,
    /// Number of distinct inodes.
    pub unique_inodes: usize,
    /// The blob table.
    pub blobs: Vec<BlobReport>,
    /// Prefetch list, as paths.
    pub prefetch: Vec<String>,
    /// Every path, in depth-first order.
    pub inodes: Vec<InodeReport>,
}

/// One blob of the JSON report.
#[derive(Serialize)]
pub struct BlobReport {
    pub(crate) index: usize,
    pub(crate) blob_id: String,
    pub(crate) chunk_count: u32,
    pub(crate) compressed_size: u64,
    pub(crate) uncompressed_size: u64,
    pub(crate) features: u32,
    pub(crate) compressor: &'static str,
    pub(crate) digester: &'static str,
}

/// One path of the JSON report.
#[derive(Serialize)]
pub struct InodeReport {
    pub(crate) path: String,
    pub(crate) ino: u32,
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: u64,
    pub(crate) mtime_nsec: u32,
    pub(crate) size: u64,
    pub(crate) nlink: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rdev: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) symlink: Option<String>,
    /// name -> hex of the value.
    pub(crate) xattrs: BTreeMap<String, String>,
    pub(crate) chunks: Vec<rafs_format::model::ChunkInfo>,
}

/// Short type name of a mode.
pub fn kind(m: u32) -> &'static str {
    match m & mode::S_IFMT {
        mode::S_IFREG => "reg",
        mode::S_IFDIR => "dir",
        mode::S_IFLNK => "sym",
        mode::S_IFCHR => "chr",
        mode::S_IFBLK => "blk",
        mode::S_IFIFO => "fifo",
        mode::S_IFSOCK => "sock",
        _ => "unknown",
    }
}

/// Builds the report of an image.
pub fn report(image: &Image) -> Report {
    let tree = &image.tree;
    let io = tree.index_order();
    let inodes = tree
        .dfs_preorder()
        .into_iter()
        .map(|id: NodeId| {
            let i = tree.inode_of(id);
            InodeReport {
                path: tree.path(id),
                ino: io.ino[id.0 as usize],
                kind: kind(i.mode),
                mode: i.mode,
                uid: i.uid,
                gid: i.gid,
                mtime: i.mtime,
                mtime_nsec: i.mtime_nsec,
                size: i.size,
                nlink: i.nlink,
                rdev: i.is_special().then_some(i.rdev),
                symlink: i
                    .is_symlink()
                    .then(|| String::from_utf8_lossy(&i.symlink).into_owned()),
                xattrs: i
                    .xattrs
                    .iter()
                    .map(|x| {
                        (
                            String::from_utf8_lossy(&x.name).into_owned(),
                            rafs_format::hex(&x.value),
                        )
                    })
                    .collect(),
                chunks: i.chunks.clone(),
            }
        })
        .collect();
    let sb = &image.superblock;
    Report {
        fs_version: sb.fs_version.number(),
        chunk_size: sb.chunk_size,
        compressor: sb.compressor.name(),
        digester: sb.digester.name(),
        explicit_uid_gid: sb.explicit_uid_gid,
        tarfs: sb.tarfs,
        inode_count: tree.nodes.len(),
        unique_inodes: image.unique_inodes(),
        blobs: image
            .blobs
            .iter()
            .enumerate()
            .map(|(index, b)| BlobReport {
                index,
                blob_id: b.blob_id.clone(),
                chunk_count: b.chunk_count,
                compressed_size: b.compressed_size,
                uncompressed_size: b.uncompressed_size,
                features: b.features.bits(),
                compressor: b.compressor.name(),
                digester: b.digester.name(),
            })
            .collect(),
        prefetch: image.prefetch.iter().map(|id| tree.path(*id)).collect(),
        inodes,
    }
}

/// Runs `rafs inspect`.
pub fn run(path: &std::path::Path, json: bool) -> CliResult<ExitCode> {
    let image = crate::source::ImageFile::open(path)?.decode()?;
    let r = report(&image);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    use std::io::Write;
    if json {
        serde_json::to_writer_pretty(&mut out, &r).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        write_text(&mut out, &r)?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The report as text: a summary line, blobs, then one line per path with its chunks.
fn write_text(out: &mut impl std::io::Write, r: &Report) -> std::io::Result<()> {
    writeln!(
        out,
        "RAFS v{}  chunk size {:#x}  compressor {}  digester {}{}",
        r.fs_version,
        r.chunk_size,
        r.compressor,
        r.digester,
        if r.tarfs { "  tarfs" } else { "" }
    )?;
    writeln!(
        out,
        "{} paths, {} inodes, {} blobs",
        r.inode_count,
        r.unique_inodes,
        r.blobs.len()
    )?;
    for b in &r.blobs {
        writeln!(
            out,
            "blob {}: {} chunks {} compressed {} uncompressed {} features {:#x}",
            b.index, b.blob_id, b.chunk_count, b.compressed_size, b.uncompressed_size, b.features
        )?;
    }
    for i in &r.inodes {
        write_inode(out, i)?;
    }
    Ok(())
}

/// One path's line and its chunk lines.
fn write_inode(out: &mut impl std::io::Write, i: &InodeReport) -> std::io::Result<()> {
    write!(
        out,
        "{} {} {:04o} {}:{} mtime {}.{:09} size {} nlink {} ino {}",
        i.path,
        i.kind,
        i.mode & 0o7777,
        i.uid,
        i.gid,
        i.mtime,
        i.mtime_nsec,
        i.size,
        i.nlink,
        i.ino
    )?;
    if let Some(t) = &i.symlink {
        write!(out, " -> {t}")?;
    }
    if let Some(d) = i.rdev {
        write!(out, " rdev {d:#x}")?;
    }
    for (k, v) in &i.xattrs {
        write!(out, " {k}={v}")?;
    }
    writeln!(out)?;
    for c in &i.chunks {
        writeln!(
            out,
            "    chunk {} blob {} index {} file_offset {} compressed {}+{} uncompressed {}+{} flags {:#x} crc32 {:#010x}",
            rafs_format::hex(&c.digest),
            c.blob_index,
            c.index,
            c.file_offset,
            c.compressed_offset,
            c.compressed_size,
            c.uncompressed_offset,
            c.uncompressed_size,
            c.flags.bits(),
            c.crc32
        )?;
    }
    Ok(())
}
