//! Semantic checks beyond what decoding validates: chunk references against the blob table,
//! and whether the bytes follow the reference's layout rules.

use crate::model::{FsVersion, Image, NodeId};

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
        if inode.is_reg() {
            check_chunks(image, id, &mut out);
        }
    }
    if image.v6_chunk_table.is_some() {
        out.push(Finding::Warning(
            "the chunk table is not the one the tree implies (some chunk address names several records, as the reference's layered builds and merges without blob ids write); data may read back wrong".into(),
        ));
    }
    if !bytes.is_empty() {
        check_layout(image, bytes, &mut out);
    }
    out
}

/// A regular file's chunks against its size and the blob table.
fn check_chunks(image: &Image, id: NodeId, out: &mut Vec<Finding>) {
    let tree = &image.tree;
    let inode = tree.inode_of(id);
    let cs = u64::from(image.superblock.chunk_size);
    for (k, c) in inode.chunks.iter().enumerate() {
        let mut error = |what: String| {
            out.push(Finding::Error(format!(
                "{}: chunk {k} {what}",
                tree.display_path(id)
            )))
        };
        let Some(blob) = image.blobs.get(c.blob_index as usize) else {
            error(format!(
                "names blob {} of {}",
                c.blob_index,
                image.blobs.len()
            ));
            continue;
        };
        let want = inode.size.saturating_sub(k as u64 * cs).min(cs);
        if u64::from(c.uncompressed_size) != want && !image.superblock.tarfs {
            error(format!(
                "holds {} bytes, the file needs {want}",
                c.uncompressed_size
            ));
        }
        if blob.chunk_count > 0 && c.index >= blob.chunk_count {
            error(format!(
                "has index {} but blob {} has {} chunks",
                c.index, c.blob_index, blob.chunk_count
            ));
        }
        let end = |off: u64, size: u32| off.saturating_add(u64::from(size));
        if blob.uncompressed_size > 0
            && end(c.uncompressed_offset, c.uncompressed_size) > blob.uncompressed_size
        {
            error("ends past the blob's uncompressed size".into());
        }
        if blob.compressed_size > 0
            && end(c.compressed_offset, c.compressed_size) > blob.compressed_size
        {
            error("ends past the blob's compressed size".into());
        }
    }
}

/// Whether the bytes are laid out as the reference lays them out (re-encoding gives them).
fn check_layout(image: &Image, bytes: &[u8], out: &mut Vec<Finding>) {
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
