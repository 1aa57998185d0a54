#!/usr/bin/env bash
# What HCP's ACLs cost a GET (BENCHMARKS.md, "ACLs"): builds the gateway in release mode, then
# runs scripts/bench-acls.py (arguments pass through).
#   scripts/bench-acls.sh                          # ~2 minutes
#   scripts/bench-acls.sh --rounds 1 --seconds 2   # smoke run
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in wrk taskset; do
  command -v "$tool" >/dev/null || { echo "bench-acls: $tool is missing (scripts/install-test-deps.sh)" >&2; exit 1; }
done
cargo build --release --locked --bin hcp-s3-gateway
export PATH="$PWD/.venv/bin:$PATH"
exec python3 scripts/bench-acls.py "$@"
