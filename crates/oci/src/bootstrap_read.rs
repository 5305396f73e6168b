//! Reading a bootstrap layer back (check-image, chunk-dictionary images, merge-platform
//! sources): streamed and strict. containerd applies the layer in order, so a second
//! `image/image.boot` replaces the first on disk; a reader that took the first would check one
//! bootstrap while nydus-snapshotter mounts another. So the layer must hold exactly what the
//! Go converter writes (spec image.md §2.1): the `image` directory, one `image/image.boot`,
//! and at most one `image/<hex>.blob.meta` per blob, all regular files; anything else (a
//! duplicate, another name, a link, a device, a global PAX header) is refused by name.
//!
//! The gzip stream is inflated as it is read; only `image.boot` is kept, under a budget that
//! grows with the compressed size, so a small layer cannot make the reader allocate much.

use crate::error::{json, Result};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeSet;
use std::io::{self, Read};

/// Largest bootstrap kept in memory, whatever the layer's size.
pub const MAX_BOOTSTRAP: u64 = 512 << 20;
/// A bootstrap may be at most this many times its layer's compressed size (and at least
/// [`MIN_BOOTSTRAP_BUDGET`]): deflate reaches ~1000:1 on zeros, real bootstraps far less.
const MAX_RATIO: u64 = 256;
/// The bootstrap budget of a small layer.
const MIN_BOOTSTRAP_BUDGET: u64 = 64 << 20;
/// Largest uncompressed tar read through, for the diff_id.
const MAX_TAR: u64 = 4 << 30;

/// What a bootstrap layer holds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BootstrapLayerContents {
    /// `image/image.boot`.
    pub bootstrap: Vec<u8>,
    /// `sha256:` of the uncompressed tar, the layer's diff_id.
    pub diff_id: String,
    /// The hex names of its `image/<hex>.blob.meta` files, sorted.
    pub blob_metas: Vec<String>,
}

/// Reads a gzip bootstrap layer of `compressed_size` bytes from `gzip`.
pub fn read_bootstrap_layer<R: Read>(
    gzip: R,
    compressed_size: u64,
) -> Result<BootstrapLayerContents> {
    let budget = compressed_size
        .saturating_mul(MAX_RATIO)
        .clamp(MIN_BOOTSTRAP_BUDGET, MAX_BOOTSTRAP);
    let inflated = flate2::read::MultiGzDecoder::new(io::BufReader::new(gzip));
    let mut hashed = HashingReader {
        inner: inflated.take(MAX_TAR + 1),
        hash: Sha256::new(),
        read: 0,
    };
    let mut found = Members::default();
    {
        let mut archive = tar::Archive::new(&mut hashed);
        for entry in archive.entries().map_err(fail)? {
            let mut entry = entry.map_err(fail)?;
            found.take(&mut entry, budget)?;
        }
    }
    end_marker_as_go(&mut hashed)?;
    // What follows the end marker is not part of the layer, but is part of its diff_id.
    io::copy(&mut hashed, &mut io::sink()).map_err(fail)?;
    if hashed.read > MAX_TAR {
        return Err(fail(format!(
            "uncompressed tar larger than {MAX_TAR} bytes"
        )));
    }
    let bootstrap = found
        .bootstrap
        .ok_or_else(|| fail(format!("no {}", crate::bootstrap_layer::BOOTSTRAP_PATH)))?;
    Ok(BootstrapLayerContents {
        bootstrap,
        diff_id: format!("sha256:{}", rafs_format::hex(&hashed.hash.finalize())),
        blob_metas: found.blob_metas.into_iter().collect(),
    })
}

