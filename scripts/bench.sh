#!/usr/bin/env bash
# The side-by-side benchmark (BENCHMARKS.md): builds the gateway as it ships (the profile-guided
# build, scripts/build-pgo.sh), the pingora passthrough and the in-memory backend in release
# mode, then runs scripts/bench.py (arguments pass through).
#   scripts/bench.sh                         # full run: ~25 minutes, after the PGO build (25–30)
#   scripts/bench.sh --no-pgo ...            # the plain `cargo build --release` instead (and no
#                                            # PGO build first); anywhere among the arguments
#   scripts/bench.sh --rounds 1 --seconds 2 --large 64m --huge 256m --idle 500   # smoke run
# A step's A/B (`--baseline`, `--instructions`) is best taken with --no-pgo: each PGO build has
# a profile of its own, so two of them differ by more than the step. Commands recorded in
# BENCHMARKS.md before the PGO build (its step row) measured the plain build: add --no-pgo.
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in wrk nginx curl taskset; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (scripts/install-test-deps.sh)" >&2; exit 1; }
done
pgo=1
args=()
for arg in "$@"; do
  if [ "$arg" = "--no-pgo" ]; then pgo=0; else args+=("$arg"); fi
done
cargo build --release --locked --bin hcp-s3-gateway --example passthrough --example bench_origin \
  --example downstream_trial
if [ "$pgo" = 1 ]; then
  scripts/build-pgo.sh
  exec python3 scripts/bench.py --gateway "$PWD/target/pgo/hcp-s3-gateway" ${args[@]+"${args[@]}"}
fi
exec python3 scripts/bench.py ${args[@]+"${args[@]}"}
