//! A layer's entries as the conversion reads them, for other readers of layers: check-image
//! compares a converted image with what its source layers mean, and must not mean something
//! else by the same tar. The stream reader, the header meaning (`meaning.rs`), the
//! sparse-file rules and the per-layer budgets are the conversion's own; what this module
//! adds is only the walk. Like containerd's unpack: the archive ends at Go's end marker,
//! global PAX headers are skipped, PAX records are read by their length prefix (a binary
//! xattr value may hold a newline).

use crate::build::{stream_error, tar_error};
use crate::entry::{Kind, Pax};
use crate::error::{EntryError, EntryErrorKind as K, Error, Result};
use crate::limits::{Budget, BuildLimits};
use crate::meaning::{device_number, entry_kind, name_attrs, DROPPED};
use crate::reader::{Entry, TarStream};
use crate::sparse::{check_segments, pax_sparse, SparseMap, SparseReader};
use rafs_format::model::FsVersion;
use std::io::Read;

/// The kind of file an entry makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// Another name for an earlier entry's file.
    HardLink,
    /// A character device.
    Char,
    /// A block device.
    Block,
    /// A FIFO.
    Fifo,
}

/// One entry of a layer, as the conversion takes it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LayerEntry {
    /// `/a/b`: the path as containerd resolves it (empty and `.` components dropped).
    pub path: Vec<u8>,
    /// What it is.
    pub kind: EntryKind,
    /// Full mode: file type and permission bits.
    pub mode: u32,
    /// Owner (PAX `uid` applied).
    pub uid: u32,
    /// Group (PAX `gid` applied).
    pub gid: u32,
    /// Device number (devices only; 0 otherwise).
    pub rdev: u32,
    /// A symlink's target, or a hard link's target path (`/a/b`).
    pub link: Vec<u8>,
    /// Extended attributes, by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// A regular file's size (a sparse file's real size, holes included).
    pub size: u64,
}

/// Chunk size the chunk budget is counted in (the conversion's default).
const BUDGET_CHUNK: u64 = 1 << 20;

/// Calls `visit` with every entry of the (decompressed) layer `tar` and, for a regular file,
/// a reader of its `size` bytes (holes of a sparse file read as zeros); within `limits`, which
/// trip as the conversion's do. Entries the conversion drops (eStargz bookkeeping at the
/// root) are not visited.
pub fn for_each_entry<R: Read>(
    tar: R,
    limits: &BuildLimits,
    mut visit: impl FnMut(&LayerEntry, &mut dyn Read) -> std::io::Result<()>,
) -> Result<()> {
    let mut stream = TarStream::new(tar);
    let mut budget = Budget::new(*limits);
    let mut index = 0u64;
    loop {
        let entry = stream
            .next_entry()
            .map_err(|e| stream_error(e, stream.position()))?;
        let Some(entry) = entry else {
            return Ok(());
        };
        let at = index;
        let fail = |kind: K| {
            Error::Entry(Box::new(EntryError {
                index: at,
                path: rafs_format::rules::escape_bytes(&entry.path),
                offset: entry.header_pos,
                kind,
            }))
        };
        index += 1;
        if entry.header.entry_type().is_pax_global_extensions() {
            check_global(&mut stream, &entry, limits).map_err(|e| match e {
                Global::Kind(k) => fail(k),
                Global::Io(e) => tar_error(e, entry.data_pos),
            })?;
            continue;
        }
        let Some(meant) = meaning_of(&entry, &mut budget).map_err(fail)? else {
            continue;
        };
        let io = |e: std::io::Error| tar_error(e, entry.data_pos);
        if meant.kind != EntryKind::Regular {
            visit(&meant, &mut std::io::empty()).map_err(io)?;
            continue;
        }
        let sparse = pax_sparse(&entry.pax).map_err(fail)?;
        let stored = entry.stored;
        let mut data: Box<dyn Read + '_> = match (sparse, entry.sparse.clone()) {
            (Some(s), _) => match s.map {
                SparseMap::InData => {
                    Box::new(SparseReader::new(&mut stream, stored, s.real).map_err(fail)?)
                }
                SparseMap::Segments(seg) => {
                    check_segments(&seg, s.real, stored).map_err(fail)?;
                    Box::new(SparseReader::from_segments(&mut stream, seg, s.real))
                }
            },
            (None, Some((seg, real))) => {
                Box::new(SparseReader::from_segments(&mut stream, seg, real))
            }
            (None, None) => Box::new(&mut stream),
        };
        visit(&meant, &mut data).map_err(io)?;
    }
}

