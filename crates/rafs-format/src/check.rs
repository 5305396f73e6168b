//! Semantic checks beyond what decoding validates: chunk references against the blob table,
//! and whether the bytes follow the reference's layout rules.

use crate::model::{FsVersion, Image};

/// One result of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// The image is not valid.
    Error(String),
    /// Valid, but not as the reference would write it, or suspicious.
    Warning(String),
}

/// Checks a decoded image (and, when given, the bytes it was decoded from).
pub fn check(image: &Image, bytes: &[u8]) -> Vec<Finding> {
    let mut out = Vec::new();
    let tree = &image.tree;
    let cs = image.superblock.chunk_size as u64;
    for id in tree.dfs_preorder() {
        let inode = tree.inode_of(id);
        if inode.is_symlink() && inode.symlink.len() > crate::rules::MAX_EXTRACTABLE_SYMLINK {
            out.push(Finding::Error(format!(
                "{}: symlink target of {} bytes; no system can create one over {}",
                tree.display_path(id),
                inode.symlink.len(),
                crate::rules::MAX_EXTRACTABLE_SYMLINK
            )));
        }
        if !inode.is_reg() {
            continue;
        }
        for (k, c) in inode.chunks.iter().enumerate() {
            let path = || tree.path(id);
            let Some(blob) = image.blobs.get(c.blob_index as usize) else {
                out.push(Finding::Error(format!(
                    "{}: chunk {k} names blob {} of {}",
                    path(),
                    c.blob_index,
                    image.blobs.len()
                )));
                continue;
            };
            let want = (inode.size - (k as u64 * cs)).min(cs);
            if c.uncompressed_size as u64 != want && !image.superblock.tarfs {
                out.push(Finding::Error(format!(
                    "{}: chunk {k} holds {} bytes, the file needs {want}",
                    path(),
                    c.uncompressed_size
                )));
            }
            if blob.chunk_count > 0 && c.index >= blob.chunk_count {
                out.push(Finding::Error(format!(
                    "{}: chunk {k} has index {} but blob {} has {} chunks",
                    path(),
                    c.index,
                    c.blob_index,
                    blob.chunk_count
                )));
            }
            if blob.uncompressed_size > 0
                && c.uncompressed_offset + c.uncompressed_size as u64 > blob.uncompressed_size
            {
                out.push(Finding::Error(format!(
                    "{}: chunk {k} ends past the blob's uncompressed size",
                    path()
                )));
            }
            if blob.compressed_size > 0
                && c.compressed_offset + c.compressed_size as u64 > blob.compressed_size
            {
                out.push(Finding::Error(format!(
                    "{}: chunk {k} ends past the blob's compressed size",
                    path()
                )));
            }
        }
    }
    if image.v6_chunk_table.is_some() {
        out.push(Finding::Warning(
            "the chunk table is not the one the tree implies (some chunk address names several records, as the reference's layered builds and merges without blob ids write); data may read back wrong".into(),
        ));
    }
    if !bytes.is_empty() {
        match crate::encode(image) {
            Ok(again) if again == bytes => {}
            Ok(_) => out.push(Finding::Warning(format!(
                "valid, but not laid out as the reference lays out {}",
                if image.superblock.fs_version == FsVersion::V5 {
                    "v5"
                } else {
                    "v6"
                }
            ))),
            Err(e) => out.push(Finding::Error(format!("cannot be re-encoded: {e}"))),
        }
    }
    out
}
