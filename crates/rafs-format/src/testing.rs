//! A small image for the codec phases' unit tests: a root, a one-chunk file `f` with an xattr,
//! and a symlink `l`, in one blob.

use crate::model::*;
use crate::Image;

/// What the phase tests use, in one import.
pub(crate) use crate::{model::FsVersion, DecodeErrorKind as K};

/// The sample image in `version`.
pub(crate) fn sample(version: FsVersion) -> Image {
    let mut sb = Superblock::new(version);
    sb.chunk_size = 0x1000;
    let blob = Blob::new("a".repeat(64), sb.compressor, sb.digester, sb.chunk_size);
    let mut tree = Tree::with_root(Inode::new(mode::S_IFDIR | 0o755));
    let mut file = Inode::new(mode::S_IFREG | 0o644);
    file.size = 100;
    file.xattrs.push(Xattr {
        name: b"user.k".to_vec(),
        value: b"v".to_vec(),
    });
    file.chunks.push(ChunkInfo {
        digest: [7; 32],
        blob_index: 0,
        index: 0,
        flags: ChunkFlags::empty(),
        compressed_offset: 0,
        compressed_size: 100,
        uncompressed_offset: 0,
        uncompressed_size: 100,
        file_offset: 0,
        crc32: 0,
    });
    let f = tree.add_inode(file);
    tree.push_child(ROOT, b"f".to_vec(), f);
    let mut link = Inode::new(mode::S_IFLNK | 0o777);
    link.symlink = b"f".to_vec();
    link.size = 1;
    let l = tree.add_inode(link);
    tree.push_child(ROOT, b"l".to_vec(), l);
    let mut image = Image {
        superblock: sb,
        blobs: vec![blob],
        tree,
        prefetch: Vec::new(),
        v6_chunk_table: None,
    };
    image.blobs[0].chunk_count = 1;
    image.blobs[0].compressed_size = 100;
    image.blobs[0].uncompressed_size = 0x1000;
    image
}

/// The encoded sample, and the decoding error after `corrupt` changed its bytes.
pub(crate) fn decode_corrupted(
    version: FsVersion,
    corrupt: impl FnOnce(&mut Vec<u8>),
) -> crate::DecodeError {
    let mut bytes = crate::encode(&sample(version)).expect("the sample encodes");
    crate::decode(&bytes).expect("the sample decodes");
    corrupt(&mut bytes);
    match crate::decode(&bytes) {
        Err(crate::Error::Decode(d)) => *d,
        other => panic!("expected a decoding error, got {other:?}"),
    }
}

/// Reads a little-endian u64 at `at`.
pub(crate) fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}
