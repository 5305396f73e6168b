//! v6 decoding.

use super::xattr;
use crate::common::flags;
use crate::error::{derr, with_path, DecodeErrorKind as K, Error, Result};
use crate::model::*;
use crate::ondisk::v6 as raw;
use crate::ondisk::ChunkInfoRecord;
use crate::read::{check_name, record, slice};
use crate::{align_up, Limits};
use std::collections::HashMap;

/// Decodes a v6 bootstrap with default [`Limits`].
pub fn decode(data: &[u8]) -> Result<Image> {
    decode_with_limits(data, &Limits::default())
}

/// Everything the tree walk needs from the superblocks.
struct Ctx<'a> {
    data: &'a [u8],
    block: u64,
    meta_addr: u64,
    chunk_size: u64,
    build_time: u64,
    tarfs: bool,
    nblobs: usize,
    /// Chunk address -> (position in the on-disk table, record).
    chunk_table: HashMap<(u32, u32, u32), (usize, ChunkInfoRecord)>,
    /// Which on-disk records some chunk resolved to.
    used: Vec<std::cell::Cell<bool>>,
    limits: &'a Limits,
}

/// Where an inode's pieces are; kept apart from the decoded [`Inode`] so that walking a
/// directory needs no copy of the inode itself.
#[derive(Clone, Copy)]
struct DataLoc {
    offset: u64,
    layout: u16,
    /// Offset right after the inode and its xattrs.
    body_end: u64,
    raw_u: u32,
    size: u64,
}

