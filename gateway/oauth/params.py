"""Request parameters from the query string, a form body or a JSON body, or split between them."""

from __future__ import annotations

import json

from starlette.datastructures import MultiDict
from starlette.requests import Request


class BadRequest(Exception):
    """A request the client must fix; the message names the parameter."""


async def request_params(request: Request) -> MultiDict:
    """Query string first, then the body; a body value wins over the same query key."""
    items = list(request.query_params.multi_items())
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if body and content_type == "application/json":
        try:
            document = json.loads(body)
        except ValueError:
            raise BadRequest("body: not valid JSON") from None
        if not isinstance(document, dict):
            raise BadRequest("body: must be a JSON object")
        body_items = [(k, v) for k, value in document.items()
                      for v in (value if isinstance(value, list) else [value])]
    elif body and content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        body_items = list((await request.form()).multi_items())
    else:
        body_items = []
    body_keys = {key for key, _ in body_items}
    merged = [(k, v) for k, v in items if k not in body_keys]
    for key, value in body_items:
        if not isinstance(value, (str, int, float, bool)):
            raise BadRequest(f"{key}: must be a string")
        merged.append((key, str(value).lower() if isinstance(value, bool) else str(value)))
    return MultiDict(merged)
