//! One tar entry's header (with its PAX records and the global ones in force) turned into what
//! RAFS stores: a normalised path, a type, attributes, xattrs.

use crate::error::EntryErrorKind as K;
use base64::Engine as _;
use rafs_format::model::{mode, Xattr};
use std::collections::BTreeMap;

/// Longest name a component may have (Linux NAME_MAX).
pub const MAX_NAME: usize = 255;
/// Longest xattr value RAFS v6 can store (a u16 length).
pub const MAX_XATTR_VALUE: usize = 65535;
/// Deepest path accepted: what a decoder accepts by default (`rafs_format::Limits`), so every
/// image we write reads back.
pub const MAX_DEPTH: usize = 4096;

/// Longest symlink target.
pub const MAX_SYMLINK: usize = 65535;

/// Normalised path: components without `.`, empty ones or a leading `/`; empty = the root.
pub type Components = Vec<Vec<u8>>;

/// Splits and normalises a tar path (blob.md/build.md §3.1): `./`, `//`, trailing `/` and a
/// leading `/` vanish; `..` and an empty path are refused.
pub fn normalise(path: &[u8]) -> Result<Components, K> {
    if path.is_empty() {
        return Err(K::EmptyPath);
    }
    let mut out = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(K::DotDot),
            name if name.contains(&0) => {
                return Err(K::BadField {
                    field: "path",
                    reason: "a name contains NUL".into(),
                })
            }
            name => {
                if name.len() > MAX_NAME {
                    return Err(K::NameTooLong(name.len()));
                }
                out.push(name.to_vec());
                if out.len() > MAX_DEPTH {
                    return Err(K::PathTooDeep(MAX_DEPTH));
                }
            }
        }
    }
    Ok(out)
}

/// What kind of node an entry makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Regular file with data.
    Regular,
    /// Directory.
    Directory,
    /// Symbolic link with its target.
    Symlink(Vec<u8>),
    /// Hard link to an earlier entry.
    HardLink(Components),
    /// Character device.
    Char,
    /// Block device.
    Block,
    /// FIFO.
    Fifo,
}

/// PAX records of one entry (global headers are not applied: containerd skips them).
#[derive(Debug)]
pub struct Pax<'a> {
    local: &'a BTreeMap<String, Vec<u8>>,
}

impl<'a> Pax<'a> {
    /// An entry's records.
    pub fn new(local: &'a BTreeMap<String, Vec<u8>>) -> Pax<'a> {
        Pax { local }
    }

    /// Records whose key starts with `prefix`; found by range, so only matching records are
    /// visited.
    fn with_prefix(&self, prefix: &str) -> BTreeMap<&'a str, &'a [u8]> {
        let mut out = BTreeMap::new();
        for (k, v) in self.local.range::<str, _>((
            std::ops::Bound::Included(prefix),
            std::ops::Bound::Unbounded,
        )) {
            if !k.starts_with(prefix) {
                break;
            }
            out.insert(k.as_str(), v.as_slice());
        }
        out
    }

    /// A record's value.
    pub fn get(&self, key: &str) -> Option<&'a [u8]> {
        self.local.get(key).map(Vec::as_slice)
    }

    /// `mtime` as seconds and nanoseconds (fractions honoured; times before 1970 clamp to 0).
    pub fn mtime(&self) -> Result<Option<(u64, u32)>, K> {
        let Some(v) = self.get("mtime") else {
            return Ok(None);
        };
        let bad = || K::BadField {
            field: "PAX mtime",
            reason: format!("{:?}", String::from_utf8_lossy(v)),
        };
        let s = std::str::from_utf8(v).map_err(|_| bad())?.trim();
        if s.starts_with('-') {
            return Ok(Some((0, 0)));
        }
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let secs: u64 = int.parse().map_err(|_| bad())?;
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let mut digits: String = frac.chars().take(9).collect();
        while digits.len() < 9 {
            digits.push('0');
        }
        let nsec: u32 = digits.parse().map_err(|_| bad())?;
        Ok(Some((secs, nsec)))
    }

    /// Extended attributes from `SCHILY.xattr.<name>` (raw value) and
    /// `LIBARCHIVE.xattr.<url-encoded name>` (base64 value), in name order.
    pub fn xattrs(&self) -> Result<Vec<Xattr>, K> {
        let mut out: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for (k, v) in self.with_prefix("LIBARCHIVE.xattr.") {
            if let Some(name) = k.strip_prefix("LIBARCHIVE.xattr.") {
                let name = percent_decode(name).ok_or_else(|| K::BadXattr {
                    name: name.into(),
                    reason: "bad %-escape in name".into(),
                })?;
                let value = base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(v.trim_ascii_end().trim_end_matches_eq())
                    .map_err(|e| K::BadXattr {
                        name: String::from_utf8_lossy(&name).into_owned(),
                        reason: format!("value is not base64: {e}"),
                    })?;
                out.entry(name).or_insert(value);
            }
        }
        // SCHILY records win over LIBARCHIVE ones for the same name.
        for (k, v) in self.with_prefix("SCHILY.xattr.") {
            if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                out.insert(name.as_bytes().to_vec(), v.to_vec());
            }
        }
        let mut xattrs = Vec::with_capacity(out.len());
        for (name, value) in out {
            check_xattr(&name, &value)?;
            xattrs.push(Xattr { name, value });
        }
        xattrs.sort_by(|a, b| xattr_order(&a.name).cmp(&xattr_order(&b.name)));
        Ok(xattrs)
    }
}

