//! The RAFS v6 codec: [`decode`] a v6 bootstrap (an EROFS image with nydus extensions) into
//! the model, [`encode`] the model with the reference's placement rules
//! (`docs/format/rafs-v6.md`).

mod decode;
mod encode;
pub(crate) mod xattr;

pub use decode::{decode, decode_with_limits};
pub use encode::{encode, encode_with_plan, plan, DeviceSpan, Plan};

/// Block size of tarfs images.
pub const TARFS_BLOCK_SIZE: u64 = 512;
/// Block size of other images.
pub const BLOCK_SIZE: u64 = 4096;

use crate::model::{ChunkInfo, NodeId, Tree};
use std::collections::BTreeMap;

/// The chunk table the reference writes for a tree: one record per distinct
/// (digest, blob index), the last chunk in inode-numbering order winning, sorted by that key.
/// `order` is [`Tree::index_order`]'s, which callers usually have already.
pub(crate) fn derive_chunk_table(
    tree: &Tree,
    order: &[NodeId],
) -> BTreeMap<([u8; 32], u32), ChunkInfo> {
    let mut table = BTreeMap::new();
    for id in order {
        let inode = tree.inode_of(*id);
        if inode.is_reg() {
            for c in &inode.chunks {
                table.insert((c.digest, c.blob_index), *c);
            }
        }
    }
    table
}

/// The EROFS dirent file type of a mode.
pub(crate) fn dirent_file_type(mode_bits: u32) -> u8 {
    use crate::model::mode;
    use crate::ondisk::v6::file_type as t;
    match mode_bits & mode::S_IFMT {
        mode::S_IFREG => t::REG,
        mode::S_IFDIR => t::DIR,
        mode::S_IFCHR => t::CHR,
        mode::S_IFBLK => t::BLK,
        mode::S_IFIFO => t::FIFO,
        mode::S_IFSOCK => t::SOCK,
        mode::S_IFLNK => t::SYMLINK,
        _ => t::UNKNOWN,
    }
}
