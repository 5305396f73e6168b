//! What an entry's header means: its kind, its attributes, its device number, and the names
//! that are not files. One home for these rules, so the conversion and every other reader of
//! layers ([`crate::layer_entries`], which check-image uses) mean the same thing by a tar.

use crate::entry::{full_mode, makedev, normalise, Kind, Pax, MAX_SYMLINK};
use crate::error::EntryErrorKind as K;
use crate::reader::Entry;
use crate::tree::NameAttrs;
use rafs_format::model::{FsVersion, NON_DEVICE_RDEV};
use std::io;

/// Paths the reference always drops (eStargz bookkeeping), at the root only.
pub(crate) const DROPPED: [&[u8]; 3] = [
    b"stargz.index.json",
    b".prefetch.landmark",
    b".no.prefetch.landmark",
];

/// The entry's type (and link target), checked against what the version can store.
pub(crate) fn entry_kind(entry: &Entry, version: FsVersion) -> std::result::Result<Kind, K> {
    let bad_link = |reason: String| K::BadField {
        field: "link name",
        reason,
    };
    Ok(match entry.header.entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            Kind::Regular
        }
        tar::EntryType::Directory => Kind::Directory,
        tar::EntryType::Symlink => {
            let target = entry.link.clone();
            rafs_format::rules::check_symlink_target(&target)
                .map_err(|r| bad_link(format!("symlink target {r}")))?;
            let max = rafs_format::rules::max_symlink_len(version)
                .min(MAX_SYMLINK)
                .min(rafs_format::rules::MAX_EXTRACTABLE_SYMLINK);
            if target.len() > max {
                return Err(bad_link(format!(
                    "symlink target of {} bytes; at most {max} can be stored in v{} and created",
                    target.len(),
                    version.number()
                )));
            }
            Kind::Symlink(target)
        }
        tar::EntryType::Link => Kind::HardLink(normalise(&entry.link)?),
        tar::EntryType::Char => Kind::Char,
        tar::EntryType::Block => Kind::Block,
        tar::EntryType::Fifo => Kind::Fifo,
        other => return Err(K::UnsupportedType(other.as_byte() as char)),
    })
}

/// Mode, owner and time of the entry's name.
pub(crate) fn name_attrs(
    entry: &Entry,
    pax: &Pax<'_>,
    kind: &Kind,
    repeatable: bool,
) -> std::result::Result<NameAttrs, K> {
    let header = &entry.header;
    let perm = header.mode().map_err(|e| K::BadField {
        field: "mode",
        reason: e.to_string(),
    })?;
    // The tar crate has not applied PAX uid/gid (local or global): ours to apply.
    let id = |v: io::Result<u64>, pax_key: &'static str| -> std::result::Result<u32, K> {
        let v = match pax
            .get(pax_key)
            .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok())
        {
            Some(g) => g,
            None => v.unwrap_or(0),
        };
        u32::try_from(v).map_err(|_| K::BadField {
            field: pax_key,
            reason: format!("{v} exceeds 2^32-1"),
        })
    };
    let (uid, gid) = if repeatable {
        (0, 0)
    } else {
        (id(header.uid(), "uid")?, id(header.gid(), "gid")?)
    };
    let (mtime, mtime_nsec) = match pax.mtime()? {
        Some(t) => t,
        None => (header.mtime().unwrap_or(0), 0),
    };
    Ok(NameAttrs {
        mode: full_mode(perm, kind),
        uid,
        gid,
        mtime,
        mtime_nsec,
    })
}

/// The device number of a device or FIFO; the tar builder's marker for anything else.
pub(crate) fn device_number(header: &tar::Header, kind: &Kind) -> std::result::Result<u32, K> {
    if !matches!(kind, Kind::Char | Kind::Block | Kind::Fifo) {
        return Ok(NON_DEVICE_RDEV);
    }
    match (header.device_major(), header.device_minor()) {
        (Ok(Some(ma)), Ok(Some(mi))) => Ok(makedev(ma.into(), mi.into())),
        // GNU tar and CPython write NUL-filled device fields for FIFOs.
        _ if *kind == Kind::Fifo => Ok(0),
        _ => Err(K::BadField {
            field: "device number",
            reason: "missing or not octal".into(),
        }),
    }
}
