#!/usr/bin/env python3
"""Runs ../shared/goconverter (nydus-snapshotter's real pkg/converter) with the reference
nydus-image over each case below and records its JSON summary in reference.json; the test
crates/cli/tests/go_converter.rs runs the same cases with our nydus-image and compares.
Tests never run the reference. Run from the repository root:

    zstd -d ../shared/reference/nydus-image.zst -o /tmp/nydus-image && chmod +x /tmp/nydus-image
    python3 testdata/goconverter/make_reference.py /tmp/nydus-image
"""
import json, os, subprocess, sys, tempfile

C = "testdata/conformance/layers"
REAL = "testdata/images/real/blobs/sha256"
DEMO = "testdata/images/demo/blobs/sha256"


def layers_of(layout, tag):
    index = json.load(open(f"{layout}/index.json"))
    d = next(m for m in index["manifests"]
             if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
    m = json.load(open(f"{layout}/blobs/sha256/{d['digest'][7:]}"))
    return [f"{layout}/blobs/sha256/{l['digest'][7:]}" for l in m["layers"]]


L23 = [f"{C}/L2.tar", f"{C}/L3.tar"]
L23GZ = [f"{C}/L2.tar.gz", f"{C}/L3.tar.gz"]
DEMO_LAYERS = layers_of("testdata/images/demo", "v1")
CASES = [
    ("L23-v6", [], L23),
    ("L23-v5", ["--fs-version", "5"], L23),
    ("L23-gzip-lz4", ["--compressor", "lz4_block"], L23GZ),
    ("L23-v5-none", ["--fs-version", "5", "--compressor", "none"], L23),
    ("L23-v5-aligned", ["--fs-version", "5", "--aligned-chunk"], L23),
    ("L23-chunk64k", ["--chunk-size", "0x10000"], L23),
    ("L23-chunk4k-lz4", ["--chunk-size", "0x1000", "--compressor", "lz4_block"], L23),
    ("L23-prefetch", ["--prefetch-patterns", "/"], L23),
    ("L23-batch", ["--batch-size", "0x10000"], L23),
    ("L23-chunk-dict", ["--chunk-dict", "testdata/conformance/nydus-image/L2-v6-default/bootstrap",
                        "--unpack=false"], L23),
    ("L23-oci-ref", ["--oci-ref"], L23GZ),
    ("L1-v6", [], [f"{C}/L1.tar"]),
    ("L1-batch", ["--batch-size", "0x10000"], [f"{C}/L1.tar"]),
    ("demo-v6", ["--prefetch-patterns", "/"], DEMO_LAYERS),
    ("demo-v5", ["--fs-version", "5"], DEMO_LAYERS),
    # Unpack off: the converter hands Unpack the data section alone, and several lz4 batches
    # between two stored chunks cannot be told apart without the chunk-info array.
    ("demo-batch-lz4", ["--batch-size", "0x100000", "--compressor", "lz4_block", "--unpack=false"],
     DEMO_LAYERS),
    ("replaced-dir-v6", ["--prefetch-patterns", "/"], layers_of("testdata/images/real", "replaced-dir")),
    ("xattrs-v6", [], layers_of("testdata/images/real", "xattrs")),
    # The converter's directory fallback: it unpacks each layer with containerd's applier
    # (whiteouts kept as files) and builds the directory. Directories the applier creates get
    # the time of the run, so only success is comparable.
    ("L23-dir-fallback", ["env:NYDUS_DISABLE_TAR2RAFS=1"], L23),
]


def run(builder, args, layers):
    env = dict(os.environ)
    for a in args:
        if a.startswith("env:"):
            k, v = a[4:].split("=", 1)
            env[k] = v
    args = [a for a in args if not a.startswith("env:")]
    with tempfile.TemporaryDirectory() as out:
        p = subprocess.run(["goconverter", "--builder", builder, *args, "--out", out, *layers],
                           capture_output=True, text=True, env=env)
        summary = json.loads(p.stdout.strip().splitlines()[-1])
        summary.pop("builder", None)
        return summary


if __name__ == "__main__":
    builder = sys.argv[1]
    cases = [{"name": n, "args": a, "layers": l, "reference": run(builder, a, l)} for n, a, l in CASES]
    json.dump({"made_by": "testdata/goconverter/make_reference.py with the reference nydus-image "
                          "(../shared/reference, nydus 34e6071e)", "cases": cases},
              open("testdata/goconverter/reference.json", "w"), indent=1)
