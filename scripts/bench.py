#!/usr/bin/env python3
"""Side-by-side benchmark: the gateway against a plain nginx reverse proxy, a pingora passthrough
and the backend itself, measured in one run, interleaved. See BENCHMARKS.md.

Run through scripts/bench.sh, which builds the binaries first. Standard library only.

CPU placement (2 cores): the load generator (wrk, curl, the idle-connection client) runs on CPU 1;
the backend and the proxy under test share CPU 0, and every proxy runs one worker thread/process.
So each proxy has the same CPU to spend, and requests per second compare "at equal CPU"; the CPU
time each process spent is read from /proc and reported per request / per GiB as well.
"""
import argparse
import datetime
import email.utils
import hashlib
import hmac
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
ACCESS_KEY = "YmVuY2gtdXNlcg=="  # Base64("bench-user")
SECRET_KEY = hashlib.md5(b"bench-password").hexdigest()
BUCKET = "bench"
LOAD_CPU, SERVER_CPU = "1", "0"
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def presign(method, port, key, expires=86400, bucket=BUCKET, query=None):
    """A SigV4 presigned path and query for the gateway (the other targets ignore the query).
    `key` None addresses the bucket itself; `query` adds signed parameters (a listing's)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    scope = f"{day}/us-east-1/s3/aws4_request"
    host = f"127.0.0.1:{port}"
    params = dict(query or {})
    params.update({
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{ACCESS_KEY}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    })
    q = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                 for k, v in sorted(params.items()))
    path = f"/{bucket}" if key is None else f"/{bucket}/{key}"
    canonical = f"{method}\n{path}\n{q}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    k = ("AWS4" + SECRET_KEY).encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{path}?{q}&X-Amz-Signature={sig}"


def tree_pids(pid):
    """The process and its descendants (nginx's master and workers)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def usage(pid):
    """Of the process and its descendants: user and system CPU seconds, and the context switches
    of all their threads — voluntary (a thread that slept) and involuntary (one the scheduler
    took the CPU from while it could run, as a woken process preempting it)."""
    user = system = vol = invol = 0
    for p in tree_pids(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/status") as f:
                    for line in f:
                        if line.startswith("voluntary_ctxt_switches"):
                            vol += int(line.split()[1])
                        elif line.startswith("nonvoluntary_ctxt_switches"):
                            invol += int(line.split()[1])
            except OSError:
                pass
    return user / TICK, system / TICK, vol, invol


def syscalls_during(pid, seconds, out):
    """Starts `perf stat` counting the syscalls of `pid` for `seconds`; returns the process, or
    None where perf or its syscall tracepoints are not available."""
    if not shutil.which("perf"):
        return None
    # (All of the process's tree: nginx's workers are its master's children.)
    pids = ",".join(str(p) for p in tree_pids(pid))
    return subprocess.Popen(["perf", "stat", "-x,", "-e", "syscalls:sys_enter_*", "-p", pids,
                             "-o", out, "--", "sleep", str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def read_syscalls(path):
    """{syscall: count} from a `perf stat -x,` file (counts of zero left out)."""
    counts = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(",")
                if len(parts) > 2 and parts[2].startswith("syscalls:sys_enter_") and parts[0].isdigit():
                    if int(parts[0]):
                        counts[parts[2][len("syscalls:sys_enter_"):]] = int(parts[0])
    except OSError:
        pass
    return counts


def cpu_seconds(pid):
    user, system, _, _ = usage(pid)
    return user + system


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def rss_kib(pid):
    """Resident memory of the process and its descendants (nginx's master and workers)."""
    return sum(status_kib(p, "VmRSS") for p in tree_pids(pid))


def wait_port(port, proc, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="hcp-bench-", dir="/dev/shm")
        self.procs = []
        self.ports = {}
        self.failures = 0

    def spawn(self, name, argv, port, cpu=SERVER_CPU, env=None):
        log = open(os.path.join(self.work, f"{name}.log"), "wb")
        proc = subprocess.Popen(["taskset", "-c", cpu] + argv, stdout=log, stderr=log,
                                env=env or os.environ.copy())
        self.procs.append(proc)
        wait_port(port, proc)
        self.ports[name] = port
        return proc

    def start(self):
        origin = free_port()
        self.origin = self.spawn("direct", [f"{RELEASE}/examples/bench_origin", f"127.0.0.1:{origin}"], origin)
        if self.args.backend_batch:
            # (Threads it starts later inherit the policy.)
            for task in os.listdir(f"/proc/{self.origin.pid}/task"):
                try:
                    os.sched_setscheduler(int(task), os.SCHED_BATCH, os.sched_param(0))
                except ProcessLookupError:
                    pass
        nginx_port = free_port()
        conf = os.path.join(self.work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(work=self.work, port=nginx_port, origin=origin))
        self.nginx = self.spawn("nginx", ["nginx", "-c", conf, "-p", self.work], nginx_port)
        pt = free_port()
        self.passthrough = self.spawn(
            "passthrough", [f"{RELEASE}/examples/passthrough", f"127.0.0.1:{pt}", f"127.0.0.1:{origin}", "1"], pt)
        gw, cfg = self.gateway_config("gateway", self.args.gateway_threads)
        env = os.environ.copy()
        env.setdefault("MALLOC_ARENA_MAX", "2")
        self.gateway = self.spawn("gateway", [self.args.gateway, "--config", cfg], gw, env=env)
        self.pids = {"direct": self.origin.pid, "nginx": self.nginx.pid,
                     "passthrough": self.passthrough.pid, "gateway": self.gateway.pid}
        if self.args.baseline:
            # A step's A/B: the same gateway configuration served by another build (another
            # commit's binary), measured interleaved with this one in the same run.
            port, cfg = self.gateway_config("baseline", self.args.gateway_threads)
            proc = self.spawn("baseline", [self.args.baseline, "--config", cfg], port, env=env)
            self.pids["baseline"] = proc.pid
        if self.args.downstream_trial:
            # Item 3's trial: pingora's downstream session against a lean one, nothing else.
            for mode in ("pingora", "lean"):
                self.trial(f"trial-{mode}", mode, origin)
        for ns in self.args.trial_spin:
            # trial-pingora with NS of busy work per request: a floor as heavy as a heavier proxy.
            self.trial(f"spin-{ns}", "pingora", origin, dict(os.environ, TRIAL_SPIN_NS=str(ns)))

    def trial(self, name, mode, origin, env=None):
        """examples/downstream_trial in MODE in front of the backend, as target NAME."""
        port = free_port()
        proc = self.spawn(name, [f"{RELEASE}/examples/downstream_trial", mode, f"127.0.0.1:{port}",
                                 f"127.0.0.1:{origin}"], port, env=env)
        self.pids[name] = proc.pid

    def gateway_config(self, name, threads):
        """A gateway configuration in front of the backend, on ports of its own: (port, path)."""
        port, admin = free_port(), free_port()
        cfg = os.path.join(self.work, f"{name}.toml")
        with open(cfg, "w") as f:
            f.write(GATEWAY_CONF.format(port=port, admin=admin, origin=self.ports["direct"],
                                        threads=threads))
        return port, cfg

    def stop(self):
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.work, ignore_errors=True)

    def url(self, target, method, key):
        port = self.ports[target]
        # (Signed for the gateway's Host; a baseline gateway verifies its own.)
        signed_for = self.ports["baseline" if target == "baseline" else "gateway"]
        return f"http://127.0.0.1:{port}{presign(method, signed_for, key)}"

    # --- small objects -----------------------------------------------------------------------
    def wrk(self, target, method, size, connections, seconds):
        key = f"obj-{size}"
        # The gateway verifies the presigned signature, so every target gets the gateway's URL.
        url = self.url(target, method, key)
        proxy = self.pids[target]
        origin = self.pids["direct"]
        (u0, s0, _, pi0), (ou0, os0, ov0, _) = usage(proxy), usage(origin)
        result = run_wrk(self.work, method, size, url, connections, seconds, target)
        (u1, s1, _, pi1), (ou1, os1, ov1, _) = usage(proxy), usage(origin)
        direct = target == "direct"
        result["proxy_user_s"] = 0.0 if direct else u1 - u0
        result["proxy_sys_s"] = 0.0 if direct else s1 - s0
        result["proxy_cpu_s"] = result["proxy_user_s"] + result["proxy_sys_s"]
        result["origin_cpu_s"] = (ou1 + os1) - (ou0 + os0)
        # How often the backend, woken by the proxy's request, took the shared CPU from it.
        result["proxy_preempted"] = 0 if direct else pi1 - pi0
        result["origin_sleeps"] = ov1 - ov0
        if result["non2xx"] or result["errors"]:
            self.failures += 1
            print(f"  !! {target} {method} {size}: {result['non2xx']} non-2xx, {result['errors']} socket errors",
                  file=sys.stderr)
        return result

    def syscalls(self, target, method, size, connections, seconds):
        """Syscalls per request of `target` under wrk (a run of its own: perf's counting is
        not in the timed runs). None where perf cannot count them."""
        out = os.path.join(self.work, f"syscalls-{target}-{method}-{size}.txt")
        perf = syscalls_during(self.pids[target], seconds, out)
        if perf is None:
            return None
        res = run_wrk(self.work, method, size, self.url(target, method, f"obj-{size}"), connections,
                      seconds, target)
        perf.wait()
        counts = read_syscalls(out)
        if not counts or not res["requests"]:
            return None
        return {name: n / res["requests"] for name, n in counts.items()}

    # --- large objects -----------------------------------------------------------------------
    def curl(self, target, method, size_name, source=None):
        url = self.url(target, method, f"big-{size_name}")
        argv = ["taskset", "-c", LOAD_CPU, "curl", "-sS", "-f", "-o", "/dev/null", "-w",
                "%{speed_download} %{speed_upload} %{size_download} %{size_upload}"]
        if method == "PUT":
            argv += ["-T", source]
        proxy = self.pids[target]
        c0 = cpu_seconds(proxy)
        t0 = time.monotonic()
        out = subprocess.run(argv + [url], capture_output=True, text=True, check=True).stdout.split()
        elapsed = time.monotonic() - t0
        c1 = cpu_seconds(proxy)
        moved = float(out[2]) if method == "GET" else float(out[3])
        return {"mib_s": moved / elapsed / 2**20, "bytes": moved,
                "proxy_cpu_s": c1 - c0 if target != "direct" else 0.0}


NGINX_CONF = """
daemon off;
master_process on;
worker_processes 1;
error_log {work}/nginx-error.log warn;
pid {work}/nginx.pid;
events {{ worker_connections 20000; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-body;
    proxy_temp_path {work}/nginx-proxy;
    upstream origin {{ server 127.0.0.1:{origin}; keepalive 128; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        client_max_body_size 0;
        keepalive_requests 1000000;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_request_buffering off;
            proxy_buffering off;
        }}
    }}
}}
"""

GATEWAY_CONF = """
[server]
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{admin}"
threads = {threads}
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
backend = "origin"
# S3's overwrite, as nginx and the passthrough do: HCP's no-overwrite rule (the default) costs
# every write a HEAD and a one-key listing at a backend without conditional writes, which is
# the rule's price, not the proxy's (BENCHMARKS.md).
overwrite = "allow"

[[backends]]
name = "origin"
kind = "s3"
endpoint = "http://127.0.0.1:{origin}"
region = "us-east-1"
addressing = "path"
access_key = "backend-access"
secret_key = "backend-secret"
"""

# wrk prints one JSON line at the end: requests, rate and latency percentiles in microseconds.
WRK_LUA = r"""
wrk.method = "METHOD"
local n = BODYLEN
if n > 0 then wrk.body = string.rep("b", n) end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %f, "p50_us": %d, "p99_us": %d, "p999_us": %d, "non2xx": %d, "errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), summary.errors.status, 
    e.connect + e.read + e.write + e.timeout))
end
"""


def idle_connections(bench, count, target="gateway"):
    """Opens `count` keep-alive connections to `target`, makes one request on each and leaves
    them idle; returns its RSS before and then (KiB), and how many connections stayed open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1000), hard))
    pid = bench.pids[target]
    before = rss_kib(pid)
    port = bench.ports[target]
    # (Signed for the target's own port, which the gateway and a baseline check; the others
    # ignore the query.)
    request = (f"GET {presign('GET', port, 'obj-1k')} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").encode()
    conns = []
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < 1024:
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("gateway closed an idle-test connection")
                data += chunk
            if not data.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"idle-test request failed: {data[:200]!r}")
            conns.append(s)
        time.sleep(2)
        after = rss_kib(pid)
        # Still open: the gateway kept every connection.
        alive = 0
        for s in conns:
            s.setblocking(False)
            try:
                alive += s.recv(1) != b""
            except BlockingIOError:
                alive += 1
        return before, after, alive
    finally:
        for s in conns:
            s.close()


def profile(bench, args):
    """perf call-graph profile of the gateway during GET 1 KiB load; the report lists functions
    by inclusive share (which phase costs what) and by own share (hot spots)."""
    data = os.path.join(args.out, "perf.data")
    url = bench.url("gateway", "GET", "obj-1k")
    load = subprocess.Popen(["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{args.connections}",
                             f"-d{args.seconds + 2}s", url], stdout=subprocess.DEVNULL)
    time.sleep(1)
    subprocess.run(["perf", "record", "-q", "-F", "999", "--call-graph", "dwarf,16384", "-p",
                    str(bench.pids["gateway"]), "-o", data, "--", "sleep", str(args.seconds)], check=True)
    load.wait()
    out = os.path.join(args.out, "profile.txt")
    with open(out, "w") as f:
        for sort in (["--children"], ["--no-children"]):
            rep = subprocess.run(["perf", "report", "-i", data, "--stdio", "--sort", "symbol", "-g", "none",
                                  "--percent-limit", "0.5"] + sort, capture_output=True, text=True).stdout
            f.write(rep)
    print(f"profile: {out}")


def exchange(sock, request):
    """Sends one request on a keep-alive connection and reads its whole answer; its status."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        rest += chunk
    return int(head.split(b" ", 2)[1])


def vector_copies():
    """The environment for a counted process, with glibc's `memcpy` kept to its vector loop
    for every size. Past `x86_rep_movsb_threshold` (2,112 bytes here) glibc copies with `rep
    movsb`, or with the loop where the two addresses make `rep movsb` slow; callgrind counts
    `rep movsb` one instruction per byte, the loop about one per ten, so a copy's count would
    swing tenfold with its size and the addresses it gets, not with the bytes moved."""
    env = os.environ.copy()
    tunable = "glibc.cpu.x86_rep_movsb_threshold=0x1000000"
    env["GLIBC_TUNABLES"] = ":".join(filter(None, [env.get("GLIBC_TUNABLES"), tunable]))
    return env


def instructions(bench, args):
    """User-space instructions per request of each gateway build (`gateway`, and `baseline`
    where given) and, with --downstream-trial, of the floors it is compared with (the hyper
    passthrough and the two downstream trials), counted by callgrind: each is started again
    under valgrind (the gateways with the same configuration), warmed up with 200 requests, its
    counters zeroed, then served `count` presigned requests one at a time on one keep-alive
    connection, and its counters dumped. The count is the same for the same binary and inputs
    whatever else the machine does, so a small step shows where a timed run is within its
    noise. System calls are not counted."""
    count = args.instruction_requests
    origin = f"127.0.0.1:{bench.ports['direct']}"

    def gateway(name, binary):
        def argv():
            port, cfg = bench.gateway_config(f"callgrind-{name}", 1)
            return port, [binary, "--config", cfg]
        return name, argv

    def floor(name, argv_of):
        def argv():
            port = free_port()
            return port, argv_of(f"127.0.0.1:{port}")
        return name, argv

    builds = [gateway("gateway", args.gateway)]
    if args.baseline:
        builds.append(gateway("baseline", args.baseline))
    if args.downstream_trial:
        builds.append(floor("passthrough",
                            lambda listen: [f"{RELEASE}/examples/passthrough", listen, origin, "1"]))
        for mode in ("pingora", "lean"):
            builds.append(floor(f"trial-{mode}", lambda listen, mode=mode: [
                f"{RELEASE}/examples/downstream_trial", mode, listen, origin]))
    results = {}
    for name, argv in builds:
        port, command = argv()
        out = os.path.join(bench.work, f"callgrind-{name}.out")
        log = open(os.path.join(bench.work, f"callgrind-{name}.log"), "wb")
        proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--dump-instr=yes",
                                 f"--callgrind-out-file={out}"]
                                + command, stdout=log, stderr=log, env=vector_copies())
        try:
            wait_port(port, proc, timeout=120)
            for workload in args.workloads.split(","):
                method, size = workload.split()
                body = b"x" * size_bytes(size) if method == "PUT" else b""
                if args.instruction_auth == "hcp":
                    # HCP's own scheme, `Authorization: HCP base64(user):md5(password)`: a
                    # request examples/pgo_train.rs never sends (a profile-guided build's check).
                    path = f"/{BUCKET}/obj-{size}"
                    # (With its Date, which the scheme needs: seed 002.)
                    date = email.utils.formatdate(usegmt=True)
                    auth = f"Authorization: HCP {ACCESS_KEY}:{SECRET_KEY}\r\nDate: {date}\r\n"
                else:
                    path, auth = presign(method, port, f"obj-{size}"), ""
                request = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
                           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
                with socket.create_connection(("127.0.0.1", port)) as sock:
                    for _ in range(200):
                        exchange(sock, request)
                    subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    statuses = [exchange(sock, request) for _ in range(count)]
                    subprocess.run(["callgrind_control", "-d", workload.replace(" ", "-"), str(proc.pid)],
                                   check=True, capture_output=True)
                if any(s >= 300 for s in statuses):
                    bench.failures += 1
                    print(f"  !! {name} {workload}: answers other than 2xx", file=sys.stderr)
                total, dump = latest_callgrind_total(out)
                # Kept for `callgrind_annotate --inclusive=yes OUT/callgrind-….out`.
                shutil.copy(dump, os.path.join(args.out, f"callgrind-{name}-{method}-{size}.out"))
                results.setdefault(workload, {})[name] = total / count
                print(f"{workload} {name:<9} {total / count:,.0f} instructions per request", flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    return results


def latest_callgrind_total(out):
    """The instruction total of the newest dump callgrind wrote beside `out` (`out.N`), and
    that dump's path."""
    base = os.path.basename(out)
    dumps = [f for f in os.listdir(os.path.dirname(out)) if f.startswith(base + ".")]
    newest = max(dumps, key=lambda f: int(f.rsplit(".", 1)[1].split("-")[0]))
    path = os.path.join(os.path.dirname(out), newest)
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1]), path
    raise RuntimeError(f"no total in {newest}")


