//! The filesystem a source image's layers make when stacked as overlayfs and containerd's
//! unpack stack them: OCI whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`) hide what
//! lower layers hold; a later entry replaces an earlier one at the same path. Each layer is
//! read as the conversion reads it (one reading, one meaning: `rafs_tar_build::layer_entries`),
//! within the same budgets; the stacking and the file digests are this module's own, and
//! independent of the RAFS builder.

use crate::error::{json, Result};
use crate::fs_rule::Attrs;
use crate::layout::Layout;
use crate::limits::ImageLimits;
use rafs_tar_build::layer_entries::{EntryKind, LayerEntry};
use serde_json::Value;
use sha2::Digest as _;
use std::collections::BTreeMap;
use std::io::Read;

/// The listing kind of a mode.
pub(crate) fn kind_of_mode(mode: u32) -> &'static str {
    match mode & 0o170000 {
        0o040000 => "dir",
        0o100000 => "reg",
        0o120000 => "sym",
        0o020000 => "chr",
        0o060000 => "blk",
        0o010000 => "fifo",
        _ => "other",
    }
}

/// Every path below the root of the overlay of `layers` (lowest first), within `limits`.
pub(crate) fn overlay_listing(
    layout: &Layout,
    layers: &[Value],
    limits: &ImageLimits,
) -> Result<BTreeMap<Vec<u8>, Attrs>> {
    limits.check_layers(layers.len(), "the source manifest")?;
    let mut fs: BTreeMap<Vec<u8>, Attrs> = BTreeMap::new();
    fs.insert(b"/".to_vec(), made_dir(0o755));
    let mut image_bytes = 0u64;
    let mut inodes = Inodes::default();
    for layer in layers {
        let digest = layer["digest"].as_str().unwrap_or_default();
        let size = layer["size"].as_u64().unwrap_or(0);
        let stream = rafs_tar_build::decompress_layer(layout.open_blob(digest, size)?)
            .map_err(|e| json(format!("layer {digest}"), e))?;
        apply_layer(&mut fs, &mut inodes, stream, limits, &mut image_bytes)
            .map_err(|e| json(format!("layer {digest}"), e))?;
    }
    Ok(fs)
}

/// Removes `path` and everything below it.
fn remove_tree(fs: &mut BTreeMap<Vec<u8>, Attrs>, path: &[u8]) {
    fs.remove(path);
    remove_below(fs, path);
}

/// Removes everything below `path` (an opaque directory keeps itself).
fn remove_below(fs: &mut BTreeMap<Vec<u8>, Attrs>, path: &[u8]) {
    let prefix = [path, b"/"].concat();
    let below: Vec<Vec<u8>> = fs
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for k in below {
        fs.remove(&k);
    }
}

/// What one entry does to the layer: hide lower paths, or land (a hard link as its target).
enum Change {
    /// The root's own entry (compared by the filesystem rule separately).
    Root,
    Hide(Vec<u8>, bool),
    Land(Vec<u8>, Attrs),
    /// A hard link: its path, its target, and the owner and xattrs its header sets on the
    /// shared inode.
    Link(Vec<u8>, Vec<u8>, LayerEntry),
}

/// Which paths name one inode (hard links), so that a link's owner and xattrs reach every
/// name of the inode, as they do on disk. Entries of removed paths go stale and are checked
/// against `of` before use.
#[derive(Default)]
struct Inodes {
    of: std::collections::HashMap<Vec<u8>, u64>,
    names: std::collections::HashMap<u64, Vec<Vec<u8>>>,
    next: u64,
}

impl Inodes {
    /// A new inode for `path`.
    fn fresh(&mut self, path: &[u8]) {
        self.next += 1;
        self.of.insert(path.to_vec(), self.next);
    }

    /// `path` becomes another name of `target`'s inode; returns the inode's live names.
    fn link(&mut self, path: &[u8], target: &[u8]) -> Vec<Vec<u8>> {
        let id = match self.of.get(target) {
            Some(&id) => id,
            None => {
                self.fresh(target);
                self.next
            }
        };
        let names = self
            .names
            .entry(id)
            .or_insert_with(|| vec![target.to_vec()]);
        names.push(path.to_vec());
        self.of.insert(path.to_vec(), id);
        let of = &self.of;
        names.retain(|p| of.get(p) == Some(&id));
        names.clone()
    }
}

