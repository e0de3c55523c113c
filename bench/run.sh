#!/usr/bin/env bash
# Builds the benchmark (the bench/ workspace, release mode) and runs it,
# writing BENCHMARKS.md at the repository root.
#
#   bench/run.sh [--quick] [--tiny|--small|--medium|--large ...] [--peers LIST] [--no-postgres]
#
# --quick takes about a minute at the small size (the default size). Sizes
# combine: bench/run.sh --small --medium. Peers come from bench/peers/,
# installed once by bench/install-peers.sh; a missing one is skipped.
# BENCH_BUILD_JOBS sets cargo's -j (default 1, so a shared machine keeps a
# core for others).
set -euo pipefail

repository="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repository"

cargo fetch --manifest-path bench/Cargo.toml --quiet
if [ -z "${PROTOC:-}" ]; then
    # The Cerbos client compiles its protobuf files at build time; the
    # project's own build already downloads a protoc binary.
    PROTOC="$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -path '*protoc-bin-vendored-linux-x86_64*' -name protoc -type f 2>/dev/null | head -n 1)"
    export PROTOC
fi
if [ -z "$PROTOC" ]; then
    echo "run.sh: no protoc found; set PROTOC to a protoc binary" >&2
    exit 1
fi

CARGO_TARGET_DIR=bench/target cargo build --release --manifest-path bench/Cargo.toml -j "${BENCH_BUILD_JOBS:-1}"

# The build leaves the load average high for a minute or two. The report
# reads a high starting load as other work on the machine, so wait until
# the load falls below half the cores (at most BENCH_SETTLE_SECONDS,
# default 180).
cores="$(nproc)"
settle_until=$((SECONDS + ${BENCH_SETTLE_SECONDS:-180}))
while [ "$SECONDS" -lt "$settle_until" ] \
    && awk -v cores="$cores" '{ exit !($1 >= cores / 2) }' /proc/loadavg; do
    sleep 5
done

extra=()
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "run.sh: no PostgreSQL server on 127.0.0.1:5432; the PostgreSQL figures are skipped" >&2
    extra+=(--no-postgres)
fi

exec bench/target/release/workteams-peers-bench --work-dir bench/work --peers-dir bench/peers --output BENCHMARKS.md "${extra[@]}" "$@"
