#!/usr/bin/env python3
"""Sends every file in events/ to its function with `sam local invoke` (the function's container, from the
sam build of scripts/sam_local.py's template) and checks each answer; the HTTP checks go through
`sam local start-api` (template.yaml's HTTP API). The API events carry `Bearer <demo key>` (or `<read-only
demo key>`), replaced here by the keys in --key-file and --read-key-file. Prints one line per check, then
'sam local invoke: N of N events' (an event counts when it was invoked and every check of its answers
passed) and 'events: N passed, N failed'.

  check_events.py --template BUILT.yaml --env-vars ENV.json --api http://127.0.0.1:PORT \
                  --s3 http://GATEWAY:PORT --key-file KEY --read-key-file READ_ONLY_KEY
                  [--invocations FILE]
"""
import argparse
import datetime
import io
import json
import math
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import wave

from samcli.yamlhelper import yaml_parse

ROOT = pathlib.Path(__file__).resolve().parent.parent


class Sam:
    """`sam local invoke` of the built template's functions, by the binary names of their BuildProperties."""

    def __init__(self, template, env_vars):
        self.template, self.env_vars = template, env_vars
        # Logical ids as template.yaml names them (the built template keeps them, not always the Metadata).
        resources = yaml_parse((ROOT / "template.yaml").read_text())["Resources"]
        self.logical = {r["Metadata"]["BuildProperties"]["Binary"]: name for name, r in resources.items()
                        if r["Type"] == "AWS::Serverless::Function"}
        self.invoked = []  # (events/ file, seconds) of this check

    def invoke(self, function, event, source):
        started = time.monotonic()
        out = subprocess.run(
            ["sam", "local", "invoke", self.logical[function], "--event", str(event), "--template", self.template,
             "--env-vars", self.env_vars, "--skip-pull-image"],
            cwd=ROOT, capture_output=True, text=True, timeout=600,
        )
        self.invoked.append((source, time.monotonic() - started))
        # sam exits 0 when the function failed or timed out: the answer is the last line it printed on stdout.
        lines = [line for line in out.stdout.splitlines() if line.strip()]
        if out.returncode != 0 or not lines:
            raise AssertionError(f"sam local invoke {function} exited {out.returncode}: {out.stderr.strip()[-800:]}")
        try:
            answer = json.loads(lines[-1])
        except ValueError:
            raise AssertionError(f"sam local invoke {function}: no JSON answer: {out.stdout[-500:]} {out.stderr[-500:]}")
        if isinstance(answer, dict) and "errorType" in answer and "statusCode" not in answer:
            raise AssertionError(f"{function} failed: {answer}; {out.stderr.strip()[-800:]}")
        return answer


def http_body(resp):
    assert resp.get("isBase64Encoded") in (False, None), "JSON bodies are sent as text"
    return json.loads(resp["body"])


def header(resp, name):
    """A response header by name, whatever its case (None when absent)."""
    for k, v in (resp.get("headers") or {}).items():
        if k.lower() == name.lower():
            return v
    return None


