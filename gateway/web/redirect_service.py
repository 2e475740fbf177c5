"""The web redirect service behind REDIR301 and REDIR302.

A template's redirect makes its host's A/AAAA records point at the gateway (`[redirects]
addresses`) and leaves a row in the state store. Any HTTP request whose Host is such a name
is answered here, before the gateway's own routes, with 301 or 302 and `Location: <target>`,
whatever its path. The rows live in the shared database, so every replica answers alike.

TLS for redirected names is a front proxy's job. `GET /redirects/allowed?domain=NAME`
answers 200 when NAME is a redirected name and 404 otherwise, which is what an on-demand-TLS
proxy (Caddy's `on_demand_tls { ask ... }`) asks before it gets a certificate for a name.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import re

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.state import StateStore

log = logging.getLogger(__name__)

MAX_HOST = 253
_HOST_NAME = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)+$")


def redirect_name(text: str) -> str | None:
    """A Host header or `domain` parameter as the store keeps redirected names (lower case,
    no port, no final dot), or None when it cannot be one (an IP address, junk)."""
    host = text.strip().lower()
    if host.startswith("["):
        return None  # an IPv6 literal
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    host = host.rstrip(".")
    if not host or len(host) > MAX_HOST or not _HOST_NAME.match(host):
        return None
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        return host


class WebRedirects:
    """ASGI middleware: requests for a redirected name get the redirect; all others go on to
    the gateway. The gateway's own host names never cost a database lookup."""

    def __init__(self, app: ASGIApp, store: StateStore, own_hosts: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.store = store
        self.own_hosts = own_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            name = _host_name(next((value for key, value in scope["headers"] if key == b"host"), b""))
            if name is not None and name not in self.own_hosts:
                response = await self.answer(name)
                if response is not None:
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def answer(self, name: str) -> Response | None:
        try:
            redirect = await run_in_threadpool(self.store.web_redirect, name)
        except SQLAlchemyError as exc:
            log.error("web redirect lookup for %s failed: %s", name, exc)
            return PlainTextResponse("The redirect service is unavailable; try again later.\n", 503)
        if redirect is None:
            return None
        return Response(status_code=redirect.code, headers={"Location": redirect.target})


@functools.lru_cache(maxsize=1024)
def _host_name(host: bytes) -> str | None:
    # Clients send the same few Host headers again and again; the cache is bounded for the others.
    return redirect_name(host.decode("latin-1"))


def allowed_route(store: StateStore) -> Route:
    async def allowed(request: Request) -> Response:
        name = redirect_name(request.query_params.get("domain", ""))
        if name is None:
            return JSONResponse({"error": "invalid_request", "error_description": "domain: not a host name"}, 400)
        try:
            redirect = await run_in_threadpool(store.web_redirect, name)
        except SQLAlchemyError as exc:
            log.error("web redirect lookup for %s failed: %s", name, exc)
            return JSONResponse({"error": "temporarily_unavailable"}, 503)
        if redirect is None:
            return JSONResponse({"error": "not_found"}, 404)
        return JSONResponse({"domain": name})

    return Route("/redirects/allowed", allowed, methods=["GET"], name="redirects_allowed")
