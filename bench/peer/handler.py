"""GET /api/v1/calls/{callId} in Python: the benchmark's peer for the Rust function `get-call`.

This is not part of the product. It is the baseline a team would otherwise write (Python 3.11, boto3, one
handler file run by awslambdaric), kept beside the benchmark so that the Rust function has something honest
to be measured against. It reads the same DynamoDB items (shared/src/store/layout.rs) and serves the same
JSON body as the Rust function; see README.md for what differs on purpose.
"""

import hashlib
import hmac
import json
import os
import re
import time
import zlib
from datetime import datetime, timedelta, timezone

import boto3
import lz4.block
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config

TABLE = os.environ["CALLS_TABLE"]
BUCKET = os.environ["RECORDINGS_BUCKET"]
RETENTION = timedelta(days=int(os.environ.get("RECORDING_RETENTION_DAYS", "30")))
MAX_LINK_SECONDS = 3600

# Same client settings as shared/src/aws.rs: 3 attempts, 1 s to connect, 2 s per attempt. Endpoints come
# from AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_S3, which boto3 reads itself.
_config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=1, read_timeout=2)
_region = os.environ.get("AWS_REGION")  # boto3 itself reads only AWS_DEFAULT_REGION
_path_style = os.environ.get("S3_FORCE_PATH_STYLE") in ("1", "true", "yes")
_s3_config = Config(signature_version="s3v4", s3={"addressing_style": "path" if _path_style else "auto"})
dynamodb = boto3.client("dynamodb", region_name=_region, config=_config)
s3 = boto3.client("s3", region_name=_region, config=_config.merge(_s3_config))
_deserialize = TypeDeserializer().deserialize

ID_CHARS = re.compile(r"[A-Za-z0-9_.:-]+")
SUMMARY_FIELDS = (
    "id assistantId assistant phoneNumberId phoneNumber campaignId campaign direction from to status endReason "
    "answeredBy isSuccess evaluation summary startTime endTime duration createdAt updatedAt cost currency "
    "costBreakdown callMetadata messagesCount telephony optOutSensitiveDataStorage"
).split()
SUMMARY_DEFAULTS = {"costBreakdown": [], "callMetadata": {}, "messagesCount": 0, "optOutSensitiveDataStorage": False}


