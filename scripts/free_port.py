#!/usr/bin/env python3
"""Prints a free loopback TCP port for a test server that is told its port (radosgw, moto, a
gateway started by a script): one below the kernel's ephemeral range, so that no outgoing
connection can take it between this check and the server's bind, as a port the kernel handed
out for `bind(0)` could be. With N, prints N distinct ports."""
import random
import socket
import sys


def ephemeral_start():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n=1):
    high = ephemeral_start()
    low = max(1024, min(20000, high - 4096))
    # A kernel whose ephemeral range starts low leaves nothing below it: take any port then.
    candidates = range(low, high) if high - low >= 256 else range(1024, 65536)
    chosen = []
    for port in random.sample(candidates, len(candidates)):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        chosen.append(port)
        if len(chosen) == n:
            return chosen
    sys.exit("free_port.py: no free port below the ephemeral range")


if __name__ == "__main__":
    print(*free_ports(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
