#!/usr/bin/env python3
"""Counts the function invocations each API request takes in the dev stack (scripts/gateway.py in front of
`cargo lambda watch`, the routes of template.yaml): one for a request with a valid key, and one for a request
without one (the handler's key check answers the 401; no other function runs). Sends its own requests, then
reads every line of the gateway's invocation log, the load's before them included.

  check_invocations.py --url http://127.0.0.1:PORT --key-file KEY --log TOOLS/gateway-PORT.invocations

Prints one line per check and 'invocations: N passed, N failed'.
"""
import argparse
import json
import pathlib
import sys
import urllib.error
import urllib.request


def send(url, key=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=120) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--key-file", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    key = pathlib.Path(args.key_file).read_text().strip()
    log = pathlib.Path(args.log)
    before = len(log.read_text().splitlines())
    # A well-formed key that was never made: its record is looked for and not found.
    unknown = "crk_000000000000_" + "A" * 43
    asks = [
        ("GET a call with the demo key", f"{args.url}/api/v1/calls/call_123", key, 200),
        ("GET a page with the demo key", f"{args.url}/api/v1/calls?limit=2", key, 200),
        ("GET a missing call with the demo key", f"{args.url}/api/v1/calls/call_none", key, 404),
        ("GET a call without a key", f"{args.url}/api/v1/calls/call_123", None, 401),
        ("GET a page with an unknown key", f"{args.url}/api/v1/calls", unknown, 401),
        ("GET a call with a malformed key", f"{args.url}/api/v1/calls/call_123", "hello", 401),
    ]
    results = []
    statuses = [send(url, k) for _, url, k, _ in asks]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    mine = lines[before:]
    for (name, _, _, want), got, logged in zip(asks, statuses, mine + [None] * len(asks)):
        ok = got == want and logged is not None and logged["status"] == want and logged["invocations"] == 1
        took = logged["invocations"] if logged else "none logged"
        print(f"{'PASS' if ok else 'FAIL'} {name} -> {got} (want {want}), invocations {took}")
        results.append(ok)
    ok = len(mine) == len(asks)
    print(f"{'PASS' if ok else 'FAIL'} one log line per request sent: {len(mine)} for {len(asks)}")
    results.append(ok)
    counts = {}
    for line in lines:
        counts[line["invocations"]] = counts.get(line["invocations"], 0) + 1
    ok = bool(lines) and set(counts) == {1}
    by_status = {}
    for line in lines:
        by_status[line["status"]] = by_status.get(line["status"], 0) + 1
    print(f"{'PASS' if ok else 'FAIL'} every request through the dev stack: {len(lines)} requests, "
          f"invocations per request {dict(sorted(counts.items()))}, statuses {dict(sorted(by_status.items()))}")
    results.append(ok)
    passed = sum(results)
    print(f"invocations: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
