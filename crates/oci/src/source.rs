//! Where a source image is, named as skopeo names it: `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`,
//! `docker-archive:FILE`. Archives are read into a scratch OCI layout first: member names are
//! checked to be plain relative paths (no `..`, no absolute path, no link leaving the archive)
//! before anything is written, and every blob is named by the digest of its bytes.

use crate::error::{io, unsupported, Error, Result};
use crate::layout::Layout;
use std::fs::File;
use std::path::{Component, Path, PathBuf};

/// An image reference in skopeo's transport syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// An OCI layout directory and an optional tag or digest.
    Oci {
        /// The layout's directory.
        dir: PathBuf,
        /// Tag or `sha256:` digest; `None`: the only image.
        reference: Option<String>,
    },
    /// A tar of an OCI layout.
    OciArchive {
        /// The archive.
        file: PathBuf,
        /// Tag or digest.
        reference: Option<String>,
    },
    /// What `docker save` (or `skopeo copy … docker-archive:`) writes.
    DockerArchive {
        /// The archive.
        file: PathBuf,
    },
    /// An image in a registry: `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`.
    Docker {
        /// `HOST[:PORT]/REPO[:TAG|@DIGEST]`, checked to parse.
        reference: String,
    },
}

impl std::str::FromStr for ImageRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if let Some(rest) = s.strip_prefix("oci:") {
            let (dir, reference) = split_path_and_ref(rest, Path::is_dir)?;
            return Ok(ImageRef::Oci { dir, reference });
        }
        if let Some(rest) = s.strip_prefix("oci-archive:") {
            let (file, reference) = split_path_and_ref(rest, Path::is_file)?;
            return Ok(ImageRef::OciArchive { file, reference });
        }
        if let Some(rest) = s.strip_prefix("docker://") {
            crate::registry::parse_reference(rest)?;
            return Ok(ImageRef::Docker {
                reference: rest.to_owned(),
            });
        }
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            return Ok(ImageRef::DockerArchive {
                file: PathBuf::from(rest),
            });
        }
        Err(unsupported(
            s,
            "expected oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE or \
             docker://HOST/REPO[:TAG|@DIGEST]",
        ))
    }
}

/// Splits `PATH[:REF]` as skopeo does, at the first `:`, except that a longer prefix that
/// `exists` (a directory or archive whose name holds a `:`) is taken as the path first. So
/// `oci:/srv/out:reg.io/app:1.0` names the layout `/srv/out` and the reference
/// `reg.io/app:1.0`. A reference must be an OCI ref name (image-spec annotations:
/// components of letters and digits joined by `.`, `_`, `-`, `:`, `@`, `+`, separated by
/// `/`), the grammar skopeo checks; it is a name, never a path.
fn split_path_and_ref(rest: &str, exists: fn(&Path) -> bool) -> Result<(PathBuf, Option<String>)> {
    let colons = rest.match_indices(':').map(|(i, _)| i);
    let at = colons
        .clone()
        .find(|&i| exists(Path::new(&rest[..i])))
        .or_else(|| colons.clone().next());
    let Some(at) = at else {
        return Ok((PathBuf::from(rest), None));
    };
    let (path, reference) = (&rest[..at], &rest[at + 1..]);
    if !is_ref_name(reference) {
        return Err(unsupported(
            rest,
            format!(
                "{reference:?} is not an OCI reference name (letters, digits, . _ - : @ + and /)"
            ),
        ));
    }
    Ok((PathBuf::from(path), Some(reference.to_owned())))
}

/// image-spec's `org.opencontainers.image.ref.name` grammar:
/// `component ("/" component)*`, `component = alnum+ (separator alnum+)*`,
/// `separator = [-._:@+] | "--"`.
pub fn is_ref_name(r: &str) -> bool {
    !r.is_empty() && r.split('/').all(is_ref_component)
}

fn is_ref_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_alphanumeric();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: one of -._:@+ or "--", then an alphanumeric.
        let sep = if b[i..].starts_with(b"--") { 2 } else { 1 };
        if !b"-._:@+".contains(&b[i]) || !b.get(i + sep).copied().is_some_and(alnum) {
            return false;
        }
        i += sep;
    }
    true
}

impl ImageRef {
    /// The layout and reference to convert from. Archives are read into `scratch`, a
    /// directory the caller removes afterwards.
    pub fn open(&self, scratch: &Path) -> Result<(Layout, Option<String>)> {
        self.open_with(scratch, &crate::registry::RegistryOptions::default())
    }

    /// [`ImageRef::open`], reaching a registry as `registry` says. A registry image's
    /// manifests and configs are cached in `scratch`; its layers are streamed, not stored.
    pub fn open_with(
        &self,
        scratch: &Path,
        registry: &crate::registry::RegistryOptions,
    ) -> Result<(Layout, Option<String>)> {
        match self {
            ImageRef::Docker { reference } => {
                let image = crate::registry::parse_reference(reference)?;
                let wanted = image.digest().or(image.tag()).map(str::to_owned);
                let client = crate::registry::Registry::connect(image, registry)?;
                Ok((
                    Layout::remote(scratch, std::sync::Arc::new(client))?,
                    wanted,
                ))
            }
            ImageRef::Oci { dir, reference } => Ok((Layout::open(dir)?, reference.clone())),
            ImageRef::OciArchive { file, reference } => {
                extract_oci_archive(file, scratch)?;
                Ok((Layout::open(scratch)?, reference.clone()))
            }
            ImageRef::DockerArchive { file } => Ok((
                crate::docker_archive::docker_archive_layout(file, scratch)?,
                None,
            )),
        }
    }
}

/// A member name as relative components, refusing `..`, absolute paths and empty names.
pub(crate) fn safe_name(name: &[u8], archive: &Path) -> Result<PathBuf> {
    let text = std::str::from_utf8(name)
        .map_err(|_| unsupported(archive.display().to_string(), "a member name is not UTF-8"))?;
    let mut out = PathBuf::new();
    for c in Path::new(text).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => {
                return Err(unsupported(
                    archive.display().to_string(),
                    format!("member {text:?} leaves the archive"),
                ))
            }
        }
    }
    Ok(out)
}

/// Writes an OCI archive's directories and regular files below `dest`; any other member
/// (links, devices) is refused.
fn extract_oci_archive(file: &Path, dest: &Path) -> Result<()> {
    let mut archive = tar::Archive::new(open_archive(file)?);
    for entry in archive.entries().map_err(io(file))? {
        let mut entry = entry.map_err(io(file))?;
        let rel = safe_name(&entry.path_bytes(), file)?;
        let path = dest.join(&rel);
        match entry.header().entry_type() {
            tar::EntryType::Directory => std::fs::create_dir_all(&path).map_err(io(&path))?,
            tar::EntryType::Regular => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io(parent))?;
                }
                let mut out = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(io(&path))?;
                std::io::copy(&mut entry, &mut out).map_err(io(&path))?;
            }
            other => {
                return Err(unsupported(
                    file.display().to_string(),
                    format!("member {} is a {other:?}, not a file", rel.display()),
                ))
            }
        }
    }
    Ok(())
}

/// Opens an archive the user named: without blocking on a FIFO, and only a regular file (an
/// archive is read more than once, so a pipe would not do).
pub(crate) fn open_archive(file: &Path) -> Result<File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    let fd = rustix::fs::open(file, flags, Mode::empty()).map_err(|e| io(file)(e.into()))?;
    let f = File::from(fd);
    if !f.metadata().map_err(io(file))?.is_file() {
        return Err(unsupported(
            file.display().to_string(),
            "an archive must be a regular file",
        ));
    }
    Ok(f)
}
