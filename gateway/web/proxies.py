"""Client addresses behind a reverse proxy or load balancer.

With `[server] forwarded_allow_ips`, uvicorn's proxy-header handling (its
ProxyHeadersMiddleware) takes the client address and scheme from X-Forwarded-For and
X-Forwarded-Proto, but only on connections from those proxies; from anyone else, and
without the setting, the TCP peer is the client. The throttles count per client address,
so behind a proxy without this setting every client shares the proxy's one address.

The TCP peer is kept beside the rewritten address: the header sign-in believes its
headers by who connected (the proxy), not by whom the proxy says it forwards.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from gateway.infra.config import Config

TCP_PEER = "dcgw.tcp_peer"  # scope key: (host, port) of the connection itself


class KeepTcpPeer:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            scope[TCP_PEER] = scope.get("client")
        await self.app(scope, receive, send)


def forwarding_middleware(config: Config) -> list[Middleware]:
    """The outermost layers of the app: none unless forwarded_allow_ips lists proxies."""
    proxies = list(config.server.forwarded_allow_ips)
    if not proxies:
        return []
    return [Middleware(KeepTcpPeer), Middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)]


def tcp_peer_host(request: HTTPConnection) -> str | None:
    """The address of whoever opened the connection, whatever X-Forwarded-For says."""
    peer = request.scope.get(TCP_PEER, request.scope.get("client"))
    return peer[0] if peer else None


def forwarding_warning(config: Config) -> str | None:
    """What start-up warns about: a proxy in front (header sign-in) whose forwarded addresses are not believed."""
    if config.auth.driver == "header" and not config.server.forwarded_allow_ips:
        return ("auth.driver is 'header', so a proxy is in front, but [server] forwarded_allow_ips is not set: "
                "every client's address is the proxy's, and the sign-in and client-authentication throttles "
                "count them all as one; list the proxies' addresses in forwarded_allow_ips")
    return None
