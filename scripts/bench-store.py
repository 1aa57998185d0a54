#!/usr/bin/env python3
"""The embedded store against s3s-fs, side by side in one run (issue "The embedded default is a
real S3 store": "keep it at least as fast"). Two release gateways on the embedded backend, one
with engine = "store" (the default) and one with engine = "s3s-fs", each with its data on disk,
measured in turn, round by round:

    GET 1 KiB, PUT 1 KiB      wrk, 64 connections, one key
    GET 1 GiB, PUT 1 GiB      curl, one transfer each
    LIST 100,000 keys         every key in pages of 1,000 (ListObjectsV2), and one page with
                              delimiter "/" over them (one common prefix)

CPU placement (2 cores): the gateways on CPU 0, wrk/curl/the lister on CPU 1. Requests are
anonymous (the bench tenant grants read-write to anonymous callers), so the load generators sign
nothing; the gateway's own work is the same for both engines. Ratios are store / s3s-fs
(higher is better for rates, lower for seconds). Standard library only.

    scripts/bench-store.sh                               # ~10 minutes
    scripts/bench-store.sh --rounds 1 --seconds 2 --keys 2000 --large 64m   # smoke run
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (LOAD_CPU, RELEASE, ROOT, SERVER_CPU, cpu_seconds, free_port, presign,  # noqa: E402
                   run_wrk, size_bytes, wait_port)

ENGINES = ["store", "s3s-fs"]
BUCKET = "bench"

CONFIG = """
[server]
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{admin}"
threads = 1
keepalive_seconds = 300
log_level = "warn"

[addressing]
default_tenant = "bench"

[[users]]
username = "bench-user"
password = "bench-password"
permissions = [{{ tenant = "*", buckets = "*", allow = ["all"] }}]

[[tenants]]
name = "bench"
backend = "local"
anonymous = [{{ buckets = "bench", access = "read-write" }}]

[[backends]]
name = "local"
kind = "local"
engine = "{engine}"
data_dir = "{data}"
"""

# Writes keys/000000 … over one connection until TOTAL answers have come back, then ends wrk.
POPULATE_LUA = r"""
local i = 0
local done = 0
local total = TOTAL
request = function()
  local path = string.format("/bench/keys/%06d", i)
  i = i + 1
  return wrk.format("PUT", path, {["Content-Length"] = "1"}, "k")
end
response = function(status)
  if status ~= 200 then io.write("status " .. status .. "\n") end
  done = done + 1
  if done >= total then os.exit(0) end
