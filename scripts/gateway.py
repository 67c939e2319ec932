#!/usr/bin/env python3
"""A local stand-in for the HTTP API in template.yaml, in front of `cargo lambda watch`.

For each request it does what API Gateway does: matches one of the template's routes by method and path
(anything else, an unknown path or a method the path has no route for, is API Gateway's own 404
`{"message":"Not Found"}`), calls the Lambda authorizer with a payload 2.0 authorizer event, and invokes
the route's function with an HTTP API payload 2.0 event that carries the authorizer's context (`tenantId`,
`scopes`). The request body is read in full (Content-Length or chunked) and passed on as text when it
decodes as UTF-8, else base64 with `isBase64Encoded: true`; a request without a body has no `body`. The
function's response is sent back as it is; a 204 (or 304) goes out without a body or Content-Length.
Both invocations go through the Lambda invoke API of `cargo lambda watch`, the same path `cargo lambda
invoke` takes. Unlike the watch command's own router, the authorizer really runs.

Routes (template.yaml's route keys -> function):
  GET    /api/v1/calls                      list-calls
  DELETE /api/v1/calls  (?phoneNumber=...)  write-call (erasure)
  GET    /api/v1/calls/{callId}             get-call
  PUT    /api/v1/calls/{callId}             write-call
  PATCH  /api/v1/calls/{callId}             write-call
  DELETE /api/v1/calls/{callId}             write-call
  GET    /api/v1/calls/{callId}/recording   get-recording
  POST   /api/v1/calls/{callId}/recording   write-call (upload link)
  POST   /api/v1/webhooks/{provider}/{endpointId}   webhook (no authorizer: the provider's signature)

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

# (method, path pattern, route key, function, path parameter names), in template.yaml's terms. The first
# entry whose method and path both match is the route.
CALLS = re.compile(r"^/api/v1/calls$")
CALL = re.compile(r"^/api/v1/calls/([^/]+)$")
RECORDING = re.compile(r"^/api/v1/calls/([^/]+)/recording$")
WEBHOOK = re.compile(r"^/api/v1/webhooks/([^/]+)/([^/]+)$")
ROUTES = [
    ("GET", CALLS, "GET /api/v1/calls", "list-calls", []),
    ("DELETE", CALLS, "DELETE /api/v1/calls", "write-call", []),
    ("GET", CALL, "GET /api/v1/calls/{callId}", "get-call", ["callId"]),
    ("PUT", CALL, "PUT /api/v1/calls/{callId}", "write-call", ["callId"]),
    ("PATCH", CALL, "PATCH /api/v1/calls/{callId}", "write-call", ["callId"]),
    ("DELETE", CALL, "DELETE /api/v1/calls/{callId}", "write-call", ["callId"]),
    ("GET", RECORDING, "GET /api/v1/calls/{callId}/recording", "get-recording", ["callId"]),
    ("POST", RECORDING, "POST /api/v1/calls/{callId}/recording", "write-call", ["callId"]),
    ("POST", WEBHOOK, "POST /api/v1/webhooks/{provider}/{endpointId}", "webhook", ["provider", "endpointId"]),
]
# Routes the template declares with `Authorizer: NONE`: the function authenticates the request itself.
OPEN = {"POST /api/v1/webhooks/{provider}/{endpointId}"}

# Statuses whose responses never carry a body (nor a Content-Length, RFC 9110 8.6).
NO_BODY = (204, 304)


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
        if status in NO_BODY:
            body = b""
        else:
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def not_found(self):
        self.send(404, {"content-type": "application/json"}, b'{"message":"Not Found"}')

    def read_body(self):
        """The request body in full: Content-Length bytes, or every chunk of a chunked body."""
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers, up to the blank line
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        length = int(self.headers.get("content-length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def handle_any(self):
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            return self.send(400, {"content-type": "application/json"}, b'{"message":"Bad Request"}')
        path, _, raw_query = self.path.partition("?")
        match = None
        for method, pattern, route_key, function, names in ROUTES:
            m = pattern.match(path)
            if m and method == self.command:
                match = (route_key, function, dict(zip(names, (urllib.parse.unquote(g) for g in m.groups()))))
                break
        if match is None:
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
            "http": {"method": self.command, "path": path, "protocol": self.request_version,
                     "sourceIp": self.client_address[0], "userAgent": headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()), "routeKey": route_key, "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"), "timeEpoch": int(now.timestamp() * 1000),
        }
        try:
            verdict = {"isAuthorized": True} if route_key in OPEN else invoke(self.lambda_port, "authorizer", {
                "version": "2.0", "type": "REQUEST", "routeArn": f"arn:aws:execute-api:local:123456789012:local/$default/{route_key.replace(' ', '')}",
                "identitySource": [headers["authorization"]] if "authorization" in headers else [],
                "routeKey": route_key, "rawPath": path, "rawQueryString": raw_query, "headers": headers,
                "queryStringParameters": query or None, "pathParameters": path_params or None, "requestContext": context,
            })
            if not verdict.get("isAuthorized"):
                return self.send(403, {"content-type": "application/json"}, b'{"message":"Forbidden"}')
            if route_key not in OPEN:
                context["authorizer"] = {"lambda": verdict.get("context") or {}}
            event = {
                "version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": raw_query,
                "headers": headers, "requestContext": context, "isBase64Encoded": False,
            }
            if query:
                event["queryStringParameters"] = query
            if path_params:
                event["pathParameters"] = path_params
            if body:
                try:
                    event["body"] = body.decode("utf-8")
                except UnicodeDecodeError:
                    event["body"] = base64.b64encode(body).decode("ascii")
                    event["isBase64Encoded"] = True
            response = invoke(self.lambda_port, function, event)
        except (urllib.error.URLError, OSError, ValueError) as e:
            # What API Gateway answers when an integration fails.
            self.log_error("integration failed: %s", e)
            return self.send(500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
        out = response.get("body") or ""
        out = base64.b64decode(out) if response.get("isBase64Encoded") else out.encode()
        self.send(int(response.get("statusCode", 200)), response.get("headers") or {}, out)

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
