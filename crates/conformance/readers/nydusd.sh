#!/bin/sh
# A reader for `rafs conformance reader`: nydusd, the FUSE daemon nydus-snapshotter runs,
# with a localfs backend on the blob directory; its cache directory is fresh for every run (a
# cache left by another image of the same blob id would be read as this one's) and links the
# blobs, as tarfs needs. The mount is copied out with cp -a.
#   rafs conformance reader --impl nydusd --cmd 'sh crates/conformance/readers/nydusd.sh {bootstrap} {blob_dir} {out_dir}'
# Needs root, /dev/fuse and nydusd (NYDUSD names it; default: nydusd on PATH).
set -eu
boot=$1 blobs=$2 out=$3
tmp=$(mktemp -d)
pid=
trap 'umount "$tmp/mnt" 2>/dev/null || true; if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi; rm -rf "$tmp"' EXIT INT TERM
mkdir "$tmp/mnt" "$tmp/cache"
for b in "$blobs"/*; do ln -s "$(readlink -f "$b")" "$tmp/cache/$(basename "$b")"; done
case "$(basename "$boot")" in
    bootstrap) ;;
    *) echo "nydusd takes a bootstrap file; $boot is a packed blob" >&2; exit 2 ;;
esac
cat > "$tmp/cfg.json" <<CFG
{"device": {"backend": {"type": "localfs", "config": {"dir": "$blobs"}},
 "cache": {"type": "blobcache", "config": {"work_dir": "$tmp/cache"}}},
 "mode": "direct", "digest_validate": false, "iostats_files": false,
 "enable_xattr": true, "fs_prefetch": {"enable": false}}
CFG
"${NYDUSD:-nydusd}" --config "$tmp/cfg.json" --mountpoint "$tmp/mnt" --bootstrap "$boot" \
    --log-level error --rlimit-nofile 0 >"$tmp/log" 2>&1 &
pid=$!
i=0
until mountpoint -q "$tmp/mnt"; do
    i=$((i + 1))
    if [ "$i" -gt 100 ] || ! kill -0 "$pid" 2>/dev/null; then cat "$tmp/log" >&2; exit 1; fi
    sleep 0.05
done
mkdir -p "$out"
cp -a "$tmp/mnt/." "$out/" || { cat "$tmp/log" >&2; exit 1; }
