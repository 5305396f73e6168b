#!/bin/sh
# Encrypted blobs made by the reference builder (nydus-image at the corpus commit), for the
# tests that read them back with our reader (crates/chunker/tests/encrypted.rs) and compare our
# encrypted builds with them (crates/cli/tests/encrypt.rs). The key and IV are random, so these
# cannot be remade byte for byte; any run's outputs serve.
#   sh make_reference.sh /usr/local/bin/nydus-image
set -eu
NI=${1:-nydus-image}
L1=../conformance/layers/L1.tar
# Separate bootstrap, as `nydus-image create --encrypt -B -b`.
$NI create --log-level warn --type tar-rafs --fs-version 6 --encrypt \
    --bootstrap L1.boot --blob L1.blob $L1 </dev/null
# L2, which our unencrypted build reproduces byte for byte (L1 has PAX mtimes, where we
# differ from the reference on purpose), for the layout comparison.
$NI create --log-level warn --type tar-rafs --fs-version 6 --encrypt \
    --bootstrap L2.boot --blob L2.blob ../conformance/layers/L2.tar </dev/null
# The Go converter's packed form with batches: bootstrap inlined, ToC.
$NI create --log-level warn --type tar-rafs --fs-version 6 --encrypt --batch-size 0x10000 \
    --blob-inline-meta --features blob-toc --blob L1-batch.packed $L1 </dev/null
sha256sum L1.boot L1.blob L2.boot L2.blob L1-batch.packed > SHA256SUMS
