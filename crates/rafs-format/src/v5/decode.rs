//! v5 decoding.

use crate::common::{chunk_from_record, flags};
use crate::error::{derr, with_path, DecodeErrorKind as K, Error, Result};
use crate::model::*;
use crate::ondisk::v5 as raw;
use crate::ondisk::ChunkInfoRecord;
use crate::read::{check_name, record, slice};
use crate::{align_up, Limits};

/// Decodes a v5 bootstrap with default [`Limits`].
pub fn decode(data: &[u8]) -> Result<Image> {
    decode_with_limits(data, &Limits::default())
}

/// Largest bootstrap the reference accepts.
const MAX_METADATA_SIZE: u64 = 0x8000_0000;

struct Record<'a> {
    offset: u64,
    head: raw::Inode,
    name: &'a [u8],
    symlink: &'a [u8],
    xattrs: Vec<Xattr>,
    chunks: &'a [u8],
    /// Offset of the first chunk record.
    chunks_at: u64,
}

/// Decodes a v5 bootstrap.
pub fn decode_with_limits(data: &[u8], limits: &Limits) -> Result<Image> {
    let len = data.len() as u64;
    let sb: raw::SuperBlock = record(data, 0, "v5 superblock")?;
    let bad = |field, value: u64, reason| {
        derr(
            "v5 superblock",
            sb_field_at(field),
            K::InvalidField {
                field,
                value,
                reason,
            },
        )
    };
    if sb.s_magic.get() != raw::MAGIC {
        return Err(derr(
            "v5 superblock",
            0,
            K::BadMagic {
                found: sb.s_magic.get(),
            },
        ));
    }
    if sb.s_fs_version.get() != raw::VERSION {
        return Err(bad(
            "s_fs_version",
            sb.s_fs_version.get() as u64,
            "only 0x500 is v5",
        ));
    }
    if sb.s_sb_size.get() as usize != raw::SUPERBLOCK_SIZE {
        return Err(bad("s_sb_size", sb.s_sb_size.get() as u64, "must be 8192"));
    }
    if len % 8 != 0 || len > MAX_METADATA_SIZE {
        return Err(bad(
            "file size",
            len,
            "must be a multiple of 8 and at most 2 GiB",
        ));
    }
    let chunk_size = sb.s_block_size.get();
    if !crate::common::valid_chunk_size(chunk_size as u64) {
        return Err(bad(
            "s_block_size",
            chunk_size as u64,
            "chunk size must be a power of two in 4 KiB..=16 MiB",
        ));
    }
    let f = sb.s_flags.get();
    if f & !flags::KNOWN != 0 {
        return Err(derr(
            "v5 superblock",
            16,
            K::UnknownFlags {
                field: "s_flags",
                bits: f & !flags::KNOWN,
            },
        ));
    }

    // Tables.
    let entries = sb.s_inode_table_entries.get() as u64;
    if entries == 0 {
        return Err(bad(
            "s_inode_table_entries",
            0,
            "an image has at least a root",
        ));
    }
    if entries > limits.max_nodes {
        return Err(derr(
            "v5 superblock",
            56,
            K::LimitExceeded {
                limit: "max_nodes",
                value: entries,
                max: limits.max_nodes,
            },
        ));
    }
    if sb.s_inodes_count.get() > entries {
        return Err(bad(
            "s_inodes_count",
            sb.s_inodes_count.get(),
            "exceeds s_inode_table_entries",
        ));
    }
    let it_off = sb.s_inode_table_offset.get();
    let it_len = entries * 4;
    check_range("inode table", it_off, it_len, len, &[])?;
    let bt_off = sb.s_blob_table_offset.get();
    let bt_len = sb.s_blob_table_size.get() as u64;
    check_range(
        "blob table",
        bt_off,
        bt_len,
        len,
        &[("inode table", it_off, it_len)],
    )?;
    let ext_n = sb.s_extended_blob_table_entries.get() as u64;
    let ext_off = sb.s_extended_blob_table_offset.get();
    let ext_len = ext_n * raw::EXT_BLOB_ENTRY_SIZE as u64;
    if ext_n > 0 {
        check_range(
            "extended blob table",
            ext_off,
            ext_len,
            len,
            &[
                ("inode table", it_off, it_len),
                ("blob table", bt_off, bt_len),
            ],
        )?;
    }
    let pf_n = sb.s_prefetch_table_entries.get() as u64;
    let pf_off = sb.s_prefetch_table_offset.get();
    if pf_n > 0 {
        check_range(
            "prefetch table",
            pf_off,
            pf_n * 4,
            len,
            &[
                ("inode table", it_off, it_len),
                ("blob table", bt_off, bt_len),
                ("extended blob table", ext_off, ext_len),
            ],
        )?;
    }

    let compressor = flags::compressor(f);
    let digester = flags::digester(f);

    // Blob table: records of u32, u32, id, '\0' (except after the last).
    let table = slice(data, bt_off, bt_len, "v5 blob table")?;
    let mut blobs = Vec::new();
    let mut pos = 0usize;
    while table.len() - pos > 8 {
        let at = bt_off + pos as u64;
        let ra_off = u32::from_le_bytes(table[pos..pos + 4].try_into().unwrap_or_default());
        let ra_size = u32::from_le_bytes(table[pos + 4..pos + 8].try_into().unwrap_or_default());
        pos += 8;
        let end = table[pos..]
            .iter()
            .position(|b| *b == 0)
            .map_or(table.len(), |p| pos + p);
        let id = std::str::from_utf8(&table[pos..end]).map_err(|_| {
            derr(
                "v5 blob table",
                at,
                K::InvalidField {
                    field: "blob_id",
                    value: 0,
                    reason: "not UTF-8",
                },
            )
        })?;
        if id.is_empty() {
            return Err(derr(
                "v5 blob table",
                at,
                K::InvalidField {
                    field: "blob_id",
                    value: 0,
                    reason: "empty",
                },
            ));
        }
        if let Err(reason) = crate::rules::check_blob_id(id) {
            return Err(derr(
                "v5 blob table",
                at + 8,
                K::InvalidField {
                    field: "blob_id",
                    value: 0,
                    reason,
                },
            ));
        }
        let mut blob = Blob::new(id, compressor, digester, chunk_size);
        blob.features = BlobFeatures::empty();
        blob.readahead_offset = ra_off;
        blob.readahead_size = ra_size;
        blobs.push(blob);
        pos = (end + 1).min(table.len());
    }
    if ext_n > 0 && ext_n < blobs.len() as u64 {
        return Err(bad(
            "s_extended_blob_table_entries",
            ext_n,
            "fewer than the blobs",
        ));
    }
    if ext_n > 0 {
        for (i, blob) in blobs.iter_mut().enumerate() {
            let at = ext_off + (i * raw::EXT_BLOB_ENTRY_SIZE) as u64;
            let e: raw::ExtBlobEntry = record(data, at, "v5 extended blob entry")?;
            blob.chunk_count = e.chunk_count.get();
            // The reference truncates unknown feature bits with a warning.
            blob.features = BlobFeatures::from_bits_truncate(e.features.get());
            blob.uncompressed_size = e.uncompressed_size.get();
            blob.compressed_size = e.compressed_size.get();
        }
    }

    // Inode table.
    let it = slice(data, it_off, it_len, "v5 inode table")?;
    let offset_of = |index: u64| -> Result<u64> {
        let at = ((index - 1) * 4) as usize;
        let v = u32::from_le_bytes(it[at..at + 4].try_into().unwrap_or_default()) as u64;
        let off = v << 3;
        if off <= raw::SUPERBLOCK_SIZE as u64 || v >= 1 << 29 || off + raw::INODE_SIZE as u64 > len
        {
            return Err(derr(
                "v5 inode table",
                it_off + at as u64,
                K::InvalidField {
                    field: "inode offset",
                    value: off,
                    reason: "outside the inode area",
                },
            ));
        }
        Ok(off)
    };
    let read = |index: u64| -> Result<Record<'_>> {
        read_record(data, offset_of(index)?, chunk_size, limits)
    };

    // Walk directories from the root, each index met at most once.
    let mut tree = Tree::default();
    let mut node_of_index: Vec<u32> = vec![u32::MAX; entries as usize + 1];
    let mut inode_of_index: Vec<u32> = vec![u32::MAX; entries as usize + 1];
    let root = read(1)?;
    if root.head.i_ino.get() != 1 || root.head.i_mode.get() & mode::S_IFMT != mode::S_IFDIR {
        return Err(derr(
            "v5 inode",
            root.offset,
            K::InvalidField {
                field: "root",
                value: root.head.i_ino.get(),
                reason: "index 1 must be the root directory with i_ino 1",
            },
        ));
    }
    let root_inode = to_inode(&root, &blobs)?;
    tree.nodes.push(Node {
        name: b"/".to_vec(),
        parent: None,
        children: Vec::new(),
        inode: InodeId(0),
    });
    tree.inodes.push(root_inode);
    node_of_index[1] = 0;
    inode_of_index[1] = 0;
    // (dir index, dir's i_ino, child_index, child_count, depth)
    let mut stack = vec![(
        1u64,
        1u64,
        root.head.i_child_index.get() as u64,
        root.head.i_child_count.get() as u64,
        0u32,
    )];
    while let Some((dir_index, dir_ino, first, count, depth)) = stack.pop() {
        let dir_node = NodeId(node_of_index[dir_index as usize]);
        if count == 0 {
            continue;
        }
        if depth >= limits.max_depth {
            return Err(with_path(
                derr(
                    "v5 inode",
                    offset_of(dir_index)?,
                    K::LimitExceeded {
                        limit: "max_depth",
                        value: depth as u64 + 1,
                        max: limits.max_depth as u64,
                    },
                ),
                || tree.path(dir_node),
            ));
        }
        if first < 2 || first.checked_add(count).is_none_or(|end| end - 1 > entries) {
            let off =
                offset_of(dir_index)? + core::mem::offset_of!(raw::Inode, i_child_index) as u64;
            return Err(with_path(
                derr(
                    "v5 inode",
                    off,
                    K::InvalidField {
                        field: "i_child_index",
                        value: first,
                        reason: "children outside the inode table",
                    },
                ),
                || tree.path(dir_node),
            ));
        }
        let dir_path = tree.path(dir_node);
        let mut prev: Option<Vec<u8>> = None;
        let mut subdirs = Vec::new();
        for index in first..first + count {
            if node_of_index[index as usize] != u32::MAX {
                return Err(with_path(
                    derr(
                        "v5 inode table",
                        it_off + (index - 1) * 4,
                        K::DirectoryCycle { inode: index },
                    ),
                    || tree.path(dir_node),
                ));
            }
            let rec = read(index)?;
            let ctx = |e: Error| {
                with_path(e, || {
                    format!(
                        "{}/{}",
                        dir_path.trim_end_matches('/'),
                        String::from_utf8_lossy(rec.name)
                    )
                })
            };
            check_name(rec.name, limits.max_name_len)
                .map_err(|k| ctx(derr("v5 inode name", rec.offset + 128, k)))?;
            if let Some(p) = &prev {
                if p.as_slice() >= rec.name {
                    return Err(ctx(derr(
                        "v5 inode",
                        rec.offset,
                        K::UnsortedDirectory {
                            name: String::from_utf8_lossy(rec.name).into_owned(),
                        },
                    )));
                }
            }
            prev = Some(rec.name.to_vec());
            if rec.head.i_parent.get() != dir_ino {
                return Err(ctx(derr(
                    "v5 inode",
                    rec.offset + 32,
                    K::InvalidField {
                        field: "i_parent",
                        value: rec.head.i_parent.get(),
                        reason: "does not name the containing directory",
                    },
                )));
            }
            let ino = rec.head.i_ino.get();
            let inode_id = if ino == index {
                let inode = to_inode(&rec, &blobs).map_err(ctx)?;
                tree.add_inode(inode)
            } else {
                // A later path of a hard link: shares the first path's inode.
                let is_primary =
                    ino >= 1 && ino < index && inode_of_index[ino as usize] != u32::MAX;
                let shared = (rec.head.i_mode.get() & mode::S_IFMT) != mode::S_IFDIR && is_primary;
                if !shared {
                    return Err(ctx(derr(
                        "v5 inode",
                        rec.offset + 40,
                        K::InvalidField {
                            field: "i_ino",
                            value: ino,
                            reason:
                                "neither the record's own index nor an earlier hard-linked file",
                        },
                    )));
                }
                let id = InodeId(inode_of_index[ino as usize]);
                let inode = to_inode(&rec, &blobs).map_err(ctx)?;
                if &inode != tree.inode(id) {
                    return Err(ctx(derr(
                        "v5 inode",
                        rec.offset,
                        K::HardLinkMismatch { ino },
                    )));
                }
                id
            };
            let node = tree.push_child(dir_node, rec.name.to_vec(), inode_id);
            node_of_index[index as usize] = node.0;
            inode_of_index[index as usize] = inode_id.0;
            if rec.head.i_mode.get() & mode::S_IFMT == mode::S_IFDIR {
                if ino != index {
                    return Err(ctx(derr(
                        "v5 inode",
                        rec.offset,
                        K::DirectoryCycle { inode: index },
                    )));
                }
                subdirs.push((
                    index,
                    ino,
                    rec.head.i_child_index.get() as u64,
                    rec.head.i_child_count.get() as u64,
                    depth + 1,
                ));
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    if let Some(index) = (1..=entries).find(|i| node_of_index[*i as usize] == u32::MAX) {
        return Err(derr(
            "v5 inode table",
            it_off + (index - 1) * 4,
            K::Unreachable { index },
        ));
    }

    // Prefetch table: inode numbers, ended by the first 0.
    let mut prefetch = Vec::new();
    if pf_n > 0 {
        let table = slice(data, pf_off, pf_n * 4, "v5 prefetch table")?;
        for (i, c) in table.chunks_exact(4).enumerate() {
            let ino = u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as u64;
            if ino == 0 {
                break;
            }
            if ino > entries {
                return Err(derr(
                    "v5 prefetch table",
                    pf_off + 4 * i as u64,
                    K::InvalidField {
                        field: "inode number",
                        value: ino,
                        reason: "no such inode",
                    },
                ));
            }
            prefetch.push(NodeId(node_of_index[ino as usize]));
        }
    }

    let superblock = Superblock {
        fs_version: FsVersion::V5,
        chunk_size,
        compressor,
        digester,
        explicit_uid_gid: f & flags::EXPLICIT_UID_GID != 0,
        tarfs: false,
        encrypted: false,
        preserved_flags: f & flags::PRESERVED_COMPAT,
        build_time: 0,
        build_time_nsec: 0,
        uuid: [0; 16],
        volume_name: [0; 16],
        xattr_flag_without_xattrs: f & flags::HAS_XATTR != 0
            && tree.inodes.iter().all(|i| i.xattrs.is_empty()),
    };
    Ok(Image {
        superblock,
        blobs,
        tree,
        prefetch,
        v6_chunk_table: None,
    })
}

/// Offset of a v5 superblock field, by name, for error locations (0 for what is not one
/// field, such as the file size).
fn sb_field_at(field: &str) -> u64 {
    use core::mem::offset_of as at;
    use raw::SuperBlock as S;
    (match field {
        "s_fs_version" => at!(S, s_fs_version),
        "s_sb_size" => at!(S, s_sb_size),
        "s_block_size" => at!(S, s_block_size),
        "s_flags" => at!(S, s_flags),
        "s_inodes_count" => at!(S, s_inodes_count),
        "s_inode_table_offset" | "inode table" => at!(S, s_inode_table_offset),
        "s_prefetch_table_offset" | "prefetch table" => at!(S, s_prefetch_table_offset),
        "s_blob_table_offset" | "blob table" => at!(S, s_blob_table_offset),
        "s_inode_table_entries" => at!(S, s_inode_table_entries),
        "s_prefetch_table_entries" => at!(S, s_prefetch_table_entries),
        "s_blob_table_size" => at!(S, s_blob_table_size),
        "s_extended_blob_table_entries" => at!(S, s_extended_blob_table_entries),
        "s_extended_blob_table_offset" | "extended blob table" => {
            at!(S, s_extended_blob_table_offset)
        }
        _ => 0,
    }) as u64
}

/// Checks that `[off, off+size)` lies inside the file after the superblock, is 8-aligned,
/// and does not intersect the given other ranges; a failure is reported at the table's
/// offset field.
fn check_range(
    field: &'static str,
    off: u64,
    size: u64,
    len: u64,
    others: &[(&'static str, u64, u64)],
) -> Result<()> {
    let end = off.saturating_add(size);
    if off % 8 != 0 || off < raw::SUPERBLOCK_SIZE as u64 || end > len {
        return Err(derr(
            "v5 superblock",
            sb_field_at(field),
            K::BadRange {
                field,
                start: off,
                end,
                other: "the file",
            },
        ));
    }
    for (name, o, s) in others {
        if size > 0 && *s > 0 && off < o + s && *o < end {
            return Err(derr(
                "v5 superblock",
                sb_field_at(field),
                K::BadRange {
                    field,
                    start: off,
                    end,
                    other: name,
                },
            ));
        }
    }
    Ok(())
}

fn read_record<'a>(
    data: &'a [u8],
    offset: u64,
    chunk_size: u32,
    limits: &Limits,
) -> Result<Record<'a>> {
    let head: raw::Inode = record(data, offset, "v5 inode")?;
    let bad = |at: u64, field, value: u64, reason| {
        derr(
            "v5 inode",
            offset + at,
            K::InvalidField {
                field,
                value,
                reason,
            },
        )
    };
    let name_size = head.i_name_size.get() as u64;
    if name_size == 0 || name_size > 256 {
        return Err(bad(100, "i_name_size", name_size, "must be 1..=256"));
    }
    let mut pos = offset + raw::INODE_SIZE as u64;
    let name = slice(data, pos, name_size, "v5 inode name")?;
    pos += align_up(name_size, 8);
    let fmt = head.i_mode.get() & mode::S_IFMT;
    let symlink_size = head.i_symlink_size.get() as u64;
    let is_symlink = fmt == mode::S_IFLNK;
    if is_symlink != (symlink_size > 0) {
        return Err(bad(
            102,
            "i_symlink_size",
            symlink_size,
            "symlinks, and only symlinks, have a target",
        ));
    }
    if is_symlink != (head.i_flags.get() & raw::INODE_FLAG_SYMLINK != 0) {
        return Err(bad(
            80,
            "i_flags",
            head.i_flags.get(),
            "SYMLINK flag disagrees with the mode",
        ));
    }
    let symlink = slice(data, pos, symlink_size, "v5 symlink")?;
    if is_symlink {
        if let Err(reason) = crate::rules::check_symlink_target(symlink) {
            return Err(bad(102, "symlink target", symlink_size, reason));
        }
    }
    let nsec = head.i_mtime_nsec.get();
    if nsec > crate::rules::MAX_MTIME_NSEC {
        return Err(bad(
            core::mem::offset_of!(raw::Inode, i_mtime_nsec) as u64,
            "i_mtime_nsec",
            u64::from(nsec),
            "must be below 10^9",
        ));
    }
    pos += align_up(symlink_size, 8);
    let mut xattrs = Vec::new();
    if head.i_flags.get() & raw::INODE_FLAG_XATTR != 0 {
        let size_bytes = slice(data, pos, 8, "v5 xattr table")?;
        let size = u64::from_le_bytes(size_bytes.try_into().unwrap_or_default());
        if size as usize > limits.max_xattr_bytes {
            return Err(derr(
                "v5 xattr table",
                pos,
                K::LimitExceeded {
                    limit: "max_xattr_bytes",
                    value: size,
                    max: limits.max_xattr_bytes as u64,
                },
            ));
        }
        let pairs = slice(data, pos + 8, size, "v5 xattr table")?;
        xattrs = parse_xattr_pairs(pairs).map_err(|k| derr("v5 xattr table", pos, k))?;
        pos += 8 + align_up(size, 8);
    }
    let chunks = if fmt == mode::S_IFREG {
        let n = head.i_child_count.get() as u64;
        let size = head.i_size.get();
        // Without HAS_HOLE the reader indexes chunks by offset / chunk_size.
        if head.i_flags.get() & raw::INODE_FLAG_HAS_HOLE == 0
            && n != size.div_ceil(chunk_size as u64)
        {
            return Err(bad(
                96,
                "i_child_count",
                n,
                "must be ceil(i_size / chunk_size)",
            ));
        }
        slice(data, pos, n * 80, "v5 chunk info")?
    } else {
        &[]
    };
    if head.i_nlink.get() == 0 {
        return Err(bad(88, "i_nlink", 0, "must not be 0"));
    }
    let known = raw::INODE_FLAG_SYMLINK
        | raw::INODE_FLAG_HARDLINK
        | raw::INODE_FLAG_XATTR
        | raw::INODE_FLAG_HAS_HOLE;
    if head.i_flags.get() & !known != 0 {
        return Err(derr(
            "v5 inode",
            offset + 80,
            K::UnknownFlags {
                field: "i_flags",
                bits: head.i_flags.get() & !known,
            },
        ));
    }
    Ok(Record {
        offset,
        head,
        name,
        symlink,
        xattrs,
        chunks,
        chunks_at: pos,
    })
}

/// Parses `{u32 size; name '\0' value}` pairs.
pub(crate) fn parse_xattr_pairs(mut pairs: &[u8]) -> std::result::Result<Vec<Xattr>, K> {
    let mut out = Vec::new();
    while !pairs.is_empty() {
        if pairs.len() < 4 {
            return Err(K::BadXattr {
                reason: "pair size runs past the table",
            });
        }
        let size = u32::from_le_bytes([pairs[0], pairs[1], pairs[2], pairs[3]]) as usize;
        let body = pairs.get(4..4 + size).ok_or(K::BadXattr {
            reason: "pair runs past the table",
        })?;
        let nul = body.iter().position(|b| *b == 0).ok_or(K::BadXattr {
            reason: "name is not NUL-terminated",
        })?;
        let name = &body[..nul];
        if name.is_empty() {
            return Err(K::BadXattr {
                reason: "empty name",
            });
        }
        out.push(Xattr {
            name: name.to_vec(),
            value: body[nul + 1..].to_vec(),
        });
        pairs = &pairs[4 + size..];
    }
    Ok(out)
}

fn to_inode(rec: &Record<'_>, blobs: &[Blob]) -> Result<Inode> {
    let h = &rec.head;
    let fmt = h.i_mode.get() & mode::S_IFMT;
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
        return Err(derr(
            "v5 inode",
            rec.offset + 60,
            K::InvalidField {
                field: "i_mode",
                value: h.i_mode.get() as u64,
                reason: "unknown file type",
            },
        ));
    }
    let mut chunks = Vec::with_capacity(rec.chunks.len() / 80);
    for (k, c) in rec.chunks.chunks_exact(80).enumerate() {
        let r: ChunkInfoRecord = record(c, 0, "v5 chunk info")?;
        let blob_index = r.blob_index.get();
        if blob_index as usize >= blobs.len() {
            return Err(derr(
                "v5 chunk info",
                rec.chunks_at
                    + 80 * k as u64
                    + core::mem::offset_of!(ChunkInfoRecord, blob_index) as u64,
                K::InvalidField {
                    field: "blob_index",
                    value: blob_index as u64,
                    reason: "no such blob",
                },
            ));
        }
        chunks.push(chunk_from_record(&r));
    }
    Ok(Inode {
        mode: h.i_mode.get(),
        uid: h.i_uid.get(),
        gid: h.i_gid.get(),
        mtime: h.i_mtime.get(),
        mtime_nsec: h.i_mtime_nsec.get(),
        rdev: h.i_rdev.get(),
        size: if fmt == mode::S_IFDIR {
            0
        } else {
            h.i_size.get()
        },
        nlink: h.i_nlink.get(),
        symlink: rec.symlink.to_vec(),
        xattrs: rec.xattrs.clone(),
        chunks,
        v5_hardlink_flag: h.i_flags.get() & raw::INODE_FLAG_HARDLINK != 0,
    })
}
