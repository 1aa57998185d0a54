#!/usr/bin/env python3
"""Compares two s3-tests runs (JUnit XML): directly against radosgw and through the gateway.

Prints how many passed and failed each way and every difference. Exit status 1 when
- a test that passed directly failed through the gateway and is not an expected difference
  (after the optional recheck run), or
- an expected difference passed through the gateway (the list must shrink when the gateway
  gets closer to S3: a stale entry hides nothing, but it claims a difference that is gone).
Expected differences are tests/conformance/expected-differences.toml: groups, each with the HCP
rule that justifies it and the tests ("Class::test") it covers.
"""
import argparse
import sys
import tomllib
import xml.etree.ElementTree as ET

RANK = {"passed": 0, "skipped": 1, "xfailed": 1, "failed": 2}


def load(path):
    """{"Class::test": (outcome, message)}; a test reported twice (a teardown error after a
    pass) keeps its worse outcome."""
    results = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f'{case.get("classname", "").rsplit(".", 1)[-1]}::{case.get("name")}'
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
                message = (child.get("message") or "").splitlines()[0][:160] if child.get("message") else ""
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "xfailed" if "xfail" in (child.get("type") or "") else "skipped"
        if name not in results or RANK[outcome] > RANK[results[name][0]]:
            results[name] = (outcome, message)
    return results


def load_expected(path):
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    expected = {}
    for group in doc["difference"]:
        for required in ("reason", "rule", "tests"):
            if required not in group:
                sys.exit(f"{path}: a [[difference]] lacks {required!r}")
        for test in group["tests"]:
            if test in expected:
                sys.exit(f"{path}: {test} is listed twice")
            expected[test] = group
    return expected


def counts(results):
    c = {"passed": 0, "failed": 0, "skipped": 0, "xfailed": 0}
    for outcome, _ in results.values():
        c[outcome] += 1
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--direct", required=True)
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--expected", required=True)
    ap.add_argument("--recheck", help="JUnit XML of a second gateway run of the unexpected failures")
    ap.add_argument("--unexpected", help="write the names of unexpected failures here (one per line)")
    ap.add_argument("--markdown", help="write the report here as well")
    ap.add_argument("--labels", default="directly,through the gateway",
                    help="what the two runs are, comma-separated (the store comparison names them)")
    args = ap.parse_args()

    direct, gateway = load(args.direct), load(args.gateway)
    expected = load_expected(args.expected)
    recheck = load(args.recheck) if args.recheck else {}

    only_direct = sorted(t for t, (o, _) in direct.items() if o == "passed" and gateway.get(t, ("missing",))[0] != "passed")
    only_gateway = sorted(t for t, (o, _) in gateway.items() if o == "passed" and direct.get(t, ("missing",))[0] != "passed")
    unexpected = [t for t in only_direct if t not in expected]
    flaky = [t for t in unexpected if recheck.get(t, ("missing",))[0] == "passed"]
    unexpected = [t for t in unexpected if t not in flaky]
    stale = sorted(t for t in expected if gateway.get(t, ("missing",))[0] == "passed")
    unknown = sorted(t for t in expected if t not in direct and t not in gateway)
    not_passing_directly = sorted(t for t in expected if t in direct and direct[t][0] != "passed")

    first, second = args.labels.split(",", 1)
    lines = [f"# s3-tests: {first} and {second}", ""]
    lines.append("| run | passed | failed | skipped | xfailed |")
    lines.append("|---|---:|---:|---:|---:|")
    for label, results in ((first, direct), (second, gateway)):
        c = counts(results)
        lines.append(f"| {label} | {c['passed']} | {c['failed']} | {c['skipped']} | {c['xfailed']} |")
    lines.append("")
    lines.append(f"Passed {first}, not {second}: {len(only_direct)} "
                 f"({len(only_direct) - len(unexpected) - len(flaky)} expected differences, "
                 f"{len(flaky)} passed on recheck, {len(unexpected)} unexpected).")
    lines.append(f"Passed {second}, not {first}: {len(only_gateway)}.")
    lines.append("")

    def section(title, tests, note=None):
        if not tests:
            return
        lines.append(f"## {title} ({len(tests)})")
        lines.append("")
        for t in tests:
            extra = note(t) if note else ""
            lines.append(f"- `{t}`{extra}")
        lines.append("")

    section("UNEXPECTED: passed directly, failed through the gateway", unexpected,
            lambda t: f" — {gateway.get(t, ('missing', ''))[1]}")
    section("STALE: listed as expected differences but passed through the gateway", stale)
    section("Listed tests that no run reported (renamed or removed?)", unknown)
    section("Passed only on recheck (flaky under load)", flaky)
    section("Passed through the gateway only", only_gateway)
    seen = [t for t in only_direct if t in expected]
    gaps = [t for t in seen if expected[t].get("kind") == "gap"]
    lines.append(f"Expected differences seen: {len(seen)}, of which {len(gaps)} are limits of the gateway "
                 "rather than HCP's behaviour (kind = \"gap\").")
    lines.append("")
    section("Expected differences seen in this run", seen,
            lambda t: f" — {'GAP, not HCP: ' if t in gaps else ''}{expected[t]['rule']}")
    section("Listed, but failing directly too in this run (not a difference this time)", not_passing_directly)

    report = "\n".join(lines)
    print(report)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report + "\n")
    if args.unexpected:
        with open(args.unexpected, "w") as f:
            f.write("".join(t.split("::")[1] + "\n" for t in unexpected))
    return 1 if unexpected or stale or unknown else 0


if __name__ == "__main__":
    sys.exit(main())
