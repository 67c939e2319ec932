#!/usr/bin/env python3
"""Sends every file in events/ through the real Lambda runtime (`cargo lambda invoke` against a running
`cargo lambda watch`) and checks each response. Prints one line per check and 'N passed, N failed'."""
import argparse
import datetime
import json
import pathlib
import subprocess
import sys
import tempfile
import urllib.parse
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

    def list_page(file, drop=(), **replace):
        """Invokes list-calls with events/FILE, its query changed: `drop` names removed, `replace` set."""
        ev = json.loads((events / file).read_text())
        query = {k: v for k, v in ev.get("queryStringParameters", {}).items() if k not in drop}
        query.update(replace)
        ev["queryStringParameters"] = query
        ev["rawQueryString"] = urllib.parse.urlencode(query)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(ev, f)
        r = invoke("list-calls", f.name, args.port)
        return r["statusCode"], http_body(r)

    def list_calls_ok():
        status, b = list_page("list-calls.json")
        assert status == 200 and b["success"] is True, b
        ids = [c["id"] for c in b["data"]]
        assert len(ids) == 15 and b["pagination"] == {"limit": 15, "hasMore": True, "nextCursor": b["pagination"]["nextCursor"]}, b["pagination"]
        assert all(not i.startswith("call_globex") for i in ids), ids
        times = [datetime.datetime.fromisoformat(c["startTime"] or c["createdAt"]) for c in b["data"]]
        assert times == sorted(times, reverse=True), times
        assert all("messages" not in c and "recordingUrl" not in c for c in b["data"])

    def list_calls_filtered():
        status, b = list_page("list-calls-filtered.json")
        assert status == 200, b
        assert b["data"], "the demo has completed and failed outbound calls"
        for c in b["data"]:
            assert c["status"] in ("completed", "failed") and c["direction"] == "outbound", c
        assert b["pagination"]["total"] >= len(b["data"]), b["pagination"]

    def list_calls_second_page():
        # The file's cursor is a placeholder: cursors are signed with the running stack's own secret, so the
        # first page is fetched with the same query and its cursor put in.
        status, page1 = list_page("list-calls-second-page.json", drop=("cursor",))
        assert status == 200 and page1["pagination"]["hasMore"], page1
        status, page2 = list_page("list-calls-second-page.json", cursor=page1["pagination"]["nextCursor"])
        assert status == 200, page2
        one = [c["id"] for c in page1["data"]]
        two = [c["id"] for c in page2["data"]]
        assert len(one) == 5 and len(two) == 5 and not set(one) & set(two), (one, two)
        assert page2["pagination"]["nextCursor"] != page1["pagination"]["nextCursor"]

    def list_error(file, code, field):
        def run():
            status, b = list_page(file)
            assert status == 400 and b["error"]["code"] == code, b
            assert b["error"]["details"]["field"] == field, b
        return run

    def router_list():
        url = f"http://127.0.0.1:{args.port}/api/v1/calls?limit=10&phoneNumber=%2B14155550123&status=completed,failed"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            body = json.load(resp)
            assert resp.status == 200 and body["success"] is True, body
            # The demo's repeat customer: one inbound and one outbound call, stored in E.164.
            assert sorted(c["id"] for c in body["data"]) == ["call_completed_1", "call_completed_2"], body

    check("events/get-call.json -> 200 with seed 000's call", get_call_ok)
    check("events/list-calls.json -> 200, 15 newest calls of acme only", list_calls_ok)
    check("events/list-calls-filtered.json -> 200, only matching calls, with total", list_calls_filtered)
    check("events/list-calls-second-page.json with page 1's cursor -> the next 5, none repeated", list_calls_second_page)
    check("events/list-calls-bad-limit.json -> 400 INVALID_PARAMETER limit", list_error("list-calls-bad-limit.json", "INVALID_PARAMETER", "limit"))
    check("events/list-calls-forged-cursor.json -> 400 INVALID_CURSOR", list_error("list-calls-forged-cursor.json", "INVALID_CURSOR", "cursor"))
    check("HTTP GET /api/v1/calls with filters through the router -> 200", router_list)
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
