#!/usr/bin/env python3
"""Seeds for the image_source and bootstrap_layer fuzz targets, made from nothing.

image_source: small oci-archive and docker-archive images (selector byte 0 or 1, then the
archive): files, a directory, a symlink, a hard link, a whiteout, an opaque marker, an xattr,
gzip and plain layers, one and two layers.
bootstrap_layer: the tar of a bootstrap layer (selector 1: the target gzips it) holding
image/, image/image.boot and a .blob.meta file, and one with a second image.boot.

Usage: make_image_seeds.py OUT_DIR   (writes OUT_DIR/image_source/*, OUT_DIR/bootstrap_layer/*)
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

T = 1_700_000_000
# No padding to 10 KiB records: seeds stay small (the two end blocks are still written).
tarfile.RECORDSIZE = 512


def tar_of(members):
    """members: (name, kind, data, extra) with kind in f d l h; extra: linkname or pax."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, data, extra in members:
            ti = tarfile.TarInfo(name)
            ti.mtime = T
            ti.mode = 0o755 if kind == "d" else 0o644
            if kind == "d":
                ti.type = tarfile.DIRTYPE
            elif kind == "l":
                ti.type, ti.linkname = tarfile.SYMTYPE, extra
            elif kind == "h":
                ti.type, ti.linkname = tarfile.LNKTYPE, extra
            elif kind == "x":
                ti.pax_headers = extra
            if kind in "fx":
                ti.size = len(data)
                tf.addfile(ti, io.BytesIO(data))
            else:
                tf.addfile(ti)
    return buf.getvalue()


def digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


LOWER = tar_of([
    ("etc/", "d", b"", None),
    ("etc/a.conf", "f", b"listen 80\n", None),
    ("etc/x", "x", b"x\n", {"SCHILY.xattr.user.k": "v\n"}),
    ("etc/link", "l", b"", "a.conf"),
    ("etc/hard", "h", b"", "etc/a.conf"),
    ("var/old/", "d", b"", None),
    ("var/old/f", "f", b"old\n", None),
])
UPPER = tar_of([
    ("etc/a.conf", "f", b"listen 81\n", None),
    ("var/.wh.old", "f", b"", None),
    ("opt/", "d", b"", None),
    ("opt/.wh..wh..opq", "f", b"", None),
    ("opt/new", "f", b"new\n", None),
])


def oci_archive(layers, gz):
    blobs, descs = {}, []
    for tar in layers:
        data = gzip.compress(tar, mtime=0) if gz else tar
        blobs[digest(data)] = data
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gz else "")
        descs.append({"mediaType": media, "digest": digest(data), "size": len(data)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [digest(t) for t in layers]}}).encode()
    blobs[digest(config)] = config
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": digest(config), "size": len(config)},
                           "layers": descs}).encode()
    blobs[digest(manifest)] = manifest
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest(manifest), "size": len(manifest)}]}).encode()
    files = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)]
    files += [("blobs/sha256/" + d[7:], b) for d, b in blobs.items()]
    return tar_of([("blobs/", "d", b"", None), ("blobs/sha256/", "d", b"", None)]
                  + [(n, "f", b, None) for n, b in files])


def docker_archive(layers):
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
        "type": "layers", "diff_ids": [digest(t) for t in layers]}}).encode()
    names = ["l%d/layer.tar" % i for i in range(len(layers))]
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["seed:v1"],
                            "Layers": names}]).encode()
    files = [(n, t) for n, t in zip(names, layers)]
    files += [("config.json", config), ("manifest.json", manifest)]
    return tar_of([(n, "f", b, None) for n, b in files])


def bootstrap_layer(extra_boot):
    # A minimal valid v6 bootstrap is not needed: the reader's job is the tar around it.
    boot = b"\0" * 1024 + bytes.fromhex("e2e1f5e0") + b"\0" * 3068
    members = [("image/", "d", b"", None), ("image/image.boot", "f", boot, None),
               ("image/" + "ab" * 32 + ".blob.meta", "f", b"\0" * 8192, None)]
    if extra_boot:
        members.append(("image/image.boot", "f", b"second", None))
    return tar_of(members)


def main():
    out = sys.argv[1]
    seeds = {
        "image_source": {
            "oci-gzip-two-layers": b"\0" + oci_archive([LOWER, UPPER], gz=True),
            "oci-plain-one-layer": b"\0" + oci_archive([LOWER], gz=False),
            "docker-two-layers": b"\1" + docker_archive([LOWER, UPPER]),
            "docker-one-layer": b"\1" + docker_archive([UPPER]),
            "oci-empty": b"\0" + oci_archive([], gz=True),
        },
        "bootstrap_layer": {
            "tar-good": b"\1" + bootstrap_layer(False),
            "tar-two-boots": b"\1" + bootstrap_layer(True),
            "gzip-good": b"\0" + gzip.compress(bootstrap_layer(False), mtime=0),
            "tar-empty": b"\1" + tar_of([]),
            "gzip-empty": b"\0" + gzip.compress(b"", mtime=0),
        },
    }
    for target, files in seeds.items():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
