#!/usr/bin/env python3
"""Start moto_server on loopback with signature checking on, for the test suite.

    moto.py start DIR  -> writes DIR/env with MOTO_ENDPOINT and a user's keys
    moto.py stop DIR

moto checks signatures only after INITIAL_NO_AUTH_ACTION_COUNT unauthenticated calls; those calls
create an IAM user with an allow-all policy and an access key, whose keys the tests then use.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import boto3


def free_port():
    """A free port below the ephemeral range (free_port.py says why)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from free_port import free_ports

    return free_ports()[0]


def start(d):
    os.makedirs(d, exist_ok=True)
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    log = open(os.path.join(d, "moto.log"), "wb")
    proc = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    with open(os.path.join(d, "moto.pid"), "w") as f:
        f.write(str(proc.pid))
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
            break
        except Exception:
            if time.time() > deadline or proc.poll() is not None:
                sys.exit("moto.py: moto_server did not start")
            time.sleep(0.25)
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
    iam.create_user(UserName="gateway")
    iam.put_user_policy(UserName="gateway", PolicyName="all", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }))
    key = iam.create_access_key(UserName="gateway")["AccessKey"]
    with open(os.path.join(d, "env"), "w") as f:
        f.write(f"export MOTO_ENDPOINT={endpoint}\n")
        f.write(f"export MOTO_ACCESS_KEY={key['AccessKeyId']}\n")
        f.write(f"export MOTO_SECRET_KEY={key['SecretAccessKey']}\n")
    print(f"moto.py: moto_server ready on 127.0.0.1:{port} (signatures checked)")


def stop(d):
    try:
        pid = int(open(os.path.join(d, "moto.pid")).read())
        os.killpg(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: moto.py start|stop DIR")
    (start if sys.argv[1] == "start" else stop)(sys.argv[2])
