#!/usr/bin/env python3
"""A small load on a running local API, and who answered each request.

  load.py --url http://127.0.0.1:9000 --key-file .tools/demo-key [--requests 10000] [--concurrency 8]

Workers on keep-alive connections cycle through reads of the demo data: one call, a list page, a filtered
list, a recording link, a call of the other tenant (404), a bad parameter (400) and a request without a key
(401). Each answer is sorted by its source:
  function  the API's own envelope (a JSON body with "success"), whatever the status;
  gateway   anything else with a status: the gateway's or emulator's own error (API Gateway's
            {"message": ...}, cargo-lambda's {"type": "https://httpstatuses.com/500", ...}, an HTML page);
  client    no answer: a refused or dropped connection, a timeout.
First each kind of request once, in turn, with a long timeout (a local stack may start or even build a
function on its first invocation); those answers must come from the function too but are not timed.
Prints requests, concurrency, seconds, requests per second, latency p50/p99, answers by status and by
source, and exits 1 when any answer did not come from the function (or a function answer has a status
its request should not get).
"""
import argparse
import collections
import http.client
import json
import pathlib
import sys
import threading
import time
import urllib.parse

# (path, key?, expected status)
REQUESTS = [
    ("/api/v1/calls/call_123", True, 200),
    ("/api/v1/calls?limit=5", True, 200),
    ("/api/v1/calls?status=completed,failed&limit=3", True, 200),
    ("/api/v1/calls/call_123/recording?format=json", True, 200),
    ("/api/v1/calls/call_globex_1", True, 404),
    ("/api/v1/calls?limit=0", True, 400),
    ("/api/v1/calls/call_123", False, 401),
]


def from_function(body):
    """Whether a response body is the API's own envelope (a JSON object with "success")."""
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and "success" in answer


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--key-file", required=True)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    key = pathlib.Path(args.key_file).read_text().strip()
    url = urllib.parse.urlsplit(args.url)
    counter = iter(range(args.requests))
    lock = threading.Lock()
    statuses = collections.Counter()
    sources = collections.Counter()
    unexpected = collections.Counter()
    samples = collections.defaultdict(list)
    latencies = []

    def worker():
        conn = None
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            path, with_key, want = REQUESTS[n % len(REQUESTS)]
            headers = {"authorization": f"Bearer {key}"} if with_key else {}
            started = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=args.timeout)
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                status = resp.status
                if resp.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as e:
                if conn is not None:
                    conn.close()
                conn = None
                with lock:
                    sources["client"] += 1
                    statuses["none"] += 1
                    samples["client"].append(f"{path}: {e!r}")
                continue
            elapsed = time.perf_counter() - started
            source = "function" if from_function(body) else "gateway"
            with lock:
                latencies.append(elapsed)
                statuses[status] += 1
                sources[source] += 1
                if source != "function":
                    samples[source].append(f"{path}: {status} {body[:160]!r}")
                elif status != want:
                    unexpected[f"{path} -> {status} (want {want})"] += 1

    warm_started = time.perf_counter()
    for path, with_key, want in REQUESTS:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=max(args.timeout, 900))
        conn.request("GET", path, headers={"authorization": f"Bearer {key}"} if with_key else {})
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        if not from_function(body) or resp.status != want:
            print(f"warm-up: {path} -> {resp.status} {body[:200]!r} (want {want} from the function)")
            return 1
    print(f"warm-up: {len(REQUESTS)} requests, one of each kind, {time.perf_counter() - warm_started:.1f} s")

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    latencies.sort()
    print(f"requests {args.requests}, concurrency {args.concurrency}, {seconds:.1f} s, "
          f"{args.requests / seconds:.0f} requests/s, p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms")
    print("by status: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items(), key=str)))
    print("by source: " + ", ".join(f"{k} {sources[k]}" for k in ("function", "gateway", "client")))
    for source, lines in samples.items():
        for line in lines[:5]:
            print(f"  {source}: {line}")
    for line, count in unexpected.items():
        print(f"  unexpected: {line} x{count}")
    bad = sources["gateway"] + sources["client"] + sum(unexpected.values())
    print(f"load: {args.requests - bad} of {args.requests} answered by the function as expected")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
