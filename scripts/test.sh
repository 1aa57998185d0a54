#!/usr/bin/env bash
# Runs the whole test suite: starts Ceph radosgw and moto on loopback ports, runs every unit and
# integration test (the client matrix among them), stops what it started, then runs the s3-tests
# conformance comparison (scripts/conformance.sh, on a radosgw of its own). Needs
# scripts/install-test-deps.sh once.
#   scripts/test.sh                 # everything
#   scripts/test.sh -- NAME         # only cargo tests, with this filter and options after --
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${HCP_GW_VENV:-$PWD/.venv}
export PATH="$venv/bin:$PATH"
for cmd in radosgw moto_server aws s3cmd rclone node curl cmake; do
  command -v "$cmd" >/dev/null || { echo "test.sh: $cmd is missing; run scripts/install-test-deps.sh" >&2; exit 1; }
done

work=$(mktemp -d /tmp/hcp-gw-test.XXXXXX)
cleanup() {
  scripts/rgw.sh stop "$work/rgw" >/dev/null 2>&1 || true
  python3 scripts/moto.py stop "$work/moto" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

started=$(date +%s)
scripts/rgw.sh start "$work/rgw"
python3 scripts/moto.py start "$work/moto"
# shellcheck disable=SC1091
source "$work/rgw/env"
# shellcheck disable=SC1091
source "$work/moto/env"
echo "test.sh: backends up in $(( $(date +%s) - started ))s"

[ "${1:-}" = "--" ] && shift
cargo test --all-targets -- "$@"
[ $# -gt 0 ] && exit 0

# The backends of the cargo tests are not needed any more; the conformance runs get a fresh RGW.
cleanup
trap - EXIT
scripts/conformance.sh
