//! Unpacking an image: to an OCI layer tar (PAX xattrs and time fractions, hard links as tar
//! links, devices and FIFOs, the root's attributes as `./`, deterministic order), or into a
//! directory, never writing outside it.

use crate::error::{io, Error, Result};
use crate::read::ImageReader;
use rafs_format::model::{mode, Inode, InodeId, NodeId, Tree};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Paths in depth-first order, children by name: the order entries are written in.
fn preorder(tree: &Tree) -> Vec<NodeId> {
    tree.dfs_preorder()
}

/// A name safe to create inside a directory: not empty, `.` or `..`, no `/` or NUL.
fn safe_name(name: &[u8]) -> bool {
    !(name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0))
}

/// Relative path components of a node, each checked.
fn components(tree: &Tree, node: NodeId) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut cur = node;
    while let Some(parent) = tree.node(cur).parent {
        let name = &tree.node(cur).name;
        if !safe_name(name) {
            return Err(Error::Path {
                path: tree.display_path(node),
                reason: format!("unsafe name \"{}\"", rafs_format::rules::escape_bytes(name)),
            });
        }
        out.push(name.clone());
        cur = parent;
        if out.len() > tree.nodes.len() {
            return Err(Error::Path {
                path: tree.display_path(node),
                reason: "parent cycle".into(),
            });
        }
    }
    out.reverse();
    Ok(out)
}

/// A path of raw bytes.
fn bytes_path(b: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_encoded_bytes_checked(b))
}

/// The PAX record of an xattr: `SCHILY.xattr.<name>` with the raw value when the name is
/// UTF-8 (PAX keys are), else `LIBARCHIVE.xattr.<%-escaped name>` with the value in base64,
/// which `rafs-tar-build` and libarchive read back to the same bytes.
fn xattr_record(x: &rafs_format::model::Xattr) -> (String, Vec<u8>) {
    use base64::Engine as _;
    match std::str::from_utf8(&x.name) {
        Ok(name) if !name.contains(['=', '\n']) => {
            (format!("SCHILY.xattr.{name}"), x.value.clone())
        }
        _ => {
            let mut key = String::from("LIBARCHIVE.xattr.");
            for &b in &x.name {
                if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                    key.push(b as char);
                } else {
                    key.push_str(&format!("%{b:02X}"));
                }
            }
            let value = base64::engine::general_purpose::STANDARD.encode(&x.value);
            (key, value.into_bytes())
        }
    }
}

/// glibc `major`/`minor` of a 32-bit `rdev`.
fn major_minor(rdev: u32) -> (u32, u32) {
    ((rdev >> 8) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & !0xff))
}

/// Limits of an unpack; exceeding one is [`Error::LimitExceeded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Most entries written.
    pub max_entries: u64,
    /// Most bytes of file data written.
    pub max_file_bytes: u64,
}

impl Default for UnpackLimits {
    fn default() -> Self {
        UnpackLimits {
            max_entries: 1 << 24,
            max_file_bytes: 1 << 40,
        }
    }
}

impl UnpackLimits {
    fn check(&self, r: &UnpackReport, next_file: u64) -> Result<()> {
        if r.entries >= self.max_entries {
            return Err(Error::LimitExceeded {
                what: "entries",
                value: r.entries + 1,
                limit: self.max_entries,
            });
        }
        let bytes = r.file_bytes.saturating_add(next_file);
        if bytes > self.max_file_bytes {
            return Err(Error::LimitExceeded {
                what: "file bytes",
                value: bytes,
                limit: self.max_file_bytes,
            });
        }
        Ok(())
    }
}

/// What an unpack wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnpackReport {
    /// Entries written (root included).
    pub entries: u64,
    /// Bytes of file data.
    pub file_bytes: u64,
    /// Sockets skipped (a tar cannot hold them).
    pub sockets_skipped: u64,
    /// Xattrs the target filesystem or our privileges refused (directory unpack only).
    pub xattrs_refused: u64,
    /// Device nodes not created because creating them needs privilege we lack (directory
    /// unpack only; `tar` skips them the same way).
    pub devices_skipped: u64,
}

/// Writes the image as an OCI layer tar to `out`, with default [`UnpackLimits`].
pub fn unpack_to_tar<W: Write>(reader: &ImageReader, out: W) -> Result<(W, UnpackReport)> {
    unpack_to_tar_with_limits(reader, out, UnpackLimits::default())
}

