# Turns a layer extracted by GNU tar into an overlayfs lower directory as containerd's overlay
# unpack would show it: directories the layer's tar did not list (named in the file `listed`,
# one tar member per line) take the attributes of the same directory in the layers below
# (GNU tar would have made them anew), and OCI whiteouts become overlayfs ones.
# Usage: as_overlay_layer.py LISTED LAYER_DIR [LOWER_DIR...]  (lowers lowest first)
import os
import sys

listed_file, top, lowers = sys.argv[1], sys.argv[2], sys.argv[3:]
listed = set()
for line in open(listed_file):
    name = line.strip().strip("/")
    while name.startswith("./"):
        name = name[2:]
    listed.add(name if name not in ("", ".") else ".")

for root, dirs, files in os.walk(top):
    rel = os.path.relpath(root, top)
    if rel in listed:
        continue
    for lower in reversed(lowers):
        p = os.path.join(lower, rel)
        if os.path.isdir(p) and not os.path.islink(p):
            st = os.lstat(p)
            os.chown(root, st.st_uid, st.st_gid)
            os.chmod(root, st.st_mode & 0o7777)
            os.utime(root, ns=(st.st_atime_ns, st.st_mtime_ns))
            break

opaque_dirs = set()
for root, dirs, files in os.walk(top):
    if ".wh..wh..opq" in files:
        opaque_dirs.add(os.path.relpath(root, top))


def under_opaque(rel):
    """Whether `rel` or a directory above it is opaque in this layer."""
    while True:
        if rel in opaque_dirs:
            return True
        if rel in ("", "."):
            return False
        rel = os.path.dirname(rel)


for root, dirs, files in os.walk(top, topdown=False):
    # Turning markers into whiteouts changes the directory's mtime: the layer's is put back.
    before = os.lstat(root)
    rel = os.path.relpath(root, top)
    for n in files:
        p = os.path.join(root, n)
        if n == ".wh..wh..opq":
            os.remove(p)
            os.setxattr(root, "trusted.overlay.opaque", b"y")
        elif n.startswith(".wh."):
            os.remove(p)
            # A whiteout that hides nothing (no lower has the path, or an opaque directory
            # of this layer already hides it) is left out: overlayfs would list it in a
            # directory it does not merge.
            if not under_opaque(rel) and any(
                    os.path.lexists(os.path.join(lower, rel, n[4:])) for lower in lowers):
                os.mknod(os.path.join(root, n[4:]), 0o600 | 0o020000, 0)
    os.utime(root, ns=(before.st_atime_ns, before.st_mtime_ns))
