//! Rules that more than one codec, builder or reader must agree on, kept in one place so that
//! whatever a builder writes, the decoders accept, and whatever the decoders accept, a reader
//! can extract: what a blob id may be, how many xattr bytes an inode may carry in each version,
//! what a symlink target and a time may hold.

use crate::model::{FsVersion, Xattr};

/// Longest blob id either version stores (the v6 record's 64 bytes).
pub const MAX_BLOB_ID_LEN: usize = 64;

/// Checks a blob id. Blob ids are names, never paths: the reference writes the hex digest of
/// the blob (or, in some merges, a file name such as `bootstrap`), and readers open the blob as
/// a file of that name in a blob directory. So an id is 1 to 64 printable ASCII characters
/// without `/` or `\`, and not `.` or `..`.
pub fn check_blob_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("empty");
    }
    if id.len() > MAX_BLOB_ID_LEN {
        return Err("longer than 64 bytes");
    }
    if id == "." || id == ".." {
        return Err("is . or ..");
    }
    if id.bytes().any(|b| b == b'/' || b == b'\\') {
        return Err("contains a path separator");
    }
    if !id.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err("contains a byte that is not printable ASCII");
    }
    Ok(())
}

/// Bytes of the v6 inline xattr area: the 12-byte header, then each entry padded to 4.
/// `None` when an entry's name has no v6 prefix or a length does not fit its field.
pub fn v6_xattr_area(xattrs: &[Xattr]) -> Option<u64> {
    if xattrs.is_empty() {
        return Some(0);
    }
    let mut size = crate::ondisk::v6::XATTR_IBODY_HEADER_SIZE as u64;
    for x in xattrs {
        let (_, suffix) = crate::v6::xattr::split(&x.name)?;
        if suffix.len() > 255 || x.value.len() > usize::from(u16::MAX) {
            return None;
        }
        size += crate::v6::xattr::entry_size(suffix.len(), x.value.len()) as u64;
    }
    Some(size)
}

/// Largest v6 inline xattr area: `i_xattr_icount` is a u16 counting 4-byte words after the
/// 12-byte header, plus one.
pub const MAX_V6_XATTR_AREA: u64 = 12 + (u16::MAX as u64 - 1) * 4;

/// Bytes of the v5 xattr pair list (`Σ 4 + name + 1 + value`).
pub fn v5_xattr_pairs(xattrs: &[Xattr]) -> u64 {
    xattrs
        .iter()
        .map(|x| 4 + x.name.len() as u64 + 1 + x.value.len() as u64)
        .sum()
}

/// Checks that an inode's xattrs can be written in `version` and read back by a decoder with
/// default [`Limits`](crate::Limits). The error says how many bytes they take and the most
/// allowed.
pub fn check_xattrs_storable(version: FsVersion, xattrs: &[Xattr]) -> Result<(), String> {
    let max_read = crate::Limits::default().max_xattr_bytes as u64;
    let (size, max) = match version {
        FsVersion::V6 => match v6_xattr_area(xattrs) {
            Some(s) => (s, MAX_V6_XATTR_AREA.min(max_read)),
            None => return Err("an xattr name has no v6 prefix or is too long".into()),
        },
        FsVersion::V5 => (v5_xattr_pairs(xattrs), max_read),
    };
    if size > max {
        return Err(format!(
            "xattrs take {size} bytes in v{}, at most {max} fit one inode",
            version.number()
        ));
    }
    Ok(())
}

/// Nanoseconds of a time are below one second.
pub const MAX_MTIME_NSEC: u32 = 999_999_999;

/// Longest symlink target a version stores: v6 keeps it in at most one block of 4096 bytes
/// (the kernel's `PATH_MAX`), v5 records its length in a u16.
pub fn max_symlink_len(version: FsVersion) -> usize {
    match version {
        FsVersion::V6 => 4096,
        FsVersion::V5 => usize::from(u16::MAX),
    }
}

/// Longest symlink target `symlink(2)` creates (`PATH_MAX` less the NUL): a longer one is
/// stored by the formats but cannot be extracted, so builders refuse it and `check` reports
/// it.
pub const MAX_EXTRACTABLE_SYMLINK: usize = 4095;

/// Checks a symlink target: not empty, no NUL (a path the kernel and `symlink(2)` take).
pub fn check_symlink_target(target: &[u8]) -> Result<(), &'static str> {
    if target.is_empty() {
        return Err("empty");
    }
    if target.contains(&0) {
        return Err("contains NUL");
    }
    Ok(())
}

/// Checks what a codec writes for every image before writing it: blob ids, and per inode the
/// xattrs, time and symlink target, so that an encoder never writes what a decoder refuses.
pub(crate) fn check_encodable(image: &crate::Image, version: FsVersion) -> Result<(), String> {
    for b in &image.blobs {
        check_blob_id(&b.blob_id).map_err(|r| format!("blob id {:?}: {r}", b.blob_id))?;
    }
    for inode in &image.tree.inodes {
        check_xattrs_storable(version, &inode.xattrs)?;
        if inode.mtime_nsec > MAX_MTIME_NSEC {
            return Err(format!(
                "mtime_nsec {} is a second or more",
                inode.mtime_nsec
            ));
        }
        if inode.is_symlink() {
            check_symlink_target(&inode.symlink).map_err(|r| format!("symlink target {r}"))?;
        }
    }
    Ok(())
}

/// A name or path for messages: printable ASCII and valid UTF-8 as they are, control
/// characters and bytes that are not UTF-8 as `\xNN`, so a hostile name can neither move the
/// cursor of a terminal nor hide behind a replacement character.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                if c == '\\' {
                    out.push_str("\\\\");
                } else {
                    for b in c.to_string().bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_ids_are_names() {
        for ok in [
            "bootstrap",
            &"a".repeat(64),
            &"x".repeat(64),
            "L1-v6.boot",
            "my layer",
        ] {
            assert_eq!(check_blob_id(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../../etc/passwd",
            "/etc/passwd",
            "a\\b",
            "a\nb",
            "\u{e9}",
            &"a".repeat(65),
        ] {
            assert!(check_blob_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn v6_area_limit_is_the_icount_field() {
        let big = |n: u8| Xattr {
            name: vec![b'u', b's', b'e', b'r', b'.', n],
            value: vec![0; 65535],
        };
        assert!(check_xattrs_storable(FsVersion::V6, &[big(b'a'), big(b'b'), big(b'c')]).is_ok());
        let four = [big(b'a'), big(b'b'), big(b'c'), big(b'd')];
        let err = check_xattrs_storable(FsVersion::V6, &four).unwrap_err();
        assert!(err.contains("at most 262148"), "{err}");
        assert!(check_xattrs_storable(FsVersion::V5, &four).is_ok());
    }

    #[test]
    fn escaping_shows_control_and_invalid_bytes() {
        assert_eq!(escape_bytes(b"a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(escape_bytes(b"\xfe\xff/x"), "\\xfe\\xff/x");
        assert_eq!(escape_bytes("caf\u{e9}".as_bytes()), "caf\u{e9}");
    }
}
