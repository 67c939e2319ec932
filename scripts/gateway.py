#!/usr/bin/env python3
"""A local stand-in for the HTTP API in template.yaml, in front of `cargo lambda watch`.

For each request it does what API Gateway does: matches one of the template's routes (GET only; anything
else is API Gateway's own 404 `{"message":"Not Found"}`), calls the Lambda authorizer with a payload 2.0
authorizer event, and invokes the route's function with an HTTP API payload 2.0 event that carries the
authorizer's context. Both invocations go through the Lambda invoke API of `cargo lambda watch`, the same
path `cargo lambda invoke` takes. Unlike the watch command's own router, the authorizer really runs.

Usage: gateway.py --port PORT --lambda-port WATCH_PORT [--lifetime SECONDS]. Listens on 127.0.0.1 only.
"""
import argparse
import base64
import datetime
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROUTES = [
    (re.compile(r"^/api/v1/calls$"), "GET /api/v1/calls", "list-calls", []),
    (re.compile(r"^/api/v1/calls/([^/]+)$"), "GET /api/v1/calls/{callId}", "get-call", ["callId"]),
    (re.compile(r"^/api/v1/calls/([^/]+)/recording$"), "GET /api/v1/calls/{callId}/recording", "get-recording", ["callId"]),
]


def invoke(port, function, event):
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations",
        data=json.dumps(event).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=300) as resp:
        return json.load(resp)


class Gateway(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    lambda_port = 0

    def log_message(self, *args):  # the functions log each request themselves
        pass

    def send(self, status, headers, body):
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def not_found(self):
        self.send(404, {"content-type": "application/json"}, b'{"message":"Not Found"}')

    def handle_any(self):
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        path, _, raw_query = self.path.partition("?")
        match = None
        for pattern, route_key, function, names in ROUTES:
            m = pattern.match(path)
            if m:
                match = (route_key, function, dict(zip(names, (urllib.parse.unquote(g) for g in m.groups()))))
                break
        if match is None or self.command != "GET":
            return self.not_found()
        route_key, function, path_params = match
        headers = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        query = {}
        for name, value in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        now = datetime.datetime.now(datetime.timezone.utc)
        context = {
            "accountId": "123456789012", "apiId": "local", "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {"method": "GET", "path": path, "protocol": self.request_version,
                     "sourceIp": self.client_address[0], "userAgent": headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()), "routeKey": route_key, "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"), "timeEpoch": int(now.timestamp() * 1000),
        }
        try:
            verdict = invoke(self.lambda_port, "authorizer", {
                "version": "2.0", "type": "REQUEST", "routeArn": f"arn:aws:execute-api:local:123456789012:local/$default/{route_key.replace(' ', '')}",
                "identitySource": [headers["authorization"]] if "authorization" in headers else [],
                "routeKey": route_key, "rawPath": path, "rawQueryString": raw_query, "headers": headers,
                "queryStringParameters": query or None, "pathParameters": path_params or None, "requestContext": context,
            })
            if not verdict.get("isAuthorized"):
                return self.send(403, {"content-type": "application/json"}, b'{"message":"Forbidden"}')
            context["authorizer"] = {"lambda": verdict.get("context") or {}}
            event = {
                "version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": raw_query,
                "headers": headers, "requestContext": context, "isBase64Encoded": False,
            }
            if query:
                event["queryStringParameters"] = query
            if path_params:
                event["pathParameters"] = path_params
            response = invoke(self.lambda_port, function, event)
        except (urllib.error.URLError, OSError, ValueError) as e:
            # What API Gateway answers when an integration fails.
            self.log_error("integration failed: %s", e)
            return self.send(500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
        body = response.get("body") or ""
        body = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
        self.send(int(response.get("statusCode", 200)), response.get("headers") or {}, body)

    def __getattr__(self, name):
        # Every method, known or not (TRACE, QUERY, ...), takes the same path: API Gateway answers 404 for a
        # method no route has, where http.server would answer 501.
        if name.startswith("do_"):
            return self.handle_any
        raise AttributeError(name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--lambda-port", type=int, required=True)
    ap.add_argument("--lifetime", type=int, default=7200)
    args = ap.parse_args()
    Gateway.lambda_port = args.lambda_port
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Gateway)
    threading.Timer(args.lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
