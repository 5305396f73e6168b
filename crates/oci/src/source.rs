//! Where a source image is, named as skopeo names it: `oci:DIR[:REF]`, `oci-archive:FILE[:REF]`,
//! `docker-archive:FILE`. Archives are read into a scratch OCI layout first: member names are
//! checked to be plain relative paths (no `..`, no absolute path, no link leaving the archive)
//! before anything is written, and every blob is named by the digest of its bytes.

use crate::error::{io, json, unsupported, Error, Result};
use crate::layout::{Layout, REF_NAME};
use serde_json::{json, Value};
use std::collections::HashMap;
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
        if let Some(rest) = s.strip_prefix("docker-archive:") {
            return Ok(ImageRef::DockerArchive {
                file: PathBuf::from(rest),
            });
        }
        Err(unsupported(
            s,
            "expected oci:DIR[:REF], oci-archive:FILE[:REF] or docker-archive:FILE",
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
        match self {
            ImageRef::Oci { dir, reference } => Ok((Layout::open(dir)?, reference.clone())),
            ImageRef::OciArchive { file, reference } => {
                extract_oci_archive(file, scratch)?;
                Ok((Layout::open(scratch)?, reference.clone()))
            }
            ImageRef::DockerArchive { file } => Ok((docker_archive_layout(file, scratch)?, None)),
        }
    }
}

/// A member name as relative components, refusing `..`, absolute paths and empty names.
fn safe_name(name: &[u8], archive: &Path) -> Result<PathBuf> {
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
    let mut archive = tar::Archive::new(File::open(file).map_err(io(file))?);
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

/// What a docker archive's `manifest.json` says of its one image.
struct DockerManifest {
    config: String,
    layers: Vec<String>,
    tag: Option<String>,
}

/// Reads a docker archive into an OCI layout at `dest` holding one Docker v2 manifest.
fn docker_archive_layout(file: &Path, dest: &Path) -> Result<Layout> {
    let layout = Layout::create(dest)?;
    let members = archive_members(file)?;
    let manifest_bytes = read_member(file, &members, "manifest.json", 1 << 20)?;
    let m = parse_docker_manifest(&manifest_bytes, file)?;
    let config = read_member(file, &members, &m.config, crate::layout::MAX_JSON)?;
    let config_digest = layout.write_blob(&config)?;
    let mut layers = Vec::with_capacity(m.layers.len());
    for name in &m.layers {
        let (digest, size) = copy_member(file, &members, name, &layout)?;
        layers.push(json!({"mediaType": "application/vnd.docker.image.rootfs.diff.tar", "digest": digest, "size": size}));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": crate::convert::MEDIA_TYPE_DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers,
    });
    let (digest, size) = layout.write_json(&manifest)?;
    let mut desc = json!({"mediaType": crate::convert::MEDIA_TYPE_DOCKER_MANIFEST, "digest": digest, "size": size});
    if let Some(tag) = m.tag {
        desc["annotations"] = json!({ REF_NAME: tag });
    }
    let index = json!({"schemaVersion": 2, "manifests": [desc]});
    layout.write_index(&serde_json::from_value(index).map_err(|e| json("index.json", e))?)?;
    Ok(layout)
}

fn parse_docker_manifest(bytes: &[u8], file: &Path) -> Result<DockerManifest> {
    let what = format!("{} manifest.json", file.display());
    let v: Value = serde_json::from_slice(bytes).map_err(|e| json(&what, e))?;
    let images = v.as_array().ok_or_else(|| json(&what, "not a list"))?;
    let [image] = images.as_slice() else {
        return Err(unsupported(
            &what,
            format!("{} images; exactly one is converted", images.len()),
        ));
    };
    let config = image["Config"]
        .as_str()
        .ok_or_else(|| json(&what, "no Config"))?
        .to_owned();
    let layers = image["Layers"]
        .as_array()
        .ok_or_else(|| json(&what, "no Layers"))?;
    let layers = layers
        .iter()
        .map(|l| {
            l.as_str()
                .map(str::to_owned)
                .ok_or_else(|| json(&what, "a layer is not a name"))
        })
        .collect::<Result<_>>()?;
    let tag = image["RepoTags"]
        .get(0)
        .and_then(Value::as_str)
        .map(|t| t.rsplit_once(':').map_or(t, |(_, tag)| tag).to_owned());
    Ok(DockerManifest {
        config,
        layers,
        tag,
    })
}

