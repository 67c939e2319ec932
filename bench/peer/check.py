"""Quick self-check of the peer, without a Lambda runtime: calls handler() directly and prints the response.

    set -a; . /tmp/emu.env; set +a
    ../../.tools/peer-venv/bin/python check.py KEY [call_123]
"""

import json
import sys

from handler import handler


def event(key, call_id):
    """An API Gateway HTTP API (payload 2.0) event carrying `key`."""
    path = f"/api/v1/calls/{call_id}"
    return {
        "version": "2.0",
        "routeKey": "GET /api/v1/calls/{callId}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"accept": "application/json", "authorization": f"Bearer {key}"},
        "requestContext": {
            "http": {"method": "GET", "path": path},
            "requestId": "peer-check",
            "routeKey": "GET /api/v1/calls/{callId}",
            "stage": "$default",
        },
        "pathParameters": {"callId": call_id},
        "isBase64Encoded": False,
    }


if __name__ == "__main__":
    key = sys.argv[1]
    call_id = sys.argv[2] if len(sys.argv) > 2 else "call_123"
    response = handler(event(key, call_id), None)
    print(response["statusCode"], response["headers"], file=sys.stderr)
    print(json.dumps(json.loads(response["body"]), indent=2, ensure_ascii=False))
