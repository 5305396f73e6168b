//! Writing a planned bootstrap: tables, inodes with their xattrs and data, superblocks.

use super::super::xattr;
use super::alloc::Placed;
use super::plan::Plan;
use crate::align_up;
use crate::common::flags;
use crate::error::{Error, Result};
use crate::model::*;
use crate::ondisk::v6 as raw;
use crate::ondisk::{U16, U32, U64};
use zerocopy::{FromZeros, IntoBytes};

/// `value` in the type of the on-disk field `field`.
fn fit<T: TryFrom<U>, U: Copy + std::fmt::Display>(field: &'static str, value: U) -> Result<T> {
    crate::common::fit("v6", field, value)
}

/// The output buffer, written at absolute offsets.
struct Out(Vec<u8>);

impl Out {
    fn put(&mut self, at: u64, bytes: &[u8]) {
        // Every place is inside the buffer, whose length is a usize.
        let at = crate::common::index(at);
        self.0[at..at + bytes.len()].copy_from_slice(bytes);
    }
}

/// Writes `image` as `plan`, made by [`super::plan`] for this image, lays it out.
pub(super) fn encode_planned(image: &Image, plan: &Plan) -> Result<Vec<u8>> {
    let mut out = Out(vec![
        0u8;
        usize::try_from(plan.len).map_err(|_| Error::encode(
            "v6",
            "image too large"
        ))?
    ]);
    for i in 0..plan.chunks.len(image) {
        let Some(c) = plan.chunks.record(image, i) else {
            break;
        };
        out.put(
            plan.chunk_table + 80 * i as u64,
            crate::common::encode_chunk_record(c).as_bytes(),
        );
    }
    let all_inlined_digest = write_blob_tables(&mut out, image, plan)?;
    if !image.blobs.is_empty() {
        for (i, id) in image.prefetch.iter().enumerate() {
            // nids of the prefetch table are 32-bit; the root's fits 16 and others follow it.
            let nid: u32 = fit("prefetch nid", plan.nids[id.0 as usize])?;
            out.put(plan.prefetch_table + 4 * i as u64, &nid.to_le_bytes());
        }
    }
    let has_xattr = write_inodes(&mut out, image, plan)?;
    write_superblocks(&mut out, image, plan, has_xattr, all_inlined_digest)?;
    Ok(out.0)
}

/// Device slots and blob records; returns whether every blob has INLINED_CHUNK_DIGEST.
fn write_blob_tables(out: &mut Out, image: &Image, plan: &Plan) -> Result<bool> {
    let mut all_inlined_digest = true;
    for (k, (b, span)) in image.blobs.iter().zip(&plan.devices).enumerate() {
        let mut id = [0u8; 64];
        id[..b.blob_id.len()].copy_from_slice(b.blob_id.as_bytes());
        let mut slot = raw::DeviceSlot::new_zeroed();
        slot.blob_id = id;
        slot.blocks = U32::new(span.blocks);
        slot.mapped_blkaddr = U32::new(span.mapped_blkaddr);
        out.put(
            raw::DEVICE_TABLE_OFFSET as u64 + (k * raw::DEVICE_SLOT_SIZE) as u64,
            slot.as_bytes(),
        );
        let mut features = b.features;
        if !features.contains(BlobFeatures::TARFS) {
            // v6 readers require ALIGNED for every non-tarfs blob.
            features |= BlobFeatures::ALIGNED;
        }
        all_inlined_digest &= features.contains(BlobFeatures::INLINED_CHUNK_DIGEST);
        // At most 254 blobs: `plan` checked.
        let record = blob_record(
            b,
            id,
            fit("blob_index", k)?,
            features,
            image.superblock.chunk_size,
        );
        out.put(
            plan.blob_table + (k * raw::BLOB_RECORD_SIZE) as u64,
            record.as_bytes(),
        );
    }
    Ok(all_inlined_digest)
}

fn blob_record(
    b: &Blob,
    id: [u8; 64],
    index: u32,
    features: BlobFeatures,
    chunk_size: u32,
) -> raw::BlobRecord {
    let mut r = raw::BlobRecord::new_zeroed();
    r.blob_id = id;
    r.blob_index = U32::new(index);
    r.chunk_size = U32::new(chunk_size);
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
    r
}