/// One layer, read as the conversion reads it ([`rafs_tar_build::layer_entries`]):
/// whiteouts and opaque markers hide lower paths first, then its entries land in order, a
/// hard link taking its target as it is when the link is reached.
fn apply_layer(
    fs: &mut BTreeMap<Vec<u8>, Attrs>,
    inodes: &mut Inodes,
    stream: impl Read,
    limits: &ImageLimits,
    image_bytes: &mut u64,
) -> std::result::Result<(), String> {
    let mut changes = Vec::new();
    let mut spent = Ok(());
    rafs_tar_build::layer_entries::for_each_entry(stream, &limits.layer, |e, data| {
        *image_bytes = image_bytes.saturating_add(e.size);
        if *image_bytes > limits.max_image_bytes && spent.is_ok() {
            spent = Err(format!(
                "the image's files exceed max_image_bytes ({} bytes)",
                limits.max_image_bytes
            ));
            return Err(std::io::Error::other("over budget"));
        }
        changes.push(change_of(e, data)?);
        Ok(())
    })
    .map_err(|e| spent.clone().err().unwrap_or_else(|| e.to_string()))?;
    let (hides, lands): (Vec<Change>, Vec<Change>) = changes
        .into_iter()
        .partition(|c| matches!(c, Change::Hide(..)));
    for c in hides {
        if let Change::Hide(path, opaque) = c {
            // The applier makes a marker's missing parents before it reads the marker.
            if opaque {
                make_parents(fs, &[path.as_slice(), b"/"].concat());
                remove_below(fs, &path);
            } else {
                make_parents(fs, &path);
                remove_tree(fs, &path);
            }
        }
    }
    for c in lands {
        match c {
            Change::Land(path, attrs) => {
                land(fs, &path, attrs);
                inodes.fresh(&path);
            }
            Change::Link(path, target, e) => {
                // As the applier: link(2) to what the target is now, then the link header's
                // owner and xattrs on the shared inode (its mode stays).
                let Some(mut attrs) = fs.get(&target).cloned() else {
                    continue;
                };
                attrs.uid = e.uid;
                attrs.gid = e.gid;
                attrs.xattrs.extend(e.xattrs.iter().cloned());
                land(fs, &path, attrs.clone());
                for name in inodes.link(&path, &target) {
                    if let Some(a) = fs.get_mut(&name) {
                        *a = attrs.clone();
                    }
                }
            }
            Change::Root | Change::Hide(..) => {}
        }
    }
    Ok(())
}

/// Puts `attrs` at `path`: what was there goes, unless both are directories (merged).
fn land(fs: &mut BTreeMap<Vec<u8>, Attrs>, path: &[u8], attrs: Attrs) {
    if attrs.kind != "dir" || fs.get(path).is_some_and(|old| old.kind != "dir") {
        remove_tree(fs, path);
    }
    make_parents(fs, path);
    fs.insert(path.to_vec(), attrs);
}

/// A directory containerd makes itself, owned by root: the root of the snapshot (0755),
/// or a parent a layer left out and nothing below provides (`mkdirAll(parent, 0700)`).
fn made_dir(perm: u32) -> Attrs {
    Attrs {
        kind: "dir",
        mode: perm,
        uid: 0,
        gid: 0,
        size: 0,
        rdev: 0,
        link: Vec::new(),
        xattrs: BTreeMap::new(),
        sha256: String::new(),
    }
}

/// Creates the missing parents of `path` as containerd's applier does.
fn make_parents(fs: &mut BTreeMap<Vec<u8>, Attrs>, path: &[u8]) {
    let mut end = 1;
    while let Some(p) = path[end..].iter().position(|&b| b == b'/') {
        end += p;
        fs.entry(path[..end].to_vec())
            .or_insert_with(|| made_dir(0o700));
        end += 1;
    }
}

