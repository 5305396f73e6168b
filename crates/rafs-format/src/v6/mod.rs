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

use crate::model::{ChunkInfo, InodeId, NodeId, Tree};

/// A chunk of the tree, by place: the `chunk`th of `inode`'s list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkAt {
    pub(crate) inode: InodeId,
    pub(crate) chunk: u32,
}

impl ChunkAt {
    /// The chunk record (`tree` is the one the place was taken from).
    pub(crate) fn get(self, tree: &Tree) -> &ChunkInfo {
        &tree.inode(self.inode).chunks[self.chunk as usize]
    }
}

/// The chunk table the reference writes for a tree: one record per distinct
/// (digest, blob index), the last chunk in inode-numbering order winning, sorted by that key.
/// `order` is [`Tree::index_order`]'s, which callers usually have already.
///
/// The records stay in the tree, named by place: a table of copies would add a tenth of the
/// bootstrap's size to the encoder's peak memory.
pub(crate) fn derive_chunk_table(tree: &Tree, order: &[NodeId]) -> Vec<ChunkAt> {
    let mut table: Vec<ChunkAt> = order
        .iter()
        .map(|id| tree.node(*id).inode)
        .filter(|&inode| tree.inode(inode).is_reg())
        .flat_map(|inode| {
            (0u32..)
                .zip(&tree.inode(inode).chunks)
                .map(move |(chunk, _)| ChunkAt { inode, chunk })
        })
        .collect();
    // Stable: equal keys stay in numbering order, so the last of each run is the winner.
    table.sort_by(|a, b| chunk_key(a.get(tree)).cmp(&chunk_key(b.get(tree))));
    let mut kept = 0;
    for i in 0..table.len() {
        let key = chunk_key(table[i].get(tree));
        let last_of_run = table
            .get(i + 1)
            .is_none_or(|next| chunk_key(next.get(tree)) != key);
        if last_of_run {
            table[kept] = table[i];
            kept += 1;
        }
    }
    table.truncate(kept);
    table
}

/// The chunk table's sort key: digest, then blob index.
pub(crate) fn chunk_key(c: &ChunkInfo) -> ([u8; 32], u32) {
    (c.digest, c.blob_index)
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
