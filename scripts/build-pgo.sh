#!/usr/bin/env bash
# The production build: the release build of the gateway, optimised with a profile of its own
# hot paths (profile-guided optimisation; BENCHMARKS.md, "The profile-guided build").
#   scripts/build-pgo.sh          # → target/pgo/hcp-s3-gateway (25–30 minutes on 2 cores,
#                                 #   the first time; the instrumented build is kept after it)
# 1. builds the gateway instrumented (-Cprofile-generate) in target/pgo/instrumented;
# 2. runs examples/pgo_train.rs against it: the embedded store and an S3 backend
#    (examples/bench_origin.rs) through aws-sdk-s3's operations, presigned requests and
#    refusals, every answer checked (a trainer that stops exercising the gateway fails here);
# 3. merges the profile with llvm-profdata (rustup's llvm-tools, added if missing);
# 4. builds the gateway with the profile (-Cprofile-use) in target/pgo/optimized.
# Both builds name the host target, so that the flags reach the gateway and its dependencies
# but not build scripts or procedural macros; their flags (one each, in CARGO_ENCODED_RUSTFLAGS,
# so that a path with spaces stays one) replace any RUSTFLAGS or `build.rustflags`. The trainer
# and the backend it trains with are built in the dev profile (their speed does not matter). The plain `cargo build --release` is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# (It would write the profile elsewhere.)
unset LLVM_PROFILE_FILE
host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
if [ ! -x "$profdata" ]; then
  rustup component add llvm-tools
fi
work=$root/target/pgo
profiles=$work/profiles
rm -rf "$profiles" "$work/gateway.profdata" "$work/hcp-s3-gateway"
mkdir -p "$profiles"

echo "build-pgo: instrumented build" >&2
CARGO_TARGET_DIR=$work/instrumented CARGO_ENCODED_RUSTFLAGS="-Cprofile-generate=$profiles" \
  cargo build --release --locked --target "$host" --bin hcp-s3-gateway

echo "build-pgo: training" >&2
CARGO_TARGET_DIR=$root/target cargo build --locked --example pgo_train --example bench_origin
train() {  # GATEWAY_BINARY
  "$root/target/debug/examples/pgo_train" "$1" "$root/target/debug/examples/bench_origin"
}
train "$work/instrumented/$host/release/hcp-s3-gateway"
ls "$profiles"/*.profraw >/dev/null 2>&1 || { echo "build-pgo: the training wrote no profile" >&2; exit 1; }
"$profdata" merge -o "$work/gateway.profdata" "$profiles"

echo "build-pgo: optimised build" >&2
# From scratch: cargo fingerprints RUSTFLAGS, not the profile they name, so dependencies built
# with an older profile would be kept. (The instrumented build does not depend on the profile.)
rm -rf "$work/optimized"
CARGO_TARGET_DIR=$work/optimized CARGO_ENCODED_RUSTFLAGS="-Cprofile-use=$work/gateway.profdata" \
  cargo build --release --locked --target "$host" --bin hcp-s3-gateway
# The optimised binary through the same traffic, every answer checked again, before it is
# put where it is taken from.
train "$work/optimized/$host/release/hcp-s3-gateway"
cp "$work/optimized/$host/release/hcp-s3-gateway" "$work/hcp-s3-gateway"
echo "build-pgo: $work/hcp-s3-gateway" >&2