def peak_rss_during(bench, fn):
    """The gateway's peak RSS (KiB) while `fn` runs: VmHWM is reset first (clear_refs 5)."""
    pid = bench.pids["gateway"]
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
    result = fn()
    return status_kib(pid, "VmHWM"), result


def run_wrk(work, method, size, url, connections, seconds, label):
    """wrk on the load CPU with WRK_LUA for METHOD and a SIZE body: its JSON summary."""
    script = os.path.join(work, f"wrk-{method}-{size}.lua")
    with open(script, "w") as f:
        f.write(WRK_LUA.replace("METHOD", method).replace("BODYLEN", str(size_bytes(size) if method == "PUT" else 0)))
    run = subprocess.run(["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
                          "-s", script, url], capture_output=True, text=True)
    out = run.stdout
    if run.returncode != 0 or "{" not in out:
        raise RuntimeError(f"wrk failed on {label}: {run.stdout}{run.stderr}")
    return json.loads(out[out.index("{"):out.rindex("}") + 1])


def spin_list(text):
    """--trial-spin's value: distinct positive nanosecond counts."""
    try:
        spins = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of ns: {text!r}")
    if any(ns <= 0 for ns in spins) or len(set(spins)) != len(spins):
        raise argparse.ArgumentTypeError(f"distinct positive ns, please: {text!r}")
    return spins