end
"""


class Gateways:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="hcp-bench-store-", dir=args.dir)
        self.procs, self.ports = {}, {}

    def start(self):
        for engine in ENGINES:
            port, admin = free_port(), free_port()
            data = os.path.join(self.work, engine, "data")
            os.makedirs(data)
            cfg = os.path.join(self.work, engine, "gateway.toml")
            with open(cfg, "w") as f:
                f.write(CONFIG.format(port=port, admin=admin, engine=engine, data=data))
            log = open(os.path.join(self.work, engine, "gateway.log"), "wb")
            env = dict(os.environ, MALLOC_ARENA_MAX="2")
            proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, f"{RELEASE}/hcp-s3-gateway", "--config", cfg],
                                    stdout=log, stderr=log, env=env)
            wait_port(port, proc)
            self.procs[engine], self.ports[engine] = proc, port
            status, _ = self.request(engine, "PUT", f"/{BUCKET}", signed=True)
            if status != 200:
                raise RuntimeError(f"{engine}: create bucket answered {status}")

    def stop(self):
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.work, ignore_errors=True)

    def request(self, engine, method, path, body=b"", signed=False):
        # `signed`: as the bench user (creating a bucket is not anonymous).
        if signed:
            path = presign(method, self.ports[engine], None, bucket=path.strip("/"))
        conn = http.client.HTTPConnection("127.0.0.1", self.ports[engine], timeout=600)
        conn.request(method, path, body=body)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, data

    def wrk(self, engine, method, size, seconds, connections=64):
        url = f"http://127.0.0.1:{self.ports[engine]}/{BUCKET}/obj-{size}"
        c0 = cpu_seconds(self.procs[engine].pid)
        result = run_wrk(self.work, method, size, url, connections, seconds, engine)
        if result["non2xx"] or result["errors"]:
            raise RuntimeError(f"{engine} {method} {size}: {result}")
        cpu = cpu_seconds(self.procs[engine].pid) - c0
        return {"rate": result["requests"] / result["seconds"], "cpu_us": cpu / result["requests"] * 1e6}

    def populate(self, engine, keys):
        script = os.path.join(self.work, "populate.lua")
        with open(script, "w") as f:
            f.write(POPULATE_LUA.replace("TOTAL", str(keys)))
        url = f"http://127.0.0.1:{self.ports[engine]}/"
        t0 = time.monotonic()
        run = subprocess.run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", "-c1", "-d3600s", "-s", script, url],
                             capture_output=True, text=True)
        if "status" in run.stdout:
            raise RuntimeError(f"populate {engine}: {run.stdout[-500:]}")
        return time.monotonic() - t0

    def list_all(self, engine, keys):
        """Every key in pages of 1,000; seconds taken."""
        conn = http.client.HTTPConnection("127.0.0.1", self.ports[engine], timeout=600)
        seen, token = 0, None
        t0 = time.monotonic()
        while True:
            q = "list-type=2&max-keys=1000&prefix=keys/"
            if token:
                q += "&continuation-token=" + token
            conn.request("GET", f"/{BUCKET}?{q}")
            body = conn.getresponse().read().decode()
            seen += body.count("<Key>")
            if "<IsTruncated>true</IsTruncated>" not in body:
                break
            token = body.split("<NextContinuationToken>", 1)[1].split("<", 1)[0]
            token = urllib.parse.quote(token, safe="")
        elapsed = time.monotonic() - t0
        conn.close()
        if seen != keys:
            raise RuntimeError(f"{engine} listed {seen} keys, not {keys}")
        return elapsed

    def list_delimited(self, engine):
        """One page with delimiter "/": the 100,000 keys roll up into one common prefix."""
        t0 = time.monotonic()
        status, body = self.request(engine, "GET", f"/{BUCKET}?list-type=2&delimiter=%2F")
        if status != 200 or b"<Prefix>keys/</Prefix>" not in body:
            raise RuntimeError(f"{engine}: {status} {body[:300]!r}")
        return time.monotonic() - t0

    def curl(self, engine, method, size, source):
        url = f"http://127.0.0.1:{self.ports[engine]}/{BUCKET}/big-{size}"
        argv = ["taskset", "-c", LOAD_CPU, "curl", "-sS", "-f", "-o", "/dev/null"]
        if method == "PUT":
            argv += ["-T", source]
        t0 = time.monotonic()
        subprocess.run(argv + [url], check=True, capture_output=True)
        return size_bytes(size) / (time.monotonic() - t0) / 2**20


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5, help="wrk duration per measurement")
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--large", default="1g")
    ap.add_argument("--dir", default="/var/tmp", help="where the data directories go (a disk, not tmpfs)")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench-store"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    g = Gateways(args)
    results = {e: {} for e in ENGINES}

    def add(engine, name, value):
        results[engine].setdefault(name, []).append(value)

    try:
        g.start()
        source = os.path.join(g.work, "large.bin")
        with open(source, "wb") as f:
            f.truncate(size_bytes(args.large))
        for engine in ENGINES:
            status, _ = g.request(engine, "PUT", f"/{BUCKET}/obj-1k", body=b"x" * 1024)
            assert status == 200, status
            print(f"{engine}: writing {args.keys} keys …", flush=True)
            add(engine, f"PUT {args.keys} keys, one connection (s)", g.populate(engine, args.keys))
        for r in range(args.rounds):
            order = ENGINES if r % 2 == 0 else ENGINES[::-1]
            for engine in order:
                print(f"round {r + 1}: {engine}", flush=True)
                for method in ("GET", "PUT"):
                    w = g.wrk(engine, method, "1k", args.seconds)
                    add(engine, f"{method} 1 KiB (req/s)", w["rate"])
                    add(engine, f"{method} 1 KiB (gateway process CPU µs/req)", w["cpu_us"])
                add(engine, f"PUT {args.large} (MiB/s)", g.curl(engine, "PUT", args.large, source))
                add(engine, f"GET {args.large} (MiB/s)", g.curl(engine, "GET", args.large, source))
                add(engine, f"LIST {args.keys} keys in pages of 1,000 (s)", g.list_all(engine, args.keys))
                add(engine, f"LIST delimiter / over {args.keys} keys (s)", g.list_delimited(engine))
    finally:
        g.stop()
    lines = ["| measure | store | s3s-fs | store / s3s-fs |", "|---|---:|---:|---:|"]
    for name in results["store"]:
        a, b = statistics.median(results["store"][name]), statistics.median(results["s3s-fs"][name])
        lines.append(f"| {name} | {a:,.3f} | {b:,.3f} | {a / b:.2f} |")
    report = "\n".join(lines)
    print(report)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report + "\n")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
