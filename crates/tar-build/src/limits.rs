//! Budgets of one layer: what a conversion may spend in total, whatever each entry looks like
//! on its own. A small hostile tar must not buy a huge bootstrap, hours of work on holes or
//! gigabytes of memory; every budget trips with a typed error naming the entry where it did.

use crate::error::EntryErrorKind as K;

/// Layer-wide limits of a conversion. Exceeding one is [`EntryErrorKind::LimitExceeded`]
/// (`K` here) for the entry that tripped it.
///
/// [`EntryErrorKind::LimitExceeded`]: crate::EntryErrorKind::LimitExceeded
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BuildLimits {
    /// Most tar entries (extension headers not counted).
    pub max_entries: u64,
    /// Most paths in the image, implicit parents included (what a decoder accepts by
    /// default, so every image written reads back).
    pub max_paths: u64,
    /// Most chunk references in the layer, over all files.
    pub max_chunks: u64,
    /// Most bytes of file contents in the layer (a sparse file's real size).
    pub max_file_bytes: u64,
    /// Most xattr bytes (names and values) over all inodes.
    pub max_xattr_bytes: u64,
    /// Largest PAX global header read (it is checked to parse, then skipped).
    pub max_global_pax_bytes: u64,
    /// Most bytes of sparse files' real sizes (holes included) over the layer: holes cost
    /// nothing in the tar but are chunked, digested and compressed like data.
    pub max_sparse_bytes: u64,
    /// Most prefetch patterns.
    pub max_prefetch_patterns: usize,
}

impl Default for BuildLimits {
    fn default() -> Self {
        BuildLimits {
            max_entries: 1 << 22,
            max_paths: rafs_format::Limits::default().max_nodes,
            max_chunks: 1 << 22,
            max_file_bytes: 1 << 40,
            max_xattr_bytes: 64 << 20,
            max_global_pax_bytes: 1 << 20,
            max_sparse_bytes: 16 << 30,
            max_prefetch_patterns: 1 << 20,
        }
    }
}

/// What a conversion has spent so far.
#[derive(Debug)]
pub(crate) struct Budget {
    limits: BuildLimits,
    entries: u64,
    chunks: u64,
    file_bytes: u64,
    xattr_bytes: u64,
    sparse_bytes: u64,
}

fn spend(used: &mut u64, amount: u64, max: u64, limit: &'static str) -> Result<(), K> {
    let value = used.saturating_add(amount);
    if value > max {
        return Err(K::LimitExceeded { limit, value, max });
    }
    *used = value;
    Ok(())
}

impl Budget {
    pub(crate) fn new(limits: BuildLimits) -> Self {
        Budget {
            limits,
            entries: 0,
            chunks: 0,
            file_bytes: 0,
            xattr_bytes: 0,
            sparse_bytes: 0,
        }
    }

    /// One more entry.
    pub(crate) fn entry(&mut self) -> Result<(), K> {
        spend(&mut self.entries, 1, self.limits.max_entries, "max_entries")
    }

    /// The image now has `paths` paths.
    pub(crate) fn paths(&self, paths: u64) -> Result<(), K> {
        let max = self.limits.max_paths;
        if paths > max {
            return Err(K::LimitExceeded {
                limit: "max_paths",
                value: paths,
                max,
            });
        }
        Ok(())
    }

    /// A file of `size` bytes cut into chunks of `chunk_size`.
    pub(crate) fn file(&mut self, size: u64, chunk_size: u64) -> Result<(), K> {
        spend(
            &mut self.file_bytes,
            size,
            self.limits.max_file_bytes,
            "max_file_bytes",
        )?;
        let chunks = size.div_ceil(chunk_size);
        spend(
            &mut self.chunks,
            chunks,
            self.limits.max_chunks,
            "max_chunks",
        )
    }

    /// An inode's xattrs.
    pub(crate) fn xattrs(&mut self, xattrs: &[rafs_format::model::Xattr]) -> Result<(), K> {
        let bytes = xattrs
            .iter()
            .map(|x| (x.name.len() + x.value.len()) as u64)
            .sum();
        spend(
            &mut self.xattr_bytes,
            bytes,
            self.limits.max_xattr_bytes,
            "max_xattr_bytes",
        )
    }

    /// A sparse file of `real` bytes.
    pub(crate) fn sparse(&mut self, real: u64) -> Result<(), K> {
        spend(
            &mut self.sparse_bytes,
            real,
            self.limits.max_sparse_bytes,
            "max_sparse_bytes",
        )
    }
}
