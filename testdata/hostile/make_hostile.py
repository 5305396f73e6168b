#!/usr/bin/env python3
"""Recreates the hostile bootstraps in this folder from reference bootstraps of the corpus.

Each output is one targeted corruption of a valid image; EXPECTED lists the error kind
(`DecodeErrorKind::name()`) rafs-format must return for it and the byte offset it must name:
the corrupted field's own offset from the format tables (a table range at its offset field,
a truncation where the missing structure would start). Run from this folder:
    python3 make_hostile.py
"""
import struct

BASE = "../conformance/nydus-image/"
V6 = open(BASE + "edge-E1-duplicates-v6/bootstrap", "rb").read()
V5 = open(BASE + "L2-v5-zstd-sha256/bootstrap", "rb").read()
expected = []


def out(name, data, kind, at):
    open(name, "wb").write(bytes(data))
    expected.append(f"{name} {kind} {at}")


def u16(b, o): return struct.unpack_from("<H", b, o)[0]
def u32(b, o): return struct.unpack_from("<I", b, o)[0]
def u64(b, o): return struct.unpack_from("<Q", b, o)[0]
def p16(b, o, v): struct.pack_into("<H", b, o, v)
def p32(b, o, v): struct.pack_into("<I", b, o, v)
def p64(b, o, v): struct.pack_into("<Q", b, o, v)


# ---- v6 helpers (rafs-v6.md): root inode, its inline dirents, a regular file's inode.
META = u32(V6, 1064) * 4096
ROOT_NID = u16(V6, 1038)


def inode_off(nid): return META + nid * 32


def root_dirents(b):
    off = inode_off(ROOT_NID)
    assert u16(b, off) == 0x5 and u16(b, off + 2) == 0, "root: extended, inline, no xattrs"
    size = u64(b, off + 8)
    blk = off + 64
    n = u16(b, blk + 8) // 12
    ents = []
    for i in range(n):
        d = blk + 12 * i
        start = u16(b, d + 8)
        end = u16(b, d + 12 + 8) if i + 1 < n else size
        ents.append(dict(at=d, nid=u64(b, d), nameoff=start, name=bytes(b[blk + start:blk + end]), type=b[d + 10]))
    return blk, ents


BLK, ENTS = root_dirents(V6)
DIR = next(e for e in ENTS if e["type"] == 2 and e["name"] not in (b".", b".."))
FILE = next(e for e in ENTS if e["type"] == 1)
FILE_OFF = inode_off(FILE["nid"])
assert u16(V6, FILE_OFF) == 0x9 and u16(V6, FILE_OFF + 2) == 0, "file: chunk-based, no xattrs"
CHUNK_ADDR = FILE_OFF + 64

