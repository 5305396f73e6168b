#!/bin/sh
# The README's first command: registry to registry. Starts Debian's docker-registry on a free
# loopback port (storage in a private temporary directory), puts the OCI image shipped in
# testdata/ there with skopeo, converts it to a Nydus image in the same registry with
# `rafs convert-image docker://… docker://…` (layers streamed from the registry, Nydus blobs
# uploaded as they are written, the tag last), checks the result against its source as
# `nydusify check` would, then stops the registry and removes its storage.
# Needs docker-registry and skopeo (apt-get install docker-registry skopeo).
set -eu
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY="$work/storage" REGISTRY_HTTP_ADDR="127.0.0.1:$port" \
    docker-registry serve testdata/registry/config.yml >"$work/registry.log" 2>&1 &
pid=$!
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; do
    i=$((i + 1)); [ "$i" -lt 50 ] || { echo "the registry did not start" >&2; exit 1; }
    sleep 0.1
done
reg="127.0.0.1:$port"
skopeo copy -q --dest-tls-verify=false oci:testdata/images/demo:v1 "docker://$reg/demo:v1"
cargo run --release -q -p rafs-cli -- convert-image "docker://$reg/demo:v1" "docker://$reg/demo:v1-nydus"
cargo run --release -q -p rafs-cli -- check-image "docker://$reg/demo:v1-nydus" --source "docker://$reg/demo:v1"