/// Why a global header is refused.
enum Global {
    Kind(K),
    Io(std::io::Error),
}

/// A global header is read within its budget and must parse; it is then skipped.
fn check_global<R: Read>(
    stream: &mut TarStream<R>,
    entry: &Entry,
    limits: &BuildLimits,
) -> std::result::Result<(), Global> {
    let max = limits.max_global_pax_bytes;
    if entry.stored > max {
        return Err(Global::Kind(K::LimitExceeded {
            limit: "max_global_pax_bytes",
            value: entry.stored,
            max,
        }));
    }
    let mut data = Vec::new();
    stream
        .take(entry.stored)
        .read_to_end(&mut data)
        .map_err(Global::Io)?;
    crate::reader::parse_pax(&data).map_err(|reason| {
        Global::Kind(K::BadField {
            field: "PAX global header",
            reason,
        })
    })?;
    Ok(())
}

/// What an entry means, its budgets spent; `None` for a name the conversion drops.
fn meaning_of(entry: &Entry, budget: &mut Budget) -> std::result::Result<Option<LayerEntry>, K> {
    let pax = Pax::new(&entry.pax);
    let sparse = pax_sparse(&entry.pax)?;
    let name = sparse
        .as_ref()
        .and_then(|s| s.name.as_deref())
        .unwrap_or(&entry.path);
    let components = crate::entry::normalise(name)?;
    if components.len() == 1 && DROPPED.contains(&components[0].as_slice()) {
        return Ok(None);
    }
    // The largest symlink any version stores: this reader does not build an image.
    let kind = entry_kind(entry, FsVersion::V6)?;
    let attrs = name_attrs(entry, &pax, &kind, false)?;
    let rdev = device_number(&entry.header, &kind)?;
    let xattrs = pax.xattrs()?;
    budget.entry()?;
    budget.xattrs(&xattrs)?;
    let size = match (&kind, &sparse, &entry.sparse) {
        (Kind::Regular, Some(s), _) => s.real,
        (Kind::Regular, None, Some((_, real))) => *real,
        (Kind::Regular, None, None) => entry.stored,
        _ => 0,
    };
    if sparse.is_some() || entry.sparse.is_some() {
        budget.sparse(size)?;
    }
    if kind == Kind::Regular {
        budget.file(size, BUDGET_CHUNK)?;
    }
    let path = components.iter().fold(Vec::new(), |mut p, c| {
        p.push(b'/');
        p.extend_from_slice(c);
        p
    });
    let (kind, link) = match kind {
        Kind::Regular => (EntryKind::Regular, Vec::new()),
        Kind::Directory => (EntryKind::Directory, Vec::new()),
        Kind::Symlink(target) => (EntryKind::Symlink, target),
        Kind::HardLink(target) => (
            EntryKind::HardLink,
            target.iter().fold(Vec::new(), |mut p, c| {
                p.push(b'/');
                p.extend_from_slice(c);
                p
            }),
        ),
        Kind::Char => (EntryKind::Char, Vec::new()),
        Kind::Block => (EntryKind::Block, Vec::new()),
        Kind::Fifo => (EntryKind::Fifo, Vec::new()),
    };
    Ok(Some(LayerEntry {
        path,
        kind,
        mode: attrs.mode,
        uid: attrs.uid,
        gid: attrs.gid,
        rdev: if matches!(kind, EntryKind::Char | EntryKind::Block) {
            rdev
        } else {
            0
        },
        link,
        xattrs: xattrs.into_iter().map(|x| (x.name, x.value)).collect(),
        size,
    }))
}
