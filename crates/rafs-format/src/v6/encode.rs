//! v6 encoding: the reference's placement (rafs-v6.md §9), directory packing (§10), xattrs
//! (§11), chunk indexes and chunk table (§12).

use super::xattr;
use crate::align_up;
use crate::common::flags;
use crate::error::{Error, Result};
use crate::model::*;
use crate::ondisk::v6 as raw;
use crate::ondisk::{U16, U32, U64};
use std::collections::{BTreeMap, HashSet, VecDeque};
use zerocopy::{FromZeros, IntoBytes};

/// Where one inode was put (provisional offsets: the metadata area starts at 0).
#[derive(Clone, Copy, Default)]
struct Placed {
    off: u64,
    layout: u16,
    /// Start of the block-aligned data (directories and symlinks).
    data_off: u64,
    /// Directory: its dirent size; others: unused.
    dir_size: u64,
}

/// The free-space allocator of the reference builder.
struct Allocator {
    block: u64,
    cur: u64,
    avail: Vec<VecDeque<u64>>,
}

impl Allocator {
    fn new(block: u64) -> Self {
        Allocator {
            block,
            cur: 4096,
            avail: (0..128).map(|_| VecDeque::new()).collect(),
        }
    }

    /// Remembers the free tail of the block that `off` falls in.
    fn note_partial(&mut self, off: u64) {
        let r = off % self.block;
        if r != 0 {
            let free = self.block - r;
            self.avail[(free / 32) as usize].push_back(off - r);
        }
    }

    /// Takes `size` bytes from the tail of a partly used block, if one has room.
    fn take(&mut self, size: u64) -> Option<u64> {
        if size >= self.block {
            return None;
        }
        let lo = size.div_ceil(32);
        let hi = self.block.div_ceil(32);
        for i in lo..hi {
            if let Some(blk) = self.avail[i as usize].pop_front() {
                let r = blk + self.block - i * 32;
                self.note_partial(r + lo * 32);
                return Some(r);
            }
        }
        None
    }

    fn align(&mut self, a: u64) {
        self.cur = align_up(self.cur, a);
    }

    /// Appends `size` bytes at the cursor.
    fn bump(&mut self, size: u64) -> u64 {
        let off = self.cur;
        self.cur += size;
        off
    }

    /// Places an inode of `isize` bytes followed by `dsize` bytes of data, tail-packed when it
    /// fits (directories and symlinks).
    fn place_with_tail(&mut self, isize: u64, dsize: u64) -> Placed {
        let b = self.block;
        let tail = dsize % b;
        if tail != 0 && isize + tail <= b {
            let need = isize + tail;
            let off = match self.take(need) {
                Some(o) => o,
                None => {
                    if b - self.cur % b < need {
                        self.note_partial(self.cur);
                        self.align(b);
                    }
                    self.bump(need)
                }
            };
            if dsize != tail {
                self.note_partial(self.cur);
                self.align(b);
            }
            let data_off = self.bump(dsize - tail);
            Placed {
                off,
                layout: raw::LAYOUT_FLAT_INLINE,
                data_off,
                dir_size: 0,
            }
        } else {
            let off = match self.take(isize) {
                Some(o) => o,
                None => self.bump(isize),
            };
            self.note_partial(self.cur);
            self.align(b);
            let data_off = self.bump(dsize);
            self.align(b);
            Placed {
                off,
                layout: raw::LAYOUT_FLAT_PLAIN,
                data_off,
                dir_size: 0,
            }
        }
    }
}

/// Size of an inode's xattr area (0 without xattrs); `check_encodable` has already refused
/// areas `i_xattr_icount` cannot count.
fn xattr_area(x: &[Xattr]) -> Result<u64> {
    crate::rules::v6_xattr_area(x)
        .ok_or_else(|| Error::encode("v6", "an xattr name has no v6 prefix or is too long"))
}

