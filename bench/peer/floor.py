"""The floor of the benchmark's reads, from Python: the bare DynamoDB Queries that get-call and an unfiltered
list page make, with the peer's own boto3 client (handler.py), timed one by one. Prints
{"getCall": [ms, ...], "list": [ms, ...]}. Run from bench/peer by the suite (bench/src/bin/suite.rs), which
passes the keys as shared/src/store/layout.rs makes them.
"""
import argparse
import json
import time

from handler import TABLE, dynamodb


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--warm-up", type=int, default=10, help="untimed rounds first (the connection opens)")
    ap.add_argument("--pk-attr", required=True, help="the table's partition key attribute")
    ap.add_argument("--call-pk", required=True, help="the call's item collection")
    ap.add_argument("--index", required=True, help="the list index an unfiltered page reads")
    ap.add_argument("--index-pk-attr", required=True)
    ap.add_argument("--partition", required=True, help="the tenant's partition of that index")
    ap.add_argument("--limit", type=int, required=True, help="the page's read budget")
    ap.add_argument("--ascending", action="store_true")
    args = ap.parse_args()
    call = {"TableName": TABLE, "KeyConditionExpression": "#p = :p", "ExpressionAttributeNames": {"#p": args.pk_attr},
            "ExpressionAttributeValues": {":p": {"S": args.call_pk}}}
    page = {"TableName": TABLE, "IndexName": args.index, "KeyConditionExpression": "#p = :p",
            "ExpressionAttributeNames": {"#p": args.index_pk_attr},
            "ExpressionAttributeValues": {":p": {"S": args.partition}},
            "ScanIndexForward": args.ascending, "Limit": args.limit}
    out = {"getCall": [], "list": []}
    for round_ in range(args.warm_up + args.requests):
        for name, query in (("getCall", call), ("list", page)):
            started = time.perf_counter()
            found = dynamodb.query(**query)["Count"]
            if round_ >= args.warm_up:
                out[name].append((time.perf_counter() - started) * 1000)
            if not found:
                raise SystemExit(f"{name}: no items")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
