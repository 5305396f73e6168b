//! An image as the reference's `nydus-image unpack` writes it, byte for byte: the tar the Go
//! converter's `Unpack` hands on (`unpack_to_tar` writes our own OCI layer tar instead).
//!
//! Its shape, read from the reference (`src/bin/nydus-image/unpack`): paths depth first, no
//! root entry, directories without a trailing slash; POSIX ustar headers with owner names
//! looked up on the machine, device fields `0` but for devices, and the checksum written as
//! six octal digits, NUL, space; a hard link's later paths name the first by its absolute
//! path; xattrs (and paths or link targets over 100 bytes, truncated in the header) as one
//! PAX `x` header per entry, records sorted by key, named `DIR/PaxHeaders.0/NAME`; sockets
//! left out; two zero blocks at the end. The `tar` crate writes the fields, as it does there.

use crate::error::{Error, Result};
use crate::read::ImageReader;
use crate::unpack::UnpackReport;
use rafs_format::model::{mode, Inode, InodeId};
use std::collections::HashMap;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Owner names for the headers: the user name of a uid (`false`) or the group name of a gid
/// (`true`); empty when there is none (the reference asks the machine's user database).
pub type OwnerNames<'a> = &'a dyn Fn(u32, bool) -> String;

/// Header fields hold at most this many bytes of a path or link target.
const NAME_FIELD: usize = 100;

/// Writes the image as the reference's `unpack` does.
pub fn unpack_as_reference<W: Write>(
    reader: &ImageReader,
    out: W,
    names: OwnerNames<'_>,
) -> Result<(W, UnpackReport)> {
    let tree = &reader.image().tree;
    let mut tar = tar::Builder::new(out);
    let mut first_path: HashMap<InodeId, Vec<u8>> = HashMap::new();
    let mut report = UnpackReport::default();
    for node in tree.dfs_preorder() {
        let inode = tree.inode_of(node);
        if inode.file_type() == mode::S_IFSOCK {
            report.sockets_skipped += 1;
            continue;
        }
        if node == rafs_format::model::ROOT {
            continue;
        }
        let path = tree.path_bytes(node);
        let shown = tree.display_path(node);
        let id = tree.node(node).inode;
        let link = if inode.nlink > 1 && !inode.is_dir() {
            match first_path.get(&id) {
                Some(first) => Some(first.clone()),
                None => {
                    first_path.insert(id, path.clone());
                    None
                }
            }
        } else {
            None
        };
        let entry = Entry {
            inode,
            path: &path,
            link: link.as_deref(),
            names,
        };
        let (header, pax) = entry.headers().map_err(|e| path_error(&shown, &e))?;
        let failed = |e: std::io::Error| path_error(&shown, &e);
        if let Some((pax_header, records)) = pax {
            tar.append(&pax_header, records.as_slice())
                .map_err(failed)?;
        }
        if inode.is_reg() && link.is_none() {
            let data = reader.file_reader(node)?;
            tar.append(&header, data).map_err(failed)?;
            report.file_bytes += inode.size;
        } else {
            tar.append(&header, std::io::empty()).map_err(failed)?;
        }
        report.entries += 1;
    }
    let out = tar.into_inner().map_err(|e| Error::Io {
        what: "finishing the tar".into(),
        source: e,
    })?;
    Ok((out, report))
}