/// A directory's entries, `.` and `..` included, in byte order of names.
fn dir_entries(tree: &Tree, dir: NodeId) -> Vec<(&[u8], Option<NodeId>)> {
    let mut v: Vec<(&[u8], Option<NodeId>)> = Vec::with_capacity(tree.node(dir).children.len() + 2);
    v.push((b".", None));
    v.push((b"..", None));
    for c in &tree.node(dir).children {
        v.push((&tree.node(*c).name, Some(*c)));
    }
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// Byte size of a directory's dirent data with blocks of `b` bytes.
fn dirent_size(entries: &[(&[u8], Option<NodeId>)], b: u64) -> u64 {
    let mut s = 0u64;
    for (name, _) in entries {
        let need = raw::DIRENT_SIZE as u64 + name.len() as u64;
        if s % b + need > b {
            s = align_up(s, b);
        }
        s += need;
    }
    s
}

/// Encodes the model as a v6 bootstrap.
pub fn encode(image: &Image) -> Result<Vec<u8>> {
    let tree = &image.tree;
    let sb = &image.superblock;
    let err = |r: String| Error::encode("v6", r);
    if tree.nodes.is_empty() || !tree.inode_of(ROOT).is_dir() {
        return Err(err("the root must be a directory".into()));
    }
    crate::rules::check_encodable(image, FsVersion::V6).map_err(err)?;
    if !crate::common::valid_chunk_size(sb.chunk_size as u64) {
        return Err(err(format!(
            "chunk size {:#x} is not a power of two in 4 KiB..=16 MiB",
            sb.chunk_size
        )));
    }
    let nblobs = image.blobs.len();
    if nblobs > 254 {
        return Err(err(format!("{nblobs} blobs; v6 addresses at most 254")));
    }
    let block: u64 = if sb.tarfs {
        super::TARFS_BLOCK_SIZE
    } else {
        super::BLOCK_SIZE
    };
    let chunk_size = sb.chunk_size as u64;
    let io = tree.index_order();
    if io.order.len() != tree.nodes.len() {
        return Err(err("nodes unreachable from the root".into()));
    }

    // Per-inode sizes.
    let mut isize = vec![0u64; tree.inodes.len()];
    for (i, inode) in tree.inodes.iter().enumerate() {
        isize[i] = raw::INODE_EXTENDED_SIZE as u64 + xattr_area(&inode.xattrs)?;
        if inode.is_symlink() && (inode.symlink.is_empty() || inode.symlink.len() > 4096) {
            return Err(err(format!(
                "symlink target of {} bytes (v6 stores 1..=4096)",
                inode.symlink.len()
            )));
        }
        if inode.is_reg() && inode.chunks.len() as u64 != inode.size.div_ceil(chunk_size) {
            return Err(err(format!(
                "a {}-byte file has {} chunks, not ceil(size / chunk size)",
                inode.size,
                inode.chunks.len()
            )));
        }
    }

    // Placement, in the reference's walk order.
    let mut alloc = Allocator::new(block);
    let mut placed: Vec<Option<Placed>> = vec![None; tree.inodes.len()];
    let mut stack = vec![ROOT];
    while let Some(dir) = stack.pop() {
        let dnode = tree.node(dir);
        let di = dnode.inode.0 as usize;
        if placed[di].is_some() {
            return Err(err(format!(
                "{}: directory reached twice (hard-linked directory)",
                tree.path(dir)
            )));
        }
        for c in &dnode.children {
            let name = &tree.node(*c).name;
            if name.is_empty()
                || name.len() > 255
                || name.contains(&b'/')
                || name.contains(&0)
                || name == b"."
                || name == b".."
            {
                return Err(err(format!("{}: invalid entry name", tree.path(*c))));
            }
        }
        let dsize = dirent_size(&dir_entries(tree, dir), block);
        let mut p = alloc.place_with_tail(isize[di], dsize);
        p.dir_size = dsize;
        placed[di] = Some(p);
        alloc.align(32);
        for c in &dnode.children {
            let ci = tree.node(*c).inode.0 as usize;
            let inode = &tree.inodes[ci];
            if inode.is_dir() || placed[ci].is_some() {
                continue;
            }
            let p = if inode.is_reg() {
                let total = align_up(isize[ci], 8) + 8 * inode.chunks.len() as u64;
                let off = match alloc.take(total) {
                    Some(o) => o,
                    None => alloc.bump(total),
                };
                Placed {
                    off,
                    layout: raw::LAYOUT_CHUNK_BASED,
                    ..Default::default()
                }
            } else if inode.is_symlink() {
                alloc.place_with_tail(isize[ci], inode.symlink.len() as u64)
            } else {
                Placed {
                    off: alloc.bump(isize[ci]),
                    layout: raw::LAYOUT_FLAT_PLAIN,
                    ..Default::default()
                }
            };
            placed[ci] = Some(p);
            alloc.align(32);
        }
        for c in dnode.children.iter().rev() {
            if tree.inode_of(*c).is_dir() {
                stack.push(*c);
            }
        }
    }
    let placed: Vec<Placed> = placed.into_iter().map(|p| p.unwrap_or_default()).collect();
    let nid_of = |id: NodeId| placed[tree.node(id).inode.0 as usize].off / 32;
    if nid_of(ROOT) > u16::MAX as u64 {
        return Err(err("root nid does not fit".into()));
    }

    // Fixed areas.
    let devt_end = raw::DEVICE_TABLE_OFFSET as u64 + (raw::DEVICE_SLOT_SIZE * nblobs) as u64;
    let bt_off = align_up(devt_end, raw::META_ALIGNMENT);
    let bt_size = (raw::BLOB_RECORD_SIZE * nblobs) as u64;
    let prefetch: &[NodeId] = if nblobs > 0 { &image.prefetch } else { &[] };
    let pf_off = bt_off + bt_size;
    let pf_size = 4 * prefetch.len() as u64;
    let meta_addr = if nblobs > 0 {
        align_up(pf_off + pf_size, raw::META_ALIGNMENT)
    } else {
        0
    };
    if meta_addr % block != 0 {
        return Err(err("metadata start is not block aligned".into()));
    }
    let ct_off = align_up(meta_addr + alloc.cur, raw::META_ALIGNMENT);

    // Chunk table: derived from the tree, unless a verbatim one is kept and still covers it.
    for id in &io.order {
        let inode = tree.inode_of(*id);
        if inode.is_reg() {
            for c in &inode.chunks {
                if c.blob_index as usize >= nblobs {
                    return Err(err(format!(
                        "{}: chunk names blob {} of {}",
                        tree.path(*id),
                        c.blob_index,
                        nblobs
                    )));
                }
                if c.index >= 1 << 24 {
                    return Err(err(format!(
                        "{}: chunk index {} exceeds 24 bits",
                        tree.path(*id),
                        c.index
                    )));
                }
                if c.uncompressed_offset / block > u32::MAX as u64 {
                    return Err(err(format!(
                        "{}: chunk offset beyond 32-bit block addresses",
                        tree.path(*id)
                    )));
                }
            }
        }
    }
    let derived = super::derive_chunk_table(tree, &io.order);
    let table: Vec<ChunkInfo> = match &image.v6_chunk_table {
        Some(verbatim) if covers(verbatim, &derived) => verbatim.clone(),
        _ => {
            // v6 files name chunks by (blob, index, block); two different chunks under one
            // address would make the image read back wrong data.
            let mut by_address = std::collections::HashMap::new();
            for c in derived.values() {
                let addr = (
                    c.blob_index,
                    c.index,
                    (c.uncompressed_offset / block) as u32,
                );
                if let Some(other) = by_address.insert(addr, c.digest) {
                    if other != c.digest {
                        return Err(err(format!(
                            "two different chunks share blob {} index {} block {}; v6 cannot tell them apart",
                            addr.0, addr.1, addr.2
                        )));
                    }
                }
            }
            // The table keeps one record per (digest, blob); a file chunk with the same key
            // at another address could not be found again.
            if !image.superblock.tarfs {
                for id in &io.order {
                    let inode = tree.inode_of(*id);
                    if !inode.is_reg() {
                        continue;
                    }
                    for c in &inode.chunks {
                        let kept = &derived[&(c.digest, c.blob_index)];
                        if (kept.index, kept.uncompressed_offset / block)
                            != (c.index, c.uncompressed_offset / block)
                        {
                            return Err(err(format!(
                                "{}: two different chunks of blob {} share digest {}; v6 keeps one record per digest",
                                tree.path(*id),
                                c.blob_index,
                                crate::hex(&c.digest)
                            )));
                        }
                    }
                }
            }
            derived.into_values().collect()
        }
    };
    let ct_size = 80 * table.len() as u64;
    let total = align_up(ct_off + ct_size, raw::META_ALIGNMENT);
    if total > u32::MAX as u64 * block {
        return Err(err("image too large".into()));
    }
    let mut out = vec![0u8; total as usize];
    let put = |out: &mut Vec<u8>, at: u64, bytes: &[u8]| {
        out[at as usize..at as usize + bytes.len()].copy_from_slice(bytes)
    };

    // Chunk table.
    for (i, c) in table.iter().enumerate() {
        put(
            &mut out,
            ct_off + 80 * i as u64,
            crate::common::encode_chunk_record(c).as_bytes(),
        );
    }

    // Device slots, blob table.
    let mut pos = total;
    let mut total_blocks: u64 = 0;
    let mut all_inlined_digest = true;
    for (k, b) in image.blobs.iter().enumerate() {
        if b.blob_id.is_empty() || b.blob_id.len() > 64 {
            return Err(err(format!("blob {k}: id must be 1..=64 bytes")));
        }
        let mut id = [0u8; 64];
        id[..b.blob_id.len()].copy_from_slice(b.blob_id.as_bytes());
        let blocks = b.uncompressed_size / block;
        let mapped = align_up(pos, 0x80000) / block;
        pos = (mapped + blocks) * block;
        total_blocks += blocks;
        let mut slot = raw::DeviceSlot::new_zeroed();
        slot.blob_id = id;
        slot.blocks = U32::new(blocks as u32);
        slot.mapped_blkaddr = U32::new(mapped as u32);
        put(
            &mut out,
            raw::DEVICE_TABLE_OFFSET as u64 + (k * raw::DEVICE_SLOT_SIZE) as u64,
            slot.as_bytes(),
        );

        let mut features = b.features;
        if !features.contains(BlobFeatures::TARFS) {
            // v6 readers require ALIGNED for every non-tarfs blob.
            features |= BlobFeatures::ALIGNED;
        }
        all_inlined_digest &= features.contains(BlobFeatures::INLINED_CHUNK_DIGEST);
        let mut r = raw::BlobRecord::new_zeroed();
        r.blob_id = id;
        r.blob_index = U32::new(k as u32);
        r.chunk_size = U32::new(sb.chunk_size);
        r.chunk_count = U32::new(b.chunk_count);
        r.compression_algo = U32::new(b.compressor.to_u32());
        r.digest_algo = U32::new(b.digester.to_u32());
        r.features = U32::new(features.bits());
        r.compressed_size = U64::new(b.compressed_size);
        r.uncompressed_size = U64::new(b.uncompressed_size);
        r.blob_toc_size = U32::new(b.toc_size);
        r.ci_compressor = U32::new(b.meta.compressor);
        r.ci_offset = U64::new(b.meta.offset);
        r.ci_compressed_size = U64::new(b.meta.compressed_size);
        r.ci_uncompressed_size = U64::new(b.meta.uncompressed_size);
        r.blob_toc_digest = b.toc_digest;
        r.blob_meta_digest = b.meta_digest;
        r.blob_meta_size = U64::new(b.meta_size);
        r.cipher_iv = b.cipher_iv;
        r.cipher_algo = U32::new(b.cipher_algo);
        put(
            &mut out,
            bt_off + (k * raw::BLOB_RECORD_SIZE) as u64,
            r.as_bytes(),
        );
    }
    for (i, id) in prefetch.iter().enumerate() {
        if id.0 as usize >= tree.nodes.len() {
            return Err(err("prefetch names a missing node".into()));
        }
        put(
            &mut out,
            pf_off + 4 * i as u64,
            &(nid_of(*id) as u32).to_le_bytes(),
        );
    }

    // Inodes and their data.
    let mut has_xattr = false;
    let mut written = vec![false; tree.inodes.len()];
    for id in &io.order {
        let node = tree.node(*id);
        let ii = node.inode.0 as usize;
        if written[ii] {
            continue;
        }
        written[ii] = true;
        let inode = &tree.inodes[ii];
        let p = placed[ii];
        let at = meta_addr + p.off;
        let mut h = raw::InodeExtended::new_zeroed();
        let icount = if inode.xattrs.is_empty() {
            0
        } else {
            (isize[ii] - 64 - 12) / 4 + 1
        };
        h.i_format = U16::new(1 | (p.layout << 1));
        h.i_xattr_icount = U16::new(icount as u16);
        h.i_mode = U16::new(inode.mode as u16);
        h.i_ino = U32::new(io.ino[id.0 as usize]);
        h.i_uid = U32::new(inode.uid);
        h.i_gid = U32::new(inode.gid);
        h.i_mtime = U64::new(inode.mtime);
        h.i_mtime_nsec = U32::new(inode.mtime_nsec);
        h.i_nlink = U32::new(inode.nlink);
        let body = at + 64;
        if !inode.xattrs.is_empty() {
            has_xattr = true;
            let mut q = body + raw::XATTR_IBODY_HEADER_SIZE as u64;
            for x in &inode.xattrs {
                let (index, suffix) = xattr::split(&x.name).unwrap_or((0, &[]));
                let e = raw::XattrEntry {
                    e_name_len: suffix.len() as u8,
                    e_name_index: index,
                    e_value_size: U16::new(x.value.len() as u16),
                };
                put(&mut out, q, e.as_bytes());
                put(&mut out, q + 4, suffix);
                put(&mut out, q + 4 + suffix.len() as u64, &x.value);
                q += xattr::entry_size(suffix.len(), x.value.len()) as u64;
            }
        }
        let tail_at = at + isize[ii];
        if inode.is_dir() {
            h.i_size = U64::new(p.dir_size);
            h.i_u = U32::new(((p.data_off + meta_addr) / block) as u32);
            let data = dirent_data(tree, *id, &dir_entries(tree, *id), block, &nid_of);
            write_flat(&mut out, &data, p, meta_addr, tail_at, block);
        } else if inode.is_symlink() {
            h.i_size = U64::new(inode.symlink.len() as u64);
            h.i_u = U32::new(((p.data_off + meta_addr) / block) as u32);
            write_flat(&mut out, &inode.symlink, p, meta_addr, tail_at, block);
        } else if inode.is_reg() {
            h.i_size = U64::new(inode.size);
            let c = &inode.chunks;
            let contiguous = c.len() > 1
                && c.windows(2).all(|w| {
                    w[1].blob_index == w[0].blob_index
                        && w[1].uncompressed_offset == w[0].uncompressed_offset + chunk_size
                });
            let cs = if contiguous {
                inode.size.next_power_of_two()
            } else {
                chunk_size
            };
            let bits = cs.trailing_zeros() - block.trailing_zeros();
            h.i_u = U32::new(raw::CHUNK_FORMAT_INDEXES | bits);
            let mut q = align_up(tail_at, 8);
            for ch in c {
                let a = raw::ChunkAddr {
                    c_blob_addr_lo: U16::new(ch.index as u16),
                    c_blob_addr_hi: U16::new(
                        ((ch.blob_index + 1) as u16 & 0xff)
                            | (((ch.index >> 16) as u16 & 0xff) << 8),
                    ),
                    c_blk_addr: U32::new((ch.uncompressed_offset / block) as u32),
                };
                put(&mut out, q, a.as_bytes());
                q += 8;
            }
        } else {
            h.i_size = U64::new(0);
            h.i_u = U32::new(inode.rdev);
        }
        put(&mut out, at, h.as_bytes());
    }

    // Superblocks.
    let mut fl = flags::common(sb, has_xattr || sb.xattr_flag_without_xattrs);
    if all_inlined_digest {
        fl |= flags::INLINED_CHUNK_DIGEST;
    }
    if sb.tarfs {
        fl |= flags::TARFS_MODE;
    }
    fl |= if sb.encrypted {
        flags::ENCRYPTION_AES_128_XTS
    } else {
        flags::ENCRYPTION_NONE
    };
    let mut e = raw::ExtSuperBlock::new_zeroed();
    e.s_flags = U64::new(fl);
    e.s_blob_table_offset = U64::new(bt_off);
    e.s_blob_table_size = U32::new(bt_size as u32);
    e.s_chunk_size = U32::new(sb.chunk_size);
    e.s_chunk_table_offset = U64::new(ct_off);
    e.s_chunk_table_size = U64::new(ct_size);
    if pf_size > 0 {
        e.s_prefetch_table_offset = U64::new(pf_off);
        e.s_prefetch_table_size = U32::new(pf_size as u32);
    }
    put(&mut out, raw::EXT_SUPERBLOCK_OFFSET as u64, e.as_bytes());

    let mut s = raw::SuperBlock::new_zeroed();
    s.s_magic = U32::new(raw::MAGIC);
    s.s_feature_compat = U32::new(raw::FEATURE_COMPAT_RAFS_V6);
    s.s_blkszbits = block.trailing_zeros() as u8;
    s.s_root_nid = U16::new(nid_of(ROOT) as u16);
    s.s_inos = U64::new(tree.nodes.len() as u64);
    s.s_build_time = U64::new(sb.build_time);
    s.s_build_time_nsec = U32::new(sb.build_time_nsec);
    s.s_blocks = U32::new(total_blocks as u32);
    s.s_meta_blkaddr = U32::new((meta_addr / block) as u32);
    s.s_uuid = sb.uuid;
    s.s_volume_name = sb.volume_name;
    s.s_feature_incompat = U32::new(raw::FEATURE_INCOMPAT_VALUE);
    s.s_extra_devices = U16::new(nblobs as u16);
    s.s_devt_slotoff = U16::new(raw::DEVT_SLOTOFF);
    put(&mut out, raw::SUPERBLOCK_OFFSET as u64, s.as_bytes());
    Ok(out)
}

/// A directory's dirent blocks, concatenated (the last block unpadded).
fn dirent_data(
    tree: &Tree,
    dir: NodeId,
    entries: &[(&[u8], Option<NodeId>)],
    b: u64,
    nid_of: &dyn Fn(NodeId) -> u64,
) -> Vec<u8> {
    let self_nid = nid_of(dir);
    let parent_nid = tree.node(dir).parent.map_or(self_nid, nid_of);
    let mut out = Vec::new();
    let mut i = 0;
    while i < entries.len() {
        // Greedy packing of one block.
        let mut used = 0u64;
        let mut j = i;
        while j < entries.len() && used + raw::DIRENT_SIZE as u64 + entries[j].0.len() as u64 <= b {
            used += raw::DIRENT_SIZE as u64 + entries[j].0.len() as u64;
            j += 1;
        }
        if j == i {
            j = i + 1; // cannot happen for names <= 255 bytes; avoid looping forever
        }
        let start = out.len();
        let mut nameoff = (raw::DIRENT_SIZE * (j - i)) as u64;
        for (name, node) in &entries[i..j] {
            let (nid, ft) = match node {
                Some(c) => (nid_of(*c), super::dirent_file_type(tree.inode_of(*c).mode)),
                None if *name == b"." => (self_nid, raw::file_type::DIR),
                None => (parent_nid, raw::file_type::DIR),
            };
            let d = raw::Dirent {
                e_nid: U64::new(nid),
                e_nameoff: U16::new(nameoff as u16),
                e_file_type: ft,
                e_reserved: 0,
            };
            out.extend_from_slice(d.as_bytes());
            nameoff += name.len() as u64;
        }
        for (name, _) in &entries[i..j] {
            out.extend_from_slice(name);
        }
        if j < entries.len() {
            out.resize(start + b as usize, 0);
        }
        i = j;
    }
    out
}

/// Writes directory or symlink data: full blocks at `data_off`, the tail after the inode when
/// inline.
fn write_flat(out: &mut [u8], data: &[u8], p: Placed, meta_addr: u64, tail_at: u64, b: u64) {
    let (blocks, tail) = if p.layout == raw::LAYOUT_FLAT_INLINE {
        let t = data.len() % b as usize;
        (&data[..data.len() - t], &data[data.len() - t..])
    } else {
        (data, &data[..0])
    };
    let at = (meta_addr + p.data_off) as usize;
    out[at..at + blocks.len()].copy_from_slice(blocks);
    out[tail_at as usize..tail_at as usize + tail.len()].copy_from_slice(tail);
}

/// Whether a verbatim chunk table still holds a record for every distinct chunk of the tree.
fn covers(verbatim: &[ChunkInfo], derived: &BTreeMap<([u8; 32], u32), ChunkInfo>) -> bool {
    let have: HashSet<([u8; 32], u32)> =
        verbatim.iter().map(|c| (c.digest, c.blob_index)).collect();
    derived.keys().all(|k| have.contains(k))
}
