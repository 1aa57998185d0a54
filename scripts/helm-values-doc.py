#!/usr/bin/env python3
"""The values table of helm/hcp-s3-gateway/README.md, generated from the `# --` comments in
values.yaml, so that the two cannot drift apart.

    scripts/helm-values-doc.py --write   # rewrite the table in the chart's README
    scripts/helm-values-doc.py --check   # exit 1 if the README's table is out of date
"""
import json
import pathlib
import re
import sys

import yaml

chart = pathlib.Path(__file__).resolve().parent.parent / "helm" / "hcp-s3-gateway"
START, END = "<!-- values:start -->", "<!-- values:end -->"


def rows():
    lines = (chart / "values.yaml").read_text().splitlines()
    values = yaml.safe_load("\n".join(lines))
    stack, comment, out = [], [], []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = [stripped[4:].strip()]
            continue
        if stripped.startswith("#") and comment:
            comment.append(stripped.lstrip("#").strip())
            continue
        m = re.match(r"^( *)([A-Za-z0-9_]+):(.*)$", line)
        if not m:
            if stripped and not line.startswith(" "):
                comment = []
            continue
        indent, key = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        if comment:
            path = [k for _, k in stack]
            value = values
            for k in path:
                value = value[k]
            shown = "see values.yaml" if isinstance(value, str) and "\n" in value else json.dumps(value)
            out.append(f"| `{'.'.join(path)}` | `{shown}` | {' '.join(comment)} |")
        comment = []
    return out


def table():
    return "\n".join([START, "| key | default | meaning |", "|---|---|---|", *rows(), END])


def main():
    readme = chart / "README.md"
    text = readme.read_text()
    start, end = text.index(START), text.index(END) + len(END)
    current, wanted = text[start:end], table()
    if sys.argv[1:] == ["--write"]:
        readme.write_text(text[:start] + wanted + text[end:])
    elif current != wanted:
        print(f"{readme}: the values table is out of date; run scripts/helm-values-doc.py --write", file=sys.stderr)
        sys.exit(1)


main()