trait TrimEq {
    fn trim_end_matches_eq(&self) -> &[u8];
}

impl TrimEq for [u8] {
    fn trim_end_matches_eq(&self) -> &[u8] {
        let end = self.iter().rposition(|&b| b != b'=').map_or(0, |p| p + 1);
        &self[..end]
    }
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The namespaces RAFS can hold, in the order we write them (the EROFS prefix index order),
/// then by the rest of the name.
const XATTR_PREFIXES: [&[u8]; 5] = [
    b"user.",
    b"system.posix_acl_access",
    b"system.posix_acl_default",
    b"trusted.",
    b"security.",
];

fn xattr_order(name: &[u8]) -> (usize, &[u8]) {
    for (i, p) in XATTR_PREFIXES.iter().enumerate() {
        if let Some(rest) = name.strip_prefix(*p) {
            return (i, rest);
        }
    }
    (XATTR_PREFIXES.len(), name)
}

fn check_xattr(name: &[u8], value: &[u8]) -> Result<(), K> {
    let shown = || String::from_utf8_lossy(name).into_owned();
    let (idx, rest) = xattr_order(name);
    if idx == XATTR_PREFIXES.len() {
        return Err(K::BadXattr {
            name: shown(),
            reason: "namespace is not user., trusted., security. or system.posix_acl_*".into(),
        });
    }
    if name.contains(&0) {
        return Err(K::BadXattr {
            name: shown(),
            reason: "name contains NUL".into(),
        });
    }
    let exact_acl = idx == 1 || idx == 2;
    if (exact_acl && !rest.is_empty()) || (!exact_acl && rest.is_empty()) {
        return Err(K::BadXattr {
            name: shown(),
            reason: "no name after the namespace".into(),
        });
    }
    if name.len() > MAX_NAME {
        return Err(K::BadXattr {
            name: shown(),
            reason: format!("name of {} bytes exceeds 255", name.len()),
        });
    }
    if value.len() > MAX_XATTR_VALUE {
        return Err(K::BadXattr {
            name: shown(),
            reason: format!("value of {} bytes exceeds 65535", value.len()),
        });
    }
    Ok(())
}

/// glibc `makedev`, truncated to the 32 bits RAFS stores (kept here for callers of this
/// crate; the encoding lives in `rafs_format::model::dev`).
pub use rafs_format::model::dev::makedev;

/// Permission bits plus type bits.
pub fn full_mode(perm: u32, kind: &Kind) -> u32 {
    let t = match kind {
        Kind::Regular | Kind::HardLink(_) => mode::S_IFREG,
        Kind::Directory => mode::S_IFDIR,
        Kind::Symlink(_) => mode::S_IFLNK,
        Kind::Char => mode::S_IFCHR,
        Kind::Block => mode::S_IFBLK,
        Kind::Fifo => mode::S_IFIFO,
    };
    (perm & 0o7777) | t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_normalise_as_the_reference_does() {
        let n = |p: &str| normalise(p.as_bytes());
        assert_eq!(
            n("./usr//bin/./ls/").unwrap(),
            vec![b"usr".to_vec(), b"bin".to_vec(), b"ls".to_vec()]
        );
        assert_eq!(n("/etc/x").unwrap(), n("etc/x").unwrap());
        assert!(n("./").unwrap().is_empty());
        assert_eq!(n("up/../down"), Err(K::DotDot));
        assert_eq!(n(""), Err(K::EmptyPath));
        assert_eq!(n(&"a".repeat(256)), Err(K::NameTooLong(256)));
    }

    #[test]
    fn pax_mtime_fractions() {
        let mut g = BTreeMap::new();
        g.insert("mtime".to_string(), b"1700000000.5".to_vec());
        let p = Pax::new(&g);
        assert_eq!(p.mtime().unwrap(), Some((1_700_000_000, 500_000_000)));
    }

    #[test]
    fn devices_encode_like_glibc() {
        assert_eq!(makedev(1, 3), 0x103);
        assert_eq!(makedev(259, 1_048_575), 0xfff1_03ff);
    }
}