/// Each member's type and, for symlinks, its target resolved inside the archive.
fn archive_members(file: &Path) -> Result<HashMap<PathBuf, Option<PathBuf>>> {
    let mut archive = tar::Archive::new(File::open(file).map_err(io(file))?);
    let mut members = HashMap::new();
    for entry in archive.entries().map_err(io(file))? {
        let entry = entry.map_err(io(file))?;
        let name = safe_name(&entry.path_bytes(), file)?;
        let target = match entry.header().entry_type() {
            tar::EntryType::Symlink => {
                let link = entry.link_name_bytes().unwrap_or_default();
                let joined = name
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(String::from_utf8_lossy(&link).as_ref());
                Some(normalise_inside(&joined, file)?)
            }
            _ => None,
        };
        members.insert(name, target);
    }
    Ok(members)
}

/// A path with `..` resolved lexically; refused if it climbs out of the archive.
fn normalise_inside(p: &Path, archive: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::CurDir => {}
            Component::ParentDir if out.pop() => {}
            _ => {
                return Err(unsupported(
                    archive.display().to_string(),
                    format!("link {} leaves the archive", p.display()),
                ))
            }
        }
    }
    Ok(out)
}

/// The regular member a name resolves to (one symlink hop inside the archive).
fn resolve_member(
    members: &HashMap<PathBuf, Option<PathBuf>>,
    name: &str,
    file: &Path,
) -> Result<PathBuf> {
    let path = safe_name(name.as_bytes(), file)?;
    match members.get(&path) {
        Some(Some(target)) if members.get(target) == Some(&None) => Ok(target.clone()),
        Some(None) => Ok(path),
        _ => Err(unsupported(
            file.display().to_string(),
            format!("{name} is not a file of the archive"),
        )),
    }
}

/// The bytes of a small member.
fn read_member(
    file: &Path,
    members: &HashMap<PathBuf, Option<PathBuf>>,
    name: &str,
    max: u64,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    with_member(file, members, name, |r| {
        std::io::Read::read_to_end(&mut std::io::Read::take(r, max + 1), &mut out).map(|_| ())
    })?;
    if out.len() as u64 > max {
        return Err(unsupported(
            file.display().to_string(),
            format!("{name} is larger than {max} bytes"),
        ));
    }
    Ok(out)
}

/// Streams a member into a blob of `layout`; returns its digest and size.
fn copy_member(
    file: &Path,
    members: &HashMap<PathBuf, Option<PathBuf>>,
    name: &str,
    layout: &Layout,
) -> Result<(String, u64)> {
    let mut w = layout.blob_writer()?;
    with_member(file, members, name, |r| {
        std::io::copy(r, &mut w).map(|_| ())
    })?;
    w.commit()
}

/// Calls `f` on the member `name` resolves to.
fn with_member(
    file: &Path,
    members: &HashMap<PathBuf, Option<PathBuf>>,
    name: &str,
    mut f: impl FnMut(&mut dyn std::io::Read) -> std::io::Result<()>,
) -> Result<()> {
    let wanted = resolve_member(members, name, file)?;
    let mut archive = tar::Archive::new(File::open(file).map_err(io(file))?);
    for entry in archive.entries().map_err(io(file))? {
        let mut entry = entry.map_err(io(file))?;
        if safe_name(&entry.path_bytes(), file)? == wanted {
            return f(&mut entry).map_err(io(file));
        }
    }
    Err(unsupported(
        file.display().to_string(),
        format!("{name} is missing"),
    ))
}
