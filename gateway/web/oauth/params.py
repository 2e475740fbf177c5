"""Request parameters from the query string, a form body or a JSON body, or split between them."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl

from starlette.datastructures import MultiDict
from starlette.requests import Request

from gateway.web.forms import MAX_BODY_BYTES, BodyTooLarge, content_type, read_body

MAX_FIELDS = 1000
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class BadRequest(Exception):
    """A request the client must fix; the message names the parameter."""


async def request_params(request: Request) -> MultiDict:
    """Query string first, then the body; a body value wins over the same query key."""
    items = list(request.query_params.multi_items())
    kind = content_type(request)
    body = await limited_body(request)
    if body and kind == "application/json":
        try:
            document = json.loads(body)
        except RecursionError:  # "[[[[..." deeper than Python's stack
            raise BadRequest("body: JSON nested too deeply") from None
        except ValueError:
            raise BadRequest("body: not valid JSON") from None
        if not isinstance(document, dict):
            raise BadRequest("body: must be a JSON object")
        body_items = [(k, v) for k, value in document.items()
                      for v in (value if isinstance(value, list) else [value])]
    elif body and kind == "application/x-www-form-urlencoded":
        try:
            body_items = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"body: not a valid form ({exc})") from None
    elif body:
        raise BadRequest(f"body: send application/x-www-form-urlencoded or application/json, not {kind!r}")
    else:
        body_items = []
    body_keys = {key for key, _ in body_items}
    merged = [(k, v) for k, v in items if k not in body_keys]
    for key, value in body_items:
        if _SURROGATE.search(key):
            raise BadRequest(f"body: the name {printable(key)!r} is not valid Unicode (a lone surrogate)")
        if not isinstance(value, (str, int, float, bool)):
            raise BadRequest(f"{key}: must be a string")
        if isinstance(value, str) and _SURROGATE.search(value):
            raise BadRequest(f"{key}: not valid Unicode (a lone surrogate)")
        merged.append((key, str(value).lower() if isinstance(value, bool) else str(value)))
    return MultiDict(merged)


def printable(text: str) -> str:
    """`text` with lone surrogates escaped, so an error message can always be encoded."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


async def limited_body(request: Request) -> bytes:
    """The body, refused past MAX_BODY_BYTES before it is all read: the endpoints that take
    one answer anyone on the internet."""
    try:
        return await read_body(request, MAX_BODY_BYTES)
    except BodyTooLarge as exc:
        raise BadRequest(str(exc)) from None
