//! The filesystem a source image's layers make when stacked as overlayfs and containerd's
//! unpack stack them: OCI whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`) hide what
//! lower layers hold; a later entry replaces an earlier one at the same path. Read straight
//! from the layer tars with the `tar` crate, independently of the RAFS builder.

use crate::check::Attrs;
use crate::error::{json, Result};
use crate::layout::Layout;
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

/// Every path below the root of the overlay of `layers` (lowest first).
pub(crate) fn overlay_listing(
    layout: &Layout,
    layers: &[Value],
) -> Result<BTreeMap<Vec<u8>, Attrs>> {
    let mut fs: BTreeMap<Vec<u8>, Attrs> = BTreeMap::new();
    for layer in layers {
        let digest = layer["digest"].as_str().unwrap_or_default();
        let size = layer["size"].as_u64().unwrap_or(0);
        let stream = rafs_tar_build::decompress_layer(layout.open_blob(digest, size)?)
            .map_err(|e| json(format!("layer {digest}"), e))?;
        apply_layer(&mut fs, stream).map_err(|e| json(format!("layer {digest}"), e))?;
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

/// `/a/b` from a tar name (`./a/b/`, `a/b`).
fn normalise(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in name.split(|b| *b == b'/') {
        if part.is_empty() || part == b"." {
            continue;
        }
        out.push(b'/');
        out.extend_from_slice(part);
    }
    out
}

/// One layer: whiteouts and opaque markers hide lower paths first, then its entries land.
fn apply_layer(fs: &mut BTreeMap<Vec<u8>, Attrs>, stream: impl Read) -> std::io::Result<()> {
    let mut archive = tar::Archive::new(stream);
    let mut entries: Vec<(Vec<u8>, Option<Attrs>)> = Vec::new();
    let mut hidden: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut links: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = normalise(&entry.path_bytes());
        let (dir, name) = match path.iter().rposition(|b| *b == b'/') {
            Some(p) => (path[..p].to_vec(), path[p + 1..].to_vec()),
            None => continue,
        };
        if name == b".wh..wh..opq" {
            hidden.push((dir, true));
            continue;
        }
        if let Some(target) = name.strip_prefix(b".wh.") {
            hidden.push(([dir.as_slice(), b"/", target].concat(), false));
            continue;
        }
        if path.is_empty() {
            continue;
        }
        if entry.header().entry_type() == tar::EntryType::Link {
            let target = normalise(&entry.link_name_bytes().unwrap_or_default());
            links.push((path.clone(), target));
            entries.push((path, None));
            continue;
        }
        let attrs = attrs_of(&mut entry)?;
        entries.push((path, Some(attrs)));
    }
    for (path, opaque) in hidden {
        if opaque {
            remove_below(fs, &path);
        } else {
            remove_tree(fs, &path);
        }
    }
    let mut links = links.into_iter();
    for (path, attrs) in entries {
        let attrs = match attrs {
            Some(a) => a,
            None => {
                let (_, target) = links.next().unwrap_or_default();
                match fs.get(&target) {
                    Some(a) => a.clone(),
                    None => continue,
                }
            }
        };
        if attrs.kind != "dir" || fs.get(&path).is_some_and(|old| old.kind != "dir") {
            remove_tree(fs, &path);
        }
        fs.insert(path, attrs);
    }
    Ok(())
}

/// An entry's attributes, its data read for its digest.
fn attrs_of<R: Read>(entry: &mut tar::Entry<'_, R>) -> std::io::Result<Attrs> {
    let h = entry.header().clone();
    let kind = match h.entry_type() {
        tar::EntryType::Directory => "dir",
        tar::EntryType::Symlink => "sym",
        tar::EntryType::Char => "chr",
        tar::EntryType::Block => "blk",
        tar::EntryType::Fifo => "fifo",
        _ => "reg",
    };
    let mut xattrs = BTreeMap::new();
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax.flatten() {
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                xattrs.insert(name.to_vec(), ext.value_bytes().to_vec());
            }
        }
    }
    // Only devices have meaningful device numbers (other headers may leave the fields blank).
    let rdev = if matches!(kind, "chr" | "blk") {
        let major = u64::from(h.device_major()?.unwrap_or(0));
        let minor = u64::from(h.device_minor()?.unwrap_or(0));
        makedev(major, minor)
    } else {
        0
    };
    // Streamed through the digest: memory does not grow with the file.
    let (size, sha256) = if kind == "reg" {
        stream_digest(&mut *entry)?
    } else {
        (0, String::new())
    };
    let link = if kind == "sym" {
        entry
            .link_name_bytes()
            .map(|l| l.into_owned())
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(Attrs {
        kind,
        mode: h.mode()? & 0o7777,
        uid: u32::try_from(h.uid()?).unwrap_or(u32::MAX),
        gid: u32::try_from(h.gid()?).unwrap_or(u32::MAX),
        size,
        rdev,
        link,
        xattrs,
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

/// glibc `makedev` in the 32 bits RAFS keeps.
fn makedev(major: u64, minor: u64) -> u32 {
    let v = (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12);
    u32::try_from(v & 0xffff_ffff).unwrap_or(0)
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
        apply_layer(&mut fs, layer.as_slice()).unwrap();
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
        apply_layer(&mut fs, lower.as_slice()).unwrap();
        apply_layer(&mut fs, upper.as_slice()).unwrap();
        let paths: Vec<&[u8]> = fs.keys().map(Vec::as_slice).collect();
        assert_eq!(paths, [b"/d".as_slice(), b"/d/z"]);
    }

    fn digest_of_bytes(b: &[u8]) -> String {
        crate::layout::digest_of(b)
    }
}