fn path_error(path: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Path {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// One path to write.
struct Entry<'a> {
    inode: &'a Inode,
    /// Absolute path bytes.
    path: &'a [u8],
    /// For a later path of a hard-linked inode: the first path.
    link: Option<&'a [u8]>,
    names: OwnerNames<'a>,
}

/// A PAX record: key, value.
type Record = (Vec<u8>, Vec<u8>);

/// A PAX `x` header and its records' bytes.
type PaxPart = (tar::Header, Vec<u8>);

impl Entry<'_> {
    /// The entry's header, and its PAX header and records when it needs them.
    fn headers(&self) -> std::io::Result<(tar::Header, Option<PaxPart>)> {
        let i = self.inode;
        let mut h = tar::Header::new_ustar();
        let kind = match (self.link, i.file_type()) {
            (Some(_), _) => tar::EntryType::Link,
            (None, mode::S_IFDIR) => tar::EntryType::Directory,
            (None, mode::S_IFREG) => tar::EntryType::Regular,
            (None, mode::S_IFLNK) => tar::EntryType::Symlink,
            (None, mode::S_IFIFO) => tar::EntryType::Fifo,
            (None, mode::S_IFCHR) => tar::EntryType::Char,
            (None, mode::S_IFBLK) => tar::EntryType::Block,
            _ => return Err(std::io::Error::other(format!("file type {:o}", i.mode))),
        };
        h.set_entry_type(kind);
        h.set_size(if kind == tar::EntryType::Regular {
            i.size
        } else {
            0
        });
        h.set_mtime(i.mtime);
        h.set_uid(u64::from(i.uid));
        h.set_gid(u64::from(i.gid));
        h.set_username(&(self.names)(i.uid, false))?;
        h.set_groupname(&(self.names)(i.gid, true))?;
        h.set_mode(i.mode & 0o7777);
        let (major, minor) = if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            device(i.rdev)
        } else {
            (0, 0)
        };
        h.set_device_major(major)?;
        h.set_device_minor(minor)?;
        let mut records = Vec::new();
        let relative = self.path.strip_prefix(b"/").unwrap_or(self.path);
        if let Some(r) = set_name(&mut h, relative, b"path", false)? {
            records.push(r);
        }
        let target = match kind {
            tar::EntryType::Link => self.link,
            tar::EntryType::Symlink => Some(i.symlink.as_slice()),
            _ => None,
        };
        if let Some(t) = target {
            if let Some(r) = set_name(&mut h, t, b"linkpath", true)? {
                records.push(r);
            }
        }
        for x in &i.xattrs {
            records.push(([&b"SCHILY.xattr."[..], &x.name].concat(), x.value.clone()));
        }
        set_cksum(&mut h);
        let pax = if records.is_empty() {
            None
        } else {
            Some(pax_header(&h, records)?)
        };
        Ok((h, pax))
    }
}

/// The reference's major and minor of an `rdev` (glibc's split of a `dev_t`; RAFS keeps 32
/// bits, so the high halves are 0).
fn device(rdev: u32) -> (u32, u32) {
    use rafs_format::model::dev;
    (dev::major(rdev), dev::minor(rdev))
}

/// Sets a path or link field; a value over 100 bytes goes into a PAX record whole and into
/// the field truncated (at a UTF-8 boundary, as the reference truncates).
fn set_name(
    h: &mut tar::Header,
    value: &[u8],
    key: &[u8],
    link: bool,
) -> std::io::Result<Option<Record>> {
    let (field, record) = if value.len() <= NAME_FIELD {
        (value, None)
    } else {
        (truncated(value), Some((key.to_vec(), value.to_vec())))
    };
    let p = Path::new(std::ffi::OsStr::from_bytes(field));
    if link {
        h.set_link_name(p)?;
    } else {
        h.set_path(p)?;
    }
    Ok(record)
}

/// The longest prefix of at most 100 bytes that is valid UTF-8.
fn truncated(value: &[u8]) -> &[u8] {
    let head = &value[..NAME_FIELD.min(value.len())];
    match std::str::from_utf8(head) {
        Ok(_) => head,
        Err(e) => &head[..e.valid_up_to()],
    }
}

/// The PAX `x` header for `main`'s records: mode 0644, owner 0, mtime 0, named
/// `DIR/PaxHeaders.0/NAME` after the main header's name (truncated to 100 bytes).
fn pax_header(
    main: &tar::Header,
    mut records: Vec<Record>,
) -> std::io::Result<(tar::Header, Vec<u8>)> {
    records.sort();
    let data: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::XHeader);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(data.len() as u64);
    let name = main.path_bytes();
    let (dir, file) = match name.iter().rposition(|&b| b == b'/') {
        Some(i) => (&name[..=i], &name[i + 1..]),
        None => (&b""[..], &name[..]),
    };
    let full = [dir, b"PaxHeaders.0/", file].concat();
    let field = if full.len() > NAME_FIELD {
        truncated(&full)
    } else {
        &full
    };
    h.set_path(Path::new(std::ffi::OsStr::from_bytes(field)))?;
    set_cksum(&mut h);
    Ok((h, data))
}

/// `LEN KEY=VALUE\n`, LEN counting itself.
fn pax_record(k: &[u8], v: &[u8]) -> Vec<u8> {
    let body = k.len() + v.len() + 3;
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len = body + len.to_string().len();
    }
    [len.to_string().as_bytes(), b" ", k, b"=", v, b"\n"].concat()
}

/// The checksum as the reference writes it: six octal digits, NUL, space.
fn set_cksum(h: &mut tar::Header) {
    let bytes = h.as_bytes();
    let sum: u32 = bytes[..148]
        .iter()
        .chain(&[b' '; 8])
        .chain(&bytes[156..])
        .map(|&b| u32::from(b))
        .sum();
    let field = format!("{sum:06o}\0 ");
    h.as_old_mut()
        .cksum
        .copy_from_slice(&field.as_bytes()[field.len() - 8..]);
}
