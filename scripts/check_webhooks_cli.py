#!/usr/bin/env python3
"""The operator tool's `webhooks` commands against the local stack (the environment scripts/test exports):
create (a generated Vapi secret, a Retell secret from stdin, Retell without one refused), list (never a
secret), rotate, delete. Prints one line per check and 'webhooks cli: N passed, N failed'."""
import pathlib
import re
import subprocess
import sys

TOOL = str(pathlib.Path(__file__).resolve().parent.parent / "target" / "debug" / "callrecords")


def run(*args, stdin=None):
    return subprocess.run([TOOL, "webhooks", *args], input=stdin, capture_output=True, text=True, timeout=60)


def main():
    results = []

    def check(name, ok, detail=""):
        results.append(bool(ok))
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail}"))

    made = run("create", "--tenant", "cli-check", "--provider", "vapi", "--api-url", "https://api.example.com/")
    endpoint = re.search(r"^endpoint: (wh_[0-9a-f]{24})$", made.stdout, re.M)
    secret = re.search(r"^secret: +(whsec_\S+)$", made.stdout, re.M)
    url = re.search(r"^url: +(\S+)$", made.stdout, re.M)
    check("create vapi -> an endpoint id and a generated secret, shown once", made.returncode == 0 and endpoint and secret,
          made.stdout + made.stderr)
    if not (endpoint and secret):
        print(f"webhooks cli: {sum(results)} passed, {len(results) - sum(results)} failed")
        return 1
    endpoint, secret = endpoint.group(1), secret.group(1)
    check("the URL is the API's base and the receiver's path",
          url and url.group(1) == f"https://api.example.com/api/v1/webhooks/vapi/{endpoint}", made.stdout)

    given = "retell_key_given_on_stdin_0001"
    retell = run("create", "--tenant", "cli-check", "--provider", "retell", "--secret-stdin", stdin=given + "\n")
    check("create retell --secret-stdin -> no secret printed", retell.returncode == 0 and given not in retell.stdout + retell.stderr,
          retell.stdout + retell.stderr)
    refused = run("create", "--tenant", "cli-check", "--provider", "retell")
    check("create retell without a secret -> refused, saying where it comes from",
          refused.returncode != 0 and "--secret-stdin" in refused.stderr, refused.stderr)

    listed = run("list", "--tenant", "cli-check")
    check("list -> both endpoints, no secret", listed.returncode == 0 and endpoint in listed.stdout
          and sum(line.startswith("wh_") for line in listed.stdout.splitlines()) == 2 and secret not in listed.stdout and given not in listed.stdout, listed.stdout)

    rotated = run("rotate", endpoint, "--secret-stdin", "--overlap-hours", "1", stdin="the_next_secret_0002\n")
    check("rotate --secret-stdin -> the old secret accepted for the overlap", rotated.returncode == 0
          and "accepted until" in rotated.stdout and "the_next_secret_0002" not in rotated.stdout, rotated.stdout + rotated.stderr)
    listed = run("list", "--tenant", "cli-check")
    row = next((line for line in listed.stdout.splitlines() if endpoint in line), "")
    check("list after the rotation -> 2 secrets accepted", re.search(r"\s2\s", row) is not None, row)

    gone = run("delete", endpoint)
    again = run("delete", endpoint)
    check("delete -> deleted; again -> no such endpoint", gone.returncode == 0 and again.returncode != 0
          and "no endpoint" in again.stderr, gone.stdout + again.stderr)

    passed = sum(results)
    print(f"webhooks cli: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
