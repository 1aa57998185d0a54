#!/usr/bin/env bash
# Measures what README's "Resources" states: the release build on the embedded default
# (config.toml as shipped, in a directory of its own), its resident memory when idle (VmRSS after
# start and one request), then its peak (VmHWM) while the aws cli uploads and downloads a 200 MiB
# object (multipart, ten parts at a time) and the copy is compared byte for byte.
# Needs the aws cli (scripts/install-test-deps.sh puts it in .venv/bin).
#   scripts/measure-resources.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${HCP_GW_VENV:-$PWD/.venv}/bin:$PATH"
cargo build --release --quiet --locked --bin hcp-s3-gateway
work=$(mktemp -d /tmp/hcp-gw-resources.XXXXXX)
read -r s3_port admin_port < <(python3 scripts/free_port.py 2)
sed -e "s/127.0.0.1:8080/127.0.0.1:$s3_port/" -e "s/127.0.0.1:8081/127.0.0.1:$admin_port/" \
  config.toml > "$work/config.toml"
(cd "$work" && exec "$OLDPWD/target/release/hcp-s3-gateway" --config config.toml > gateway.log 2>&1) &
gateway=$!
trap 'kill $gateway 2>/dev/null; wait $gateway 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do grep -q 'serving S3' "$work/gateway.log" && break; sleep 0.1; done
pid=$(pgrep -f "release/hcp-s3-gateway --config config.toml" | head -1)
kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$pid/status"; }

export AWS_ACCESS_KEY_ID=ZGVtby11c2Vy AWS_SECRET_ACCESS_KEY=4b4d9529148d8d9440d7e20c78287f69
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=$work/aws-config
printf '[default]\ns3 =\n  max_concurrent_requests = 10\n  multipart_chunksize = 20MB\n' > "$AWS_CONFIG_FILE"
aws_s3() { aws --endpoint-url "http://127.0.0.1:$s3_port" s3 "$@"; }
aws_s3 mb s3://resources > /dev/null
sleep 1
idle=$(kib VmRSS)
head -c $((200 * 1024 * 1024)) /dev/urandom > "$work/object"
aws_s3 cp --only-show-errors "$work/object" s3://resources/object
aws_s3 cp --only-show-errors s3://resources/object "$work/copy"
cmp "$work/object" "$work/copy"
peak=$(kib VmHWM)
echo "resources: idle VmRSS $((idle / 1024)) MiB, peak VmHWM $((peak / 1024)) MiB over a 200 MiB aws cli upload and download (byte-identical)"
