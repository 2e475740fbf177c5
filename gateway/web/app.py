"""The Starlette application: discovery, the synchronous and OAuth flows, sign-in, operations.

    create_app(load_config("config.toml"))

Every public URL (urlSyncUX, urlAsyncUX, urlAPI) is `[gateway] base_url`; the app serves
them from its root. Behind a proxy that adds a path prefix, run uvicorn with `--root-path`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from gateway.apply.intents import StateUnavailable
from gateway.infra.config import Config
from gateway.infra.observability import RequestMetricsMiddleware, observability_routes
from gateway.web import oauth
from gateway.web.auth import zones
from gateway.web.auth.routes import login_routes
from gateway.web.auth.session import SESSION_LIFETIME, SessionLoader, current_user
from gateway.web.connections import connection_routes
from gateway.web.discovery import settings, template_version
from gateway.web.oauth.consent import consent_page
from gateway.web.proxies import forwarding_middleware
from gateway.web.redirect_service import WebRedirects, allowed_route, redirect_name
from gateway.web.runtime import Runtime
from gateway.web.security_headers import SecurityHeadersMiddleware
from gateway.web.sync.routes import sync_routes
from gateway.web.ui import STATIC_DIR, brand_css, error_page, render_page

log = logging.getLogger(__name__)

log = logging.getLogger(__name__)

SESSION_COOKIE = "dcgw_session"
SESSION_MAX_AGE = int(SESSION_LIFETIME.total_seconds())
HOUSEKEEPING_INTERVAL = 10 * 60  # seconds between purges of expired sessions, pages and counters


async def template_or_consent(request: Request) -> Response:
    """One path, two meanings: the template query, or the OAuth consent URL in its
    `/services/{serviceId}` form, which always carries client_id and response_type."""
    if "client_id" in request.query_params or "response_type" in request.query_params:
        return await consent_page(request)
    return template_version(request)


class PageSessions(SessionMiddleware):
    """The signed session cookie, for every path but those no person browses to: probes,
    metrics and settings discovery never read a session, and are asked most often."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path in SESSIONLESS_PATHS or (path.startswith("/v2/") and path.endswith("/settings")
                                        and path.count("/") == 3):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


SESSIONLESS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def failure_response(request: Request, status: int, code: str, message: str) -> Response:
    """A failure no handler answered: JSON for programs, the error page for browsers."""
    if "text/html" in request.headers.get("accept", ""):
        try:
            return error_page(request, "Try again in a moment" if status == 503 else "Something went wrong",
                              message, status)
        except Exception:  # noqa: BLE001  the page itself needs the session, which may be what failed
            pass
    return JSONResponse({"code": code, "message": message}, status)


async def state_unavailable(request: Request, exc: Exception) -> Response:
    log.error("%s %s: state store unavailable: %s", request.method, request.url.path, exc)
    return failure_response(request, 503, "temporarily_unavailable",
                            "the gateway's state store is unavailable; nothing was changed, try again later")


async def unexpected(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return failure_response(request, 500, "server_error", "the gateway failed to answer; nothing was changed")


def home(request: Request) -> Response:
    # A plain function: Starlette runs it in its thread pool, where asking the zone source may wait.
    user = current_user(request)
    managed, unchecked = (), ""
    if user is not None:
        try:
            managed = tuple(sorted(zones.zones_of(request.app.state.runtime.authenticator, user)))
        except zones.ZonesUnavailable:
            unchecked = zones.UNAVAILABLE
    return render_page(request, "home.html", {"user": user, "managed": managed, "zones_unchecked": unchecked})


def own_hosts(config: Config) -> frozenset[str]:
    """The gateway's own host names, which are never looked up as redirected names."""
    name = redirect_name(urlsplit(config.gateway.base_url).netloc)
    return frozenset([name] if name else [])
def watch_sighup(runtime: Runtime) -> bool:
    """Reload the templates on SIGHUP, off the event loop; False where signals cannot be
    handled (not the main thread, as under a test client)."""
    loop = asyncio.get_running_loop()

    def reload_logged() -> None:
        try:
            runtime.reload_templates()
        except Exception:  # a signal handler has no caller to tell: the log is where it goes
            log.exception("templates reload failed; the templates loaded before stay")

    def reload() -> None:
        loop.run_in_executor(None, reload_logged)

    try:
        loop.add_signal_handler(signal.SIGHUP, reload)
    except (RuntimeError, ValueError, NotImplementedError, AttributeError):
        return False
    return True


def create_app(config: Config, runtime: Runtime | None = None) -> Starlette:
    """The gateway for `config`; pass `runtime` to reuse one already built (tests, benchmarks)."""
    runtime = runtime or Runtime.from_config(config)

    async def housekeeping() -> None:
        while True:
            try:
                await run_in_threadpool(runtime.tidy_store)
            except Exception:  # a database down for a while must not end the loop
                log.exception("purging expired sessions and counters failed; trying again later")
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        reloading = watch_sighup(runtime)
        # What start-up built (templates, config, imported modules) lives as long as the process:
        # out of the collector's sight, a collection costs what a request allocates, not the heap.
        gc.freeze()
        # Settled in the background: a backend that hangs must not keep the gateway from serving.
        settling = asyncio.get_running_loop().run_in_executor(None, runtime.settle_pending)
        tidying = asyncio.create_task(housekeeping())
        try:
            yield
        finally:
            tidying.cancel()
            await asyncio.wait([settling], timeout=1)
            if reloading:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            runtime.close()

    routes = [
        # Discovery and probes first: they are asked most, and routing tries routes in order.
        Route("/v2/{domain}/settings", settings, methods=["GET"]),
        # /readyz runs the database check; /metrics here only for a bearer of [metrics] token
        # (`dcgw serve` serves metrics.listen).
        *observability_routes(runtime.metrics, runtime.readiness_checks(),
                              serve_metrics=config.metrics.token is not None, metrics_token=config.metrics.token),
        Route("/", home, methods=["GET"], name="home"),
        Route("/v2/domainTemplates/providers/{provider_id}/services/{service_id}", template_or_consent,
              methods=["GET"]),
        *sync_routes(),
        *oauth.routes(runtime.store, runtime.router, runtime.templates, authenticator=runtime.authenticator,
                      **runtime.config.apply_policies(), metrics=runtime.metrics,
                      extensions=runtime.extensions),
        *login_routes(),
        *connection_routes(),
        *runtime.authenticator.routes(),
        allowed_route(runtime.store),
        Route("/brand.css", brand_css, name="brand_css"),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    secure_cookies = config.gateway.base_url.startswith("https://")
    middleware = [
        *forwarding_middleware(config),
        Middleware(RequestMetricsMiddleware, metrics=runtime.metrics),
        Middleware(SecurityHeadersMiddleware),
        # Host-based, ahead of every route: a redirected name is never the gateway itself.
        Middleware(WebRedirects, store=runtime.store, own_hosts=own_hosts(config)),
        Middleware(PageSessions, secret_key=config.gateway.signing_secret(), session_cookie=SESSION_COOKIE,
                   max_age=SESSION_MAX_AGE, same_site="lax", https_only=secure_cookies),
        Middleware(SessionLoader),
    ]
    handlers = {SQLAlchemyError: state_unavailable, StateUnavailable: state_unavailable, Exception: unexpected}
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan, exception_handlers=handlers)
    app.state.runtime = runtime
    return app
