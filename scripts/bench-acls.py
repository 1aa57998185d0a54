#!/usr/bin/env python3
"""What HCP's ACLs cost a GET (BENCHMARKS.md, "ACLs"): one run, interleaved rounds, ratios.

Two gateways on the embedded store, the same binary and settings but one line: `plain` keeps no
records; `acls` keeps them (records_bucket, anonymous_acls) and its object carries a grant to a
user by name. The same GET 1 KiB (presigned, wrk on CPU 1, the gateway on CPU 0) is measured:

- `plain`, by a user whose permissions allow it;
- `acls`, by the same user: HCP's rule is "permissions or an ACL", so this must cost nothing more;
- `acls, by ACL`, by a user whose permissions do not allow it and an ACL does (the bucket's ACL
  and the object's are read once, then cached for 10 s): the price of the other path.

And a ListObjects (V1) of a bucket of 100 objects on each: `acls` names each object's own owner
(stored in the object, read by a HEAD per entry and remembered for 5 minutes; the objects were
written through it, so it knows them): the price of objects' owners in a listing.

Run through scripts/bench-acls.sh (it builds the release binary). Standard library and boto3.
"""

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the shared helpers: presign, wrk, /proc accounting)

READER, READER_PASSWORD = "acl-reader", "acl-reader-password"

CONF = """
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

[[users]]
username = "{reader}"
password = "{reader_password}"
permissions = [{{ tenant = "*", buckets = "reader-*", allow = ["all"] }}]

[[tenants]]
name = "bench"
backend = "store"
{records}

[[backends]]
name = "store"
kind = "local"
data_dir = "{data}"
"""


def hcp_keys(user, password):
    import base64
    import hashlib
    return base64.b64encode(user.encode()).decode(), hashlib.md5(password.encode()).hexdigest()


def start(work, name, records):
    port, admin = bench.free_port(), bench.free_port()
    data = os.path.join(work, f"data-{name}")
    cfg = os.path.join(work, f"{name}.toml")
    with open(cfg, "w") as f:
        f.write(CONF.format(port=port, admin=admin, data=data, records=records,
                            reader=READER, reader_password=READER_PASSWORD))
    env = dict(os.environ, MALLOC_ARENA_MAX="2")
    proc = subprocess.Popen(["taskset", "-c", bench.SERVER_CPU, f"{bench.RELEASE}/hcp-s3-gateway",
                             "--config", cfg], env=env)
    bench.wait_port(port, proc)
    return proc, port


def client(port, user, password):
    import boto3
    from botocore.config import Config
    ak, sk = hcp_keys(user, password)
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=ak,
                        aws_secret_access_key=sk, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


def url_for(port, user, password):
    """A presigned GET of the 1 KiB object, signed as `user`."""
    saved = bench.ACCESS_KEY, bench.SECRET_KEY
    bench.ACCESS_KEY, bench.SECRET_KEY = hcp_keys(user, password)
    try:
        return f"http://127.0.0.1:{port}{bench.presign('GET', port, 'obj-1k')}"
    finally:
        bench.ACCESS_KEY, bench.SECRET_KEY = saved


LISTED = "bench-listed"


def list_url(port):
    """A presigned ListObjects (V1) of the bucket of 100 objects, signed as the bench user."""
    return f"http://127.0.0.1:{port}{bench.presign('GET', port, None, bucket=LISTED)}"


def measure(work, proc, url, connections, seconds, label):
    c0 = bench.cpu_seconds(proc.pid)
    r = bench.run_wrk(work, "GET", "1k", url, connections, seconds, label)
    cpu = bench.cpu_seconds(proc.pid) - c0
    if r["non2xx"] or r["errors"]:
        raise RuntimeError(f"{label}: {r['non2xx']} non-2xx answers, {r['errors']} socket errors")
    return {"rps": r["requests"] / r["seconds"], "cpu_us": cpu / r["requests"] * 1e6,
            "p50_us": r["p50_us"], "p99_us": r["p99_us"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians are reported)")
    ap.add_argument("--seconds", type=int, default=5, help="wrk duration per measurement")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--no-listings", action="store_true", help="GETs only (no ListObjects rows)")
    ap.add_argument("--out", default=os.path.join(bench.ROOT, "target", "bench-acls"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hcp-bench-acls-", dir="/dev/shm")
    records = 'records_bucket = "gw.records"\nanonymous_acls = true'
    procs = {}
    try:
        procs["plain"], plain_port = start(work, "plain", "")
        procs["acls"], acls_port = start(work, "acls", records)
        for port in (plain_port, acls_port):
            s3 = client(port, "bench-user", "bench-password")
            s3.create_bucket(Bucket=bench.BUCKET)
            s3.put_object(Bucket=bench.BUCKET, Key="obj-1k", Body=b"b" * 1024)
            s3.create_bucket(Bucket=LISTED)
            for i in range(100):
                s3.put_object(Bucket=LISTED, Key=f"listed/obj-{i:03}", Body=b"l" * 16)
        # The object on the gateway that keeps ACLs grants the reader read, by user name (the
        # backend's own ACL is then private, as the other's is made: the same store state).
        client(acls_port, "bench-user", "bench-password").put_object_acl(
            Bucket=bench.BUCKET, Key="obj-1k", GrantRead=f'emailAddress="{READER}"')
        client(plain_port, "bench-user", "bench-password").put_object_acl(
            Bucket=bench.BUCKET, Key="obj-1k", ACL="private")
        targets = {
            "plain": (procs["plain"], url_for(plain_port, "bench-user", "bench-password")),
            "acls": (procs["acls"], url_for(acls_port, "bench-user", "bench-password")),
            "acls, by ACL": (procs["acls"], url_for(acls_port, READER, READER_PASSWORD)),
        }
        if not args.no_listings:
            targets["plain, ListObjects 100"] = (procs["plain"], list_url(plain_port))
            targets["acls, ListObjects 100"] = (procs["acls"], list_url(acls_port))
        results = {name: [] for name in targets}
        for i in range(args.rounds):
            order = bench.rotate(list(targets), i)
            for name in order:
                proc, url = targets[name]
                results[name].append(measure(work, proc, url, args.connections, args.seconds, name))
                print(f"round {i + 1} {name}: {results[name][-1]['rps']:.0f} req/s, "
                      f"{results[name][-1]['cpu_us']:.1f} CPU us/req", file=sys.stderr)
        report = render(results, args)
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "report.md"), "w") as f:
            f.write(report)
        print(report)
    finally:
        for p in procs.values():
            p.terminate()
            p.wait(10)
        subprocess.run(["rm", "-rf", work], check=False)


def render(results, args):
    med = {name: {k: bench.median([r[k] for r in rs]) for k in rs[0]} for name, rs in results.items()}
    lines = [
        f"GET 1 KiB and ListObjects of 100 keys, {args.connections} connections, {args.rounds} "
        f"interleaved rounds of {args.seconds} s, medians (gateway on CPU 0, wrk on CPU 1; the "
        "embedded store runs inside the gateway's process, so its CPU is counted too); each "
        "row against `plain` doing the same",
        "",
        "| gateway, caller | req/s | ÷ plain | CPU µs/req | ÷ plain | p50 µs | p99 µs |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in med.items():
        base = med["plain, ListObjects 100"] if "ListObjects" in name else med["plain"]
        lines.append(f"| {name} | {m['rps']:.0f} | {m['rps'] / base['rps']:.3f} | {m['cpu_us']:.1f} | "
                     f"{m['cpu_us'] / base['cpu_us']:.3f} | {m['p50_us']:.0f} | {m['p99_us']:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