b = bytearray(V6[:3000]); out("v6-truncated-superblock", b, "Truncated", 0)
b = bytearray(V6); p32(b, 1024, 0x12345678); out("v6-bad-magic", b, "BadMagic", 0)
b = bytearray(V6); b[1036] = 10; out("v6-bad-blkszbits", b, "InvalidField", 1036)
b = bytearray(V6); p32(b, 1028, 1); out("v6-checksum-set", b, "InvalidField", 1028)
b = bytearray(V6); p64(b, 1040, 0); out("v6-zero-inodes", b, "InvalidField", 1040)
b = bytearray(V6); p64(b, 1152, u64(b, 1152) | 0x400); out("v6-unknown-sb-flags", b, "UnknownFlags", 1152)
b = bytearray(V6); p64(b, 1152, u64(b, 1152) | 0x1); out("v6-two-compressors", b, "InvalidField", 1152)
b = bytearray(V6); p64(b, 1160, 1 << 40); out("v6-blob-table-past-end", b, "BadRange", 1160)
b = bytearray(V6); p64(b, 1176, u64(b, 1160)); out("v6-chunk-table-overlaps-blob-table", b, "BadRange", 1176)
b = bytearray(V6); p16(b, 1038, 0xFFFF); out("v6-root-nid-past-end", b, "Truncated", inode_off(0xFFFF))
b = bytearray(V6); p64(b, DIR["at"], ROOT_NID); out("v6-directory-cycle", b, "DirectoryCycle", DIR["at"])
b = bytearray(V6); b[BLK + FILE["nameoff"]] = ord("/"); out("v6-name-with-slash", b, "InvalidName", BLK + FILE["nameoff"])
b = bytearray(V6); b[BLK + FILE["nameoff"]] = 0; out("v6-name-with-nul", b, "InvalidName", BLK + FILE["nameoff"])
b = bytearray(V6)
# Swap the first bytes of two names so the block is no longer in byte order.
x, y = [e for e in ENTS if e["name"] not in (b".", b"..")][:2]
b[BLK + x["nameoff"]], b[BLK + y["nameoff"]] = b[BLK + y["nameoff"]], b[BLK + x["nameoff"]]
out("v6-unsorted-dirents", b, "UnsortedDirectory", BLK + y["nameoff"])
b = bytearray(V6); p16(b, BLK + 8, 5); out("v6-dirent-nameoff-misaligned", b, "InvalidField", BLK + 8)
b = bytearray(V6); p16(b, FILE_OFF, 0x3); out("v6-compressed-layout", b, "InvalidField", FILE_OFF)
b = bytearray(V6); p32(b, FILE_OFF + 44, 0); out("v6-zero-nlink", b, "InvalidField", FILE_OFF + 44)
b = bytearray(V6); p16(b, CHUNK_ADDR + 2, 0); out("v6-chunk-device-zero", b, "InvalidField", CHUNK_ADDR + 2)
b = bytearray(V6); p16(b, CHUNK_ADDR, 0xFFFF); out("v6-chunk-not-in-table", b, "ChunkNotFound", CHUNK_ADDR)
b = bytearray(V6); p64(b, FILE_OFF + 8, 1 << 50); out("v6-huge-file-size", b, "Truncated", CHUNK_ADDR)
b = bytearray(V6); p16(b, FILE_OFF + 2, 3)  # xattr area of 20 bytes: header + one entry
b[FILE_OFF + 64:FILE_OFF + 84] = bytes(12) + bytes([1, 9, 0, 0]) + b"abcd"  # name index 9
out("v6-xattr-unknown-prefix", b, "BadXattr", FILE_OFF + 64 + 12 + 1)

# ---- v5 helpers (rafs-v5.md).
IT = u64(V5, 32)
N = u32(V5, 56)


def rec(b, index): return u32(b, IT + 4 * (index - 1)) << 3


ROOT5 = rec(V5, 1)
CHILD0 = u32(V5, ROOT5 + 92)
FIRST = rec(V5, CHILD0)

b = bytearray(V5[:8000]); out("v5-truncated-superblock", b, "Truncated", 0)
b = bytearray(V5); p32(b, 12, 12345); out("v5-bad-chunk-size", b, "InvalidField", 12)
b = bytearray(V5); p64(b, 16, u64(b, 16) | 0x800); out("v5-unknown-sb-flags", b, "UnknownFlags", 16)
b = bytearray(V5); p32(b, 56, 0xFFFFFFFF); out("v5-four-billion-inodes", b, "LimitExceeded", 56)
b = bytearray(V5); p32(b, 56, 0x100000); out("v5-inode-table-past-end", b, "BadRange", 32)
b = bytearray(V5); p64(b, 48, IT); out("v5-blob-table-overlaps-inode-table", b, "BadRange", 48)
b = bytearray(V5); p32(b, ROOT5 + 92, 1); out("v5-child-loop-to-root", b, "InvalidField", ROOT5 + 92)
b = bytearray(V5); p32(b, ROOT5 + 92, N); p32(b, ROOT5 + 96, 5); out("v5-children-past-table", b, "InvalidField", ROOT5 + 92)
b = bytearray(V5); p32(b, ROOT5 + 96, u32(b, ROOT5 + 96) - 1); out("v5-unreachable-inode", b, "Unreachable", IT + 4 * 4)
b = bytearray(V5); p16(b, FIRST + 100, 0); out("v5-zero-name-size", b, "InvalidField", FIRST + 100)
b = bytearray(V5); b[FIRST + 128] = ord("/"); out("v5-name-with-slash", b, "InvalidName", FIRST + 128)
b = bytearray(V5); p32(b, IT, 0x10); out("v5-inode-offset-in-superblock", b, "InvalidField", IT)

open("EXPECTED", "w").write("\n".join(expected) + "\n")
print(len(expected), "hostile bootstraps")
