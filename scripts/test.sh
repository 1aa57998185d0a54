#!/usr/bin/env bash
# Runs the whole test suite: installs what is missing (scripts/install-test-deps.sh; Debian
# packages as root or through sudo), starts Ceph radosgw and moto on loopback ports, runs every unit and integration
# test (the client matrix among them), stops what it started, then checks what ships for
# deployment (scripts/check-deploy.sh) and runs the s3-tests conformance comparison
# (scripts/conformance.sh, on a radosgw of its own).
#   scripts/test.sh                 # everything
#   scripts/test.sh -- NAME         # only cargo tests, with this filter and options after --
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${HCP_GW_VENV:-$PWD/.venv}
export PATH="$venv/bin:$PATH"
missing=()
for cmd in cc cmake git radosgw moto_server aws s3cmd rclone node curl promtool; do
  command -v "$cmd" >/dev/null || missing+=("$cmd")
done
[ -d tests/clients/node/node_modules ] || missing+=("@aws-sdk/client-s3")
[ -x .tools/bin/helm ] || missing+=(helm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing what is missing (${missing[*]}): scripts/install-test-deps.sh"
  scripts/install-test-deps.sh
fi

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
cargo test --all-targets --no-fail-fast -- "$@"
[ $# -gt 0 ] && exit 0

# The backends of the cargo tests are not needed any more; the conformance runs get a fresh RGW.
cleanup
trap - EXIT
scripts/check-deploy.sh
scripts/conformance.sh
