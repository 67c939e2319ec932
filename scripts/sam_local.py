#!/usr/bin/env python3
"""template.yaml made runnable by `sam local` on this machine's emulators, and nothing else changed.

  sam_local.py template OUT.yaml   writes template.yaml with three local differences:
      - every function x86_64 (the stand-in image, and Docker without emulation of other CPUs);
      - CodeUri made absolute, so the copy builds from anywhere;
      - the SDK's endpoint variables and path-style S3 declared on every function (empty), because
        `sam local` passes a function only the environment variables its template declares;
  sam_local.py env OUT.json --dynamodb URL --s3 URL --table T --bucket B [--queue-url U]
      writes the --env-vars file: the emulators' endpoints, table, bucket, queue and a fresh cursor secret
      for every function.

Routes, events, policies and everything else stay as template.yaml has them: sam local serves
the template's own HTTP API.
"""
import argparse
import json
import pathlib
import secrets
import sys

from samcli.yamlhelper import yaml_dump, yaml_parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Declared on every function locally; empty in the copy, filled by the env file.
LOCAL_VARIABLES = ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_SQS", "S3_FORCE_PATH_STYLE"]


def functions(template):
    return {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


def local_template(out):
    template = yaml_parse((ROOT / "template.yaml").read_text())
    glob = template.setdefault("Globals", {}).setdefault("Function", {})
    glob["Architectures"] = ["x86_64"]
    variables = glob.setdefault("Environment", {}).setdefault("Variables", {})
    for name in LOCAL_VARIABLES:
        variables.setdefault(name, "")
    for resource in functions(template).values():
        props = resource["Properties"]
        props["CodeUri"] = str((ROOT / props.get("CodeUri", ".")).resolve())
        props.pop("Architectures", None)
    pathlib.Path(out).write_text(yaml_dump(template))
    print(f"{out}: {len(functions(template))} functions, x86_64, local endpoints declared")


def env_file(args):
    values = {
        "AWS_ENDPOINT_URL_DYNAMODB": args.dynamodb,
        "AWS_ENDPOINT_URL_S3": args.s3,
        "AWS_ENDPOINT_URL_SQS": args.s3,
        "S3_FORCE_PATH_STYLE": "1",
        "CALLS_TABLE": args.table,
        "RECORDINGS_BUCKET": args.bucket,
        "CAPTURE_QUEUE_URL": args.queue_url,
        "CURSOR_SECRET": secrets.token_hex(32),
    }
    pathlib.Path(args.out).write_text(json.dumps({"Parameters": values}, indent=2))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("template")
    t.add_argument("out")
    e = sub.add_parser("env")
    e.add_argument("out")
    for flag in ("--dynamodb", "--s3", "--table", "--bucket"):
        e.add_argument(flag, required=True)
    e.add_argument("--queue-url", default="", help="the capture queue (none: provider links are not followed)")
    args = ap.parse_args()
    if args.what == "template":
        local_template(args.out)
    else:
        env_file(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