def size_bytes(name):
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(name[:-1]) * units[name[-1]] if name[-1] in units else int(name)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


TARGETS = ["direct", "nginx", "passthrough", "gateway"]


def rotate(xs, n):
    n %= len(xs)
    return xs[n:] + xs[:n]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians are reported)")
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration per measurement")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--large", default="1g", help="large object size (1g)")
    ap.add_argument("--huge", default="5g", help="size for the peak-RSS transfers (5g)")
    ap.add_argument("--idle", type=int, default=10000, help="idle keep-alive connections")
    ap.add_argument("--gateway-threads", type=int, default=1)
    ap.add_argument("--small-only", action="store_true", help="only small objects (for tuning)")
    ap.add_argument("--idle-only", metavar="TARGET",
                    help="only the idle-connection memory of TARGET (gateway, passthrough, nginx; "
                         "baseline with --baseline)")
    ap.add_argument("--workloads", default="GET 1k,GET 4k,PUT 1k,PUT 4k")
    ap.add_argument("--downstream-trial", action="store_true",
                    help="also measure examples/downstream_trial (pingora's downstream session "
                         "against a lean one) as targets trial-pingora and trial-lean")
    ap.add_argument("--trial-spin", metavar="NS,NS", type=spin_list, default=[],
                    help="also measure trial-pingora with NS of busy work per request "
                         "(examples/downstream_trial's TRIAL_SPIN_NS) as targets spin-NS in the timed "
                         "runs: does the scheduling on the shared CPU follow the CPU per request alone?")
    ap.add_argument("--backend-batch", action="store_true",
                    help="a diagnostic run: the backend under SCHED_BATCH, so that its wake-ups do "
                         "not preempt the proxy it shares CPU %s with (what that preemption costs "
                         "each proxy; the reference runs leave the backend a normal process)" % SERVER_CPU)
    ap.add_argument("--profile", action="store_true",
                    help="only profile the gateway under GET 1k load with perf (call graphs) into OUT/profile.txt")
    ap.add_argument("--gateway", metavar="BINARY", default=os.path.join(RELEASE, "hcp-s3-gateway"),
                    help="the gateway binary measured as target 'gateway' (scripts/bench.sh gives "
                         "the profile-guided build, target/pgo/hcp-s3-gateway, unless --no-pgo)")
    ap.add_argument("--baseline", metavar="BINARY",
                    help="also measure this hcp-s3-gateway binary (another commit's build) as target "
                         "'baseline', with the same configuration: a step's A/B in one run")
    ap.add_argument("--instructions", action="store_true",
                    help="only count the user-space instructions per request of the gateway (and "
                         "--baseline, and with --downstream-trial the passthrough and the trials) "
                         "under callgrind, for --workloads: a step's A/B free of timing noise")
    ap.add_argument("--instruction-auth", choices=["presigned", "hcp"], default="presigned",
                    help="how the --instructions requests authenticate: presigned SigV4 URLs (the "
                         "benchmark's), or HCP's `Authorization: HCP user:md5` header")
    ap.add_argument("--instruction-requests", type=int, default=2000,
                    help="requests counted per workload with --instructions (2000)")
    ap.add_argument("--out", default=os.path.join(ROOT, "target", "bench"))
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    os.makedirs(args.out, exist_ok=True)
    if args.downstream_trial:
        TARGETS.extend(["trial-pingora", "trial-lean"])
    if args.baseline:
        TARGETS.append("baseline")
    TARGETS.extend(f"spin-{ns}" for ns in args.trial_spin)
    bench = Bench(args)
    results = {"small": {}, "latency": {}, "large": {}, "memory": {}}
    try:
        bench.start()
        if args.profile:
            profile(bench, args)
            return
        if args.instructions:
            counted = instructions(bench, args)
            lines = [f"Command: `scripts/bench.sh --instructions --workloads \"{args.workloads}\""
                     + (" --baseline BINARY" if args.baseline else "")
                     + (" --downstream-trial" if args.downstream_trial else "")
                     + (" --instruction-auth hcp" if args.instruction_auth == "hcp" else "")
                     + f"` — user-space instructions per request (callgrind), {args.instruction_requests} "
                     + ("presigned requests" if args.instruction_auth == "presigned"
                        else "requests signed by HCP's `Authorization: HCP user:md5`")
                     + f" on one keep-alive connection after 200 to warm up; gateway: `{built(args)}`.", "",
                     "| workload | gateway | baseline | gateway ÷ baseline |", "|---|---:|---:|---:|"]
            for workload, per in counted.items():
                base = per.get("baseline")
                lines.append(f"| {workload} | {per['gateway']:,.0f} | "
                             + (f"{base:,.0f} | {per['gateway'] / base:.3f} |" if base else "| |"))
            floors = [n for n in ("passthrough", "trial-pingora", "trial-lean")
                      if any(n in per for per in counted.values())]
            if floors:
                lines += ["", "| workload | gateway | " + " | ".join(floors) + " | gateway − trial-pingora |",
                          "|---|---:|" + "---:|" * len(floors) + "---:|"]
                for workload, per in counted.items():
                    lines.append(f"| {workload} | {per['gateway']:,.0f} | "
                                 + " | ".join(f"{per[n]:,.0f}" for n in floors)
                                 + f" | {per['gateway'] - per['trial-pingora']:,.0f} |")
            with open(os.path.join(args.out, "instructions.md"), "w") as f:
                f.write("\n".join(lines) + "\n")
            print("\n".join(lines))
            return
        if args.idle_only:
            before, after, alive = idle_connections(bench, args.idle, args.idle_only)
            print(f"{args.idle_only}: {args.idle} idle connections: RSS {before / 1024:.1f} → "
                  f"{after / 1024:.1f} MiB, {alive} still open")
            return
        print(f"processes on CPU {SERVER_CPU}: backend, nginx, passthrough, gateway; load on CPU {LOAD_CPU}")
        # Warm every path (connection pools, caches).
        for t in TARGETS:
            bench.wrk(t, "GET", "1k", args.connections, 1)
        for r in range(args.rounds):
            for workload in args.workloads.split(","):
                method, size = workload.split()
                for t in rotate(TARGETS, r):
                    res = bench.wrk(t, method, size, args.connections, args.seconds)
                    results["small"].setdefault(f"{method} {size}", {}).setdefault(t, []).append(res)
                    print(f"round {r + 1} {method} {size:>3} {t:<12} {res['requests'] / res['seconds']:>9.0f} req/s "
                          f"p50 {res['p50_us']} µs p99 {res['p99_us']} µs cpu {res['proxy_cpu_s']:.2f}s", flush=True)
            for t in rotate(TARGETS, r):
                res = bench.wrk(t, "GET", "1k", 1, max(3, args.seconds // 2))
                results["latency"].setdefault(t, []).append(res)
                print(f"round {r + 1} GET 1k, 1 connection {t:<12} p50 {res['p50_us']} µs", flush=True)
        results["syscalls"] = {}
        for workload in ("GET 1k", "PUT 1k"):
            method, size = workload.split()
            for t in [x for x in TARGETS if x != "direct"]:
                per = bench.syscalls(t, method, size, args.connections, max(3, args.seconds // 2))
                if per:
                    results["syscalls"].setdefault(workload, {})[t] = per
                    print(f"{workload} {t:<12} {sum(per.values()):.2f} syscalls per request", flush=True)
        if not args.small_only:
            source = os.path.join(bench.work, f"upload-{args.large}")
            subprocess.run(["truncate", "-s", args.large.upper(), source], check=True)
            for r in range(max(1, args.rounds - 1)):
                for method in ("GET", "PUT"):
                    for t in rotate(TARGETS, r):
                        res = bench.curl(t, method, args.large, source)
                        results["large"].setdefault(method, {}).setdefault(t, []).append(res)
                        print(f"round {r + 1} {method} {args.large} {t:<12} {res['mib_s']:.0f} MiB/s "
                              f"cpu {res['proxy_cpu_s']:.2f}s", flush=True)
            os.unlink(source)
            huge = os.path.join(bench.work, f"upload-{args.huge}")
            subprocess.run(["truncate", "-s", args.huge.upper(), huge], check=True)
            results["memory"]["baseline_kib"] = status_kib(bench.pids["gateway"], "VmRSS")
            for method in ("PUT", "GET"):
                peak, res = peak_rss_during(bench, lambda: bench.curl("gateway", method, args.huge, huge))
                results["memory"][f"{method} {args.huge}"] = {"peak_kib": peak, **res}
                print(f"{method} {args.huge} through the gateway: peak RSS {peak / 1024:.1f} MiB, {res['mib_s']:.0f} MiB/s")
            os.unlink(huge)
            before, after, alive = idle_connections(bench, args.idle)
            results["memory"]["idle"] = {"connections": args.idle, "alive": alive, "before_kib": before, "after_kib": after}
            print(f"{args.idle} idle connections: RSS {before / 1024:.1f} → {after / 1024:.1f} MiB, {alive} still open")
    finally:
        bench.stop()
    results["args"] = vars(args)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    report = render(results, args)
    with open(os.path.join(args.out, "report.md"), "w") as f:
        f.write(report)
    print(report)
    if bench.failures:
        sys.exit(f"bench: {bench.failures} measurement(s) saw failed requests (see above)")


def rate(r):
    return r["requests"] / r["seconds"]


def built(args):
    """The measured gateway binary, relative to the checkout where it is in it."""
    return os.path.relpath(args.gateway, ROOT) if args.gateway.startswith(ROOT + os.sep) else args.gateway


def render(results, args):
    flags = (" --small-only" if args.small_only else "") + \
        (f' --workloads "{args.workloads}"' if args.workloads != "GET 1k,GET 4k,PUT 1k,PUT 4k" else "") + \
        (" --baseline BINARY" if args.baseline else "") + \
        (" --downstream-trial" if args.downstream_trial else "") + \
        (" --backend-batch" if args.backend_batch else "") + \
        (f" --trial-spin {','.join(map(str, args.trial_spin))}" if args.trial_spin else "")
    lines = [f"Command: `scripts/bench.sh --rounds {args.rounds} --seconds {args.seconds}{flags}` — medians of "
             f"{args.rounds} interleaved rounds; {args.connections} connections; wrk on CPU {LOAD_CPU}, "
             f"backend and proxy on CPU {SERVER_CPU}, one worker each; gateway: `{built(args)}`.", ""]
    lines += ["| workload | target | req/s | p50 µs | p99 µs | p99.9 µs | proxy CPU µs/req | "
              "user µs/req | system µs/req | backend CPU µs/req | "
              "gateway ÷ this (req/s) | gateway ÷ this (req per CPU-s) |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for workload, per_target in results["small"].items():
        gw = per_target["gateway"]
        gw_rate = median([rate(r) for r in gw])
        gw_cpu = median([r["proxy_cpu_s"] / r["requests"] for r in gw])
        for t in TARGETS:
            rs = per_target[t]
            rps = median([rate(r) for r in rs])
            cpu = median([r["proxy_cpu_s"] / r["requests"] for r in rs]) if t != "direct" else None
            ratio = f"{gw_rate / rps:.2f}" if t != "gateway" else ""
            eff = f"{cpu / gw_cpu:.2f}" if cpu and t != "gateway" else ""
            per_req = lambda key: median([r.get(key, 0.0) / r["requests"] for r in rs]) * 1e6
            user = "" if cpu is None else f"{per_req('proxy_user_s'):.1f}"
            system = "" if cpu is None else f"{per_req('proxy_sys_s'):.1f}"
            lines.append(f"| {workload} | {t} | {rps:,.0f} | {median([r['p50_us'] for r in rs]):,.0f} | "
                         f"{median([r['p99_us'] for r in rs]):,.0f} | {median([r['p999_us'] for r in rs]):,.0f} | "
                         f"{'' if cpu is None else f'{cpu * 1e6:.1f}'} | {user} | {system} | "
                         f"{per_req('origin_cpu_s'):.1f} | {ratio} | {eff} |")
    lines += ["", "Latency with one connection (GET 1 KiB, no queueing):", "",
              "| target | p50 µs | p99 µs | added p50 over direct µs |", "|---|---:|---:|---:|"]
    direct_p50 = median([r["p50_us"] for r in results["latency"]["direct"]])
    for t in TARGETS:
        rs = results["latency"][t]
        p50 = median([r["p50_us"] for r in rs])
        lines.append(f"| {t} | {p50:.0f} | {median([r['p99_us'] for r in rs]):.0f} | "
                     f"{'' if t == 'direct' else f'{p50 - direct_p50:.0f}'} |")
    lines += ["", "Context switches per request (`/proc/PID/task/*/status`, during the runs above): how "
              "often the proxy was preempted (involuntary switches: on the shared CPU, mostly by the "
              "backend its request woke — see BENCHMARKS.md, \"The shared CPU\"), and how often the "
              "backend went to sleep (so the requests it served per wake-up):", "",
              "| workload | target | proxy preempted /req | backend sleeps /req | requests per backend wake-up |",
              "|---|---|---:|---:|---:|"]
    for workload, per_target in results["small"].items():
        for t in TARGETS:
            rs = per_target[t]
            pre = median([r["proxy_preempted"] / r["requests"] for r in rs])
            sleeps = median([r["origin_sleeps"] / r["requests"] for r in rs])
            lines.append(f"| {workload} | {t} | {'' if t == 'direct' else f'{pre:.2f}'} | {sleeps:.2f} | "
                         f"{'' if not sleeps else f'{1 / sleeps:.1f}'} |")
    if results.get("syscalls"):
        lines += ["", "Syscalls per request of the proxy (`perf stat -e 'syscalls:sys_enter_*'`, a run of "
                  "its own):", "", "| workload | target | syscalls/req | the main ones |", "|---|---|---:|---|"]
        for workload, per_target in results["syscalls"].items():
            for t, per in per_target.items():
                main = ", ".join(f"{name} {n:.2f}" for name, n in
                                 sorted(per.items(), key=lambda kv: -kv[1]) if n >= 0.05)
                lines.append(f"| {workload} | {t} | {sum(per.values()):.2f} | {main} |")
    if not results["large"]:
        return "\n".join(lines) + "\n"
    lines += ["", f"Large objects ({args.large}, curl):", "",
              "| op | target | MiB/s | proxy CPU s/GiB | gateway ÷ this |", "|---|---|---:|---:|---:|"]
    for method, per_target in results["large"].items():
        gw = median([r["mib_s"] for r in per_target["gateway"]])
        for t in TARGETS:
            rs = per_target[t]
            mib = median([r["mib_s"] for r in rs])
            cpu = median([r["proxy_cpu_s"] / (r["bytes"] / 2**30) for r in rs])
            lines.append(f"| {method} | {t} | {mib:,.0f} | {'' if t == 'direct' else f'{cpu:.2f}'} | "
                         f"{'' if t == 'gateway' else f'{gw / mib:.2f}'} |")
    m = results["memory"]
    lines += ["", "Gateway memory:", "", "| situation | RSS MiB |", "|---|---:|",
              f"| idle, after the runs above | {m['baseline_kib'] / 1024:.1f} |"]
    for k, v in m.items():
        if isinstance(v, dict) and "peak_kib" in v:
            lines.append(f"| peak while streaming {k} ({v['mib_s']:.0f} MiB/s) | {v['peak_kib'] / 1024:.1f} |")
    idle = m["idle"]
    lines.append(f"| {idle['connections']:,} idle keep-alive connections ({idle['alive']:,} still open) | "
                 f"{idle['after_kib'] / 1024:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
