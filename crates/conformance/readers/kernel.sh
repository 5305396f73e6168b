#!/bin/sh
# A reader for `rafs conformance reader`: the kernel's EROFS. The image and its blobs become one
# block image (`rafs export --block`), mounted read-only through a loop device and copied out
# with everything a mount shows (cp -a: owners, modes, times, xattrs, devices, hard links).
#   rafs conformance reader --impl kernel --cmd 'sh crates/conformance/readers/kernel.sh {bootstrap} {blob_dir} {out_dir}'
# Needs root and EROFS. RAFS names the rafs binary (default: rafs on PATH).
set -eu
boot=$1 blobs=$2 out=$3
tmp=$(mktemp -d)
trap 'umount "$tmp/mnt" 2>/dev/null || true; rm -rf "$tmp"' EXIT INT TERM
"${RAFS:-rafs}" export --block -D "$blobs" -o "$tmp/image" "$boot"
mkdir "$tmp/mnt"
mount -t erofs -o loop,ro "$tmp/image" "$tmp/mnt"
mkdir -p "$out"
cp -a "$tmp/mnt/." "$out/"