/// The tar reader stopped at a zero block. Go's `archive/tar`, which containerd applies
/// layers with, then reads one more block: end of data or a second zero block end the
/// archive; a partial block or a header is an error, so the layer does not apply.
fn end_marker_as_go(r: &mut impl Read) -> Result<()> {
    let mut block = [0u8; 512];
    let mut got = 0;
    while got < block.len() {
        match r.read(&mut block[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(fail(e)),
        }
    }
    if got == 0 || (got == block.len() && block.iter().all(|&b| b == 0)) {
        return Ok(());
    }
    Err(fail(
        "one zero block followed by data: Go's archive/tar (containerd) refuses this tar",
    ))
}

fn fail(e: impl std::fmt::Display) -> crate::Error {
    json("bootstrap layer", e)
}

/// The members seen so far.
#[derive(Default)]
struct Members {
    dir_seen: bool,
    bootstrap: Option<Vec<u8>>,
    blob_metas: BTreeSet<String>,
}

impl Members {
    /// Takes one member: refuses what the Go converter never writes and every duplicate.
    fn take<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, budget: u64) -> Result<()> {
        let name = clean_name(&entry.path_bytes())?;
        let kind = entry.header().entry_type();
        let shown = rafs_format::rules::escape_bytes(name.as_bytes());
        let duplicate = || {
            fail(format!(
                "{shown} appears twice (containerd would keep the last)"
            ))
        };
        match (name.as_str(), kind) {
            ("image", tar::EntryType::Directory) => {
                if std::mem::replace(&mut self.dir_seen, true) {
                    return Err(duplicate());
                }
            }
            ("image/image.boot", tar::EntryType::Regular) => {
                if self.bootstrap.is_some() {
                    return Err(duplicate());
                }
                self.bootstrap = Some(read_bounded(entry, budget)?);
            }
            (n, tar::EntryType::Regular) if blob_meta_hex(n).is_some() => {
                let hex = blob_meta_hex(n).unwrap_or_default().to_owned();
                if !self.blob_metas.insert(hex) {
                    return Err(duplicate());
                }
                io::copy(entry, &mut io::sink()).map_err(fail)?;
            }
            (_, kind) => {
                return Err(fail(format!(
                    "unexpected member {shown} ({}); a bootstrap layer holds image/, \
                     image/image.boot and image/<blob>.blob.meta files only",
                    kind_name(kind)
                )))
            }
        }
        Ok(())
    }
}

/// A member name as containerd's applier resolves it (`filepath.Clean`, rooted): empty and
/// `.` components dropped; `..` refused, as the applier would keep it inside the root anyway
/// and no converter writes it.
fn clean_name(raw: &[u8]) -> Result<String> {
    let text = std::str::from_utf8(raw).map_err(|_| fail("a member name is not UTF-8"))?;
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                let shown = rafs_format::rules::escape_bytes(raw);
                return Err(fail(format!("member {shown} climbs with ..")));
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// `hex` of `image/<hex>.blob.meta` (64 lowercase hex digits).
fn blob_meta_hex(name: &str) -> Option<&str> {
    let hex = name.strip_prefix("image/")?.strip_suffix(".blob.meta")?;
    crate::layout::sha256_hex(&format!("sha256:{hex}")).map(|_| hex)
}

fn kind_name(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Regular => "a regular file".into(),
        tar::EntryType::Directory => "a directory".into(),
        tar::EntryType::Symlink => "a symlink".into(),
        tar::EntryType::Link => "a hard link".into(),
        tar::EntryType::XGlobalHeader => "a PAX global header".into(),
        other => format!("tar type {:?}", other.as_byte() as char),
    }
}

/// The member's bytes, refused past `budget` (grown as they arrive, never from the header).
fn read_bounded<R: Read>(entry: &mut tar::Entry<'_, R>, budget: u64) -> Result<Vec<u8>> {
    if entry.header().size().map_err(fail)? > budget {
        return Err(fail(format!(
            "image/image.boot is larger than {budget} bytes, the budget for this layer"
        )));
    }
    let mut out = Vec::new();
    entry.take(budget + 1).read_to_end(&mut out).map_err(fail)?;
    Ok(out)
}

/// A reader that hashes and counts what passes through it.
struct HashingReader<R> {
    inner: R,
    hash: Sha256,
    read: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}
