"""What the client scripts share: named checks that print `ok NAME` or `FAIL NAME: reason`
(the Rust tests count them), and an exit status of 1 if any failed."""
import sys


def run_checks(checks):
    failures = 0
    for name, fn in checks:
        try:
            fn()
            print(f"ok {name}")
        except Exception as e:  # noqa: BLE001 - report every failure the same way
            failures += 1
            print(f"FAIL {name}: {e!r}")
    sys.exit(1 if failures else 0)
