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

/// A chunk of the tree: its place and its record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkRef<'t> {
    pub(crate) at: ChunkAt,
    pub(crate) info: &'t ChunkInfo,
}

/// Every chunk of the tree's regular files, sorted by the chunk table's key (digest, then
/// blob index); chunks with equal keys stay in inode-numbering order (`order`, which is
/// [`Tree::index_order`]'s).
///
/// Places and references, not copies: a table of copies would add a tenth of the
/// bootstrap's size to the encoder's peak memory.
pub(crate) fn sorted_chunks<'t>(tree: &'t Tree, order: &[NodeId]) -> Vec<ChunkRef<'t>> {
    let mut all: Vec<ChunkRef<'t>> = order
        .iter()
        .map(|id| tree.node(*id).inode)
        .filter(|&inode| tree.inode(inode).is_reg())
        .flat_map(|inode| {
            (0u32..)
                .zip(&tree.inode(inode).chunks)
                .map(move |(chunk, info)| ChunkRef {
                    at: ChunkAt { inode, chunk },
                    info,
                })
        })
        .collect();
    // Stable, so that equal keys keep their numbering order.
    all.sort_by(|a, b| chunk_key_cmp(a.info, b.info));
    all
}

/// Runs of chunks with one key in `sorted` ([`sorted_chunks`]'s), in numbering order each.
pub(crate) fn key_runs<'s, 't>(
    sorted: &'s [ChunkRef<'t>],
) -> impl Iterator<Item = &'s [ChunkRef<'t>]> {
    sorted.chunk_by(|a, b| chunk_key_cmp(a.info, b.info).is_eq())
}

/// The chunk table the reference writes for a tree: one record per distinct
/// (digest, blob index), the last chunk in inode-numbering order winning, sorted by that key.
/// `sorted` is [`sorted_chunks`]'s.
pub(crate) fn derive_chunk_table<'t>(sorted: &[ChunkRef<'t>]) -> Vec<ChunkRef<'t>> {
    key_runs(sorted)
        .filter_map(|run| run.last().copied())
        .collect()
}

/// Order of the chunk table's key: digest, then blob index.
pub(crate) fn chunk_key_cmp(a: &ChunkInfo, b: &ChunkInfo) -> std::cmp::Ordering {
    a.digest
        .cmp(&b.digest)
        .then(a.blob_index.cmp(&b.blob_index))
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
