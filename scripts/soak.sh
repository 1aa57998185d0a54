#!/usr/bin/env bash
# The soak run (docs/security.md, "Soak"): builds the gateway, starts a fresh Ceph RGW, and runs
# scripts/soak.py against it (arguments pass through; --minutes 10 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "soak: wrk is missing (scripts/install-test-deps.sh)" >&2; exit 1; }
cargo build --release --locked --bin hcp-s3-gateway
rgw=$(mktemp -d /tmp/hcp-soak-rgw.XXXXXX)
trap 'scripts/rgw.sh stop "$rgw" >/dev/null 2>&1 || true; rm -rf "$rgw"' EXIT
scripts/rgw.sh start "$rgw"
# shellcheck disable=SC1091
source "$rgw/env"
python3 scripts/soak.py "$@"
