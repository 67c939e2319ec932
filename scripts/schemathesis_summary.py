#!/usr/bin/env python3
"""Reads schemathesis' JSON report and prints one line: cases generated, cases with failures, errors.
Fails when any case failed or errored, or when fewer cases than --min-cases were generated."""
import argparse
import json
import sys

ap = argparse.ArgumentParser()
ap.add_argument("report")
ap.add_argument("--min-cases", type=int, default=2000)
args = ap.parse_args()
r = json.load(open(args.report))
cases = r["test_cases"]
failures = [f"{f['code']} {f['title']} x{f['count']} ({', '.join(f['operations'])})" for f in r["failures"]]
print(f"schemathesis: {cases['generated']} cases generated, {cases['with_failures']} with failures, "
      f"{cases['errored']} errored; failures: {'; '.join(failures) or 'none'}")
ok = cases["generated"] >= args.min_cases and cases["with_failures"] == 0 and cases["errored"] == 0 and not r["errors"]
if cases["generated"] < args.min_cases:
    print(f"schemathesis: fewer than {args.min_cases} cases")
sys.exit(0 if ok else 1)