/// Decodes a v6 bootstrap.
pub fn decode_with_limits(data: &[u8], limits: &Limits) -> Result<Image> {
    let len = data.len() as u64;
    if len < 4096 {
        return Err(derr(
            "v6 superblock",
            0,
            K::Truncated {
                need: 4096,
                available: len,
            },
        ));
    }
    let sbo = raw::SUPERBLOCK_OFFSET as u64;
    let sb: raw::SuperBlock = record(data, sbo, "v6 superblock")?;
    let bad = |at: u64, field, value: u64, reason| {
        derr(
            "v6 superblock",
            sbo + at,
            K::InvalidField {
                field,
                value,
                reason,
            },
        )
    };
    if sb.s_magic.get() != raw::MAGIC {
        return Err(derr(
            "v6 superblock",
            sbo,
            K::BadMagic {
                found: sb.s_magic.get(),
            },
        ));
    }
    if sb.s_checksum.get() != 0 {
        return Err(bad(
            4,
            "s_checksum",
            sb.s_checksum.get() as u64,
            "must be 0",
        ));
    }
    if sb.s_feature_compat.get() & raw::FEATURE_COMPAT_RAFS_V6 == 0 {
        return Err(bad(
            8,
            "s_feature_compat",
            sb.s_feature_compat.get() as u64,
            "lacks the RAFS v6 bit",
        ));
    }
    let bits = sb.s_blkszbits;
    if bits != 9 && bits != 12 {
        return Err(bad(12, "s_blkszbits", bits as u64, "must be 9 or 12"));
    }
    let block = 1u64 << bits;
    if sb.s_extslots != 0 {
        return Err(bad(13, "s_extslots", sb.s_extslots as u64, "must be 0"));
    }
    let inos = sb.s_inos.get();
    if inos == 0 {
        return Err(bad(16, "s_inos", 0, "must not be 0"));
    }
    if inos > limits.max_nodes {
        return Err(derr(
            "v6 superblock",
            sbo + 16,
            K::LimitExceeded {
                limit: "max_nodes",
                value: inos,
                max: limits.max_nodes,
            },
        ));
    }
    if sb.s_u.get() != 0 {
        return Err(bad(84, "s_u", sb.s_u.get() as u64, "must be 0"));
    }
    if sb.s_xattr_blkaddr.get() != 0 {
        return Err(bad(
            44,
            "s_xattr_blkaddr",
            sb.s_xattr_blkaddr.get() as u64,
            "shared xattrs are not supported",
        ));
    }
    if sb.s_devt_slotoff.get() != raw::DEVT_SLOTOFF {
        return Err(bad(
            88,
            "s_devt_slotoff",
            sb.s_devt_slotoff.get() as u64,
            "must be 11",
        ));
    }
    if sb.s_feature_incompat.get() != raw::FEATURE_INCOMPAT_VALUE {
        return Err(bad(
            80,
            "s_feature_incompat",
            sb.s_feature_incompat.get() as u64,
            "must be CHUNKED_FILE | DEVICE_TABLE",
        ));
    }
    if len % block != 0 {
        return Err(bad(
            0,
            "file size",
            len,
            "must be a multiple of the block size",
        ));
    }
    let meta_addr = sb.s_meta_blkaddr.get() as u64 * block;
    if meta_addr > len {
        return Err(bad(
            40,
            "s_meta_blkaddr",
            sb.s_meta_blkaddr.get() as u64,
            "beyond the end of the file",
        ));
    }

    let eo = raw::EXT_SUPERBLOCK_OFFSET as u64;
    let ext: raw::ExtSuperBlock = record(data, eo, "v6 extended superblock")?;
    let ebad = |at: u64, field, value: u64, reason| {
        derr(
            "v6 extended superblock",
            eo + at,
            K::InvalidField {
                field,
                value,
                reason,
            },
        )
    };
    let f = ext.s_flags.get();
    if f & !flags::KNOWN != 0 {
        return Err(derr(
            "v6 extended superblock",
            eo,
            K::UnknownFlags {
                field: "s_flags",
                bits: f & !flags::KNOWN,
            },
        ));
    }
    let comp_bits = f
        & (flags::COMPRESSION_NONE
            | flags::COMPRESSION_LZ4
            | flags::COMPRESSION_GZIP
            | flags::COMPRESSION_ZSTD);
    if comp_bits.count_ones() != 1 {
        return Err(ebad(0, "s_flags", f, "needs exactly one compression bit"));
    }
    if (f & (flags::HASH_BLAKE3 | flags::HASH_SHA256)).count_ones() != 1 {
        return Err(ebad(0, "s_flags", f, "needs exactly one hash bit"));
    }
    let chunk_size = ext.s_chunk_size.get() as u64;
    if !crate::common::valid_chunk_size(chunk_size) {
        return Err(ebad(
            20,
            "s_chunk_size",
            chunk_size,
            "must be a power of two in 4 KiB..=16 MiB",
        ));
    }
    // `align`: the blob and chunk tables are 4 KiB aligned; the prefetch table need not be.
    // A table range is reported at its offset field.
    let field_at = |field: &str| {
        use core::mem::offset_of as at;
        eo + match field {
            "blob table" => at!(raw::ExtSuperBlock, s_blob_table_offset),
            "chunk table" => at!(raw::ExtSuperBlock, s_chunk_table_offset),
            _ => at!(raw::ExtSuperBlock, s_prefetch_table_offset),
        } as u64
    };
    let range = |field, off: u64, size: u64, align: u64| -> Result<()> {
        let end = off.saturating_add(size);
        if off % align != 0 || off < 4096 || end > len {
            return Err(derr(
                "v6 extended superblock",
                field_at(field),
                K::BadRange {
                    field,
                    start: off,
                    end,
                    other: "the file",
                },
            ));
        }
        Ok(())
    };
    let bt_off = ext.s_blob_table_offset.get();
    let bt_size = ext.s_blob_table_size.get() as u64;
    range("blob table", bt_off, bt_size, 4096)?;
    if bt_size % raw::BLOB_RECORD_SIZE as u64 != 0 {
        return Err(ebad(
            16,
            "s_blob_table_size",
            bt_size,
            "must be a multiple of 256",
        ));
    }
    let nblobs = (bt_size / raw::BLOB_RECORD_SIZE as u64) as usize;
    if nblobs != sb.s_extra_devices.get() as usize {
        return Err(bad(
            86,
            "s_extra_devices",
            sb.s_extra_devices.get() as u64,
            "differs from the blob count",
        ));
    }
    if nblobs > 255 {
        return Err(ebad(
            16,
            "s_blob_table_size",
            bt_size,
            "more than 255 blobs",
        ));
    }
    let devt_end = raw::DEVICE_TABLE_OFFSET as u64 + (nblobs * raw::DEVICE_SLOT_SIZE) as u64;
    if devt_end > bt_off {
        return Err(derr(
            "v6 device table",
            raw::DEVICE_TABLE_OFFSET as u64,
            K::BadRange {
                field: "device table",
                start: raw::DEVICE_TABLE_OFFSET as u64,
                end: devt_end,
                other: "blob table",
            },
        ));
    }
    let ct_off = ext.s_chunk_table_offset.get();
    let ct_size = ext.s_chunk_table_size.get();
    if ct_size > 0 {
        range("chunk table", ct_off, ct_size, 4096)?;
        if ct_size % 80 != 0 {
            return Err(ebad(
                32,
                "s_chunk_table_size",
                ct_size,
                "must be a multiple of 80",
            ));
        }
        if ct_off < bt_off + bt_size && bt_off < ct_off + ct_size {
            return Err(derr(
                "v6 extended superblock",
                field_at("chunk table"),
                K::BadRange {
                    field: "chunk table",
                    start: ct_off,
                    end: ct_off + ct_size,
                    other: "blob table",
                },
            ));
        }
    }
    let pf_off = ext.s_prefetch_table_offset.get();
    let pf_size = ext.s_prefetch_table_size.get() as u64;
    let has_prefetch = pf_size > 0 && pf_off != 0;
    if has_prefetch {
        range("prefetch table", pf_off, pf_size, 1)?;
        if pf_size % 4 != 0 {
            return Err(ebad(
                48,
                "s_prefetch_table_size",
                pf_size,
                "must be a multiple of 4",
            ));
        }
    }
    let tarfs = f & flags::TARFS_MODE != 0;
    let compressor = flags::compressor(f);
    let digester = flags::digester(f);

    // Blob table and device slots.
    let mut blobs = Vec::with_capacity(nblobs);
    let mut ids = std::collections::HashSet::new();
    for k in 0..nblobs {
        let at = bt_off + (k * raw::BLOB_RECORD_SIZE) as u64;
        let r: raw::BlobRecord = record(data, at, "v6 blob record")?;
        let rb = |off: u64, field, value: u64, reason| {
            derr(
                "v6 blob record",
                at + off,
                K::InvalidField {
                    field,
                    value,
                    reason,
                },
            )
        };
        let id = blob_id(&r.blob_id).ok_or_else(|| rb(0, "blob_id", 0, "empty or not UTF-8"))?;
        crate::rules::check_blob_id(&id).map_err(|reason| rb(0, "blob_id", 0, reason))?;
        if r.blob_index.get() as usize != k {
            return Err(rb(
                64,
                "blob_index",
                r.blob_index.get() as u64,
                "must equal the record's position",
            ));
        }
        if r.chunk_size.get() as u64 != chunk_size {
            return Err(rb(
                68,
                "chunk_size",
                r.chunk_size.get() as u64,
                "differs from s_chunk_size",
            ));
        }
        if r.chunk_count.get() > 1 << 24 {
            return Err(rb(
                72,
                "chunk_count",
                r.chunk_count.get() as u64,
                "more than 2^24 chunks",
            ));
        }
        let c = Compressor::from_u32(r.compression_algo.get()).ok_or_else(|| {
            rb(
                76,
                "compression_algo",
                r.compression_algo.get() as u64,
                "unknown",
            )
        })?;
        let d = Digester::from_u32(r.digest_algo.get())
            .ok_or_else(|| rb(80, "digest_algo", r.digest_algo.get() as u64, "unknown"))?;
        let fb = r.features.get();
        if fb & 0x8000_F000 != 0 {
            return Err(derr(
                "v6 blob record",
                at + 84,
                K::UnknownFlags {
                    field: "features",
                    bits: (fb & 0x8000_F000) as u64,
                },
            ));
        }
        let features = BlobFeatures::from_bits_truncate(fb);
        if features.contains(BlobFeatures::TARFS) == features.contains(BlobFeatures::ALIGNED) {
            return Err(rb(
                84,
                "features",
                fb as u64,
                "tarfs blobs must not be ALIGNED, others must be",
            ));
        }
        use core::mem::offset_of;
        if r.compressed_size.get() > 1 << 40 {
            return Err(rb(
                offset_of!(raw::BlobRecord, compressed_size) as u64,
                "compressed_size",
                r.compressed_size.get(),
                "blob larger than the format allows",
            ));
        }
        if r.uncompressed_size.get() > 1 << 44 {
            return Err(rb(
                offset_of!(raw::BlobRecord, uncompressed_size) as u64,
                "uncompressed_size",
                r.uncompressed_size.get(),
                "blob larger than the format allows",
            ));
        }
        if r.ci_compressed_size.get() > r.ci_uncompressed_size.get() {
            return Err(rb(
                offset_of!(raw::BlobRecord, ci_compressed_size) as u64,
                "ci_compressed_size",
                r.ci_compressed_size.get(),
                "larger than ci_uncompressed_size",
            ));
        }
        if r.ci_offset
            .get()
            .checked_add(r.ci_compressed_size.get())
            .is_none()
        {
            return Err(rb(
                offset_of!(raw::BlobRecord, ci_offset) as u64,
                "ci_offset",
                r.ci_offset.get(),
                "ci_offset + ci_compressed_size overflows",
            ));
        }
        let slot: raw::DeviceSlot = record(
            data,
            raw::DEVICE_TABLE_OFFSET as u64 + (k * raw::DEVICE_SLOT_SIZE) as u64,
            "v6 device slot",
        )?;
        if std::str::from_utf8(&slot.blob_id).is_err() {
            return Err(derr(
                "v6 device slot",
                raw::DEVICE_TABLE_OFFSET as u64 + (k * raw::DEVICE_SLOT_SIZE) as u64,
                K::InvalidField {
                    field: "blob_id",
                    value: 0,
                    reason: "not UTF-8",
                },
            ));
        }
        if !ids.insert(id.clone()) {
            return Err(rb(0, "blob_id", k as u64, "duplicate blob id"));
        }
        blobs.push(Blob {
            blob_id: id,
            chunk_count: r.chunk_count.get(),
            features,
            compressor: c,
            digester: d,
            chunk_size: r.chunk_size.get(),
            compressed_size: r.compressed_size.get(),
            uncompressed_size: r.uncompressed_size.get(),
            readahead_offset: 0,
            readahead_size: 0,
            meta: BlobMetaLocation {
                compressor: r.ci_compressor.get(),
                offset: r.ci_offset.get(),
                compressed_size: r.ci_compressed_size.get(),
                uncompressed_size: r.ci_uncompressed_size.get(),
            },
            toc_size: r.blob_toc_size.get(),
            toc_digest: r.blob_toc_digest,
            meta_digest: r.blob_meta_digest,
            meta_size: r.blob_meta_size.get(),
            cipher_iv: r.cipher_iv,
            cipher_algo: r.cipher_algo.get(),
        });
    }

    // Chunk table, keyed as the reference reader keys it.
    let mut chunk_table = HashMap::new();
    let mut on_disk_table = Vec::new();
    let mut ambiguous = false;
    // Whether the (digest, blob) keys strictly increase, as in a table the builder derived.
    let mut sorted_unique = true;
    if ct_size > 0 {
        let table = slice(data, ct_off, ct_size, "v6 chunk table")?;
        chunk_table.reserve((ct_size / 80) as usize);
        for (i, c) in table.chunks_exact(80).enumerate() {
            let r: ChunkInfoRecord = record(c, 0, "v6 chunk table")?;
            if r.blob_index.get() as usize >= nblobs {
                return Err(derr(
                    "v6 chunk table",
                    ct_off + 80 * i as u64 + 32,
                    K::InvalidField {
                        field: "blob_index",
                        value: r.blob_index.get() as u64,
                        reason: "no such blob",
                    },
                ));
            }
            let chunk = crate::common::chunk_from_record(&r);
            if let Some(prev) = on_disk_table.last() {
                let prev: &ChunkInfo = prev;
                sorted_unique &= (prev.digest, prev.blob_index) < (chunk.digest, chunk.blob_index);
            }
            on_disk_table.push(chunk);
            if tarfs {
                continue; // tarfs chunk addresses are resolved without the table
            }
            let key = (
                r.blob_index.get(),
                r.index.get(),
                (r.uncompressed_offset.get() / block) as u32,
            );
            // The first record in table order answers an ambiguous address.
            match chunk_table.entry(key) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((i, r));
                }
                std::collections::hash_map::Entry::Occupied(o) => ambiguous |= o.get().1 != r,
            }
        }
    }

    let ctx = Ctx {
        data,
        block,
        meta_addr,
        chunk_size,
        build_time: sb.s_build_time.get(),
        tarfs,
        nblobs,
        used: (0..on_disk_table.len())
            .map(|_| std::cell::Cell::new(false))
            .collect(),
        chunk_table,
        limits,
    };
    let (tree, node_of_nid) = walk(&ctx, sb.s_root_nid.get() as u64, inos)?;

    let mut prefetch = Vec::new();
    if has_prefetch {
        let table = slice(data, pf_off, pf_size, "v6 prefetch table")?;
        for (i, c) in table.chunks_exact(4).enumerate() {
            let nid = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64;
            if nid == 0 {
                break;
            }
            let node = node_of_nid.get(&nid).ok_or_else(|| {
                derr(
                    "v6 prefetch table",
                    pf_off + 4 * i as u64,
                    K::InvalidField {
                        field: "nid",
                        value: nid,
                        reason: "no such inode in the tree",
                    },
                )
            })?;
            prefetch.push(*node);
        }
    }

    let superblock = Superblock {
        fs_version: FsVersion::V6,
        chunk_size: chunk_size as u32,
        compressor,
        digester,
        explicit_uid_gid: f & flags::EXPLICIT_UID_GID != 0,
        tarfs,
        encrypted: f & flags::ENCRYPTION_AES_128_XTS != 0,
        preserved_flags: f & flags::PRESERVED_COMPAT,
        build_time: sb.s_build_time.get(),
        build_time_nsec: sb.s_build_time_nsec.get(),
        uuid: sb.s_uuid,
        volume_name: sb.s_volume_name,
        xattr_flag_without_xattrs: f & flags::HAS_XATTR != 0
            && tree.inodes.iter().all(|i| i.xattrs.is_empty()),
    };
    // Keep the on-disk table only when the tree does not imply it. Every chunk was resolved
    // from that table by address, so it is the implied one exactly when its keys are unique and
    // sorted, no address is ambiguous, and every record is used. tarfs chunks are synthesized
    // instead, so their (one record per blob) table is compared with the derived one.
    let implied = if tarfs {
        let derived = super::derive_chunk_table(&tree, &tree.index_order().order);
        derived.into_values().eq(on_disk_table.iter().copied())
    } else {
        sorted_unique && !ambiguous && ctx.used.iter().all(std::cell::Cell::get)
    };
    let v6_chunk_table = (!implied).then_some(on_disk_table);
    Ok(Image {
        superblock,
        blobs,
        tree,
        prefetch,
        v6_chunk_table,
    })
}

