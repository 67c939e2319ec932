#!/usr/bin/env python3
"""A local stand-in for the HTTP API in template.yaml, in front of `cargo lambda watch`.

For each request it does what API Gateway does: matches one of the template's routes by method and path
(anything else, an unknown path or a method the path has no route for, is API Gateway's own 404
`{"message":"Not Found"}`) and invokes the route's function, once, with an HTTP API payload 2.0 event
(the API has no authorizer: each function checks the request's key itself). The request body is read in
full (Content-Length or chunked) and passed on as text when it decodes as UTF-8, else base64 with
`isBase64Encoded: true`; a request without a body has no `body`. The function's response is sent back as
it is; a 204 (or 304) goes out without a body or Content-Length.
The invocation goes through the Lambda invoke API of `cargo lambda watch`, the same path `cargo lambda
invoke` takes. With --invocation-log FILE, each request appends one JSON line to FILE: its route key,
status and the number of function invocations it took (`{"route":…,"status":…,"invocations":1}`).

Routes are read from template.yaml at start: the template is the one place they are declared.

Usage: gateway.py --port PORT --lambda-port WATCH_PORT [--lifetime SECONDS] [--invocation-log FILE].
Listens on 127.0.0.1 only.
"""
import argparse
import base64
import datetime
import json
import pathlib
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


class TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !GetAtt, !Sub, ...), each read as its long form."""


def _intrinsic(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


TemplateLoader.add_multi_constructor("!", _intrinsic)


def load_routes(template_path):
    """(method, path pattern, route key, function binary, path parameter names) for every HttpApi event of
    the template."""
    template = yaml.load(pathlib.Path(template_path).read_text(), Loader=TemplateLoader)
    resources = template["Resources"]

    def binary(logical_id):
        return resources[logical_id]["Metadata"]["BuildProperties"]["Binary"]

    routes = []
    for resource in resources.values():
        props = resource.get("Properties") or {}
        if resource["Type"] == "AWS::Serverless::HttpApi" and "Auth" in props:
            raise SystemExit("template.yaml: the HTTP API has an authorizer, which this gateway does not run")
    for logical_id, resource in resources.items():
        props = resource.get("Properties") or {}
        for event in (props.get("Events") or {}).values():
            if event["Type"] != "HttpApi":
                continue
            method, path = event["Properties"]["Method"].upper(), event["Properties"]["Path"]
            names = re.findall(r"{([^}/]+)}", path)
            pattern = re.compile("^" + re.sub(r"{[^}/]+}", "([^/]+)", path) + "$")
            key = f"{method} {path}"
            routes.append((method, pattern, key, binary(logical_id), names))
    return routes


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
    routes = []
    invocation_log = None
    log_lock = threading.Lock()

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
        for method, pattern, route_key, function, names in self.routes:
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
        invocations = 0
        try:
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
            invocations += 1
            response = invoke(self.lambda_port, function, event)
        except (urllib.error.URLError, OSError, ValueError) as e:
            # What API Gateway answers when an integration fails.
            self.log_error("integration failed: %s", e)
            self.record(route_key, 500, invocations)
            return self.send(500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
        out = response.get("body") or ""
        out = base64.b64decode(out) if response.get("isBase64Encoded") else out.encode()
        status = int(response.get("statusCode", 200))
        self.record(route_key, status, invocations)
        self.send(status, response.get("headers") or {}, out)

    def record(self, route_key, status, invocations):
        if self.invocation_log:
            line = json.dumps({"route": route_key, "status": status, "invocations": invocations})
            with self.log_lock, open(self.invocation_log, "a") as f:
                f.write(line + "\n")

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
    ap.add_argument("--template", default=str(ROOT / "template.yaml"))
    ap.add_argument("--invocation-log")
    args = ap.parse_args()
    Gateway.lambda_port = args.lambda_port
    Gateway.routes = load_routes(args.template)
    Gateway.invocation_log = args.invocation_log
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Gateway)
    threading.Timer(args.lifetime, server.shutdown).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
