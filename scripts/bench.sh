#!/usr/bin/env bash
# The side-by-side benchmark (BENCHMARKS.md): builds the gateway, the pingora passthrough and the
# in-memory backend in release mode, then runs scripts/bench.py (arguments pass through).
#   scripts/bench.sh                         # full run, ~25 minutes
#   scripts/bench.sh --rounds 1 --seconds 2 --large 64m --huge 256m --idle 500   # smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in wrk nginx curl taskset; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (scripts/install-test-deps.sh)" >&2; exit 1; }
done
cargo build --release --locked --bin hcp-s3-gateway --example passthrough --example bench_origin \
  --example downstream_trial
exec python3 scripts/bench.py "$@"
