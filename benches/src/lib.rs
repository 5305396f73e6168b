//! Generators of realistic inputs for the criterion benchmarks in `benches/`.

pub mod rootfs;

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

/// Deterministic content resembling a container layer: text files (words, numbers, code-like
/// lines; zstd shrinks them about 3-5x) and binary files (a mix of incompressible noise and
/// structured tables, as in executables and libraries), in sizes from 512 bytes to 8 MiB.
pub struct LayerContent {
    state: u64,
}

const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "for", "return", "static", "const", "int", "char", "if",
    "else", "while", "struct", "void", "include", "define", "error", "value", "buffer", "length",
    "offset", "config", "server", "client", "request", "response", "string", "list", "map",
    "index", "node", "tree", "path", "file", "data", "read", "write", "open", "close", "0", "1",
    "42", "255", "4096", "{", "}", "(", ")", ";", "=", "==", "->", "::", "#", "//",
];

impl LayerContent {
    /// A generator with a seed.
    pub fn new(seed: u64) -> Self {
        LayerContent {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
        }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// Size of the next file: log-uniform over 512 B .. 8 MiB.
    pub fn next_size(&mut self) -> usize {
        let bits = 9 + (self.next() % 14) as u32;
        let base = 1usize << bits;
        base + (self.next() as usize % base)
    }

    /// Fills `out` with the next file's content (text or binary, half each).
    pub fn fill(&mut self, out: &mut Vec<u8>, size: usize) {
        out.clear();
        if self.next().is_multiple_of(2) {
            while out.len() < size {
                let indent = (self.next() % 4) as usize * 4;
                out.extend(std::iter::repeat_n(b' ', indent));
                for _ in 0..(3 + self.next() % 9) {
                    let w = WORDS[(self.next() % WORDS.len() as u64) as usize];
                    out.extend_from_slice(w.as_bytes());
                    out.push(b' ');
                }
                if self.next().is_multiple_of(3) {
                    out.extend_from_slice(format!("{}", self.next() % 100_000).as_bytes());
                }
                out.push(b'\n');
            }
        } else {
            let mut counter = self.next() as u32;
            while out.len() < size {
                let run = 64 + (self.next() % 4096) as usize;
                if self.next() % 10 < 3 {
                    for _ in 0..run / 8 {
                        out.extend_from_slice(&self.next().to_le_bytes());
                    }
                } else {
                    for _ in 0..run / 4 {
                        counter = counter.wrapping_add((self.next() % 16) as u32);
                        out.extend_from_slice(&counter.to_le_bytes());
                    }
                }
            }
        }
        out.truncate(size);
    }
}

/// `total` bytes of [`LayerContent`] as whole files (the last one cut to fit).
pub fn layer_files(total: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut g = LayerContent::new(seed);
    let mut files = Vec::new();
    let mut left = total;
    while left > 0 {
        let size = g.next_size().min(left);
        let mut f = Vec::new();
        g.fill(&mut f, size);
        left -= size;
        files.push(f);
    }
    files
}

/// A `Read` over `size` bytes of [`LayerContent`], generated 64 KiB at a time, so a huge input
/// costs no memory.
pub struct ContentReader {
    gen: LayerContent,
    remaining: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl ContentReader {
    /// `size` bytes from a generator seeded with `seed`.
    pub fn new(size: u64, seed: u64) -> Self {
        ContentReader {
            gen: LayerContent::new(seed),
            remaining: size,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl std::io::Read for ContentReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.remaining == 0 {
                return Ok(0);
            }
            let n = self.remaining.min(64 << 10) as usize;
            self.gen.fill(&mut self.buf, n);
            self.pos = 0;
            self.remaining -= n as u64;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Writes a generated OCI layer tar of about `total` bytes of file data: a directory tree with
/// text files, binaries, already-compressed (incompressible) files and many small files, plus
/// symlinks and hard links. Deterministic for a seed.
pub fn write_layer_tar<W: std::io::Write>(out: W, total: u64, seed: u64) -> std::io::Result<W> {
    let mut tar = tar::Builder::new(out);
    let mut g = LayerContent::new(seed);
    let mut written = 0u64;
    let mut n = 0u64;
    let mut buf = Vec::new();
    let mut dirs: Vec<String> = vec![String::new()];
    let mut last_file: Option<String> = None;
    let header = |path: &str, kind: tar::EntryType, size: u64, mode: u32, n: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).expect("generated paths are valid");
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(1_700_000_000 + n);
        h.set_cksum();
        h
    };
    while written < total {
        n += 1;
        let r = g.next() % 100;
        if r < 3 || dirs.len() < 4 {
            let parent = &dirs[(g.next() % dirs.len() as u64) as usize];
            let d = format!("{parent}dir{n}/");
            tar.append(
                &header(&d, tar::EntryType::Directory, 0, 0o755, n),
                std::io::empty(),
            )?;
            dirs.push(d);
            continue;
        }
        let dir = dirs[(g.next() % dirs.len() as u64) as usize].clone();
        if r < 5 {
            let mut h = header(
                &format!("{dir}link{n}"),
                tar::EntryType::Symlink,
                0,
                0o777,
                n,
            );
            h.set_link_name("../some/target").expect("short target");
            h.set_cksum();
            tar.append(&h, std::io::empty())?;
            continue;
        }
        if r < 6 {
            if let Some(t) = &last_file {
                let mut h = header(&format!("{dir}hard{n}"), tar::EntryType::Link, 0, 0o644, n);
                h.set_link_name(t).expect("generated target");
                h.set_cksum();
                tar.append(&h, std::io::empty())?;
                continue;
            }
        }
        let small = r < 90;
        let size = if small {
            // Many small files (configs, scripts, metadata).
            (g.next() % 8192) as usize
        } else {
            g.next_size()
        }
        .min((total - written) as usize);
        if !small && g.next().is_multiple_of(4) {
            // Already compressed (archives, images, .gz): incompressible.
            buf.clear();
            while buf.len() < size {
                buf.extend_from_slice(&g.next().to_le_bytes());
            }
            buf.truncate(size);
        } else {
            g.fill(&mut buf, size);
        }
        let path = format!("{dir}file{n}");
        tar.append(
            &header(&path, tar::EntryType::Regular, size as u64, 0o644, n),
            buf.as_slice(),
        )?;
        last_file = Some(path);
        written += size as u64;
    }
    tar.into_inner()
}
