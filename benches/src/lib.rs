//! Generators of realistic inputs for the criterion benchmarks in `benches/`.

use rafs_format::model::*;

/// A tree of about `n` paths: directories of 100 entries, regular files of 1 to 3 chunks,
/// symlinks and a few xattrs, with one blob holding every chunk. Deterministic.
pub fn generated_image(n: usize, version: FsVersion) -> Image {
    let mut root = Inode::new(mode::S_IFDIR | 0o755);
    root.nlink = 2;
    let mut tree = Tree::with_root(root);
    let chunk_size = 0x10_0000u64;
    let mut chunk_index = 0u32;
    let mut offset = 0u64;
    let mut dirs = vec![ROOT];
    let mut made = 1;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut d = 0;
    while made < n {
        // Fan-out of 8 keeps the depth logarithmic.
        let parent = dirs[d / 8];
        d += 1;
        let mut dir = Inode::new(mode::S_IFDIR | 0o755);
        dir.nlink = 2;
        dir.mtime = 1_700_000_000 + made as u64;
        let did = tree.add_inode(dir);
        let dnode = tree.push_child(parent, format!("dir-{made:07}").into_bytes(), did);
        dirs.push(dnode);
        made += 1;
        for k in 0..99 {
            if made >= n {
                break;
            }
            let name = format!("entry-{k:03}-{:x}", rand() % 0xFFFF).into_bytes();
            let r = rand();
            let mut inode = if r % 10 == 0 {
                let mut s = Inode::new(mode::S_IFLNK | 0o777);
                s.symlink = format!("../target/{}", r % 1000).into_bytes();
                s.size = s.symlink.len() as u64;
                s
            } else {
                let mut f = Inode::new(mode::S_IFREG | 0o644);
                f.size = (r >> 8) % (3 * chunk_size) + 1;
                for c in 0..f.size.div_ceil(chunk_size) {
                    let len = (f.size - c * chunk_size).min(chunk_size) as u32;
                    let mut digest = [0u8; 32];
                    digest[..8].copy_from_slice(&rand().to_le_bytes());
                    f.chunks.push(ChunkInfo {
                        digest,
                        blob_index: 0,
                        index: chunk_index,
                        flags: ChunkFlags::COMPRESSED | ChunkFlags::HAS_CRC32,
                        compressed_offset: offset,
                        compressed_size: len / 3 + 1,
                        uncompressed_offset: offset,
                        uncompressed_size: len,
                        file_offset: c * chunk_size,
                        crc32: r as u32,
                    });
                    chunk_index += 1;
                    offset += (len as u64).div_ceil(4096) * 4096;
                }
                f
            };
            inode.uid = 1000;
            inode.gid = 1000;
            inode.mtime = 1_700_000_000 + r % 1000;
            if r % 50 == 1 {
                inode.xattrs.push(Xattr {
                    name: b"user.comment".to_vec(),
                    value: b"generated".to_vec(),
                });
            }
            let id = tree.add_inode(inode);
            tree.push_child(dnode, name, id);
            made += 1;
        }
    }
    tree.sort_children();
    // Directory link counts.
    for i in 0..tree.nodes.len() {
        let subdirs = tree.nodes[i]
            .children
            .iter()
            .filter(|c| tree.inode_of(**c).is_dir())
            .count() as u32;
        let ino = tree.nodes[i].inode.0 as usize;
        if tree.inodes[ino].is_dir() {
            tree.inodes[ino].nlink = 2 + subdirs;
        }
    }
    let mut blob = Blob::new(
        "b".repeat(64),
        Compressor::Zstd,
        Digester::Blake3,
        chunk_size as u32,
    );
    blob.chunk_count = chunk_index;
    blob.uncompressed_size = offset;
    blob.compressed_size = offset;
    blob.features = BlobFeatures::CAP_TAR_TOC | BlobFeatures::ALIGNED;
    Image {
        superblock: Superblock::new(version),
        blobs: vec![blob],
        tree,
        prefetch: vec![],
        v6_chunk_table: None,
    }
}