KEY_FORM = re.compile(r"crk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
KEY_CACHE_SECONDS = int(os.environ.get("API_KEY_CACHE_SECONDS", "60"))
_held_keys = {}  # key id -> (record item, monotonic time read)


def caller_tenant(headers):
    """The tenant of the request's `Authorization: Bearer` key, as shared/src/auth.rs decides it: the key's
    item read with one consistent GetItem and kept for API_KEY_CACHE_SECONDS, the hash compared in
    constant time on every request; None for no valid key."""
    header = next((v for k, v in (headers or {}).items() if k.lower() == "authorization"), "")
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    match = KEY_FORM.fullmatch(key)
    if scheme.lower() != "bearer" or not match:
        return None
    key_id = match.group(1)
    held = _held_keys.get(key_id)
    now = time.monotonic()
    if held is None or not 0 <= now - held[1] < KEY_CACHE_SECONDS:
        item = dynamodb.get_item(
            TableName=TABLE, Key={"pk": {"S": f"K#{key_id}"}, "sk": {"S": "K"}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        held = (item, now)
        if KEY_CACHE_SECONDS > 0:
            if len(_held_keys) >= 1000:
                _held_keys.clear()
            _held_keys[key_id] = held
    item = held[0]
    presented = hashlib.sha256(key.encode()).hexdigest()
    if not hmac.compare_digest(presented, item["keyHash"]["S"]) or "revokedAt" in item:
        return None
    scopes = [s["S"] for s in item.get("scopes", {}).get("L", [])] or ["calls:read"]
    if "calls:read" not in scopes:
        return None
    return item["tenantId"]["S"]


def handler(event, context):
    request_id = event.get("requestContext", {}).get("requestId", "")
    tenant = caller_tenant(event.get("headers"))
    if not tenant:
        return error(401, "UNAUTHORIZED", "Missing or invalid API key", request_id)
    call_id = (event.get("pathParameters") or {}).get("callId", "")
    problem = id_problem(call_id)
    if problem:
        details = {"field": "callId", "reason": problem}
        return error(400, "INVALID_PARAMETER", f"Invalid parameter callId: {problem}", request_id, details)
    call = get_call(tenant, call_id)
    if call is None:
        return error(404, "NOT_FOUND", "Call not found", request_id)
    return respond(200, {"success": True, "data": call})


def id_problem(value):
    if not value:
        return "must not be empty"
    if len(value.encode()) > 128:
        return "must be at most 128 characters"
    if not ID_CHARS.fullmatch(value):
        return "may contain only letters, digits, '_', '-', '.' and ':'"
    return None


def get_call(tenant, call_id):
    # A read racing a rewrite may see a summary whose parts are not all visible yet: read again.
    for _ in range(3):
        summary, parts = read_partition(f"T#{tenant}#C#{call_id}")
        if summary is None:
            return None
        mine = sorted((index, data) for version, index, data in parts if version == summary["contentVersion"])
        if [index for index, _ in mine] == list(range(int(summary["contentParts"]))):
            content = json.loads(decompress(b"".join(d for _, d in mine), summary.get("contentFormat"))) if mine else {}
            return call_detail(summary, content)
        time.sleep(0.05)
    raise RuntimeError(f"call {call_id}: content parts missing after retries")


def decompress(data, content_format):
    """LZ4 blocks with the size prepended (`contentFormat` "lz4-json"), or raw deflate when it is absent."""
    if content_format == "lz4-json":
        return lz4.block.decompress(data)
    if content_format is None:
        return zlib.decompress(data, -15)
    raise ValueError(f"unknown content format {content_format!r}")


def read_partition(pk):
    """The summary item (sk `A`) and the content parts (sk `B#<version>#<nnnnn>`) of one call."""
    summary, parts = None, []
    pages = dynamodb.get_paginator("query").paginate(
        TableName=TABLE, KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": {"S": pk}}
    )
    for page in pages:
        for item in page["Items"]:
            sk = item["sk"]["S"]
            if sk == "A":
                summary = {k: _deserialize(v) for k, v in item.items()}
            elif sk.startswith("B#"):
                version, index = sk[2:].rsplit("#", 1)
                parts.append((version, int(index), item["data"]["B"]))
    return summary, parts


def call_detail(item, content):
    call = {k: item.get(k, SUMMARY_DEFAULTS.get(k)) for k in SUMMARY_FIELDS}
    if call["evaluation"] and call["evaluation"].get("score") is not None:
        call["evaluation"]["score"] = float(call["evaluation"]["score"])  # a float in Rust, even when whole
    messages = content.get("messages", [])
    opted_out = call["optOutSensitiveDataStorage"]
    call["messages"] = None if opted_out else messages
    call["transcript"] = None if opted_out else content.get("transcript", transcript(messages))
    call["latency"] = content.get("latency")
    call["events"] = content.get("events", [])
    call.update(recording_fields(item))
    return call


def transcript(messages):
    speakers = {"user": "User", "assistant": "Assistant"}
    return "\n".join(f"{speakers[m['role']]}: {m['content']}" for m in messages if m["role"] in speakers)


def recording_fields(item):
    """Recording status, expiry and a fresh link, under the rules of shared/src/recording.rs."""
    rec = item.get("recording")
    if not rec or rec.get("status") == "none":
        return {
            "recordingStatus": "none", "recordingFormat": None, "recordingDuration": None,
            "recordingExpiresAt": None, "recordingUrl": None, "recordingUrlExpiresAt": None,
        }
    made_at = rec.get("recordedAt") or item.get("endTime") or item.get("startTime") or item["createdAt"]
    expires = datetime.fromisoformat(made_at) + RETENTION
    now = datetime.now(timezone.utc)
    status = "expired" if rec["status"] == "expired" or now >= expires else rec["status"]
    url = url_expires = None
    if status == "completed" and rec.get("key"):
        ttl = min(int((expires - now).total_seconds()), MAX_LINK_SECONDS)
        if ttl >= 1:
            url = s3.generate_presigned_url(
                "get_object", Params={"Bucket": BUCKET, "Key": rec["key"]}, ExpiresIn=ttl
            )
            url_expires = iso(now.replace(microsecond=0) + timedelta(seconds=ttl))
        else:
            status = "expired"  # less than a second left: no link, and the recording reads as expired
    return {
        "recordingStatus": status,
        "recordingFormat": rec.get("format"),
        "recordingDuration": rec.get("duration"),
        "recordingExpiresAt": iso(expires),
        "recordingUrl": url,
        "recordingUrlExpiresAt": url_expires,
    }


def iso(t):
    """RFC 3339 in UTC the way the Rust API writes it: `Z`, and 0, 3 or 6 fractional digits."""
    t = t.astimezone(timezone.utc)
    us = t.microsecond
    fraction = "" if not us else f".{us // 1000:03d}" if us % 1000 == 0 else f".{us:06d}"
    return t.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def error(status, code, message, request_id, details=None):
    body = {"code": code, "message": message, "requestId": request_id}
    if details:
        body["details"] = details
    return respond(status, {"success": False, "error": body})


def respond(status, body):
    # DynamoDB numbers arrive as Decimal: whole ones become JSON integers, others decimals (as in Rust).
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=number)
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": text}


def number(value):
    return int(value) if value == value.to_integral_value() else float(value)
