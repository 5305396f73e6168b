//! `docker-archive:FILE` (what `docker save` and `skopeo copy … docker-archive:` write), read
//! as skopeo reads it: `manifest.json` names one image's config and layer members; a member
//! may be a symlink to another member (one hop), and must then be a regular file. The archive
//! is indexed in one pass and members are read by their offset, not found by re-reading the
//! archive per layer. Each layer is the uncompressed tar the config's `rootfs.diff_ids` names
//! at its position, so its digest as stored must be that diff_id; a layer that is not is
//! refused before anything is built from it.

use crate::error::{io, json, unsupported, Result};
use crate::layout::{Layout, VerifiedReader, REF_NAME};
use crate::source::{open_archive, safe_name};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Most members an archive may list (a layer per member, and a few documents).
const MAX_MEMBERS: usize = 100_000;

/// What a member is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Member {
    /// A regular file: where its bytes are in the archive, and how many.
    File { offset: u64, size: u64 },
    /// A symlink, its target resolved inside the archive.
    Link(PathBuf),
    /// Anything else (directories, devices, hard links): never read.
    Other,
}

/// Every member of an archive by name, from one pass.
struct ArchiveIndex {
    file: File,
    path: PathBuf,
    members: HashMap<PathBuf, Member>,
}

impl ArchiveIndex {
    fn new(path: &Path) -> Result<Self> {
        let mut archive = tar::Archive::new(open_archive(path)?);
        let mut members = HashMap::new();
        for entry in archive.entries().map_err(io(path))? {
            let entry = entry.map_err(io(path))?;
            let name = safe_name(&entry.path_bytes(), path)?;
            let member = match entry.header().entry_type() {
                tar::EntryType::Regular => Member::File {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                },
                tar::EntryType::Symlink => {
                    let link = entry.link_name_bytes().unwrap_or_default();
                    let joined = name
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(String::from_utf8_lossy(&link).as_ref());
                    Member::Link(normalise_inside(&joined, path)?)
                }
                _ => Member::Other,
            };
            members.insert(name, member);
            if members.len() > MAX_MEMBERS {
                return Err(unsupported(
                    path.display().to_string(),
                    format!("more than {MAX_MEMBERS} members"),
                ));
            }
        }
        let file = archive.into_inner();
        Ok(ArchiveIndex {
            file,
            path: path.to_owned(),
            members,
        })
    }

    /// The regular member `name` resolves to (one symlink hop, as skopeo follows): its
    /// offset and size.
    fn resolve(&self, name: &str) -> Result<(u64, u64)> {
        let wanted = safe_name(name.as_bytes(), &self.path)?;
        let member = match self.members.get(&wanted) {
            Some(Member::Link(target)) => self.members.get(target),
            other => other,
        };
        let refuse = |why: &str| {
            Err(unsupported(
                self.path.display().to_string(),
                format!("{name} {why}"),
            ))
        };
        match member {
            Some(Member::File { offset, size }) => Ok((*offset, *size)),
            None => refuse("is missing"),
            Some(_) => refuse("is not a regular file"),
        }
    }

    /// A reader of the member `name`'s bytes.
    fn open(&self, name: &str) -> Result<MemberReader<'_>> {
        let (offset, size) = self.resolve(name)?;
        Ok(MemberReader {
            file: &self.file,
            at: offset,
            end: offset + size,
        })
    }

    /// The bytes of a small member.
    fn read(&self, name: &str, max: u64) -> Result<Vec<u8>> {
        let (_, size) = self.resolve(name)?;
        if size > max {
            return Err(unsupported(
                self.path.display().to_string(),
                format!("{name} is larger than {max} bytes"),
            ));
        }
        let mut out = Vec::new();
        self.open(name)?
            .read_to_end(&mut out)
            .map_err(io(&self.path))?;
        Ok(out)
    }
}

/// A member's bytes, read in place with `pread`.
struct MemberReader<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for MemberReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = usize::try_from(self.end - self.at).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let n = std::os::unix::fs::FileExt::read_at(self.file, &mut buf[..want], self.at)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.at += n as u64;
        Ok(n)
    }
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

/// What a docker archive's `manifest.json` says of its one image.
struct DockerManifest {
    config: String,
    layers: Vec<String>,
    tag: Option<String>,
}

/// Reads a docker archive into an OCI layout at `dest` holding one Docker v2 manifest.
pub(crate) fn docker_archive_layout(file: &Path, dest: &Path) -> Result<Layout> {
    let layout = Layout::create(dest)?;
    let archive = ArchiveIndex::new(file)?;
    let m = parse_docker_manifest(&archive.read("manifest.json", 1 << 20)?, file)?;
    let what = format!("{} manifest.json", file.display());
    crate::ImageLimits::default().check_layers(m.layers.len(), &what)?;
    let config = archive.read(&m.config, crate::layout::MAX_JSON)?;
    let diff_ids = diff_ids(&config, m.layers.len(), file)?;
    let config_digest = layout.write_blob(&config)?;
    let mut layers = Vec::with_capacity(m.layers.len());
    for (name, diff_id) in m.layers.iter().zip(&diff_ids) {
        let (_, size) = archive.resolve(name)?;
        let mut verified = VerifiedReader::new(archive.open(name)?, diff_id, size);
        let mut w = layout.blob_writer()?;
        std::io::copy(&mut verified, &mut w).map_err(|e| {
            unsupported(
                format!("{} layer {name}", file.display()),
                format!("is not the layer the config's diff_id {diff_id} names: {e}"),
            )
        })?;
        let (digest, size) = w.commit()?;
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

/// The config's `rootfs.diff_ids`: one `sha256:` digest per layer of the manifest.
fn diff_ids(config: &[u8], layers: usize, file: &Path) -> Result<Vec<String>> {
    let what = format!("{} config", file.display());
    let v: Value = serde_json::from_slice(config).map_err(|e| json(&what, e))?;
    let ids = v["rootfs"]["diff_ids"]
        .as_array()
        .ok_or_else(|| json(&what, "no rootfs.diff_ids"))?;
    if ids.len() != layers {
        return Err(json(
            &what,
            format!("{} diff_ids for {layers} layers", ids.len()),
        ));
    }
    ids.iter()
        .map(|id| {
            id.as_str()
                .filter(|s| crate::layout::sha256_hex(s).is_some())
                .map(str::to_owned)
                .ok_or_else(|| json(&what, format!("diff_id {id} is not a sha256 digest")))
        })
        .collect()
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
