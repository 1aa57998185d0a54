#!/usr/bin/env python3
"""Extracts the status tables of Hitachi's S3 manual for HCP 9.x: one line per row,
`section<TAB>status<TAB>conditions`, in the manual's order (tests/manual/status_rows.tsv).

    scripts/manual_status_rows.py [MANUAL] > tests/manual/status_rows.tsv

tests/status_rows.rs checks that every row is either provoked by a test or listed with the
reason it cannot be, and (where the manual is present) that this file is the manual's.
"""
import re
import sys

manual = sys.argv[1] if len(sys.argv) > 1 else "../shared/reference/hcp-manual/hcp-s3-api.md"
lines = open(manual, encoding="utf-8").read().split("\n")
section = None
for i, line in enumerate(lines):
    if line.startswith("### "):
        section = line.strip("#\\ ").strip()
    if not line.startswith("| Code | Meaning"):
        continue
    j = i + 2
    while j < len(lines) and lines[j].startswith("|"):
        cells = [c.strip() for c in lines[j].strip().rstrip("\\").strip().strip("|").split("|")]
        j += 1
        if not cells[0].isdigit():
            continue
        text = re.sub(r"<br>\s*", " ", cells[2] if len(cells) > 2 else "")
        text = re.sub(r"\s+", " ", text.replace("\\", "")).strip()
        print(f"{section}\t{cells[0]}\t{text}")