/// A blob id: UTF-8, trailing NULs stripped, not empty.
fn blob_id(raw: &[u8; 64]) -> Option<String> {
    let end = raw.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
    let s = std::str::from_utf8(&raw[..end]).ok()?;
    (!s.is_empty()).then(|| s.to_owned())
}

/// Walks the directory tree from the root with an explicit stack.
fn walk(ctx: &Ctx<'_>, root_nid: u64, inos: u64) -> Result<(Tree, HashMap<u64, NodeId>)> {
    let mut tree = Tree::default();
    let mut inode_of_nid: HashMap<u64, InodeId> = HashMap::new();
    let mut node_of_nid: HashMap<u64, NodeId> = HashMap::new();
    let (root_inode, root) = read_inode(ctx, root_nid).map_err(|e| with_path(e, || "/".into()))?;
    if !root_inode.is_dir() {
        return Err(derr(
            "v6 inode",
            root.offset,
            K::InvalidField {
                field: "root",
                value: root_nid,
                reason: "root is not a directory",
            },
        ));
    }
    tree.nodes.push(Node {
        name: b"/".to_vec(),
        parent: None,
        children: Vec::new(),
        inode: InodeId(0),
    });
    tree.inodes.push(root_inode);
    let mut stack = vec![(root_nid, ROOT, root_nid, root, 0u32)];
    inode_of_nid.insert(root_nid, InodeId(0));
    node_of_nid.insert(root_nid, ROOT);
    while let Some((nid, node, parent_nid, dir, depth)) = stack.pop() {
        let dir_path = tree.path(node);
        let ctx_err = |e: Error| with_path(e, || dir_path.clone());
        let entries = read_dirents(ctx, &dir).map_err(ctx_err)?;
        // A name is a slice of the bootstrap: its offset is where its bytes start.
        let name_at = |name: &[u8]| (name.as_ptr() as usize - ctx.data.as_ptr() as usize) as u64;
        // Children sit one level deeper; a directory at the limit may exist if it is empty
        // (the rule the builders and the v5 decoder follow).
        if depth >= ctx.limits.max_depth && entries.iter().any(|e| e.1 != b"." && e.1 != b"..") {
            return Err(ctx_err(derr(
                "v6 inode",
                dir.offset,
                K::LimitExceeded {
                    limit: "max_depth",
                    value: depth as u64 + 1,
                    max: ctx.limits.max_depth as u64,
                },
            )));
        }
        let mut prev: Option<&[u8]> = None;
        let mut subdirs = Vec::new();
        for (at, name, child_nid, ftype) in &entries {
            let name = *name;
            let child_path = || {
                format!(
                    "{}/{}",
                    dir_path.trim_end_matches('/'),
                    String::from_utf8_lossy(name)
                )
            };
            // Names are checked before order, so a bad byte is reported as what it is.
            if name != b"." && name != b".." {
                check_name(name, ctx.limits.max_name_len)
                    .map_err(|k| with_path(derr("v6 dirent name", name_at(name), k), child_path))?;
            }
            if let Some(p) = prev {
                if p >= name {
                    return Err(with_path(
                        derr(
                            "v6 dirent",
                            name_at(name),
                            K::UnsortedDirectory {
                                name: String::from_utf8_lossy(name).into_owned(),
                            },
                        ),
                        child_path,
                    ));
                }
            }
            prev = Some(name);
            if name == b"." || name == b".." {
                let want = if name == b"." { nid } else { parent_nid };
                if *child_nid != want {
                    return Err(with_path(
                        derr(
                            "v6 dirent",
                            *at,
                            K::InvalidField {
                                field: "e_nid",
                                value: *child_nid,
                                reason: "'.' or '..' names the wrong directory",
                            },
                        ),
                        || dir_path.clone(),
                    ));
                }
                continue;
            }
            if tree.nodes.len() as u64 >= inos.min(ctx.limits.max_nodes) {
                return Err(with_path(
                    derr(
                        "v6 dirent",
                        *at,
                        K::InvalidField {
                            field: "entries",
                            value: tree.nodes.len() as u64 + 1,
                            reason: "more paths than s_inos",
                        },
                    ),
                    child_path,
                ));
            }
            if let Some(existing) = inode_of_nid.get(child_nid) {
                // A second path to an inode: only non-directories may be hard linked.
                let inode = tree.inode(*existing);
                if inode.is_dir() || *ftype == raw::file_type::DIR {
                    return Err(with_path(
                        derr("v6 dirent", *at, K::DirectoryCycle { inode: *child_nid }),
                        child_path,
                    ));
                }
                check_file_type(*ftype, inode.mode)
                    .map_err(|k| with_path(derr("v6 dirent", *at, k), child_path))?;
                tree.push_child(node, name.to_vec(), *existing);
                continue;
            }
            let (child_inode, child) =
                read_inode(ctx, *child_nid).map_err(|e| with_path(e, child_path))?;
            check_file_type(*ftype, child_inode.mode)
                .map_err(|k| with_path(derr("v6 dirent", *at, k), child_path))?;
            let is_dir = child_inode.is_dir();
            let inode_id = tree.add_inode(child_inode);
            let id = tree.push_child(node, name.to_vec(), inode_id);
            inode_of_nid.insert(*child_nid, inode_id);
            node_of_nid.insert(*child_nid, id);
            if is_dir {
                subdirs.push((*child_nid, id, nid, child, depth + 1));
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok((tree, node_of_nid))
}

fn check_file_type(ftype: u8, mode: u32) -> std::result::Result<(), K> {
    use raw::file_type as t;
    let want = super::dirent_file_type(mode);
    if ftype != want && ftype != t::UNKNOWN {
        return Err(K::InvalidField {
            field: "e_file_type",
            value: ftype as u64,
            reason: "differs from the inode's mode",
        });
    }
    Ok(())
}

/// Reads the inode at `nid`: attributes, xattrs, and symlink target or chunks.
fn read_inode(ctx: &Ctx<'_>, nid: u64) -> Result<(Inode, DataLoc)> {
    let offset = nid
        .checked_mul(32)
        .and_then(|o| o.checked_add(ctx.meta_addr))
        .unwrap_or(u64::MAX);
    let fmt_bytes = slice(ctx.data, offset, 2, "v6 inode")?;
    let i_format = u16::from_le_bytes([fmt_bytes[0], fmt_bytes[1]]);
    let bad = |at: u64, field, value: u64, reason| {
        derr(
            "v6 inode",
            offset + at,
            K::InvalidField {
                field,
                value,
                reason,
            },
        )
    };
    if i_format & !0xF != 0 {
        return Err(bad(0, "i_format", i_format as u64, "unknown bits"));
    }
    let layout = (i_format >> 1) & 7;
    if !matches!(
        layout,
        raw::LAYOUT_FLAT_PLAIN | raw::LAYOUT_FLAT_INLINE | raw::LAYOUT_CHUNK_BASED
    ) {
        return Err(bad(
            0,
            "i_format",
            i_format as u64,
            "compressed layouts are not RAFS",
        ));
    }
    let extended = i_format & 1 == 1;
    let (mut inode, icount, raw_u, isize, size) = if extended {
        let r: raw::InodeExtended = record(ctx.data, offset, "v6 inode")?;
        let mut i = Inode::new(r.i_mode.get() as u32);
        i.uid = r.i_uid.get();
        i.gid = r.i_gid.get();
        i.mtime = r.i_mtime.get();
        i.mtime_nsec = r.i_mtime_nsec.get();
        if i.mtime_nsec > crate::rules::MAX_MTIME_NSEC {
            return Err(bad(
                core::mem::offset_of!(raw::InodeExtended, i_mtime_nsec) as u64,
                "i_mtime_nsec",
                u64::from(i.mtime_nsec),
                "must be below 10^9",
            ));
        }
        i.nlink = r.i_nlink.get();
        (
            i,
            r.i_xattr_icount.get(),
            r.i_u.get(),
            raw::INODE_EXTENDED_SIZE as u64,
            r.i_size.get(),
        )
    } else {
        let r: raw::InodeCompact = record(ctx.data, offset, "v6 inode")?;
        let mut i = Inode::new(r.i_mode.get() as u32);
        i.uid = r.i_uid.get() as u32;
        i.gid = r.i_gid.get() as u32;
        i.mtime = ctx.build_time;
        i.nlink = r.i_nlink.get() as u32;
        (
            i,
            r.i_xattr_icount.get(),
            r.i_u.get(),
            raw::INODE_COMPACT_SIZE as u64,
            r.i_size.get() as u64,
        )
    };
    if inode.nlink == 0 {
        let at = if extended {
            core::mem::offset_of!(raw::InodeExtended, i_nlink)
        } else {
            core::mem::offset_of!(raw::InodeCompact, i_nlink)
        };
        return Err(bad(at as u64, "i_nlink", 0, "must not be 0"));
    }
    let fmt = inode.file_type();
    if !matches!(
        fmt,
        mode::S_IFDIR
            | mode::S_IFREG
            | mode::S_IFLNK
            | mode::S_IFCHR
            | mode::S_IFBLK
            | mode::S_IFIFO
            | mode::S_IFSOCK
    ) {
        return Err(bad(4, "i_mode", inode.mode as u64, "unknown file type"));
    }
    // Xattrs.
    let mut body_end = offset + isize;
    if icount > 0 {
        let area = 12 + (icount as u64 - 1) * 4;
        if area > ctx.limits.max_xattr_bytes as u64 {
            return Err(derr(
                "v6 xattr",
                body_end,
                K::LimitExceeded {
                    limit: "max_xattr_bytes",
                    value: area,
                    max: ctx.limits.max_xattr_bytes as u64,
                },
            ));
        }
        let bytes = slice(ctx.data, body_end, area, "v6 xattr")?;
        inode.xattrs =
            parse_xattrs(bytes).map_err(|(off, k)| derr("v6 xattr", body_end + off, k))?;
        body_end += area;
    }
    let d = DataLoc {
        offset,
        layout,
        body_end,
        raw_u,
        size,
    };
    match fmt {
        mode::S_IFREG => {
            if layout != raw::LAYOUT_CHUNK_BASED {
                return Err(bad(
                    0,
                    "i_format",
                    i_format as u64,
                    "regular files must be chunk-based",
                ));
            }
            if raw_u & raw::CHUNK_FORMAT_INDEXES == 0 {
                return Err(bad(16, "i_u", raw_u as u64, "chunk format lacks INDEXES"));
            }
            inode.size = size;
            inode.chunks = read_chunks(ctx, &d)?;
            inode.v5_hardlink_flag = inode.nlink > 1;
        }
        mode::S_IFDIR => {
            if layout == raw::LAYOUT_CHUNK_BASED {
                return Err(bad(
                    0,
                    "i_format",
                    i_format as u64,
                    "directories cannot be chunk-based",
                ));
            }
            if size > ctx.data.len() as u64 {
                return Err(bad(
                    8,
                    "i_size",
                    size,
                    "directory larger than the bootstrap",
                ));
            }
        }
        mode::S_IFLNK => {
            if layout == raw::LAYOUT_CHUNK_BASED || size == 0 || size > 4096 {
                return Err(bad(
                    8,
                    "i_size",
                    size,
                    "symlink target must be 1..=4096 bytes, flat",
                ));
            }
            inode.size = size;
            let mut target = Vec::with_capacity(size as usize);
            for k in 0..size.div_ceil(ctx.block) {
                target.extend_from_slice(data_block(ctx, &d, k)?);
            }
            if let Err(reason) = crate::rules::check_symlink_target(&target) {
                return Err(bad(8, "symlink target", size, reason));
            }
            inode.symlink = target;
        }
        _ => {
            if layout == raw::LAYOUT_CHUNK_BASED {
                return Err(bad(
                    0,
                    "i_format",
                    i_format as u64,
                    "special files cannot be chunk-based",
                ));
            }
            inode.rdev = raw_u;
        }
    }
    Ok((inode, d))
}

/// Block `k` of a directory's or symlink's data (the last one may be the inline tail).
fn data_block<'a>(ctx: &Ctx<'a>, d: &DataLoc, k: u64) -> Result<&'a [u8]> {
    let b = ctx.block;
    let len = (d.size - k * b).min(b);
    let tail = d.size % b;
    let last = d.size.div_ceil(b) - 1;
    if d.layout == raw::LAYOUT_FLAT_INLINE && tail != 0 && k == last {
        return slice(ctx.data, d.body_end, len, "v6 inline tail");
    }
    let at = (d.raw_u as u64)
        .checked_mul(b)
        .and_then(|a| a.checked_add(k * b))
        .unwrap_or(u64::MAX);
    slice(ctx.data, at, len, "v6 data block")
}

/// Entries of a directory: (offset of the dirent, name, nid, file type).
/// One dirent: (offset, name, nid, file type).
type Dirent<'a> = (u64, &'a [u8], u64, u8);

