"""Request parameters from the query string, a form body or a JSON body, or split between them."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from starlette.datastructures import MultiDict
from starlette.requests import Request

MAX_BODY_BYTES = 64 * 1024  # a template's variables fit many times over
MAX_FIELDS = 1000


class BadRequest(Exception):
    """A request the client must fix; the message names the parameter."""


async def request_params(request: Request) -> MultiDict:
    """Query string first, then the body; a body value wins over the same query key."""
    items = list(request.query_params.multi_items())
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await limited_body(request)
    if body and content_type == "application/json":
        try:
            document = json.loads(body)
        except ValueError:
            raise BadRequest("body: not valid JSON") from None
        if not isinstance(document, dict):
            raise BadRequest("body: must be a JSON object")
        body_items = [(k, v) for k, value in document.items()
                      for v in (value if isinstance(value, list) else [value])]
    elif body and content_type == "application/x-www-form-urlencoded":
        try:
            body_items = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"body: not a valid form ({exc})") from None
    elif body:
        raise BadRequest(f"body: send application/x-www-form-urlencoded or application/json, not {content_type!r}")
    else:
        body_items = []
    body_keys = {key for key, _ in body_items}
    merged = [(k, v) for k, v in items if k not in body_keys]
    for key, value in body_items:
        if not isinstance(value, (str, int, float, bool)):
            raise BadRequest(f"{key}: must be a string")
        merged.append((key, str(value).lower() if isinstance(value, bool) else str(value)))
    return MultiDict(merged)


async def limited_body(request: Request) -> bytes:
    """The body, refused past MAX_BODY_BYTES before it is all read: the endpoints that take
    one answer anyone on the internet."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise BadRequest(f"body: larger than {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(f"body: larger than {MAX_BODY_BYTES} bytes")
    return bytes(body)
