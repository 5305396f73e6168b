//! Unpacking into a directory, never writing outside it.

use super::*;

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
pub(super) fn prepare_target(target: &Path) -> Result<()> {
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

pub(super) fn show_host(p: &Path) -> String {
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
pub(super) fn open_beneath(root: BorrowedFd<'_>, comps: &[Vec<u8>]) -> rustix::io::Result<OwnedFd> {
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
pub(super) fn make_special(
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
pub(super) fn apply_attrs_at(
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