fn read_dirents<'a>(ctx: &Ctx<'a>, d: &DataLoc) -> Result<Vec<Dirent<'a>>> {
    let mut out = Vec::new();
    let nblocks = d.size.div_ceil(ctx.block);
    for k in 0..nblocks {
        let blk = data_block(ctx, d, k)?;
        let blk_at = blk.as_ptr() as u64 - ctx.data.as_ptr() as u64;
        let bad = |at: u64, value: u64, reason| {
            derr(
                "v6 dirent",
                blk_at + at,
                K::InvalidField {
                    field: "e_nameoff",
                    value,
                    reason,
                },
            )
        };
        if blk.len() < raw::DIRENT_SIZE {
            return Err(bad(
                0,
                blk.len() as u64,
                "directory block shorter than one entry",
            ));
        }
        let first: raw::Dirent = record(blk, 0, "v6 dirent")?;
        let nameoff0 = first.e_nameoff.get() as usize;
        if nameoff0 % raw::DIRENT_SIZE != 0
            || nameoff0 == 0
            || nameoff0 >= ctx.block as usize
            || nameoff0 > blk.len()
        {
            return Err(bad(
                8,
                nameoff0 as u64,
                "first name offset must be a positive multiple of 12 inside the block",
            ));
        }
        let n = nameoff0 / raw::DIRENT_SIZE;
        for i in 0..n {
            let e: raw::Dirent = record(blk, (i * raw::DIRENT_SIZE) as u64, "v6 dirent")?;
            let start = e.e_nameoff.get() as usize;
            let end = if i + 1 < n {
                let next: raw::Dirent =
                    record(blk, ((i + 1) * raw::DIRENT_SIZE) as u64, "v6 dirent")?;
                next.e_nameoff.get() as usize
            } else {
                blk.len()
            };
            if start < nameoff0 || start > end || end > blk.len() {
                return Err(bad(
                    (i * raw::DIRENT_SIZE + 8) as u64,
                    start as u64,
                    "names overlap or leave the block",
                ));
            }
            let mut name = &blk[start..end];
            if i + 1 == n {
                // The last name of a block ends at the block's end or at the first NUL.
                if let Some(p) = name.iter().position(|b| *b == 0) {
                    name = &name[..p];
                }
            }
            out.push((
                blk_at + (i * raw::DIRENT_SIZE) as u64,
                name,
                e.e_nid.get(),
                e.e_file_type,
            ));
        }
    }
    Ok(out)
}

