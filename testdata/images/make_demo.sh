#!/usr/bin/env bash
# Builds testdata/images/demo, the OCI image the README's first command converts: three layers
# made by umoci (Debian package 0.4.7) from rootfs changes, so that no layer of it is written by
# this project. Deterministic content (no random data); umoci records real mtimes, so running
# this again gives other digests. Run from this directory: ./make_demo.sh
set -euo pipefail
rm -rf demo bundle
umoci init --layout demo
umoci new --image demo:v1
umoci unpack --image demo:v1 bundle >/dev/null
r=bundle/rootfs
mkdir -p $r/etc/app $r/usr/share/doc $r/var/cache/old
echo "listen 8080" > $r/etc/app/app.conf
seq 1 200000 > $r/usr/share/doc/numbers.txt
echo "hello" > $r/usr/share/doc/hello
ln $r/usr/share/doc/hello $r/usr/share/doc/hello-link
ln -s ../../etc/app/app.conf $r/usr/share/conf-link
python3 -c 'import os; os.setxattr("bundle/rootfs/etc/app/app.conf", "user.origin", b"demo")'
echo stale > $r/var/cache/old/entry
umoci repack --refresh-bundle --image demo:v1 bundle
rm -rf $r/var/cache/old
echo "listen 9090" > $r/etc/app/app.conf
mkdir -p $r/var/cache/new && echo fresh > $r/var/cache/new/entry
umoci repack --refresh-bundle --image demo:v1 bundle
echo "v1" > $r/etc/app/VERSION
umoci repack --refresh-bundle --image demo:v1 bundle
rm -rf bundle
