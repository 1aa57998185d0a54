#!/usr/bin/env bash
# Checks what ships for deployment: the image's PGO training run goes through; every
# configuration passes `--check-config`; the Helm chart
# lints strictly and renders with its defaults and each example; the rendered chart and every
# manifest in deploy/ validate against the Kubernetes schemas; the chart README's values table
# matches values.yaml. Needs scripts/install-test-deps.sh (helm, kubernetes-validate).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${HCP_GW_VENV:-$PWD/.venv}
export PATH="$venv/bin:$PWD/.tools/bin:$PATH"
k8s=${HCP_GW_K8S_VERSION:-1.30.0}
work=$(mktemp -d /tmp/hcp-gw-deploy.XXXXXX)
trap 'rm -rf "$work"' EXIT
export HELM_CACHE_HOME=$work/helm/cache HELM_CONFIG_HOME=$work/helm/config HELM_DATA_HOME=$work/helm/data
fail() { echo "check-deploy: $*" >&2; exit 1; }

cargo build --quiet --locked --bin hcp-s3-gateway --example pgo_train --example bench_origin
gw=$PWD/target/debug/hcp-s3-gateway

# The image's profile-guided build (scripts/build-pgo.sh) trains the gateway with
# examples/pgo_train.rs, which checks every answer: it has to run through against this gateway.
target/debug/examples/pgo_train "$gw" target/debug/examples/bench_origin 2>"$work/pgo_train.log" \
  || { cat "$work/pgo_train.log" >&2; fail "examples/pgo_train.rs no longer runs through"; }
echo "check-deploy: the PGO training run goes through"

# Shipped configurations read their secrets from /run/secrets/hcp-s3-gateway (a mounted Secret);
# they are checked with stand-in files in their place.
mkdir -p "$work/secrets"
for f in app-user-password backend-access-key backend-secret-key upload-binding-secret; do
  echo "stand-in-secret-for-checks-0123456789" > "$work/secrets/$f"