/// Parses an inline xattr area.
/// Parses an inline xattr area; an error carries the offset in the area of the byte at fault.
fn parse_xattrs(area: &[u8]) -> std::result::Result<Vec<Xattr>, (u64, K)> {
    let at = |p: usize, k: K| (p as u64, k);
    if area[4] != 0 {
        return Err(at(
            4,
            K::BadXattr {
                reason: "shared xattrs are not supported",
            },
        ));
    }
    let mut out = Vec::new();
    let mut p = raw::XATTR_IBODY_HEADER_SIZE;
    while p < area.len() {
        if area.len() - p < raw::XATTR_ENTRY_SIZE {
            return Err(at(
                p,
                K::BadXattr {
                    reason: "entry header runs past the xattr area",
                },
            ));
        }
        let name_len = area[p] as usize;
        let index = area[p + 1];
        let value_len = u16::from_le_bytes([area[p + 2], area[p + 3]]) as usize;
        let size = xattr::entry_size(name_len, value_len);
        if area.len() - p < size {
            return Err(at(
                p + 2,
                K::BadXattr {
                    reason: "entry runs past the xattr area",
                },
            ));
        }
        let prefix = xattr::prefix(index).ok_or(at(
            p + 1,
            K::BadXattr {
                reason: "unknown name index",
            },
        ))?;
        let body = &area[p + 4..p + 4 + name_len + value_len];
        let mut name = prefix.to_vec();
        name.extend_from_slice(&body[..name_len]);
        out.push(Xattr {
            name,
            value: body[name_len..].to_vec(),
        });
        p += size;
    }
    Ok(out)
}

