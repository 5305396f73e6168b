//! Unpacking to an OCI layer tar.

use super::*;

/// Appends an entry whose name (and link target) are raw bytes: written into the header
/// as they are, or, when longer than its 100-byte field, as a GNU long name (long link)
/// record before it. (The tar crate's own path setters reinterpret and split names.)
pub(super) fn append_raw<W: Write>(
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
pub(super) fn append_long<W: Write>(
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
pub(super) fn xattr_record(x: &rafs_format::model::Xattr) -> (String, Vec<u8>) {
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