done
check_config() {  # FILE LABEL
  sed "s#/run/secrets/hcp-s3-gateway#$work/secrets#g" "$1" > "$work/check.toml"
  "$gw" --check-config --config "$work/check.toml" >/dev/null || fail "$2 fails --check-config"
  echo "check-deploy: $2: configuration OK"
}
"$gw" --check-config --config config.toml >/dev/null || fail "config.toml fails --check-config"
echo "check-deploy: config.toml: configuration OK"
check_config deploy/config.toml deploy/config.toml
check_config deploy/sidecar-config.toml deploy/sidecar-config.toml
# One configuration per backend kind (README "Backends"), as shipped.
for example in deploy/examples/*.toml; do
  check_config "$example" "$example"
done
# A configuration that listens beyond loopback (behind a Kubernetes Service) says /readyz is
# 503 a while before its listener closes, so that a rollout refuses no connection (README).
for conf in deploy/config.toml deploy/sidecar-config.toml deploy/examples/*.toml; do
  grep -q '^listen = "127\.' "$conf" && continue
  grep -Eq '^shutdown_delay_seconds = ([5-9]|[1-9][0-9]+)$' "$conf" \
    || fail "$conf listens beyond loopback without shutdown_delay_seconds >= 5"
done
echo "check-deploy: every configuration behind a Service delays its shutdown"

validate() {  # FILE LABEL
  kubernetes-validate -k "$k8s" --strict --quiet "$1" || fail "$2 does not validate against Kubernetes $k8s"
  echo "check-deploy: $2: manifests valid for Kubernetes $k8s"
}
for m in deploy/kubernetes/*.yaml; do
  validate "$m" "$m"
done

chart=helm/hcp-s3-gateway
for values in "" "$chart"/examples/*.yaml; do
  label=${values:-defaults}
  helm lint --strict "$chart" ${values:+-f "$values"} >/dev/null || { helm lint --strict "$chart" ${values:+-f "$values"}; fail "helm lint ($label)"; }
  helm template gw "$chart" ${values:+-f "$values"} > "$work/rendered.yaml" || fail "helm template ($label)"
  validate "$work/rendered.yaml" "chart with $label"
  python3 - "$work/rendered.yaml" "$work/chart-config.toml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
maps = [d for d in docs if d["kind"] == "ConfigMap"]
assert len(maps) == 1, "one ConfigMap expected"
open(sys.argv[2], "w").write(maps[0]["data"]["config.toml"])
PY
  check_config "$work/chart-config.toml" "chart config with $label"
  # A sidecar shares the application's pod: nothing of the gateway's may bind the application
  # (no pod-wide security context, no NetworkPolicy over the application's ports).
  python3 - "$work/rendered.yaml" "$label" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
pod = [d for d in docs if d["kind"] == "Deployment"][0]["spec"]["template"]["spec"]
containers = pod["containers"]
sidecars = pod.get("initContainers", [])
gateway = [c for c in containers + sidecars if c["name"] == "hcp-s3-gateway"][0]
assert gateway["securityContext"].get("runAsNonRoot") is True, "the gateway runs as non-root"
# Its listeners open only once every backend's name is resolved and tried: liveness waits for
# a startup probe on the admin listener (a native sidecar's holds the application back too).
startup = gateway.get("startupProbe", {})
assert startup.get("httpGet", {}).get("path") == "/healthz", f"{sys.argv[2]}: no startup probe on /healthz"
assert startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3) >= 60, f"{sys.argv[2]}: the startup probe gives less than a minute"
if sidecars:
    # A native sidecar: started before the application, stopped after it.
    assert gateway in sidecars and gateway.get("restartPolicy") == "Always", f"{sys.argv[2]}: the gateway is no native sidecar"
    assert "securityContext" not in pod, f"{sys.argv[2]}: a pod-wide securityContext binds the application"
    assert not [d for d in docs if d["kind"] == "NetworkPolicy"], f"{sys.argv[2]}: a NetworkPolicy polices the application's pod"
else:
    # The gateway never calls the Kubernetes API: its own pod holds no API token.
    assert pod.get("automountServiceAccountToken") is False, f"{sys.argv[2]}: the pod mounts an API token"
PY
done
python3 - deploy/kubernetes/standalone.yaml <<'PY' || fail "deploy/kubernetes/standalone.yaml mounts an API token"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
pod = [d for d in docs if d["kind"] == "Deployment"][0]["spec"]["template"]["spec"]
assert pod.get("automountServiceAccountToken") is False
PY
for m in deploy/kubernetes/*.yaml; do
  python3 - "$m" <<'PY' || fail "$m: the gateway has no startup probe of a minute or more on /healthz"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
pod = [d for d in docs if d["kind"] == "Deployment"][0]["spec"]["template"]["spec"]
containers = pod["containers"] + pod.get("initContainers", [])
gateway = [c for c in containers if "hcp-s3-gateway" in c["image"]][0]
startup = gateway.get("startupProbe", {})
assert startup.get("httpGet", {}).get("path") == "/healthz"
assert startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3) >= 60
PY
done
echo "check-deploy: the gateway's liveness waits for its listeners"
# The admin port (/metrics, /readyz naming unreachable backends) is never published with S3:
# whatever service.type says, only a ClusterIP Service of its own carries it.
for mode in standalone sidecar; do
  # (A sidecar listens on loopback: the chart refuses its defaults' 0.0.0.0.)
  values=()
  [ "$mode" = sidecar ] && values=(-f "$chart/examples/sidecar.yaml")
  helm template gw "$chart" "${values[@]}" --set mode=$mode --set service.type=LoadBalancer > "$work/lb.yaml" || fail "helm template (LoadBalancer, $mode)"
  python3 - "$work/lb.yaml" "$mode" <<'PY' || fail "the admin port is published ($mode)"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
services = [d for d in docs if d["kind"] == "Service"]
admin = [s for s in services if any(p["name"] == "admin" for p in s["spec"]["ports"])]
assert len(admin) == 1, f"{sys.argv[2]}: one admin Service expected"
assert admin[0]["spec"]["type"] == "ClusterIP", f"{sys.argv[2]}: the admin Service is not ClusterIP"
assert [p["name"] for p in admin[0]["spec"]["ports"]] == ["admin"], f"{sys.argv[2]}: the admin Service carries more"
PY
done
echo "check-deploy: the admin port is a ClusterIP Service's of its own"
# The admin port has no authentication: a NetworkPolicy that lets any pod reach it (a rule
# without `from`) is refused, in the manifests and in the chart with its defaults and with no
# scrapers named.
helm template gw "$chart" > "$work/np-default.yaml" || fail "helm template (defaults)"
helm template gw "$chart" --set 'networkPolicy.metricsScrapers=null' > "$work/np-none.yaml" || fail "helm template (no scrapers)"
for manifest in deploy/kubernetes/standalone.yaml "$work/np-default.yaml" "$work/np-none.yaml"; do
  python3 - "$manifest" <<'PY' || fail "a NetworkPolicy opens the admin port to any pod ($manifest)"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
assert policies, "no NetworkPolicy"
for policy in policies:
    for rule in policy["spec"].get("ingress", []):
        ports = {p["port"] for p in rule.get("ports", [])}
        if ports & {8081, "admin"}:
            assert rule.get("from"), f"{policy['metadata']['name']}: the admin port is open to any pod"
PY
done
echo "check-deploy: the admin port is reachable only from the scrapers named"
# The ports the chart publishes are the ones the gateway listens on, and its listeners are
# reachable where they have to be: each mismatch is refused when the chart renders.
refused() {  # WHAT EXPECTED-MESSAGE HELM-ARGS...
  local what=$1 expected=$2; shift 2
  if helm template gw "$chart" "$@" > "$work/refused.log" 2>&1; then fail "the chart rendered $what"; fi
  grep -q "$expected" "$work/refused.log" || { cat "$work/refused.log" >&2; fail "the chart refused $what without saying why"; }
}
refused "an s3Port that is not listen's" "s3Port (9000) is not the port of \[server\] listen" --set s3Port=9000
refused "an adminPort that is not admin_listen's" "adminPort (9001) is not the port of \[server\] admin_listen" --set adminPort=9001
refused "a loopback S3 listener in standalone mode" "listen (127.0.0.1:8080) is loopback" -f "$chart/examples/sidecar.yaml" --set mode=standalone
refused "an S3 listener on the pod's address in sidecar mode" "listen (0.0.0.0:8080) is not loopback" --set mode=sidecar
refused "a listener written as a multi-line string" "as one-line strings" --set mode=sidecar --set-string "config=[server]
listen = '''0.0.0.0:8080'''
admin_listen = \"0.0.0.0:8081\"
"
refused "a sidecar's S3 listener on the pod's address under a quoted key" "listen (0.0.0.0:8080) is not loopback" --set mode=sidecar --set-string 'config=[server]
"listen" = "0.0.0.0:8080"
admin_listen = "0.0.0.0:8081"
'
refused "a loopback admin listener" "admin_listen (127.0.0.1:8081) is loopback" --set-string 'config=[server]
listen = "0.0.0.0:8080"'
refused "listeners it cannot read" "write listen and admin_listen as keys of a \\[server\\] table" \
  --set-string "config=server.listen = '0.0.0.0:8080'"
helm template gw "$chart" --set-string "config=[server]
listen = '0.0.0.0:8080'
admin_listen = '[::]:08081'" > /dev/null || fail "the chart refused listeners in single quotes"
echo "check-deploy: the chart's ports are its listeners'"
# The configuration is a ConfigMap: a secret written in it inline is refused, whichever.
for key in password secret_key security_token upload_binding_secret; do
  refused "an inline $key" "config: $key is written inline" --set-string "config=[server]
listen = \"0.0.0.0:8080\"
admin_listen = \"0.0.0.0:8081\"
[[users]]
username = \"u\"
$key = \"s3cret\""
done
cat > "$work/inline-table.toml" <<'TOML'
[server]
listen = "0.0.0.0:8080"
admin_listen = "0.0.0.0:8081"
users = [{ username = 'u', 'password' = 's3cret' }]
TOML
refused "an inline password in an inline table" "config: password is written inline" --set-file "config=$work/inline-table.toml"
# A secret source's `value` is inline too, however the table is written.
for form in 'password = { value = "s3cret" }' 'password.value = "s3cret"' "upload_binding_secret = { 'value' = 's3cret' }" '[users.password]
value = "s3cret"'; do
  refused "a secret given as value ($form)" "config: a secret is written inline as { value = … }" --set-string "config=[server]
listen = \"0.0.0.0:8080\"
admin_listen = \"0.0.0.0:8081\"
[[users]]
username = \"u\"
$form"
done
helm template gw "$chart" --set-string "config=[server]
listen = \"0.0.0.0:8080\"
admin_listen = \"0.0.0.0:8081\"
# password = \"not a setting\"
[[users]]
username = \"u\"
password = { env = \"U_PASSWORD\" }" > /dev/null || fail "the chart refused secrets given as env, or a comment"
echo "check-deploy: the chart's ConfigMap holds no secret inline"
python3 scripts/helm-values-doc.py --check
echo "check-deploy: all checks passed"