/// Reads a regular file's chunk indexes and resolves them to full chunk infos.
fn read_chunks(ctx: &Ctx<'_>, d: &DataLoc) -> Result<Vec<ChunkInfo>> {
    let count = d.size.div_ceil(ctx.chunk_size);
    let at = align_up(d.body_end, 8);
    let bytes = slice(ctx.data, at, count.saturating_mul(8), "v6 chunk index")?;
    let mut out = Vec::with_capacity(count as usize);
    for (k, c) in bytes.chunks_exact(8).enumerate() {
        let a: raw::ChunkAddr = record(c, 0, "v6 chunk index")?;
        let here = at + 8 * k as u64;
        let hi = a.c_blob_addr_hi.get();
        let dev = (hi & 0xff) as usize;
        if dev == 0 || dev > ctx.nblobs {
            return Err(derr(
                "v6 chunk index",
                here + core::mem::offset_of!(raw::ChunkAddr, c_blob_addr_hi) as u64,
                K::InvalidField {
                    field: "device_id",
                    value: dev as u64,
                    reason: "names no blob",
                },
            ));
        }
        let blob_index = (dev - 1) as u32;
        let index = ((hi as u32 >> 8) << 16) | a.c_blob_addr_lo.get() as u32;
        let blkaddr = a.c_blk_addr.get();
        let file_offset = k as u64 * ctx.chunk_size;
        let size = (d.size - file_offset).min(ctx.chunk_size) as u32;
        let chunk = if ctx.tarfs {
            let off = blkaddr as u64 * ctx.block;
            ChunkInfo {
                digest: [0; 32],
                blob_index,
                index,
                flags: ChunkFlags::empty(),
                compressed_offset: off,
                compressed_size: size,
                uncompressed_offset: off,
                uncompressed_size: size,
                file_offset,
                crc32: 0,
            }
        } else {
            let (pos, r) = ctx
                .chunk_table
                .get(&(blob_index, index, blkaddr))
                .ok_or_else(|| {
                    derr(
                        "v6 chunk index",
                        here,
                        K::ChunkNotFound {
                            blob_index,
                            chunk_index: index,
                            blkaddr,
                        },
                    )
                })?;
            // The record's own file_offset is kept: for a chunk shared by several files it is
            // that of the file the builder met last, and merges carry it over unchanged.
            ctx.used[*pos].set(true);
            crate::common::chunk_from_record(r)
        };
        out.push(chunk);
    }
    Ok(out)
}