/// Every inode once, in numbering order; returns whether any has xattrs.
fn write_inodes(out: &mut Out, image: &Image, plan: &Plan) -> Result<bool> {
    let tree = &image.tree;
    let mut has_xattr = false;
    let mut written = vec![false; tree.inodes.len()];
    for id in &plan.order.order {
        let ii = tree.node(*id).inode.0 as usize;
        if std::mem::replace(&mut written[ii], true) {
            continue;
        }
        let inode = &tree.inodes[ii];
        has_xattr |= !inode.xattrs.is_empty();
        write_inode(out, image, plan, *id, ii)?;
    }
    Ok(has_xattr)
}

/// One inode at its place: the extended head, xattrs, then its data by type.
fn write_inode(out: &mut Out, image: &Image, plan: &Plan, id: NodeId, ii: usize) -> Result<()> {
    let inode = &image.tree.inodes[ii];
    let p = plan.placed[ii];
    let at = plan.meta_addr + p.off;
    let mut h = raw::InodeExtended::new_zeroed();
    let icount = if inode.xattrs.is_empty() {
        0
    } else {
        (plan.inode_size[ii] - 64 - 12) / 4 + 1
    };
    h.i_format = U16::new(1 | (p.layout << 1));
    h.i_xattr_icount = U16::new(fit("i_xattr_icount", icount)?);
    // Mode bits are 16 bits wide in v6; the model keeps them in a u32.
    h.i_mode = U16::new(fit("i_mode", inode.mode)?);
    h.i_ino = U32::new(plan.order.ino[id.0 as usize]);
    h.i_uid = U32::new(inode.uid);
    h.i_gid = U32::new(inode.gid);
    h.i_mtime = U64::new(inode.mtime);
    h.i_mtime_nsec = U32::new(inode.mtime_nsec);
    h.i_nlink = U32::new(inode.nlink);
    write_xattrs(out, at + 64, &inode.xattrs)?;
    let tail_at = at + plan.inode_size[ii];
    let data_block =
        || fit::<u32, _>("i_u", (p.data_off + plan.meta_addr) / plan.block).map(U32::new);
    if inode.is_dir() {
        h.i_size = U64::new(p.dir_size);
        h.i_u = data_block()?;
        let data =
            super::dirent::dirent_data(&image.tree, id, plan.block, &|n| plan.nids[n.0 as usize])?;
        write_flat(out, &data, p, plan, tail_at);
    } else if inode.is_symlink() {
        h.i_size = U64::new(inode.symlink.len() as u64);
        h.i_u = data_block()?;
        write_flat(out, &inode.symlink, p, plan, tail_at);
    } else if inode.is_reg() {
        h.i_size = U64::new(inode.size);
        let chunk_size = u64::from(image.superblock.chunk_size);
        h.i_u = U32::new(write_chunk_indexes(
            out,
            inode,
            plan,
            chunk_size,
            align_up(tail_at, 8),
        )?);
    } else {
        h.i_u = U32::new(inode.rdev);
    }
    out.put(at, h.as_bytes());
    Ok(())
}

/// The inline xattr area at `body`: a zeroed header, then entries.
fn write_xattrs(out: &mut Out, body: u64, xattrs: &[Xattr]) -> Result<()> {
    let mut q = body + raw::XATTR_IBODY_HEADER_SIZE as u64;
    for x in xattrs {
        // check_encodable refused names without a prefix and over-long names and values.
        let (index, suffix) = xattr::split(&x.name).unwrap_or((0, &[]));
        let e = raw::XattrEntry {
            e_name_len: fit("e_name_len", suffix.len())?,
            e_name_index: index,
            e_value_size: U16::new(fit("e_value_size", x.value.len())?),
        };
        out.put(q, e.as_bytes());
        out.put(q + 4, suffix);
        out.put(q + 4 + suffix.len() as u64, &x.value);
        q += xattr::entry_size(suffix.len(), x.value.len()) as u64;
    }
    Ok(())
}