/// [`unpack_to_tar`] with explicit limits.
pub fn unpack_to_tar_with_limits<W: Write>(
    reader: &ImageReader,
    out: W,
    limits: UnpackLimits,
) -> Result<(W, UnpackReport)> {
    let tree = &reader.image().tree;
    let mut tar = tar::Builder::new(out);
    let mut first_path: HashMap<InodeId, Vec<u8>> = HashMap::new();
    let mut report = UnpackReport::default();
    for node in preorder(tree) {
        let inode = tree.inode_of(node);
        limits.check(&report, if inode.is_reg() { inode.size } else { 0 })?;
        let comps = components(tree, node)?;
        // Names are bytes from tar to tar: written as they are, never lossily.
        let joined = comps.join(&b'/');
        let is_root = comps.is_empty();
        let path_bytes = if is_root {
            b"./".to_vec()
        } else if inode.is_dir() {
            [joined.as_slice(), b"/"].concat()
        } else {
            joined.clone()
        };
        let path =
            Path::new(std::ffi::OsStr::from_encoded_bytes_checked(&path_bytes)).to_path_buf();
        let shown = tree.display_path(node);
        if inode.file_type() == mode::S_IFSOCK {
            report.sockets_skipped += 1;
            continue;
        }
        let mut pax: Vec<(String, Vec<u8>)> = inode.xattrs.iter().map(xattr_record).collect();
        if inode.mtime_nsec != 0 {
            pax.push((
                "mtime".into(),
                format!("{}.{:09}", inode.mtime, inode.mtime_nsec).into_bytes(),
            ));
        }
        if !pax.is_empty() {
            tar.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(io(format!("writing {shown}")))?;
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(inode.mode & 0o7777);
        h.set_uid(u64::from(inode.uid));
        h.set_gid(u64::from(inode.gid));
        h.set_mtime(inode.mtime);
        let id = tree.node(node).inode;
        let write = |tar: &mut tar::Builder<W>, h: &mut tar::Header, data: &mut dyn Read| {
            tar.append_data(h, &path, data)
                .map_err(io(format!("writing {shown}")))
        };
        if !inode.is_dir() {
            if let Some(first) = first_path.get(&id) {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                tar.append_link(&mut h, &path, bytes_path(first))
                    .map_err(io(format!("writing {shown}")))?;
                report.entries += 1;
                continue;
            }
            first_path.insert(id, joined.clone());
        }
        match inode.file_type() {
            mode::S_IFDIR => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                write(&mut tar, &mut h, &mut std::io::empty())?;
            }
            mode::S_IFREG => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(inode.size);
                let mut data = reader.file_reader(node)?;
                write(&mut tar, &mut h, &mut data)?;
                report.file_bytes += inode.size;
            }
            mode::S_IFLNK => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                tar.append_link(&mut h, &path, bytes_path(&inode.symlink))
                    .map_err(io(format!("writing {shown}")))?;
            }
            t @ (mode::S_IFCHR | mode::S_IFBLK | mode::S_IFIFO) => {
                h.set_entry_type(match t {
                    mode::S_IFCHR => tar::EntryType::Char,
                    mode::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                let (ma, mi) = if t == mode::S_IFIFO {
                    (0, 0)
                } else {
                    major_minor(inode.rdev)
                };
                h.set_device_major(ma)
                    .map_err(io(format!("writing {shown}")))?;
                h.set_device_minor(mi)
                    .map_err(io(format!("writing {shown}")))?;
                h.set_size(0);
                write(&mut tar, &mut h, &mut std::io::empty())?;
            }
            _ => {
                return Err(Error::Path {
                    path: tree.display_path(node),
                    reason: format!("unknown file type {:o}", inode.mode),
                });
            }
        }
        report.entries += 1;
    }
    let out = tar.into_inner().map_err(io("finishing the tar"))?;
    Ok((out, report))
}

/// Extracts the image into `target`, which must not exist or be an empty directory. Every
/// path is built from checked names below `target`; files are created exclusively (never
/// through an existing link), symlinks are only ever created, never followed, and hard links
/// join files this unpack created.
pub fn unpack_to_dir(reader: &ImageReader, target: &Path) -> Result<UnpackReport> {
    unpack_to_dir_with_limits(reader, target, UnpackLimits::default())
}