/// The change one entry makes.
fn change_of(e: &LayerEntry, data: &mut dyn Read) -> std::io::Result<Change> {
    if e.path.is_empty() {
        return Ok(Change::Root);
    }
    let (dir, name) = match e.path.iter().rposition(|b| *b == b'/') {
        Some(p) => (e.path[..p].to_vec(), e.path[p + 1..].to_vec()),
        None => (Vec::new(), e.path.clone()),
    };
    if name == b".wh..wh..opq" {
        return Ok(Change::Hide(dir, true));
    }
    if let Some(target) = name.strip_prefix(b".wh.") {
        return Ok(Change::Hide([dir.as_slice(), b"/", target].concat(), false));
    }
    if e.kind == EntryKind::HardLink {
        return Ok(Change::Link(e.path.clone(), e.link.clone(), e.clone()));
    }
    Ok(Change::Land(e.path.clone(), attrs_of(e, data)?))
}

/// An entry's attributes, its data read for its digest.
fn attrs_of(e: &LayerEntry, data: &mut dyn Read) -> std::io::Result<Attrs> {
    let kind = kind_of_mode(e.mode);
    // Streamed through the digest: memory does not grow with the file.
    let (size, sha256) = if e.kind == EntryKind::Regular {
        stream_digest(data)?
    } else {
        (0, String::new())
    };
    let link = if e.kind == EntryKind::Symlink {
        e.link.clone()
    } else {
        Vec::new()
    };
    Ok(Attrs {
        kind,
        mode: e.mode & 0o7777,
        uid: e.uid,
        gid: e.gid,
        size,
        rdev: e.rdev,
        link,
        xattrs: e.xattrs.iter().cloned().collect(),
        sha256,
    })
}

/// Size and `sha256:` digest of everything `r` yields.
pub(crate) fn stream_digest(mut r: impl Read) -> std::io::Result<(u64, String)> {
    let mut hash = sha2::Sha256::new();
    let size = std::io::copy(&mut r, &mut hash)?;
    Ok((
        size,
        format!("sha256:{}", rafs_format::hex(&sha2::Digest::finalize(hash))),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8])], header: fn() -> tar::Header) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = header();
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn file_headers_with_blank_device_fields_are_read() {
        // Builders leave the device fields of files blank: only devices may need them.
        let layer = tar_of(
            &[("a/f", tar::EntryType::Regular, b"abc")],
            tar::Header::new_old,
        );
        let mut fs = BTreeMap::new();
        apply_layer(
            &mut fs,
            &mut Inodes::default(),
            layer.as_slice(),
            &ImageLimits::default(),
            &mut 0,
        )
        .unwrap();
        assert_eq!(fs[b"/a/f".as_slice()].size, 3);
        assert_eq!(fs[b"/a/f".as_slice()].sha256, digest_of_bytes(b"abc"));
    }

    #[test]
    fn whiteouts_and_opaque_markers_hide_only_lower_layers() {
        let dir = tar::EntryType::Directory;
        let reg = tar::EntryType::Regular;
        let lower = tar_of(
            &[
                ("d/", dir, b""),
                ("d/x", reg, b"1"),
                ("e/", dir, b""),
                ("e/y", reg, b"2"),
            ],
            tar::Header::new_gnu,
        );
        let upper = tar_of(
            &[
                ("d/.wh..wh..opq", reg, b""),
                ("d/z", reg, b"3"),
                (".wh.e", reg, b""),
            ],
            tar::Header::new_gnu,
        );
        let mut fs = BTreeMap::new();
        apply_layer(
            &mut fs,
            &mut Inodes::default(),
            lower.as_slice(),
            &ImageLimits::default(),
            &mut 0,
        )
        .unwrap();
        apply_layer(
            &mut fs,
            &mut Inodes::default(),
            upper.as_slice(),
            &ImageLimits::default(),
            &mut 0,
        )
        .unwrap();
        let paths: Vec<&[u8]> = fs.keys().map(Vec::as_slice).collect();
        assert_eq!(paths, [b"/d".as_slice(), b"/d/z"]);
    }

    fn digest_of_bytes(b: &[u8]) -> String {
        crate::layout::digest_of(b)
    }
}
