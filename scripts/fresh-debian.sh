#!/usr/bin/env bash
# Checks that README's "Two commands on a fresh machine" are complete: builds a new Debian 12 root
# with debootstrap, adds only the Rust toolchain (this machine's rustup toolchain and the rustup
# proxies, where a rustup install puts them) and this machine's network settings (resolver, CA
# certificates), clones the committed tree into it, and runs there, as README says:
#   1. the prerequisites line (Debian packages),
#   2. `cargo run --release -- --config config.toml`, then a signed request (create a bucket, put
#      and get an object with curl's SigV4) against it,
#   3. `scripts/test.sh`, which installs what the tests need by itself and runs them all.
# Needs root (debootstrap, chroot, mounts) and about 25 GB of disk; takes 40 to 60 minutes on two
# cores. The root is kept in WORK for inspection (removed first if it exists).
#   scripts/fresh-debian.sh [WORK]          # default /tmp/hcp-gw-fresh
#   FRESH_SKIP_TESTS=1 scripts/fresh-debian.sh   # the first command only
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(realpath -m "${1:-/tmp/hcp-gw-fresh}")
root=$work/root
mirror=${FRESH_MIRROR:-http://deb.debian.org/debian}
say() { echo "fresh-debian: $*"; }

[ "$(id -u)" -eq 0 ] || { echo "fresh-debian: run as root" >&2; exit 1; }
command -v debootstrap >/dev/null || { apt-get update -q && apt-get install -y -q debootstrap; }
toolchain=$(rustup show active-toolchain | cut -d' ' -f1)
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
cargo_home=${CARGO_HOME:-$HOME/.cargo}

mounted=()
gateway=
finish() {
  # The gateway runs in a session of its own: its whole process group goes, nothing else.
  [ -n "$gateway" ] && kill -INT -- "-$gateway" 2>/dev/null || true
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
}
trap finish EXIT
if [ -d "$work" ]; then
  for m in $(awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" || true
  done
  if awk -v r="$root/" 'index($2, r) == 1' /proc/mounts | grep -q .; then
    echo "fresh-debian: $root still has mounts; not removing it" >&2
    exit 1
  fi
  rm -rf --one-file-system "$work"
fi
mkdir -p "$work"

started=$(date +%s)
say "debootstrap bookworm into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" > "$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log"; exit 1; }
for m in proc sys dev dev/pts; do
  mount --bind "/$m" "$root/$m"
  mounted+=("$root/$m")
done
cp /etc/resolv.conf "$root/etc/resolv.conf"

say "adding the Rust toolchain $toolchain (rustup's layout under /root)"
mkdir -p "$root/root/.rustup/toolchains" "$root/root/.cargo/bin"
cp -a "$rustup_home/toolchains/$toolchain" "$root/root/.rustup/toolchains/"
cp -a "$rustup_home/settings.toml" "$root/root/.rustup/" 2>/dev/null || true
# rustup and its proxies, as `rustup-init` leaves them (no other tool of this machine's).
cp -a "$cargo_home/bin/rustup" "$root/root/.cargo/bin/"
for proxy in cargo rustc rustdoc rustfmt cargo-fmt cargo-clippy clippy-driver rust-gdb rust-lldb; do
  ln -sf rustup "$root/root/.cargo/bin/$proxy"
done
printf 'export PATH=/root/.cargo/bin:$PATH\n' > "$root/root/.cargo/env"
sed -i "s/^default_toolchain = .*/default_toolchain = \"$toolchain\"/" "$root/root/.rustup/settings.toml" 2>/dev/null || true

say "cloning the committed tree ($(git -C "$repo" rev-parse --short HEAD))"
git clone -q "$repo" "$root/root/hcp-s3-gateway"

# The machine's own network settings go in as they are (like resolv.conf above): where this
# machine reaches registries through a TLS-inspecting proxy, its CA certificates and the
# variables that point tools at the CA bundle.
# (Written to a file in the root, not passed on command lines, where `ps` would show them.)
: > "$root/root/.network-env"
chmod 600 "$root/root/.network-env"
for var in SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE REQUESTS_CA_BUNDLE PIP_CERT GIT_SSL_CAINFO \
  NODE_EXTRA_CA_CERTS AWS_CA_BUNDLE HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy; do
  [ -n "${!var:-}" ] && printf 'export %s=%q\n' "$var" "${!var}" >> "$root/root/.network-env"
done
in_root() {  # COMMAND: run in the new root, as root, in the clone, with a login-like environment
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "set -euo pipefail; . /root/.network-env; cd /root/hcp-s3-gateway; . /root/.cargo/env; $1"
}
if compgen -G "/usr/local/share/ca-certificates/*" >/dev/null; then
  say "the machine's CA certificates (/usr/local/share/ca-certificates)"
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp -a /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
  in_root "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q ca-certificates && update-ca-certificates" \
    > "$work/ca.log" 2>&1 || { tail -20 "$work/ca.log"; exit 1; }
fi

# README's prerequisites line, as written there (the rustup line is what the copy above stands for).
prerequisites=$(sed -n '/^## Two commands on a fresh machine/,/^\*\*Run the gateway/p' "$repo/README.md" \
  | grep -m1 '^apt-get ')
say "prerequisites: $prerequisites"
in_root "export DEBIAN_FRONTEND=noninteractive; $prerequisites" > "$work/prerequisites.log" 2>&1 \
  || { tail -20 "$work/prerequisites.log"; exit 1; }

say "first command: cargo run --release -- --config config.toml"
setsid bash -c "$(declare -f in_root); root=$root; in_root 'cargo run --release -- --config config.toml'" \
  > "$work/gateway.log" 2>&1 &
gateway=$!
for _ in $(seq 1 1800); do
  grep -q 'serving S3 on' "$work/gateway.log" && break
  kill -0 "$gateway" 2>/dev/null || { tail -30 "$work/gateway.log"; exit 1; }
  sleep 1
done
grep 'serving S3 on' "$work/gateway.log" || { tail -30 "$work/gateway.log"; exit 1; }
say "built and serving after $(( $(date +%s) - started ))s"
sig=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "ZGVtby11c2Vy:4b4d9529148d8d9440d7e20c78287f69"
  -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
bucket=fresh-$(date +%s)
in_root "curl -sS -o /dev/null -w 'create bucket: %{http_code}\n' ${sig[*]@Q} -X PUT http://127.0.0.1:8080/$bucket
  echo 'hello from a fresh Debian 12' > /tmp/object
  curl -sS -o /dev/null -w 'put object: %{http_code}\n' ${sig[*]@Q} -T /tmp/object http://127.0.0.1:8080/$bucket/hello.txt
  curl -sS -w 'get object: %{http_code}\n' ${sig[*]@Q} http://127.0.0.1:8080/$bucket/hello.txt" | tee "$work/requests.log"
grep -q 'get object: 200' "$work/requests.log" && grep -q 'hello from a fresh Debian 12' "$work/requests.log" \
  || { say "the served request failed"; exit 1; }
kill -INT -- "-$gateway" 2>/dev/null || true
wait "$gateway" 2>/dev/null || true
gateway=

if [ -n "${FRESH_SKIP_TESTS:-}" ]; then
  say "done (tests skipped) after $(( $(date +%s) - started ))s"
  exit 0
fi
say "second command: scripts/test.sh"
if in_root "scripts/test.sh" > "$work/test.log" 2>&1; then
  grep -E '^test result|^conformance:|^Passed directly|^check-deploy: all' "$work/test.log" \
    | awk '/^test result/ {p+=$4; f+=$6; next} {print} END {print "cargo tests: " p " passed, " f " failed"}'
  say "both commands passed after $(( $(date +%s) - started ))s (logs in $work)"
else
  tail -40 "$work/test.log"
  say "scripts/test.sh failed after $(( $(date +%s) - started ))s (log: $work/test.log)"
  exit 1
fi
