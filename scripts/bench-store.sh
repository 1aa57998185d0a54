#!/usr/bin/env bash
# The embedded store against s3s-fs, side by side (BENCHMARKS.md, "The embedded store"): builds
# the gateway in release mode, then runs scripts/bench-store.py (arguments pass through).
#   scripts/bench-store.sh                                                  # ~10 minutes
#   scripts/bench-store.sh --rounds 1 --seconds 2 --keys 2000 --large 64m   # smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in wrk curl taskset; do
  command -v "$tool" >/dev/null || { echo "bench-store: $tool is missing (scripts/install-test-deps.sh)" >&2; exit 1; }
done
cargo build --release --locked --bin hcp-s3-gateway
exec python3 scripts/bench-store.py "$@"
