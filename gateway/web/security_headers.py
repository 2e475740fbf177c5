"""Headers every response carries, whatever route or error answered it.

Pages and redirects of the consent flows carry authorization codes and CSRF tokens:
`Referrer-Policy: no-referrer` keeps them out of the Referer of whatever the page links to,
and `X-Content-Type-Options: nosniff` stops a browser reading a JSON or text answer as HTML.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
# As ASGI sends them, encoded once.
_RAW_HEADERS = tuple((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in HEADERS.items())


class SecurityHeadersMiddleware:
    """Adds HEADERS to every HTTP response that does not set them itself (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers += [header for header in _RAW_HEADERS if header[0] not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