def wav_1s():
    """A real PCM WAV: 8 kHz, mono, 16-bit, 8,000 frames (1.0 s) of a 440 Hz tone, 16,044 bytes."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(int(8000 * math.sin(2 * math.pi * 440 * i / 8000)).to_bytes(2, "little", signed=True)
                               for i in range(8000)))
    data = buf.getvalue()
    assert len(data) == 16044, len(data)
    return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--template", required=True, help="the built template (sam build's output)")
    ap.add_argument("--env-vars", required=True)
    ap.add_argument("--api", required=True, help="sam local start-api's base URL")
    ap.add_argument("--s3", required=True, help="the S3 endpoint the functions sign links for")
    ap.add_argument("--key-file", required=True, help="the demo tenant's read and write key")
    ap.add_argument("--read-key-file", required=True, help="a read-only key of the demo tenant")
    args = ap.parse_args()
    key = pathlib.Path(args.key_file).read_text().strip()
    read_key = pathlib.Path(args.read_key_file).read_text().strip()
    events = ROOT / "events"
    sam = Sam(args.template, args.env_vars)
    results = []
    # events/ file -> [answers checked, answers that failed their check]
    per_event = {p.name: [0, 0] for p in sorted(events.glob("*.json"))}

    def invoke(function, event, source=None):
        text = pathlib.Path(event).read_text()
        source = source or pathlib.Path(event).name
        if "<demo key>" in text or "<read-only demo key>" in text:
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                f.write(text.replace("<demo key>", key).replace("<read-only demo key>", read_key))
            event = f.name
        return sam.invoke(function, event, source)

    def check(name, fn):
        sam.invoked = []
        try:
            fn()
            ok = True
            print(f"PASS {name}" + "".join(f" [{src} {sec:.1f} s]" for src, sec in sam.invoked))
        except Exception as e:  # noqa: BLE001 - report every failure, keep going
            ok = False
            print(f"FAIL {name}: {e}")
        results.append(ok)
        for src, _ in sam.invoked:
            per_event.setdefault(src, [0, 0])[0] += 1
            per_event[src][1] += 0 if ok else 1

    def get_call_ok():
        r = invoke("get-call", events / "get-call.json")
        assert r["statusCode"] == 200, r
        b = http_body(r)
        assert b["success"] is True and b["data"]["id"] == "call_123", b
        assert b["data"]["messagesCount"] == 6 and len(b["data"]["messages"]) == 6
        assert b["data"]["recordingUrl"].startswith(args.s3 + "/"), b["data"]["recordingUrl"]

    def error_case(file, status, code, field=None):
        def run():
            r = invoke("get-call", events / file)
            assert r["statusCode"] == status, r
            b = http_body(r)
            assert b["success"] is False and b["error"]["code"] == code, b
            assert b["error"]["requestId"], b
            if field:
                assert b["error"]["details"]["field"] == field, b
        return run

    def router_with_key():
        url = f"{args.api}/api/v1/calls/call_123"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            body = json.load(resp)
            assert resp.status == 200 and body["data"]["id"] == "call_123", body

    def router_without_key():
        url = f"{args.api}/api/v1/calls/call_123"
        try:
            urllib.request.urlopen(url, timeout=120)
            raise AssertionError("expected 401")
        except urllib.error.HTTPError as e:
            assert e.code == 401 and json.load(e)["error"]["code"] == "UNAUTHORIZED"

    def get_recording_ok():
        r = invoke("get-recording", events / "get-recording.json")
        assert r["statusCode"] == 200, r
        b = http_body(r)
        assert b["data"]["url"].startswith(args.s3 + "/") and b["data"]["expiresAt"], b

    def expiry(file, **want):
        def run():
            r = invoke("recording-expiry", events / file)
            for k, v in want.items():
                if callable(v):
                    assert v(r[k]), f"{k}={r[k]} in {r}"
                else:
                    assert r[k] == v, f"{k}={r[k]} in {r}"
        return run

    def router_recording_redirect():
        url = f"{args.api}/api/v1/calls/call_123/recording"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None

        try:
            urllib.request.build_opener(NoRedirect).open(req, timeout=120)
            raise AssertionError("expected a redirect")
        except urllib.error.HTTPError as e:
            assert e.code == 302 and e.headers["Location"].startswith(args.s3 + "/"), (e.code, dict(e.headers))

    def list_page(file, drop=(), **replace):
        """Invokes list-calls with events/FILE, its query changed: `drop` names removed, `replace` set."""
        ev = json.loads((events / file).read_text())
        query = {k: v for k, v in ev.get("queryStringParameters", {}).items() if k not in drop}
        query.update(replace)
        ev["queryStringParameters"] = query
        ev["rawQueryString"] = urllib.parse.urlencode(query)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(ev, f)
        r = invoke("list-calls", f.name, file)
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
        assert isinstance(b["pagination"]["totalExact"], bool), b["pagination"]

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
        url = f"{args.api}/api/v1/calls?limit=10&phoneNumber=%2B14155550123&status=completed,failed"
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            body = json.load(resp)
            assert resp.status == 200 and body["success"] is True, body
            # The demo's repeat customer: one inbound and one outbound call, stored in E.164.
            assert sorted(c["id"] for c in body["data"]) == ["call_completed_1", "call_completed_2"], body

    # The write events' call is dated 2025-01-15 (as the read events are); its recording must still be
    # within retention when it is uploaded, so every date in the write events moves forward by whole days
    # to today, time of day kept: the call is then a few hours old at most, or just ahead of the clock.
    shift = datetime.date.today() - datetime.date(2025, 1, 15)

    def shifted(value):
        if isinstance(value, dict):
            return {k: shifted(v) for k, v in value.items()}
        if isinstance(value, list):
            return [shifted(v) for v in value]
        if isinstance(value, str) and len(value) == 20 and value.startswith("2025-01-15T") and value.endswith("Z"):
            t = datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ") + shift
            return t.strftime("%Y-%m-%dT%H:%M:%SZ")
        if isinstance(value, str) and "/2025/01/15/" in value:
            return value.replace("/2025/01/15/", (datetime.date(2025, 1, 15) + shift).strftime("/%Y/%m/%d/"))
        return value

    def moved(file):
        ev = json.loads((events / file).read_text())
        if "body" in ev:
            ev["body"] = json.dumps(shifted(json.loads(ev["body"])))
        if ev.get("source") == "aws.s3":
            ev = shifted(ev)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(ev, f)
        return f.name

    def write_invoke(file):
        r = invoke("write-call", moved(file), file)
        assert isinstance(r.get("statusCode"), int), r
        return r

    def write_error(file, status, code, **details):
        def run():
            r = write_invoke(file)
            assert r["statusCode"] == status, r
            b = http_body(r)
            assert b["success"] is False and b["error"]["code"] == code, b
            assert b["error"]["requestId"], b
            for k, v in details.items():
                assert b["error"]["details"][k] == v, b
        return run

    first_etag = []

    def put_call_created():
        r = write_invoke("put-call.json")
        assert r["statusCode"] == 201, r
        b = http_body(r)
        assert b["success"] is True and b["data"]["id"] == "call_put_1", b
        assert header(r, "etag"), r.get("headers")
        first_etag.append(header(r, "etag"))

    def put_call_again():
        r = write_invoke("put-call.json")
        assert r["statusCode"] == 200, r
        assert http_body(r)["data"]["id"] == "call_put_1", r
        assert first_etag and header(r, "etag") == first_etag[0], (first_etag, r.get("headers"))

    def patch_call():
        r = write_invoke("patch-call.json")
        assert r["statusCode"] == 200, r
        d = http_body(r)["data"]
        assert d["status"] == "completed", d
        assert d["callMetadata"] == {"crmId": "C-1042", "outcome": "renewed"}, d["callMetadata"]

    def upload_recording():
        r = write_invoke("upload-recording.json")
        assert r["statusCode"] == 201, r
        d = http_body(r)["data"]
        assert d["uploadUrl"].startswith(args.s3 + "/") and d["method"] == "PUT" and d["expiresAt"], d
        assert isinstance(d["headers"], dict), d
        req = urllib.request.Request(d["uploadUrl"], data=wav_1s(), headers=d["headers"], method="PUT")
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                assert resp.status == 200, resp.status
        except urllib.error.HTTPError as e:
            raise AssertionError(f"upload: {e.code} {e.read()[:500]!r}") from None

    def recording_check():
        r = invoke("recording-check", moved("recording-check.json"), "recording-check.json")
        assert r.get("status") == "completed" and r.get("duration") == 1, r

    def get_put_call():
        ev = json.loads((events / "get-call.json").read_text())
        ev["pathParameters"] = {"callId": "call_put_1"}
        ev["rawPath"] = ev["requestContext"]["http"]["path"] = "/api/v1/calls/call_put_1"
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(ev, f)
        r = invoke("get-call", f.name, "get-call.json")
        assert r["statusCode"] == 200, r
        d = http_body(r)["data"]
        assert d["id"] == "call_put_1" and d["status"] == "completed", d
        assert d.get("recordingStatus") == "completed" and d.get("recordingDuration") == 1, \
            {k: v for k, v in d.items() if k.startswith("recording")}

    def delete_call(status):
        def run():
            r = write_invoke("delete-call.json")
            assert r["statusCode"] == status, r
            if status == 204:
                assert not r.get("body"), r
            else:
                b = http_body(r)
                assert b["success"] is False and b["error"]["code"] == "NOT_FOUND", b
        return run

    def erase_calls():
        r = write_invoke("erase-calls.json")
        assert r["statusCode"] == 200, r
        b = http_body(r)
        assert b["success"] is True and b["data"] == {"deleted": 0, "hasMore": False}, b

    def webhook(file, status, outcome=None):
        def run():
            r = invoke("webhook", events / file)
            assert r["statusCode"] == status, r
            b = http_body(r)
            if outcome:
                assert b["success"] is True and b["data"]["outcome"] == outcome, b
                assert b["data"]["callId"].startswith("vapi:"), b
            else:
                assert b["success"] is False and b["error"]["code"] == "UNAUTHORIZED", b
        return run

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
    check("events/get-call-no-key.json -> 401 UNAUTHORIZED", error_case("get-call-no-key.json", 401, "UNAUTHORIZED"))
    check("HTTP GET through the router with the demo key -> 200", router_with_key)
    check("HTTP GET through the router without a key -> 401", router_without_key)
    # The write routes, in order on one call (call_put_1): created, replaced, refused, patched, its recording
    # uploaded and checked, read back, deleted; then an erasure that finds nothing left.
    check("events/put-call.json -> 201 with an ETag", put_call_created)
    check("events/put-call.json again -> 200, the same ETag", put_call_again)
    check("events/put-call-read-only-key.json -> 403 FORBIDDEN scope calls:write",
          write_error("put-call-read-only-key.json", 403, "FORBIDDEN", scope="calls:write"))
    check("events/put-call-bad-body.json -> 400 INVALID_PARAMETER messages[1].timestamp",
          write_error("put-call-bad-body.json", 400, "INVALID_PARAMETER", field="messages[1].timestamp"))
    check("events/patch-call.json -> 200, completed, callMetadata merged", patch_call)
    check("events/upload-recording.json -> 201, then PUT of a 1 s WAV to uploadUrl -> 200", upload_recording)
    check("events/recording-check.json -> completed, duration 1", recording_check)
    check("get-call for call_put_1 -> recordingStatus completed, recordingDuration 1", get_put_call)
    check("events/delete-call.json -> 204", delete_call(204))
    check("events/delete-call.json again -> 404", delete_call(404))
    check("events/erase-calls.json -> 200, deleted 0, hasMore false", erase_calls)
    # The demo's Vapi endpoint: a delivery with its secret is stored, a repeat changes nothing, a wrong
    # secret is refused.
    check("events/webhook-vapi.json -> 200, created", webhook("webhook-vapi.json", 200, "created"))
    check("events/webhook-vapi.json again -> 200, unchanged", webhook("webhook-vapi.json", 200, "unchanged"))
    check("events/webhook-bad-signature.json -> 401 UNAUTHORIZED", webhook("webhook-bad-signature.json", 401))
    def capture_nothing():
        r = invoke("recording-capture", events / "recording-capture.json")
        assert r == {"batchItemFailures": []}, r

    check("events/recording-capture.json (a job for no call) -> nothing to retry", capture_nothing)
    passed = sum(results)
    good = [name for name, (checked, failed) in per_event.items() if checked and not failed]
    for name, (checked, failed) in per_event.items():
        if not checked:
            print(f"FAIL events/{name}: never invoked")
    print(f"sam local invoke: {len(good)} of {len(per_event)} events "
          f"({sum(c for c, _ in per_event.values())} invocations, every answer checked)")
    print(f"events: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) and len(good) == len(per_event) else 1


if __name__ == "__main__":
    sys.exit(main())