/// A file's chunk indexes at `q`; returns its `i_u` (chunk format: INDEXES and size bits).
fn write_chunk_indexes(
    out: &mut Out,
    inode: &Inode,
    plan: &Plan,
    chunk_size: u64,
    mut q: u64,
) -> Result<u32> {
    let c = &inode.chunks;
    // The reference describes one contiguous run of chunks as a single chunk of the file's
    // size rounded up to a power of two.
    let contiguous = c.len() > 1
        && c.windows(2).all(|w| {
            w[1].blob_index == w[0].blob_index
                && w[1].uncompressed_offset == w[0].uncompressed_offset + chunk_size
        });
    let chunk_size = if contiguous {
        inode.size.next_power_of_two()
    } else {
        chunk_size
    };
    let bits = chunk_size.trailing_zeros() - plan.block.trailing_zeros();
    for ch in &inode.chunks {
        // The low 16 bits of the chunk index, then the device (blob index + 1) and the
        // index's next 8 bits; plan checked blob index < 254 and chunk index < 2^24.
        let device: u16 = fit("device_id", ch.blob_index + 1)?;
        let index_high: u16 = fit("chunk index", ch.index >> 16)?;
        let a = raw::ChunkAddr {
            c_blob_addr_lo: U16::new(fit("c_blob_addr_lo", ch.index & 0xffff)?),
            c_blob_addr_hi: U16::new((device & 0xff) | ((index_high & 0xff) << 8)),
            c_blk_addr: U32::new(fit("c_blk_addr", ch.uncompressed_offset / plan.block)?),
        };
        out.put(q, a.as_bytes());
        q += 8;
    }
    Ok(raw::CHUNK_FORMAT_INDEXES | bits)
}

/// Writes directory or symlink data: full blocks at `data_off`, the tail after the inode when
/// inline.
fn write_flat(out: &mut Out, data: &[u8], p: Placed, plan: &Plan, tail_at: u64) {
    let tail_len = if p.layout == raw::LAYOUT_FLAT_INLINE {
        data.len() % crate::common::index(plan.block)
    } else {
        0
    };
    let (blocks, tail) = data.split_at(data.len() - tail_len);
    out.put(plan.meta_addr + p.data_off, blocks);
    out.put(tail_at, tail);
}

/// Both superblocks.
fn write_superblocks(
    out: &mut Out,
    image: &Image,
    plan: &Plan,
    has_xattr: bool,
    all_inlined_digest: bool,
) -> Result<()> {
    let sb = &image.superblock;
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
    let nblobs = image.blobs.len();
    let mut e = raw::ExtSuperBlock::new_zeroed();
    e.s_flags = U64::new(fl);
    e.s_blob_table_offset = U64::new(plan.blob_table);
    // At most 254 records of 256 bytes.
    e.s_blob_table_size = U32::new(fit("s_blob_table_size", raw::BLOB_RECORD_SIZE * nblobs)?);
    e.s_chunk_size = U32::new(sb.chunk_size);
    e.s_chunk_table_offset = U64::new(plan.chunk_table);
    e.s_chunk_table_size = U64::new(80 * plan.chunks.len(image) as u64);
    if nblobs > 0 && !image.prefetch.is_empty() {
        e.s_prefetch_table_offset = U64::new(plan.prefetch_table);
        e.s_prefetch_table_size = U32::new(fit("s_prefetch_table_size", 4 * image.prefetch.len())?);
    }
    out.put(raw::EXT_SUPERBLOCK_OFFSET as u64, e.as_bytes());
    out.put(
        raw::SUPERBLOCK_OFFSET as u64,
        superblock(image, plan)?.as_bytes(),
    );
    Ok(())
}

fn superblock(image: &Image, plan: &Plan) -> Result<raw::SuperBlock> {
    let sb = &image.superblock;
    let total_blocks: u64 = plan.devices.iter().map(|d| u64::from(d.blocks)).sum();
    let mut s = raw::SuperBlock::new_zeroed();
    s.s_magic = U32::new(raw::MAGIC);
    s.s_feature_compat = U32::new(raw::FEATURE_COMPAT_RAFS_V6);
    s.s_blkszbits = fit("s_blkszbits", plan.block.trailing_zeros())?;
    s.s_root_nid = U16::new(fit("s_root_nid", plan.nids[ROOT.0 as usize])?);
    s.s_inos = U64::new(image.tree.nodes.len() as u64);
    s.s_build_time = U64::new(sb.build_time);
    s.s_build_time_nsec = U32::new(sb.build_time_nsec);
    s.s_blocks = U32::new(fit("s_blocks", total_blocks)?);
    s.s_meta_blkaddr = U32::new(fit("s_meta_blkaddr", plan.meta_addr / plan.block)?);
    s.s_uuid = sb.uuid;
    s.s_volume_name = sb.volume_name;
    s.s_feature_incompat = U32::new(raw::FEATURE_INCOMPAT_VALUE);
    s.s_extra_devices = U16::new(fit("s_extra_devices", image.blobs.len())?);
    s.s_devt_slotoff = U16::new(raw::DEVT_SLOTOFF);
    Ok(s)
}
