#!/usr/bin/env bash
# Builds testdata/images/real, an OCI layout of images made by umoci (Debian package 0.4.7)
# from rootfs changes, each for one way real images are hard to convert or check:
#   replaced-dir  a directory replaced by a symlink; umoci then writes the symlink and `.wh.`
#                 entries below it (issue 24, item 1)
#   xattrs        binary xattr values holding "\n", "\0" and "\xff" (item 2)
#   empty         no layers at all (item 5)
#   multi         an index of two platforms: linux/amd64 is replaced-dir, linux/arm64 is
#                 xattrs (item 4)
# umoci records real mtimes, so running this again gives other digests. Run from this
# directory: ./make_real.sh
set -euo pipefail
rm -rf real bundle
umoci init --layout real
setx() { python3 -c 'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], eval(sys.argv[3]))' "$@"; }

umoci new --image real:replaced-dir
umoci unpack --image real:replaced-dir bundle >/dev/null
r=bundle/rootfs
mkdir -p $r/opt/app/lib/sub $r/opt/shared $r/etc
seq 1 50000 > $r/opt/app/lib/numbers
echo "sub" > $r/opt/app/lib/sub/f
echo "conf" > $r/opt/app/conf
echo "shared" > $r/opt/shared/readme
echo "host" > $r/etc/hostname
umoci repack --refresh-bundle --image real:replaced-dir bundle
rm -r $r/opt/app
ln -s shared $r/opt/app
seq 1 20000 > $r/opt/shared/more
umoci repack --refresh-bundle --image real:replaced-dir bundle
rm -rf bundle

umoci new --image real:xattrs
umoci unpack --image real:xattrs bundle >/dev/null
r=bundle/rootfs
mkdir -p $r/data
echo one > $r/data/newline
echo two > $r/data/nul
echo three > $r/data/high
echo four > $r/data/all
setx $r/data/newline user.v 'b"line1\nline2\n"'
setx $r/data/nul user.v 'b"a\x00b\x00"'
setx $r/data/high user.v 'b"\xff\xfe\x80"'
setx $r/data/all user.bin 'b"\n\x00\xff=\n"'
setx $r/data user.dir 'b"\x00"'
umoci repack --refresh-bundle --image real:xattrs bundle
rm -rf bundle

umoci new --image real:empty

python3 - <<'PY'
import hashlib, json, os
def blob(d):
    return os.path.join("real/blobs", *d.split(":"))
top = json.load(open("real/index.json"))
def entry(tag, arch):
    d = next(m for m in top["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag)
    return {"mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"],
            "platform": {"architecture": arch, "os": "linux"}}
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [entry("replaced-dir", "amd64"), entry("xattrs", "arm64")]}
raw = json.dumps(index, separators=(",", ":")).encode()
digest = "sha256:" + hashlib.sha256(raw).hexdigest()
open(blob(digest), "wb").write(raw)
top["manifests"].append({"mediaType": index["mediaType"], "digest": digest, "size": len(raw),
                         "annotations": {"org.opencontainers.image.ref.name": "multi"}})
json.dump(top, open("real/index.json", "w"), separators=(",", ":"))
PY
