//! Unpacking an image: to an OCI layer tar (PAX xattrs and time fractions, hard links as tar
//! links, devices and FIFOs, the root's attributes as `./`, deterministic order), or into a
//! directory, never writing outside it.

mod to_dir;
mod to_tar;

pub use to_dir::{unpack_to_dir, unpack_to_dir_with_limits};
pub use to_tar::{unpack_to_tar, unpack_to_tar_with_limits};

use crate::error::{io, Error, Result};
use crate::read::ImageReader;
use rafs_format::model::{mode, Inode, InodeId, NodeId, Tree};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// Paths in depth-first order, children by name: the order entries are written in.
pub(super) fn preorder(tree: &Tree) -> Vec<NodeId> {
    tree.dfs_preorder()
}

/// A name safe to create inside a directory: not empty, `.` or `..`, no `/` or NUL.
pub(super) fn safe_name(name: &[u8]) -> bool {
    !(name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0))
}

/// Relative path components of a node, each checked.
pub(super) fn components(tree: &Tree, node: NodeId) -> Result<Vec<Vec<u8>>> {
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

/// glibc `major`/`minor` of a 32-bit `rdev`.
pub(super) fn major_minor(rdev: u32) -> (u32, u32) {
    use rafs_format::model::dev;
    (dev::major(rdev), dev::minor(rdev))
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
