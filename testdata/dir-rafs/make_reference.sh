#!/usr/bin/env bash
# Records what the reference's directory build (`nydus-image create --type dir-rafs`) makes of
# corpus layers unpacked by GNU tar, as sha256 digests of the bootstrap and the blob, in
# reference.txt. crates/cli/tests/dir_sources.rs unpacks the same way (as root, with xattrs,
# devices and owners; directories the tar leaves out get mtime 1700000000) and requires our
# nydus-image to give the same digests. Tests never run the reference. Run from the repository
# root with the reference as $1.
set -euo pipefail
ref=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: > testdata/dir-rafs/reference.txt
for spec in "L1 6 none" "L1 5 none" "L1 6 oci" "L2 6 oci" "L2 6 none" "L3 5 oci"; do
    set -- $spec
    layer=$1 version=$2 whiteout=$3
    src=$work/$layer-src
    rm -rf "$src" && mkdir -p "$src"
    tar --xattrs --xattrs-include='*' -xpf testdata/conformance/layers/$layer.tar -C "$src" 2>/dev/null
    find "$src" -mindepth 1 -type d -newermt @1750000000 -exec touch -h -d @1700000000 {} +
    out=$work/out && rm -rf "$out" && mkdir -p "$out/blobs"
    "$ref" create --type dir-rafs --fs-version "$version" --whiteout-spec "$whiteout" \
        -B "$out/bootstrap" -D "$out/blobs" "$src" >/dev/null 2>&1
    boot=$(sha256sum "$out/bootstrap" | cut -c1-64)
    blob=$(ls "$out/blobs" | head -1)
    echo "$layer $version $whiteout $boot ${blob:-none}" >> testdata/dir-rafs/reference.txt
done
