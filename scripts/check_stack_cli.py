#!/usr/bin/env python3
"""The operator tool's `--stack` and the local-only guard of `setup` and `demo`, against the local stack (the
environment scripts/test exports, after `setup` and `demo`). The stacks are made in the S3 emulator, moto,
which also plays CloudFormation: a tiny template whose outputs name the local table and bucket, another that
lacks the bucket's output. Prints one line per check and 'stack cli: N passed, N failed'."""
import json
import os
import pathlib
import subprocess
import sys

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOOL = str(pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "callrecords")
# moto serves every service it emulates on one port.
MOTO = os.environ["AWS_ENDPOINT_URL_S3"]
TABLE, BUCKET = os.environ["CALLS_TABLE"], os.environ["RECORDINGS_BUCKET"]


def make_stack(name, outputs):
    cf = boto3.client("cloudformation", endpoint_url=MOTO, region_name=os.environ.get("AWS_REGION", "us-east-1"))
    try:
        cf.delete_stack(StackName=name)
    except cf.exceptions.ClientError:
        pass
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cf.create_stack(StackName=name, TemplateBody=json.dumps(template))


def run(*args, env=None, unset=()):
    full = {k: v for k, v in os.environ.items() if k not in unset}
    full.update(env or {})
    return subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=60, env=full)


def main():
    results = []

    def check(name, ok, detail=""):
        results.append(bool(ok))
        print(f"{'ok  ' if ok else 'FAIL'} {name}" + ("" if ok else f": {detail.strip()}"))

    make_stack("callrecords-check", {"ApiUrl": "https://api.example.com", "CallsTableName": TABLE,
                                     "RecordingsBucketName": BUCKET})
    make_stack("callrecords-half", {"CallsTableName": TABLE})
    # With a stack, the table and bucket come from it alone.
    stack_env = {"AWS_ENDPOINT_URL_CLOUDFORMATION": MOTO}
    no_names = ("CALLS_TABLE", "RECORDINGS_BUCKET")

    def demo_key_listed(r):
        return r.returncode == 0 and any(line.split()[-1:] == ["demo"] for line in r.stdout.splitlines()[1:])

    r = run("--stack", "callrecords-check", "keys", "list", "--tenant", "acme", env=stack_env, unset=no_names)
    check("--stack NAME: keys list reads the table the stack's outputs name (the demo key)",
          demo_key_listed(r) and f"table {TABLE}, bucket {BUCKET}" in r.stderr, r.stdout + r.stderr)
    r = run("keys", "list", "--tenant", "acme", "--stack", "callrecords-check", env=stack_env, unset=no_names)
    check("--stack after the subcommand works the same", demo_key_listed(r), r.stdout + r.stderr)
    r = run("keys", "list", "--tenant", "acme", env={**stack_env, "CALLRECORDS_STACK": "callrecords-check"}, unset=no_names)
    check("CALLRECORDS_STACK=NAME: the same", demo_key_listed(r), r.stdout + r.stderr)

    r = run("--stack", "callrecords-missing", "keys", "list", "--tenant", "acme", env=stack_env, unset=no_names)
    check("a stack that does not exist -> an error naming it", r.returncode != 0
          and "stack callrecords-missing does not exist" in r.stderr, r.stderr)
    r = run("--stack", "callrecords-half", "keys", "list", "--tenant", "acme", env=stack_env, unset=no_names)
    check("a stack without the bucket's output -> an error naming the stack and the output", r.returncode != 0
          and "callrecords-half" in r.stderr and "RecordingsBucketName" in r.stderr, r.stderr)

    r = run("--stack", "callrecords-check", "keys", "list", "--tenant", "acme",
            env={**stack_env, "CALLS_TABLE": "another-table"}, unset=("RECORDINGS_BUCKET",))
    check("--stack with CALLS_TABLE naming another table -> refused, both named", r.returncode != 0
          and "CALLS_TABLE" in r.stderr and "another-table" in r.stderr and TABLE in r.stderr, r.stderr)
    r = run("--stack", "callrecords-check", "keys", "list", "--tenant", "acme", env=stack_env)
    check("--stack with CALLS_TABLE and RECORDINGS_BUCKET naming the same -> goes on", demo_key_listed(r), r.stderr)

    for command in ("setup", "demo"):
        r = run("--stack", "callrecords-check", command, env=stack_env, unset=no_names)
        check(f"{command} --stack -> refused", r.returncode != 0
              and f"{command} only runs against a local stack" in r.stderr and "callrecords-check" in r.stderr, r.stderr)

    # Refused endpoints are names that never resolve (.invalid): were the guard broken, nothing would be reached.
    remote = "https://dynamodb.us-east-1.amazonaws.com.invalid"
    r = run("setup", env={"AWS_ENDPOINT_URL_DYNAMODB": remote})
    check("setup with DynamoDB's endpoint in AWS -> refused, naming it", r.returncode != 0
          and "setup only runs against a local stack" in r.stderr and remote in r.stderr, r.stderr)
    r = run("setup", env={"AWS_ENDPOINT_URL_DYNAMODB": remote, "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL_DYNAMODB"]})
    check("setup: the service's own variable wins over AWS_ENDPOINT_URL, as in the SDK -> refused", r.returncode != 0
          and remote in r.stderr, r.stderr)
    r = run("demo", "--key-file", os.devnull, unset=("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"))
    check("demo with no S3 endpoint (AWS itself) -> refused", r.returncode != 0
          and "demo only runs against a local stack" in r.stderr and "S3" in r.stderr, r.stderr)
    r = run("demo", "--key-file", os.devnull, env={"AWS_ENDPOINT_URL_S3": "http://localhost.invalid:4566"})
    check("demo with S3 at a name other than localhost -> refused", r.returncode != 0
          and "localhost.invalid" in r.stderr, r.stderr)
    r = run("setup", env={"AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL_DYNAMODB"]}, unset=("AWS_ENDPOINT_URL_DYNAMODB",))
    check("setup with DynamoDB through AWS_ENDPOINT_URL on 127.0.0.1 -> runs", r.returncode == 0
          and f"table {TABLE}" in r.stdout, r.stdout + r.stderr)

    passed = sum(results)
    print(f"stack cli: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
