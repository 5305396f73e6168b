#!/usr/bin/env python3
"""Hostile layer tars for the conformance kit's builder cases: each must be refused (a non-zero
exit, no crash, no hang). Deterministic: fixed names, modes and mtimes.
    python3 make_hostile_layers.py   # writes H*.tar here
"""
import io, tarfile

def tar_bytes(build):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        build(t)
    return buf.getvalue()

def add(t, name, data=b"x", pax=None):
    info = tarfile.TarInfo(name)
    info.size = len(data); info.mtime = 1700000000; info.mode = 0o644
    if pax:
        info.pax_headers = pax
    t.addfile(info, io.BytesIO(data))

# H1: a name with a NUL byte (a PAX path record can carry one; no file system name can).
h1 = tar_bytes(lambda t: add(t, "ok.txt", pax={"path": "bad\x00name.txt"}))
# H2: the last file's data cut short: the archive ends inside it.
whole = tar_bytes(lambda t: add(t, "big.bin", b"y" * 5000))
h2 = whole[: 512 * 3 + 1000]
# H3: a header whose checksum does not match.
h3 = bytearray(tar_bytes(lambda t: add(t, "file.txt")))
h3[0] ^= 0x01  # the name changes, the recorded checksum stays
# H4: xattrs no v6 inode can count: four values of 65,535 bytes.
h4 = tar_bytes(lambda t: add(t, "x.txt", pax={f"SCHILY.xattr.user.{n}": "v" * 65535 for n in "abcd"}))
for name, data in [("H1-nul-in-name", h1), ("H2-truncated-data", h2), ("H3-bad-checksum", bytes(h3)),
                   ("H4-xattrs-over-an-inode", h4)]:
    open(f"{name}.tar", "wb").write(data)
