"""Request bodies from browsers and clients, bounded before anything is parsed.

    form = await read_form(request)      # FormRefused (413, 415, 400) otherwise
    form = await submitted_form(request) # also this session's CSRF token; else the page to answer

Every form the gateway serves is a few short fields, posted as
`application/x-www-form-urlencoded`. Anything else (multipart, which Starlette would spool
to disk; a body past MAX_BODY_BYTES; more than MAX_FORM_FIELDS fields) is refused before a
byte of it is parsed, and before the CSRF check, which itself needs the parsed form.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

MAX_BODY_BYTES = 64 * 1024  # a signed sync query (8 KB) and its form fit many times over
MAX_FORM_FIELDS = 20
FORM_TYPE = "application/x-www-form-urlencoded"


class BodyTooLarge(Exception):
    """The body is larger than allowed; the message says how large it may be."""


class FormRefused(Exception):
    """A form body refused before parsing: 413 (too large, too many fields), 415 (not a form)
    or 400 (not UTF-8). The message names the body and what was wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message

    def page(self, request: Request) -> Response:
        from gateway.web.ui import error_page  # pages sit above request parsing

        return error_page(request, "Request refused", self.message, self.status,
                          detail="Nothing was done. Go back, reload the page and try again.")


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refused past `limit` bytes (declared or streamed) before the rest is read."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BodyTooLarge(f"body: larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"body: larger than {limit} bytes")
    return bytes(body)


async def read_form(request: Request, max_fields: int = MAX_FORM_FIELDS) -> FormData:
    """The urlencoded form of `request`, at most MAX_BODY_BYTES and `max_fields` fields."""
    kind = content_type(request)
    if kind == "":  # a bare POST (no body, no type) is an empty form; any body needs the type
        try:
            await read_body(request, limit=0)
        except BodyTooLarge:
            raise FormRefused(415, f"body: send {FORM_TYPE}, not a body without a content type") from None
        return FormData()
    if kind != FORM_TYPE:
        raise FormRefused(415, f"body: send {FORM_TYPE}, not {kind}")
    try:
        body = await read_body(request)
    except BodyTooLarge as exc:
        raise FormRefused(413, str(exc)) from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise FormRefused(400, "body: not UTF-8 text") from None
    try:
        return FormData(parse_qsl(text, keep_blank_values=True, max_num_fields=max_fields))
    except ValueError:  # parse_qsl counts the separators before it parses anything
        raise FormRefused(413, f"body: more than {max_fields} fields") from None


async def submitted_form(request: Request, max_fields: int = MAX_FORM_FIELDS) -> FormData | Response:
    """The posted form of a page, when its body is within bounds and it carries this
    session's CSRF token; otherwise the page to answer with, and nothing is done."""
    from gateway.web.auth.session import CSRF_FIELD, csrf_ok

    try:
        form = await read_form(request, max_fields)
    except FormRefused as refused:
        return refused.page(request)
    if not csrf_ok(request, form.get(CSRF_FIELD)):
        return expired_form_page(request)
    return form


def expired_form_page(request: Request) -> Response:
    """Every form's answer to a missing or foreign CSRF token."""
    from gateway.web.auth.session import CSRF_FIELD
    from gateway.web.ui import error_page

    return error_page(request, "This form has expired",
                      f"{CSRF_FIELD}: the form's security token is missing or not this session's, "
                      "so nothing was done.", 403,
                      detail="Go back, reload the page and try again.")
