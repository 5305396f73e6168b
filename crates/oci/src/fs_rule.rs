//! The filesystem rule of `check-image`: every path of the Nydus image, read through its blobs,
//! against the overlay of the source's layers (containerd's model), with each difference said
//! in words, field by field.

use crate::check::RuleResult;
use crate::layout::Layout;
use crate::limits::ImageLimits;
use serde_json::Value;
use std::collections::BTreeMap;

/// One path's attributes as both sides list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attrs {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub rdev: u32,
    pub link: Vec<u8>,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    pub sha256: String,
}

/// The filesystem rule: the Nydus image's tree against the overlay of the source's layers.
pub(crate) fn filesystem_rule(
    layout: &Layout,
    bootstrap: &[u8],
    source: &Layout,
    source_manifest: &Value,
    limits: &ImageLimits,
) -> RuleResult {
    let mut p = Vec::new();
    let ours = match nydus_listing(layout, bootstrap) {
        Ok(l) => l,
        Err(e) => {
            return RuleResult {
                rule: "filesystem",
                problems: vec![e],
            }
        }
    };
    let layers = source_manifest["layers"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let theirs = match crate::overlay::overlay_listing(source, layers, limits) {
        Ok(l) => l,
        Err(e) => {
            return RuleResult {
                rule: "filesystem",
                problems: vec![format!("the source: {e}")],
            }
        }
    };
    for (path, a) in &theirs {
        match ours.get(path) {
            None => p.push(format!("{} is missing", String::from_utf8_lossy(path))),
            Some(b) if b != a => p.push(format!(
                "{}: {}",
                String::from_utf8_lossy(path),
                differences(b, a).join(", ")
            )),
            Some(_) => {}
        }
    }
    for path in ours.keys().filter(|k| !theirs.contains_key(*k)) {
        p.push(format!(
            "{} is not in the source",
            String::from_utf8_lossy(path)
        ));
    }
    p.truncate(50);
    RuleResult {
        rule: "filesystem",
        problems: p,
    }
}

/// Every path of the Nydus image, the root included, read through the layout's blobs.
fn nydus_listing(
    layout: &Layout,
    bootstrap: &[u8],
) -> std::result::Result<BTreeMap<Vec<u8>, Attrs>, String> {
    use rafs_format::model::mode;
    let image = rafs_format::decode(bootstrap).map_err(|e| e.to_string())?;
    let reader =
        rafs_reader::ImageReader::open_dir(image, &layout.root().join("blobs").join("sha256"))
            .map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    // The root too: containerd's is the snapshot's directory (0755, root's), whatever the
    // layers say; nydusify does not compare it, we do.
    for e in reader.image().tree.entries() {
        let i = e.inode;
        let kind = crate::overlay::kind_of_mode(i.mode);
        let sha256 = if i.file_type() == mode::S_IFREG {
            let file = reader.file_reader(e.node).map_err(|err| err.to_string())?;
            crate::overlay::stream_digest(file)
                .map_err(|err| err.to_string())?
                .1
        } else {
            String::new()
        };
        let attrs = Attrs {
            kind,
            mode: i.mode & 0o7777,
            uid: i.uid,
            gid: i.gid,
            size: if i.is_reg() { i.size } else { 0 },
            rdev: if matches!(kind, "chr" | "blk") {
                i.rdev
            } else {
                0
            },
            link: i.symlink.clone(),
            xattrs: i
                .xattrs
                .iter()
                .map(|x| (x.name.clone(), x.value.clone()))
                .collect(),
            sha256,
        };
        out.insert(e.path, attrs);
    }
    Ok(out)
}

/// How `ours` differs from `theirs`, one phrase per field: `mode 0644 ≠ 0755` (ours first).
pub(crate) fn differences(ours: &Attrs, theirs: &Attrs) -> Vec<String> {
    let mut d = Vec::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            d.push(format!("{name} {a} ≠ {b}"));
        }
    };
    field("type", ours.kind.into(), theirs.kind.into());
    field(
        "mode",
        format!("{:04o}", ours.mode),
        format!("{:04o}", theirs.mode),
    );
    field(
        "owner",
        format!("{}:{}", ours.uid, ours.gid),
        format!("{}:{}", theirs.uid, theirs.gid),
    );
    field("size", ours.size.to_string(), theirs.size.to_string());
    field("device", device(ours.rdev), device(theirs.rdev));
    field(
        "symlink target",
        rafs_format::rules::escape_bytes(&ours.link),
        rafs_format::rules::escape_bytes(&theirs.link),
    );
    field("content sha256", short(&ours.sha256), short(&theirs.sha256));
    let names: std::collections::BTreeSet<&Vec<u8>> =
        ours.xattrs.keys().chain(theirs.xattrs.keys()).collect();
    for name in names {
        let show = |v: Option<&Vec<u8>>| v.map_or("(none)".into(), |v| hex_or_text(v));
        field(
            &format!("xattr {}", rafs_format::rules::escape_bytes(name)),
            show(ours.xattrs.get(name)),
            show(theirs.xattrs.get(name)),
        );
    }
    d
}

fn device(rdev: u32) -> String {
    use rafs_format::model::dev;
    let (major, minor) = (dev::major(rdev), dev::minor(rdev));
    format!("{major},{minor}")
}

fn short(sha256: &str) -> String {
    if sha256.is_empty() {
        "(none)".into()
    } else {
        sha256.chars().take(16).collect()
    }
}

/// An xattr value as text when it is printable, else as `0x` and hex.
fn hex_or_text(v: &[u8]) -> String {
    if v.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("{:?}", String::from_utf8_lossy(v))
    } else {
        format!("0x{}", rafs_format::hex(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Attrs {
        Attrs {
            kind: "reg",
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 3,
            rdev: 0,
            link: vec![],
            xattrs: BTreeMap::new(),
            sha256: "ab".repeat(32),
        }
    }

    #[test]
    fn differences_are_said_in_words_field_by_field() {
        let mut ours = file();
        let theirs = file();
        ours.mode = 0o755;
        ours.uid = 1000;
        ours.xattrs.insert(b"user.bin".to_vec(), b"\n\0".to_vec());
        assert_eq!(
            differences(&ours, &theirs),
            [
                "mode 0755 ≠ 0644",
                "owner 1000:0 ≠ 0:0",
                "xattr user.bin 0x0a00 ≠ (none)"
            ]
        );
        assert!(differences(&theirs, &file()).is_empty());
    }
}
