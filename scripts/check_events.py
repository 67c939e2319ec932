#!/usr/bin/env python3
"""Sends every file in events/ through the real Lambda runtime (`cargo lambda invoke` against a running
`cargo lambda watch`) and checks each response. Prints one line per check and 'N passed, N failed'."""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent


def invoke(function, event, port):
    out = subprocess.run(
        ["cargo", "lambda", "invoke", function, "--data-file", str(event), "-A", "127.0.0.1", "-P", str(port)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    if out.returncode != 0:
        raise AssertionError(f"invoke failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout)


def http_body(resp):
    assert resp.get("isBase64Encoded") in (False, None), "JSON bodies are sent as text"
    return json.loads(resp["body"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key-file", required=True)
    args = ap.parse_args()
    key = pathlib.Path(args.key_file).read_text().strip()
    events = ROOT / "events"
    results = []

    def check(name, fn):
        try:
            fn()
            results.append(True)
            print(f"PASS {name}")
        except Exception as e:  # noqa: BLE001 - report every failure, keep going
            results.append(False)
            print(f"FAIL {name}: {e}")

    def get_call_ok():
        r = invoke("get-call", events / "get-call.json", args.port)
        assert r["statusCode"] == 200, r
        b = http_body(r)
        assert b["success"] is True and b["data"]["id"] == "call_123", b
        assert b["data"]["messagesCount"] == 6 and len(b["data"]["messages"]) == 6
        assert b["data"]["recordingUrl"].startswith("http://127.0.0.1:"), b["data"]["recordingUrl"]

    def error_case(file, status, code, field=None):
        def run():
            r = invoke("get-call", events / file, args.port)
            assert r["statusCode"] == status, r
            b = http_body(r)
            assert b["success"] is False and b["error"]["code"] == code, b
            assert b["error"]["requestId"], b
            if field:
                assert b["error"]["details"]["field"] == field, b
        return run

    def authorizer_unknown_key():
        r = invoke("authorizer", events / "authorizer.json", args.port)
        assert r["isAuthorized"] is True and "tenantId" not in r.get("context", {}), r

    def authorizer_demo_key():
        ev = json.loads((events / "authorizer.json").read_text())
        ev["headers"]["authorization"] = f"Bearer {key}"
        ev["identitySource"] = [f"Bearer {key}"]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(ev, f)
        r = invoke("authorizer", f.name, args.port)
        assert r["context"]["tenantId"] == "acme", r

    def router_with_key():
        url = f"http://127.0.0.1:{args.port}/api/v1/calls/call_123"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            body = json.load(resp)
            assert resp.status == 200 and body["data"]["id"] == "call_123", body

    def router_without_key():
        url = f"http://127.0.0.1:{args.port}/api/v1/calls/call_123"
        try:
            urllib.request.urlopen(url, timeout=120)
            raise AssertionError("expected 401")
        except urllib.error.HTTPError as e:
            assert e.code == 401 and json.load(e)["error"]["code"] == "UNAUTHORIZED"

    def get_recording_ok():
        r = invoke("get-recording", events / "get-recording.json", args.port)
        assert r["statusCode"] == 200, r
        b = http_body(r)
        assert b["data"]["url"].startswith("http://127.0.0.1:") and b["data"]["expiresAt"], b

    def expiry(file, **want):
        def run():
            r = invoke("recording-expiry", events / file, args.port)
            for k, v in want.items():
                if callable(v):
                    assert v(r[k]), f"{k}={r[k]} in {r}"
                else:
                    assert r[k] == v, f"{k}={r[k]} in {r}"
        return run

    def router_recording_redirect():
        url = f"http://127.0.0.1:{args.port}/api/v1/calls/call_123/recording"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None

        try:
            urllib.request.build_opener(NoRedirect).open(req, timeout=120)
            raise AssertionError("expected a redirect")
        except urllib.error.HTTPError as e:
            assert e.code == 302 and e.headers["Location"].startswith("http://127.0.0.1:"), (e.code, dict(e.headers))

    check("events/get-call.json -> 200 with seed 000's call", get_call_ok)
    check("events/get-recording.json -> 200 {url, expiresAt}", get_recording_ok)
    check("HTTP GET .../recording through the router -> 302 to a fresh link", router_recording_redirect)
    # The demo has one recording past retention (call_old_recording): a dry run sees it, the scheduled run
    # removes it, the next run finds nothing.
    check("events/recording-expiry-dry-run.json -> found, nothing changed",
          expiry("recording-expiry-dry-run.json", dryRun=True, found=lambda n: n >= 1, deleted=0, marked=0))
    check("events/recording-expiry.json -> expired and marked",
          expiry("recording-expiry.json", found=lambda n: n >= 1, marked=lambda n: n >= 1, failed=0, complete=True))
    check("events/recording-expiry.json again -> nothing left", expiry("recording-expiry.json", found=0, complete=True))
    check("events/get-call-other-tenant.json -> 404 NOT_FOUND", error_case("get-call-other-tenant.json", 404, "NOT_FOUND"))
    check("events/get-call-bad-id.json -> 400 INVALID_PARAMETER callId", error_case("get-call-bad-id.json", 400, "INVALID_PARAMETER", "callId"))
    check("events/get-call-no-tenant.json -> 401 UNAUTHORIZED", error_case("get-call-no-tenant.json", 401, "UNAUTHORIZED"))
    check("events/authorizer.json (unknown key) -> no tenant", authorizer_unknown_key)
    check("events/authorizer.json with the demo key -> tenant acme", authorizer_demo_key)
    check("HTTP GET through the router with the demo key -> 200", router_with_key)
    check("HTTP GET through the router without a key -> 401", router_without_key)
    passed = sum(results)
    print(f"events: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
