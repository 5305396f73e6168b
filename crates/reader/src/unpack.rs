//! Unpacking an image: to an OCI layer tar (PAX xattrs and time fractions, hard links as tar
//! links, devices and FIFOs, the root's attributes as `./`, deterministic order), or into a
//! directory, never writing outside it.

use crate::error::{io, Error, Result};
use crate::read::ImageReader;
use rafs_format::model::{mode, Inode, InodeId, NodeId, Tree};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

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

/// Appends an entry whose name (and link target) are raw bytes: written into the header
/// as they are, or, when longer than its 100-byte field, as a GNU long name (long link)
/// record before it. (The tar crate's own path setters reinterpret and split names.)
fn append_raw<W: Write>(
    tar: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &[u8],
    link: Option<&[u8]>,
    data: &mut dyn Read,
) -> std::io::Result<()> {
    if name.len() > 100 {
        append_long(tar, tar::EntryType::GNULongName, name)?;
    }
    let raw = h.as_mut_bytes();
    raw[..100].fill(0);
    raw[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    if let Some(link) = link {
        if link.len() > 100 {
            append_long(tar, tar::EntryType::GNULongLink, link)?;
        }
        let raw = h.as_mut_bytes();
        raw[157..257].fill(0);
        raw[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
    }
    h.set_cksum();
    tar.append(h, data)
}

/// A GNU `././@LongLink` record carrying a long name or link target.
fn append_long<W: Write>(
    tar: &mut tar::Builder<W>,
    kind: tar::EntryType,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.as_mut_bytes()[..13].copy_from_slice(b"././@LongLink");
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(kind);
    h.set_size(bytes.len() as u64 + 1);
    h.set_cksum();
    tar.append(&h, [bytes, b"\0"].concat().as_slice())
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
    let mut tar = TarOut {
        tar: tar::Builder::new(out),
        first_path: HashMap::new(),
        report: UnpackReport::default(),
    };
    for node in preorder(tree) {
        let inode = tree.inode_of(node);
        limits.check(&tar.report, if inode.is_reg() { inode.size } else { 0 })?;
        if inode.file_type() == mode::S_IFSOCK {
            tar.report.sockets_skipped += 1;
            continue;
        }
        tar.append(reader, node)?;
        tar.report.entries += 1;
    }
    let out = tar.tar.into_inner().map_err(io("finishing the tar"))?;
    Ok((out, tar.report))
}

/// A tar being written, with the first path of every inode written so far.
struct TarOut<W: Write> {
    tar: tar::Builder<W>,
    first_path: HashMap<InodeId, Vec<u8>>,
    report: UnpackReport,
}

impl<W: Write> TarOut<W> {
    /// Appends `node`: its PAX records, then its entry (a hard link for a later path).
    fn append(&mut self, reader: &ImageReader, node: NodeId) -> Result<()> {
        let tree = &reader.image().tree;
        let inode = tree.inode_of(node);
        let comps = components(tree, node)?;
        // Names are bytes from tar to tar: written as they are, never lossily.
        let joined = comps.join(&b'/');
        let path = if comps.is_empty() {
            b"./".to_vec()
        } else if inode.is_dir() {
            [joined.as_slice(), b"/"].concat()
        } else {
            joined.clone()
        };
        let shown = tree.display_path(node);
        let failed = |what: std::io::Error| io(format!("writing {shown}"))(what);
        self.append_pax(inode).map_err(failed)?;
        let mut h = tar::Header::new_gnu();
        h.set_mode(inode.mode & 0o7777);
        h.set_uid(u64::from(inode.uid));
        h.set_gid(u64::from(inode.gid));
        h.set_mtime(inode.mtime);
        h.set_size(0);
        let id = tree.node(node).inode;
        if !inode.is_dir() {
            if let Some(first) = self.first_path.get(&id) {
                h.set_entry_type(tar::EntryType::Link);
                return append_raw(
                    &mut self.tar,
                    &mut h,
                    &path,
                    Some(first),
                    &mut std::io::empty(),
                )
                .map_err(failed);
            }
            self.first_path.insert(id, joined);
        }
        self.append_typed(reader, node, &mut h, &path)
            .map_err(|e| match e {
                AppendError::Io(e) => failed(e),
                AppendError::Other(e) => e,
            })
    }

    /// PAX records for xattrs and a sub-second mtime.
    fn append_pax(&mut self, inode: &Inode) -> std::io::Result<()> {
        let mut pax: Vec<(String, Vec<u8>)> = inode.xattrs.iter().map(xattr_record).collect();
        if inode.mtime_nsec != 0 {
            pax.push((
                "mtime".into(),
                format!("{}.{:09}", inode.mtime, inode.mtime_nsec).into_bytes(),
            ));
        }
        if pax.is_empty() {
            return Ok(());
        }
        self.tar
            .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
    }

    /// The entry by file type: a directory, a file with its data, a symlink, a device or fifo.
    fn append_typed(
        &mut self,
        reader: &ImageReader,
        node: NodeId,
        h: &mut tar::Header,
        path: &[u8],
    ) -> std::result::Result<(), AppendError> {
        let tree = &reader.image().tree;
        let inode = tree.inode_of(node);
        let empty = &mut std::io::empty();
        match inode.file_type() {
            mode::S_IFDIR => {
                h.set_entry_type(tar::EntryType::Directory);
                append_raw(&mut self.tar, h, path, None, empty)?;
            }
            mode::S_IFREG => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(inode.size);
                let mut data = reader.file_reader(node).map_err(AppendError::Other)?;
                append_raw(&mut self.tar, h, path, None, &mut data)?;
                self.report.file_bytes += inode.size;
            }
            mode::S_IFLNK => {
                h.set_entry_type(tar::EntryType::Symlink);
                append_raw(&mut self.tar, h, path, Some(&inode.symlink), empty)?;
            }
            t @ (mode::S_IFCHR | mode::S_IFBLK | mode::S_IFIFO) => {
                let (kind, (major, minor)) = match t {
                    mode::S_IFCHR => (tar::EntryType::Char, major_minor(inode.rdev)),
                    mode::S_IFBLK => (tar::EntryType::Block, major_minor(inode.rdev)),
                    _ => (tar::EntryType::Fifo, (0, 0)),
                };
                h.set_entry_type(kind);
                h.set_device_major(major)?;
                h.set_device_minor(minor)?;
                append_raw(&mut self.tar, h, path, None, empty)?;
            }
            _ => {
                let reason = format!("unknown file type {:o}", inode.mode);
                return Err(AppendError::Other(Error::Path {
                    path: tree.display_path(node),
                    reason,
                }));
            }
        }
        Ok(())
    }
}

/// A failure appending one entry: writing (named by the caller) or reading its data.
enum AppendError {
    Io(std::io::Error),
    Other(Error),
}

impl From<std::io::Error> for AppendError {
    fn from(e: std::io::Error) -> Self {
        AppendError::Io(e)
    }
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
    prepare_target(target)?;
    let root = rustix::fs::open(
        target,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(format!("opening {}", show_host(target)))(e.into()))?;
    let tree = &reader.image().tree;
    let mut state = DirUnpack {
        reader,
        tree,
        dirs: DirCache::new(root),
        root_user: rustix::process::geteuid().is_root(),
        report: UnpackReport::default(),
        first_name: HashMap::new(),
        made_dirs: Vec::new(),
    };
    for node in preorder(tree) {
        let inode = tree.inode_of(node);
        limits.check(&state.report, if inode.is_reg() { inode.size } else { 0 })?;
        state.entry(node)?;
    }
    state.finish_dirs()?;
    Ok(state.report)
}

/// The target must not exist (it is created) or be an empty directory.
fn prepare_target(target: &Path) -> Result<()> {
    match std::fs::read_dir(target) {
        Ok(mut d) => {
            if d.next().is_some() {
                return Err(Error::Path {
                    path: show_host(target),
                    reason: "target directory is not empty".into(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(target).map_err(io(format!("creating {}", show_host(target))))
        }
        Err(e) => Err(io(format!("reading {}", show_host(target)))(e)),
    }
}

fn show_host(p: &Path) -> String {
    rafs_format::rules::escape_bytes(p.as_os_str().as_encoded_bytes())
}

/// Directories of the unpack, opened by walking from the target's root inside the kernel
/// (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`), so no path is ever longer than
/// one name, none leads through a symlink or out of the target, and a tree as deep as the
/// format allows unpacks. The last directory opened is kept (siblings share it).
struct DirCache {
    root: OwnedFd,
    last: Option<(NodeId, OwnedFd)>,
}

impl DirCache {
    fn new(root: OwnedFd) -> Self {
        DirCache { root, last: None }
    }

    /// The open directory of `node`.
    fn get(&mut self, tree: &Tree, node: NodeId) -> Result<BorrowedFd<'_>> {
        if self.last.as_ref().map(|(n, _)| *n) != Some(node) {
            let comps = components(tree, node)?;
            let fd = open_beneath(self.root.as_fd(), &comps)
                .map_err(|e| io(format!("opening {}", tree.display_path(node)))(e.into()))?;
            self.last = Some((node, fd));
        }
        match &self.last {
            Some((_, fd)) => Ok(fd.as_fd()),
            None => Err(Error::Path {
                path: tree.display_path(node),
                reason: "directory not open".into(),
            }),
        }
    }
}

/// Opens the directory at `comps` below `root`, a few kilobytes of path at a time.
fn open_beneath(root: BorrowedFd<'_>, comps: &[Vec<u8>]) -> rustix::io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let mut cur = rustix::fs::openat(root, ".", flags, Mode::empty())?;
    let mut i = 0;
    while i < comps.len() {
        let mut chunk = Vec::new();
        while i < comps.len() && chunk.len() + comps[i].len() < 3000 {
            if !chunk.is_empty() {
                chunk.push(b'/');
            }
            chunk.extend_from_slice(&comps[i]);
            i += 1;
        }
        if chunk.is_empty() {
            chunk.extend_from_slice(&comps[i]);
            i += 1;
        }
        let next = rustix::fs::openat2(
            &cur,
            std::ffi::OsStr::from_encoded_bytes_checked(&chunk),
            flags,
            Mode::empty(),
            resolve,
        )?;
        cur = next;
    }
    Ok(cur)
}

/// State of one unpack into a directory.
struct DirUnpack<'r> {
    reader: &'r ImageReader,
    tree: &'r Tree,
    dirs: DirCache,
    root_user: bool,
    report: UnpackReport,
    /// Where each inode with several names was first created: (parent, name).
    first_name: HashMap<InodeId, (NodeId, Vec<u8>)>,
    /// Directories made, in creation order (their attributes are set last).
    made_dirs: Vec<NodeId>,
}

impl DirUnpack<'_> {
    fn entry(&mut self, node: NodeId) -> Result<()> {
        let tree = self.tree;
        let inode = tree.inode_of(node);
        let Some(parent) = tree.node(node).parent else {
            self.made_dirs.push(node);
            return Ok(());
        };
        let name = tree.node(node).name.clone();
        if !safe_name(&name) {
            return Err(Error::Path {
                path: tree.display_path(node),
                reason: "unsafe name".into(),
            });
        }
        let shown = || tree.display_path(node);
        let id = tree.node(node).inode;
        if !inode.is_dir() {
            if let Some((first_parent, first)) = self.first_name.get(&id).cloned() {
                return self.link(node, parent, &name, first_parent, &first);
            }
            self.first_name.insert(id, (parent, name.clone()));
        }
        let dir = self.dirs.get(tree, parent)?;
        let os = std::ffi::OsStr::from_encoded_bytes_checked(&name);
        let fail = |e: rustix::io::Errno| io(format!("creating {}", shown()))(e.into());
        match inode.file_type() {
            mode::S_IFDIR => {
                rustix::fs::mkdirat(dir, os, Mode::from_raw_mode(0o700)).map_err(fail)?;
                self.made_dirs.push(node);
                self.report.entries += 1;
                return Ok(());
            }
            mode::S_IFREG => {
                let fd = rustix::fs::openat(
                    dir,
                    os,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(fail)?;
                let mut f = std::fs::File::from(fd);
                let mut data = self.reader.file_reader(node)?;
                std::io::copy(&mut data, &mut f).map_err(io(format!("writing {}", shown())))?;
                self.report.file_bytes += inode.size;
            }
            mode::S_IFLNK => {
                let target = std::ffi::OsStr::from_encoded_bytes_checked(&inode.symlink);
                rustix::fs::symlinkat(target, dir, os).map_err(fail)?;
            }
            t @ (mode::S_IFCHR | mode::S_IFBLK | mode::S_IFIFO | mode::S_IFSOCK) => {
                if !make_special(tree, node, dir, os, t)? {
                    self.report.devices_skipped += 1;
                    self.first_name.remove(&id);
                    return Ok(());
                }
            }
            _ => {
                return Err(Error::Path {
                    path: shown(),
                    reason: format!("unknown file type {:o}", inode.mode),
                })
            }
        }
        let dir = self.dirs.get(tree, parent)?;
        apply_attrs_at(dir, &name, inode, self.root_user, &mut self.report)
            .map_err(|e| io(format!("setting attributes of {}", shown()))(e.into()))?;
        self.report.entries += 1;
        Ok(())
    }
}

/// Makes a device, FIFO or socket node; `false` when a device was skipped for lack of
/// privilege (as tar does).
fn make_special(
    tree: &Tree,
    node: NodeId,
    dir: BorrowedFd<'_>,
    os: &std::ffi::OsStr,
    t: u32,
) -> Result<bool> {
    {
        let inode = tree.inode_of(node);
        let dev = if t == mode::S_IFIFO || t == mode::S_IFSOCK {
            0
        } else {
            let (ma, mi) = major_minor(inode.rdev);
            rustix::fs::makedev(ma, mi)
        };
        let made = rustix::fs::mknodat(
            dir,
            os,
            rustix::fs::FileType::from_raw_mode(t),
            Mode::from_raw_mode(inode.mode & 0o7777),
            dev,
        );
        match made {
            Err(rustix::io::Errno::PERM) if t == mode::S_IFCHR || t == mode::S_IFBLK => Ok(false),
            other => {
                other.map_err(|e| io(format!("creating {}", tree.display_path(node)))(e.into()))?;
                Ok(true)
            }
        }
    }
}

impl DirUnpack<'_> {
    /// A further name of an inode already created.
    fn link(
        &mut self,
        node: NodeId,
        parent: NodeId,
        name: &[u8],
        first_parent: NodeId,
        first: &[u8],
    ) -> Result<()> {
        let tree = self.tree;
        let shown = || tree.display_path(node);
        let comps = components(tree, first_parent)?;
        let from = open_beneath(self.dirs.root.as_fd(), &comps)
            .map_err(|e| io(format!("linking {}", shown()))(e.into()))?;
        let dir = self.dirs.get(tree, parent)?;
        rustix::fs::linkat(
            &from,
            std::ffi::OsStr::from_encoded_bytes_checked(first),
            dir,
            std::ffi::OsStr::from_encoded_bytes_checked(name),
            AtFlags::empty(),
        )
        .map_err(|e| io(format!("linking {}", shown()))(e.into()))?;
        self.report.entries += 1;
        Ok(())
    }

    /// Directories last, deepest first, so that their permissions and times stick.
    fn finish_dirs(&mut self) -> Result<()> {
        let tree = self.tree;
        for &node in self.made_dirs.iter().rev() {
            let inode = tree.inode_of(node);
            let fail = |e: rustix::io::Errno| {
                io(format!("setting attributes of {}", tree.display_path(node)))(e.into())
            };
            match tree.node(node).parent {
                None => {
                    let root = self.dirs.root.as_fd();
                    apply_attrs_at(root, b".", inode, self.root_user, &mut self.report)
                        .map_err(fail)?;
                }
                Some(parent) => {
                    let name = tree.node(node).name.clone();
                    let dir = self.dirs.get(tree, parent)?;
                    apply_attrs_at(dir, &name, inode, self.root_user, &mut self.report)
                        .map_err(fail)?;
                }
            }
        }
        self.report.entries += 1;
        Ok(())
    }
}

/// Owner, xattrs, mode and times of `name` in `dir`, never following a symlink.
fn apply_attrs_at(
    dir: BorrowedFd<'_>,
    name: &[u8],
    inode: &Inode,
    root_user: bool,
    report: &mut UnpackReport,
) -> rustix::io::Result<()> {
    let os = std::ffi::OsStr::from_encoded_bytes_checked(name);
    if root_user {
        rustix::fs::chownat(
            dir,
            os,
            Some(rustix::fs::Uid::from_raw(inode.uid)),
            Some(rustix::fs::Gid::from_raw(inode.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )?;
    }
    if !inode.xattrs.is_empty() {
        // Through the directory's descriptor: a short path whatever the depth.
        let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
        path.extend_from_slice(name);
        let path = std::ffi::OsStr::from_encoded_bytes_checked(&path);
        for x in &inode.xattrs {
            let xname = std::ffi::OsStr::from_encoded_bytes_checked(&x.name);
            if rustix::fs::lsetxattr(path, xname, &x.value, rustix::fs::XattrFlags::empty())
                .is_err()
            {
                report.xattrs_refused += 1;
            }
        }
    }
    if !inode.is_symlink() {
        rustix::fs::chmodat(
            dir,
            os,
            Mode::from_raw_mode(inode.mode & 0o7777),
            AtFlags::empty(),
        )?;
    }
    let t = rustix::fs::Timespec {
        tv_sec: i64::try_from(inode.mtime).unwrap_or(i64::MAX),
        tv_nsec: inode.mtime_nsec.into(),
    };
    let times = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(dir, os, &times, AtFlags::SYMLINK_NOFOLLOW)
}

trait FromBytesChecked {
    fn from_encoded_bytes_checked(b: &[u8]) -> &std::ffi::OsStr;
}

impl FromBytesChecked for std::ffi::OsStr {
    fn from_encoded_bytes_checked(b: &[u8]) -> &std::ffi::OsStr {
        std::os::unix::ffi::OsStrExt::from_bytes(b)
    }
}