/// [`unpack_to_dir`] with explicit limits.
pub fn unpack_to_dir_with_limits(
    reader: &ImageReader,
    target: &Path,
    limits: UnpackLimits,
) -> Result<UnpackReport> {
    match std::fs::read_dir(target) {
        Ok(mut d) => {
            if d.next().is_some() {
                return Err(Error::Path {
                    path: target.display().to_string(),
                    reason: "target directory is not empty".into(),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(target)
                .map_err(io(format!("creating {}", target.display())))?;
        }
        Err(e) => return Err(io(format!("reading {}", target.display()))(e)),
    }
    let tree = &reader.image().tree;
    let root_user = rustix::process::geteuid().is_root();
    let mut report = UnpackReport::default();
    let mut first_path: HashMap<InodeId, PathBuf> = HashMap::new();
    let mut dirs: Vec<(PathBuf, &Inode)> = Vec::new();
    for node in preorder(tree) {
        let inode = tree.inode_of(node);
        limits.check(&report, if inode.is_reg() { inode.size } else { 0 })?;
        let comps = components(tree, node)?;
        let mut path = target.to_path_buf();
        for c in &comps {
            path.push(std::ffi::OsStr::from_encoded_bytes_checked(c));
        }
        let shown = || rafs_format::rules::escape_bytes(path.as_os_str().as_encoded_bytes());
        let id = tree.node(node).inode;
        if comps.is_empty() {
            dirs.push((path.clone(), inode));
            continue;
        }
        // The parent must be a directory this unpack made (no symlink, nothing pre-existing).
        let Some(parent) = path.parent() else {
            return Err(Error::Path {
                path: shown(),
                reason: "no parent directory".into(),
            });
        };
        let meta = std::fs::symlink_metadata(parent)
            .map_err(io(format!("checking {}", parent.display())))?;
        if !meta.file_type().is_dir() {
            return Err(Error::Path {
                path: shown(),
                reason: "parent is not a directory".into(),
            });
        }
        if !inode.is_dir() {
            if let Some(first) = first_path.get(&id) {
                std::fs::hard_link(first, &path).map_err(io(format!("linking {}", shown())))?;
                report.entries += 1;
                continue;
            }
            first_path.insert(id, path.clone());
        }
        match inode.file_type() {
            mode::S_IFDIR => {
                std::fs::create_dir(&path).map_err(io(format!("creating {}", shown())))?;
                dirs.push((path.clone(), inode));
                report.entries += 1;
                continue;
            }
            mode::S_IFREG => {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(io(format!("creating {}", shown())))?;
                let mut data = reader.file_reader(node)?;
                std::io::copy(&mut data, &mut f).map_err(io(format!("writing {}", shown())))?;
                report.file_bytes += inode.size;
            }
            mode::S_IFLNK => {
                let target = std::ffi::OsStr::from_encoded_bytes_checked(&inode.symlink);
                std::os::unix::fs::symlink(target, &path)
                    .map_err(io(format!("creating {}", shown())))?;
            }
            t @ (mode::S_IFCHR | mode::S_IFBLK | mode::S_IFIFO | mode::S_IFSOCK) => {
                let ft = rustix::fs::FileType::from_raw_mode(t);
                let dev = if t == mode::S_IFIFO || t == mode::S_IFSOCK {
                    0
                } else {
                    let (ma, mi) = major_minor(inode.rdev);
                    rustix::fs::makedev(ma, mi)
                };
                let made = rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &path,
                    ft,
                    rustix::fs::Mode::from_raw_mode(inode.mode & 0o7777),
                    dev,
                );
                match made {
                    // Without CAP_MKNOD a device cannot be made: skipped, as tar does.
                    Err(rustix::io::Errno::PERM) if t == mode::S_IFCHR || t == mode::S_IFBLK => {
                        first_path.remove(&id);
                        report.devices_skipped += 1;
                        continue;
                    }
                    other => other.map_err(|e| io(format!("creating {}", shown()))(e.into()))?,
                }
            }
            _ => {
                return Err(Error::Path {
                    path: tree.display_path(node),
                    reason: format!("unknown file type {:o}", inode.mode),
                })
            }
        }
        apply_attrs(&path, inode, root_user, &mut report)?;
        report.entries += 1;
    }
    // Directories last, deepest first, so their permissions and times stick.
    for (path, inode) in dirs.iter().rev() {
        apply_attrs(path, inode, root_user, &mut report)?;
    }
    report.entries += 1;
    Ok(report)
}

/// Owner, mode, xattrs and times of a created path, never following a symlink.
fn apply_attrs(
    path: &Path,
    inode: &Inode,
    root_user: bool,
    report: &mut UnpackReport,
) -> Result<()> {
    let shown = || path.display().to_string();
    if root_user {
        std::os::unix::fs::lchown(path, Some(inode.uid), Some(inode.gid))
            .map_err(io(format!("chown {}", shown())))?;
    }
    for x in &inode.xattrs {
        let name = std::ffi::OsStr::from_encoded_bytes_checked(&x.name);
        if rustix::fs::lsetxattr(path, name, &x.value, rustix::fs::XattrFlags::empty()).is_err() {
            report.xattrs_refused += 1;
        }
    }
    if !inode.is_symlink() {
        let m = rustix::fs::Mode::from_raw_mode(inode.mode & 0o7777);
        rustix::fs::chmodat(rustix::fs::CWD, path, m, rustix::fs::AtFlags::empty())
            .map_err(|e| io(format!("chmod {}", shown()))(e.into()))?;
    }
    let t = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: inode.mtime as i64,
            tv_nsec: inode.mtime_nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: inode.mtime as i64,
            tv_nsec: inode.mtime_nsec as _,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &t,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io(format!("setting times of {}", shown()))(e.into()))?;
    Ok(())
}

trait FromBytesChecked {
    fn from_encoded_bytes_checked(b: &[u8]) -> &std::ffi::OsStr;
}

impl FromBytesChecked for std::ffi::OsStr {
    fn from_encoded_bytes_checked(b: &[u8]) -> &std::ffi::OsStr {
        std::os::unix::ffi::OsStrExt::from_bytes(b)
    }
}
