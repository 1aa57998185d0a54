#!/usr/bin/env python3
"""Soak: mixed S3 traffic through the gateway to Ceph RGW for a fixed time at about 80 % of the
measured maximum, reporting unexpected errors, gateway RSS and latency minute by minute.
Run through scripts/soak.sh (it builds the gateway and starts RGW). Standard library only.

The mix (per 20 requests): 10 GET and 2 ranged GET of objects that always exist (1–64 KiB),
4 PUT and 2 DELETE of a separate set of keys (overwrites and deletes of present and absent keys
are all 2xx in S3), 2 ListObjectsV2. So every answer must be 2xx: any other status or a socket
error is unexpected. The load generator is wrk (on CPU 1) replaying presigned URLs, held to
the target rate by a per-request delay. (No HEAD: wrk waits for the body a HEAD answer's
Content-Length announces.)
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (shared: presigning, /proc readings, process start)

BUCKET = "soak"
READ_KEYS = 50
CHURN_KEYS = 50

SOAK_LUA = r"""
local reqs = {
REQUESTS
}
local delay_ms = DELAY
local i = 0
function setup(thread) thread:set("offset", math.random(1, #reqs)) end
function request()
  i = i + 1
  local r = reqs[((i + offset) % #reqs) + 1]
  return wrk.format(r[1], r[2], r[4], r[3])
end
function delay() return delay_ms end
local unexpected = 0
function response(status, headers, body)
  if status < 200 or status > 299 then unexpected = unexpected + 1 end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %f, "p50_us": %d, "p99_us": %d, "p999_us": %d, "mean_us": %f, "non2xx": %d, "errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.mean, e.status, e.connect + e.read + e.write + e.timeout))
end
"""

GATEWAY_CONF = """
[server]
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{admin}"
keepalive_seconds = 120

[addressing]
default_tenant = "soak"

[[users]]
username = "bench-user"
password = "bench-password"
permissions = [{{ tenant = "*", buckets = "*", allow = ["all"] }}]

[[tenants]]
name = "soak"
backend = "rgw"

[[backends]]
name = "rgw"
kind = "s3"
dialect = "ceph"
endpoint = "{endpoint}"
region = "us-east-1"
access_key = "{ak}"
secret_key = "{sk}"
"""


def size_of(i):
    return [1024, 4096, 16384, 65536][i % 4]


def lua_string(b):
    return '"' + b.decode().replace("\\", "\\\\").replace('"', '\\"') + '"'


def requests_for(port):
    rng = random.Random(7)
    reqs = []
    for n in range(400):
        slot = n % 20
        if slot < 10:
            reqs.append(("GET", bench.presign("GET", port, f"read-{rng.randrange(READ_KEYS)}", bucket=BUCKET), None))
        elif slot < 12:
            reqs.append(("GET", bench.presign("GET", port, f"read-{rng.randrange(READ_KEYS)}", bucket=BUCKET), None,
                         "bytes=100-999"))
        elif slot < 16:
            k = rng.randrange(CHURN_KEYS)
            reqs.append(("PUT", bench.presign("PUT", port, f"churn-{k}", bucket=BUCKET), size_of(k)))
        elif slot < 18:
            reqs.append(("DELETE", bench.presign("DELETE", port, f"churn-{rng.randrange(CHURN_KEYS)}", bucket=BUCKET), None))
        else:
            reqs.append(("GET", bench.presign("GET", port, None, bucket=BUCKET,
                                              query={"list-type": "2", "max-keys": "20", "prefix": "read-"}), None))
    return reqs


def lua(reqs, delay_ms):
    rows = []
    for method, path, size, *range_ in reqs:
        body = "nil" if size is None else f'string.rep("s", {size})'
        headers = f'{{["Range"] = "{range_[0]}"}}' if range_ else "nil"
        rows.append(f'  {{"{method}", "{path}", {body}, {headers}}},')
    return SOAK_LUA.replace("REQUESTS", "\n".join(rows)).replace("DELAY", str(delay_ms))


def run_wrk(script, port, connections, seconds):
    out = subprocess.run(["taskset", "-c", bench.LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
                          "-s", script, f"http://127.0.0.1:{port}/"], capture_output=True, text=True)
    if out.returncode != 0 or "{" not in out.stdout:
        raise RuntimeError(f"wrk failed: {out.stdout}{out.stderr}")
    return json.loads(out.stdout[out.stdout.index("{"):out.stdout.rindex("}") + 1])


def prepare(port):
    def call(method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
        with urllib.request.urlopen(req) as r:
            r.read()
    call("PUT", bench.presign("PUT", port, None, bucket=BUCKET))
    for i in range(READ_KEYS):
        call("PUT", bench.presign("PUT", port, f"read-{i}", bucket=BUCKET), os.urandom(size_of(i)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--segment", type=int, default=60, help="seconds per reported segment")
    ap.add_argument("--load", type=float, default=0.8, help="fraction of the measured maximum")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--out", default=os.path.join(bench.ROOT, "target", "soak"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="hcp-soak-")
    port, admin = bench.free_port(), bench.free_port()
    cfg = os.path.join(work, "gateway.toml")
    with open(cfg, "w") as f:
        f.write(GATEWAY_CONF.format(port=port, admin=admin, endpoint=os.environ["RGW_ENDPOINT"],
                                    ak=os.environ["RGW_ACCESS_KEY"], sk=os.environ["RGW_SECRET_KEY"]))
    log = open(os.path.join(args.out, "gateway.log"), "wb")
    gw = subprocess.Popen([os.path.join(bench.RELEASE, "hcp-s3-gateway"), "--config", cfg], stdout=log, stderr=log)
    report = {"args": vars(args), "segments": []}
    try:
        bench.wait_port(port, gw)
        prepare(port)
        reqs = requests_for(port)
        script = os.path.join(work, "soak.lua")
        with open(script, "w") as f:
            f.write(lua(reqs, 0))
        peak = run_wrk(script, port, args.connections, 20)
        max_rate = peak["requests"] / peak["seconds"]
        target = args.load * max_rate
        # Each connection waits `delay` after every answer: rate ≈ connections / (delay + latency).
        delay = max(1, round((args.connections / target - peak["mean_us"] / 1e6 * args.load) * 1000))
        # Latency differs a lot between operations (RGW answers GETs in ~40 ms), so the delay is
        # corrected from measured rates until the rate is within 5 % of the target.
        for _ in range(4):
            with open(script, "w") as f:
                f.write(lua(reqs, delay))
            calib = run_wrk(script, port, args.connections, 10)
            got = calib["requests"] / calib["seconds"]
            print(f"calibration: {delay} ms between requests → {got:.0f} req/s", flush=True)
            if abs(got - target) <= 0.05 * target:
                break
            # rate = connections / (delay + latency): solve for the delay that gives the target.
            latency = args.connections / got - delay / 1000
            delay = max(1, round((args.connections / target - latency) * 1000))
        report.update(max_rate=max_rate, target_rate=target, delay_ms=delay, peak=peak)
        print(f"maximum {max_rate:.0f} req/s ({peak['non2xx']} non-2xx, {peak['errors']} errors); "
              f"target {target:.0f} req/s: {args.connections} connections, {delay} ms between requests", flush=True)
        rss0 = bench.status_kib(gw.pid, "VmRSS")
        report["rss_start_kib"] = rss0
        segments = args.minutes * 60 // args.segment
        for n in range(segments):
            with open(f"/proc/{gw.pid}/clear_refs", "w") as f:
                f.write("5")
            cpu0 = bench.cpu_seconds(gw.pid)
            r = run_wrk(script, port, args.connections, args.segment)
            r["rss_kib"] = bench.status_kib(gw.pid, "VmRSS")
            r["peak_rss_kib"] = bench.status_kib(gw.pid, "VmHWM")
            r["fds"] = len(os.listdir(f"/proc/{gw.pid}/fd"))
            r["gateway_cpu_s"] = bench.cpu_seconds(gw.pid) - cpu0
            report["segments"].append(r)
            print(f"{(n + 1) * args.segment:>5} s  {r['requests'] / r['seconds']:>7.0f} req/s  p50 {r['p50_us']:>6} µs  "
                  f"p99 {r['p99_us']:>7} µs  p99.9 {r['p999_us']:>7} µs  non-2xx {r['non2xx']}  errors {r['errors']}  "
                  f"RSS {r['rss_kib'] / 1024:.1f} MiB (peak {r['peak_rss_kib'] / 1024:.1f})  fds {r['fds']}", flush=True)
    finally:
        gw.terminate()
        gw.wait(30)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(report, f, indent=1)
    md = render(report)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(md)
    print(md)
    segs = report["segments"]
    bad = sum(s["non2xx"] + s["errors"] for s in segs)
    rss = [s["rss_kib"] for s in segs]
    # Flat RSS: the second half grows by less than 8 MiB over the first segment's.
    grew = max(rss[len(rss) // 2:]) - rss[0] if rss else 0
    ok = bad == 0 and grew < 8 * 1024
    print("soak:", "PASS" if ok else "FAIL", f"({bad} unexpected answers, RSS growth {grew / 1024:.1f} MiB)")
    sys.exit(0 if ok else 1)


def mean_rate(report):
    segs = report["segments"]
    return sum(s["requests"] for s in segs) / max(1e-9, sum(s["seconds"] for s in segs))


def render(report):
    a = report["args"]
    lines = [f"`scripts/soak.sh --minutes {a['minutes']}`: maximum {report['max_rate']:.0f} req/s through the gateway "
             f"to Ceph RGW (20 s, {a['connections']} connections, no delay); soak target "
             f"{report['target_rate']:.0f} req/s ({a['load']:.0%}), {report['delay_ms']} ms between a connection's requests.",
             f"Achieved on average {mean_rate(report):.0f} req/s, {mean_rate(report) / report['max_rate']:.0%} of the maximum.",
             "", "| minute | req/s | p50 ms | p99 ms | p99.9 ms | unexpected | socket errors | RSS MiB | peak RSS MiB | fds | gateway CPU s |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n, s in enumerate(report["segments"], 1):
        lines.append(f"| {n} | {s['requests'] / s['seconds']:.0f} | {s['p50_us'] / 1000:.2f} | {s['p99_us'] / 1000:.2f} | "
                     f"{s['p999_us'] / 1000:.2f} | {s['non2xx']} | {s['errors']} | {s['rss_kib'] / 1024:.1f} | "
                     f"{s['peak_rss_kib'] / 1024:.1f} | {s['fds']} | {s['gateway_cpu_s']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
