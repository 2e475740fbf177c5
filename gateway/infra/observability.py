"""Operations: JSON logs without secrets, Prometheus metrics, `/healthz`, `/readyz` and `/metrics`.

Logs: `configure_logging()` applies a logging config and returns it as a dict. Pass that
dict to uvicorn (`uvicorn.run(app, log_config=configure_logging())`) so that uvicorn,
which applies its own logging config when it starts, keeps it: every line on stderr is
then one JSON object, access lines included. Secrets (OAuth codes, tokens, client
secrets, request signatures, passwords) are replaced by `[redacted]` before a line is
written, whichever logger wrote it.

Metrics live in a `Metrics` object with its own `CollectorRegistry`, so two apps in one
process (tests, benchmarks) never share counters. `/metrics` is for a scraper: the app
serves it only to a bearer of `[metrics] token`, or on the separate `metrics.listen` address
(`metrics_app`), so a public gateway does not show its traffic to anyone who asks.
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
import json
import logging
import logging.config
import platform
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TextIO
from urllib.parse import unquote

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "APPLY_FLOWS", "APPLY_OUTCOMES", "AUDIT_LOGGER", "HealthCheck", "JsonFormatter", "Metrics", "Readiness",
    "RedactSecrets",
    "RequestMetricsMiddleware", "audit_log", "configure_logging", "install_redaction", "observability_routes",
    "redact",
]

AUDIT_LOGGER = "dcgw.audit"
REDACTED = "[redacted]"

# -- redaction ---------------------------------------------------------------------------------

# Names whose values are secrets wherever they appear: query strings, form bodies, JSON, audit fields.
# `key` (the DNS name of a signing key) and `state` are not secret and stay readable.
SECRET_NAMES = ("sig", "client_secret", "code", "access_token", "refresh_token", "token", "password")
# A parameter name as sent: letters, digits, `_.-`, and percent escapes (`client%5Fsecret` is
# client_secret to the server that decodes it), except those of `&`, `=` and `?`, which end it.
_NAME_CHAR = r"(?:[\w.-]|%(?!26|3d|3f)[0-9a-f]{2})"
# name=value, also percent-encoded inside another parameter (redirect_uri=...%3Fcode%3Dabc).
_QUERY_PAIR = re.compile(
    rf"(?i)(?:(?<![\w.%-])|(?<=%26)|(?<=%3f))({_NAME_CHAR}+)(=|%3d)([^&\s\"'#;,]+)")
# "name": "value" in JSON text, e.g. a request body quoted in an error message.
_JSON_PAIR = re.compile(r'("((?:[^"\\]|\\.)*)"\s*:\s*)"(?:[^"\\]|\\.)*"')
_BEARER = re.compile(r"(?i)\b(bearer\s+)[\w.~+/=-]+")
_DECODE_ROUNDS = 3  # a name encoded twice or three times still decodes to itself


def redact(text: str) -> str:
    """`text` with every secret value replaced by `[redacted]`; names are compared decoded."""
    text = _redact_query_pairs(text)
    text = _JSON_PAIR.sub(_redact_json_pair, text)
    return _BEARER.sub(rf"\1{REDACTED}", text)


def _redact_query_pairs(text: str) -> str:
    # Not re.sub: the value of a harmless name (redirect_uri) may hold a secret pair of its own
    # (%3Fcode%3Dabc), so scanning goes on right after the `=` of every name that is not secret.
    parts, copied, position = [], 0, 0
    while (match := _QUERY_PAIR.search(text, position)) is not None:
        name = match.group(1)
        for _ in range(_DECODE_ROUNDS):
            name = unquote(name)
        if _is_secret_field(name):
            parts += [text[copied:match.start(3)], REDACTED]
            copied = position = match.end(3)
        else:
            position = match.end(2)
    return "".join([*parts, text[copied:]])


def _redact_json_pair(match: re.Match[str]) -> str:
    try:
        name = json.loads(f'"{match.group(2)}"')  # "client\u005fsecret" is client_secret
    except ValueError:
        name = match.group(2)
    return f'{match.group(1)}"{REDACTED}"' if _is_secret_field(name) else match.group(0)


def _is_secret_field(name: str) -> bool:
    lowered = name.lower()
    return lowered in SECRET_NAMES or lowered.endswith(("_secret", "_token", "password"))


class RedactSecrets(logging.Filter):
    """Rewrites a record's message and arguments so no handler, JSON or not, sees a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: (REDACTED if _is_secret_field(str(k)) else redact(v) if isinstance(v, str) else v)
                           for k, v in record.args.items()}
        return True


# Loggers that see request URLs or credentials. A filter on a logger covers what is logged on
# it, whatever handlers and formatters an embedding application sets up.
REDACTED_LOGGERS = ("uvicorn.access", "uvicorn.error", "gateway", "backends", AUDIT_LOGGER)


def install_redaction() -> None:
    """Redact secrets on the gateway's and uvicorn's loggers even when `configure_logging`
    is not used (an app served by someone else's uvicorn or gunicorn set-up)."""
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


# -- JSON lines ----------------------------------------------------------------------------------

_AUDIT_ATTRIBUTE = "dcgw_audit"
_RESERVED_AUDIT_FIELDS = frozenset({"time", "level", "logger", "action"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the fields of access
    and audit records. Every value is redacted again here, whatever a record carried."""

    def __init__(self, use_colors: bool | None = None) -> None:  # uvicorn may pass use_colors
        super().__init__()

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        audit = getattr(record, _AUDIT_ATTRIBUTE, None)
        if isinstance(audit, dict):
            document.update(audit)
        else:
            document["message"] = record.getMessage()
            if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
                client, method, path, http_version, status = record.args
                document.update(client=client, method=method, path=path, http_version=http_version, status=status)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(_redacted(document), ensure_ascii=False)


def _redacted(value: Any) -> Any:
    """`value` as JSON-ready data, every string redacted and every secret-named field hidden.
    Redacting values, not the encoded line, keeps the line valid JSON whatever was quoted."""
    if isinstance(value, Mapping):
        return {str(k): REDACTED if _is_secret_field(str(k)) else _redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redacted(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(value if isinstance(value, str) else str(value))


def audit_log(action: str, **fields: Any) -> None:
    """Write one audit line: time, action and `fields` (secret-named fields are redacted).

    `action` is a short dotted verb such as "template.apply" or "oauth.token"."""
    reserved = _RESERVED_AUDIT_FIELDS.intersection(fields)
    if reserved:
        raise ValueError(f"audit_log({action!r}): field {sorted(reserved)[0]!r} is reserved for the line itself")
    document = {"action": action, **fields}  # the formatter hides secret-named fields
    logging.getLogger(AUDIT_LOGGER).info(action, extra={_AUDIT_ATTRIBUTE: document})


def logging_config(level: str = "INFO", stream: TextIO | None = None) -> dict[str, Any]:
    """The `logging.config.dictConfig` dict `configure_logging` applies (and uvicorn accepts)."""
    level = level.upper()
    handler: dict[str, Any] = {"class": "logging.StreamHandler", "filters": ["redact_secrets"]}
    handler["stream"] = stream if stream is not None else "ext://sys.stderr"
    ours = {"level": level, "handlers": ["json"], "propagate": False}
    return {
        "version": 1,
        # Loggers created at import time (gateway.infra.config, ...) must keep working.
        "disable_existing_loggers": False,
        "filters": {"redact_secrets": {"()": RedactSecrets}},
        # uvicorn sets `use_colors` on formatters named "default" and "access" when asked to.
        "formatters": {"default": {"()": JsonFormatter}, "access": {"()": JsonFormatter}},
        "handlers": {"json": {**handler, "formatter": "default"}, "access": {**handler, "formatter": "access"}},
        "loggers": {
            "gateway": ours,
            "backends": ours,
            # Audit lines are records of what happened, not diagnostics: written at any level.
            AUDIT_LOGGER: {**ours, "level": "INFO"},
            "uvicorn": ours,
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": level, "handlers": ["access"], "propagate": False},
        },
        # Libraries (httpx, alembic, botocore) only when something is wrong.
        "root": {"level": "WARNING", "handlers": ["json"]},
    }


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> dict[str, Any]:
    """Send the gateway's, uvicorn's and the audit logger's records to stderr as JSON lines.

    Applies the config at once (so start-up messages are JSON too) and returns it: pass
    it on as `uvicorn.run(..., log_config=...)`, or uvicorn replaces it with its own.
    `stream` is for tests; the default is stderr."""
    if logging.getLevelName(level.upper()) == f"Level {level.upper()}":
        raise ValueError(f"log level {level!r} is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
    config = logging_config(level, stream)
    logging.config.dictConfig(config)
    return config


# -- metrics -------------------------------------------------------------------------------------

APPLY_OUTCOMES = frozenset({"applied", "nothing", "conflict", "zone_changed", "error"})
APPLY_FLOWS = frozenset({"sync", "api", "cli"})
TOKEN_EVENTS = frozenset({"issued", "refreshed", "revoked"})


def _gateway_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("domainconnect-gateway")
    except PackageNotFoundError:
        return "unknown"


def metrics_of(request: Request) -> Metrics | None:
    """The running gateway's metrics, or None for routes mounted without a runtime."""
    runtime = getattr(request.app.state, "runtime", None)
    return getattr(runtime, "metrics", None)
UNMATCHED_ROUTE = "<unmatched>"


class Metrics:
    """The gateway's Prometheus metrics, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.applies = Counter(
            "dcgw_applies", "Template applies by backend, outcome and flow",
            ["backend", "outcome", "flow"], registry=self.registry)
        self.signature_failures = Counter(
            "dcgw_signature_failures", "Synchronous-flow requests refused for their signature, by reason",
            ["reason"], registry=self.registry)
        self.request_duration = Histogram(
            "dcgw_request_duration_seconds", "HTTP request time by route template, method and status",
            ["route", "method", "status"], registry=self.registry)
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self.backend_duration = Histogram(
            "dcgw_backend_call_duration_seconds", "Backend call time by backend and operation",
            ["backend", "operation"], registry=self.registry)
        self.backend_errors = Counter(
            "dcgw_backend_errors", "Backend calls that failed, by backend, operation and kind (error, zone_changed)",
            ["backend", "operation", "kind"], registry=self.registry)
        self.sign_in_failures = Counter(
            "dcgw_sign_in_failures", "Sign-ins refused, by reason (credentials, locked)", ["reason"],
            registry=self.registry)
        self.sign_in_lockouts = Counter(
            "dcgw_sign_in_lockouts", "Usernames or addresses locked out after too many failed sign-ins",
            registry=self.registry)
        self.tokens = Counter(
            "dcgw_tokens", "OAuth tokens by event (issued, refreshed, revoked)", ["event"], registry=self.registry)
        self.templates_loaded = Gauge(
            "dcgw_templates_loaded", "Templates onboarded now", registry=self.registry)
        self.templates_last_reload = Gauge(
            "dcgw_templates_last_reload_timestamp_seconds", "When the templates were last (re)loaded, Unix time",
            registry=self.registry)
        self.build_info = Gauge(
            "dcgw_build_info", "Always 1; the labels say which gateway runs", ["version", "python"],
            registry=self.registry)
        self.build_info.labels(version=_gateway_version(), python=platform.python_version()).set(1)

    def apply(self, backend: str, outcome: str, flow: str) -> None:
        if outcome not in APPLY_OUTCOMES:
            raise ValueError(f"outcome {outcome!r} is not one of {', '.join(sorted(APPLY_OUTCOMES))}")
        if flow not in APPLY_FLOWS:
            raise ValueError(f"flow {flow!r} is not one of {', '.join(sorted(APPLY_FLOWS))}")
        self.applies.labels(backend=backend, outcome=outcome, flow=flow).inc()

    def signature_failure(self, reason: str) -> None:
        self.signature_failures.labels(reason=reason).inc()

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        # One histogram child per (route, method, status), found once: `labels` costs more than observing.
        key = (route, method, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.request_duration.labels(
                route=route, method=method, status=str(status))
        child.observe(seconds)

    def backend_call(self, backend: str, operation: str, seconds: float, failure: str | None = None) -> None:
        self.backend_duration.labels(backend=backend, operation=operation).observe(seconds)
        if failure is not None:
            self.backend_errors.labels(backend=backend, operation=operation, kind=failure).inc()

    def sign_in_failure(self, reason: str, locked_out: bool = False) -> None:
        self.sign_in_failures.labels(reason=reason).inc()
        if locked_out:
            self.sign_in_lockouts.inc()

    def token_event(self, event: str) -> None:
        if event not in TOKEN_EVENTS:
            raise ValueError(f"event {event!r} is not one of {', '.join(sorted(TOKEN_EVENTS))}")
        self.tokens.labels(event=event).inc()

    def templates_reloaded(self, loaded: int, at: float) -> None:
        self.templates_loaded.set(loaded)
        self.templates_last_reload.set(at)

    def exposition(self) -> bytes:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry)


def route_template(routes: Iterable[BaseRoute], scope: Scope) -> str | None:
    """The path template (`/v2/{domain}/settings`) of the route `scope` goes to, or None.

    Never the raw path: it holds domain names, and one label value per domain would grow
    the metrics without bound."""
    partial: str | None = None
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is Match.NONE:
            continue
        template = _template_of(route, {**scope, **child_scope})
        if match is Match.FULL:
            return template
        if partial is None:
            partial = template
    return partial


def _template_of(route: BaseRoute, child_scope: Scope) -> str | None:
    if isinstance(route, Mount):
        inner_routes = route.routes
        if inner_routes:
            inner = route_template(inner_routes, child_scope)
            return None if inner is None else route.path + inner
        return route.path_format
    return getattr(route, "path_format", None)


class RequestMetricsMiddleware:
    """Times every HTTP request into `dcgw_request_duration_seconds` (pure ASGI: no body
    buffering, streaming responses pass straight through)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Routing rewrites the scope (root_path, path_params) on the way in: match on a copy.
        request_scope = dict(scope)
        status = 500  # what the client gets when the app raises before answering
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = time.perf_counter() - started
            routes = getattr(scope.get("app"), "routes", None) or getattr(scope.get("router"), "routes", ())
            route = _routed_template(routes, scope) or route_template(routes, request_scope) or UNMATCHED_ROUTE
            self.metrics.observe_request(route, scope["method"], status, elapsed)


def _routed_template(routes: Iterable[BaseRoute], scope: Scope) -> str | None:
    """The template of the route the router chose (it leaves it in `scope["route"]`) when that is
    a plain route of the top level; None otherwise (a mount's route needs its prefix: match again)."""
    chosen = scope.get("route")
    if not isinstance(chosen, Route):
        return None
    known = _top_level_routes(routes).get(id(chosen))
    return known.path_format if known is chosen else None


_routes_indexed: tuple[object, dict[int, Route]] = (None, {})


def _top_level_routes(routes: Iterable[BaseRoute]) -> dict[int, Route]:
    """{id(route): route} of the plain routes in `routes`, made once per routes list rather
    than searched on every request."""
    global _routes_indexed
    seen, index = _routes_indexed
    if seen is not routes:
        index = {id(route): route for route in routes if isinstance(route, Route)}
        _routes_indexed = (routes, index)
    return index


# -- /healthz, /readyz and /metrics -------------------------------------------------------------------

HealthCheck = Callable[[], Any | Awaitable[Any]]
CHECK_TIMEOUT_SECONDS = 5.0
health_log = logging.getLogger("gateway.health")
_LIVE_BODY = b'{"status":"ok"}'
_NO_STORE = {"Cache-Control": "no-store"}


async def _run_check(name: str, check: HealthCheck, timeout: float) -> str | None:
    """None when the check passes, otherwise why it failed (the details go to the log only:
    /readyz is often public and an exception may name hosts or database URLs)."""
    try:
        if inspect.iscoroutinefunction(check):
            await asyncio.wait_for(check(), timeout)
        else:
            result = await asyncio.wait_for(run_in_threadpool(check), timeout)
            if inspect.isawaitable(result):
                await asyncio.wait_for(result, timeout)
    except asyncio.TimeoutError:
        health_log.warning("health check %s timed out after %.1f s", name, timeout)
        return f"timed out after {timeout:g} s"
    except Exception as exc:  # any failure of a check is the answer, not a crash of /healthz
        health_log.warning("health check %s failed: %s: %s", name, type(exc).__name__, exc)
        return f"failed ({type(exc).__name__})"
    return None


READY_CACHE_SECONDS = 2.0


class Readiness:
    """Runs every check in parallel, each under its own timeout, at most once per
    `cache_seconds` however many callers ask: a flood of `/readyz` requests reaches the
    database and the backends once per period, never once per request."""

    def __init__(self, checks: Mapping[str, HealthCheck], timeout: float, cache_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.checks = dict(checks)
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._answer: tuple[float, dict[str, str]] | None = None
        self._lock: asyncio.Lock | None = None  # made in the serving loop, on first use

    async def failing(self) -> dict[str, str]:
        """Each failing check's name and why; empty when everything answered."""
        if self._fresh() is not None:
            return self._fresh()
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # callers arriving during a run wait for its answer
            answer = self._fresh()
            if answer is None:
                names = list(self.checks)
                results = await asyncio.gather(*(_run_check(n, self.checks[n], self.timeout) for n in names))
                answer = {name: why for name, why in zip(names, results) if why is not None}
                self._answer = (self.clock(), answer)
            return answer

    def _fresh(self) -> dict[str, str] | None:
        if self._answer is not None and self.clock() - self._answer[0] < self.cache_seconds:
            return self._answer[1]
        return None


def observability_routes(metrics: Metrics, checks: Mapping[str, HealthCheck] | None = None,
                         timeout: float = CHECK_TIMEOUT_SECONDS, cache_seconds: float = READY_CACHE_SECONDS, *,
                         serve_metrics: bool = True, metrics_token: str | None = None) -> list[Route]:
    """`GET /healthz`, `GET /readyz`, and `GET /metrics` when `serve_metrics` (only to a
    bearer of `metrics_token` when one is given).

    `/healthz` is liveness: 200 `{"status": "ok"}` while the process serves requests; it
    touches neither the database nor a backend, so a slow backend never gets the gateway
    restarted. `/readyz` is readiness: it runs every check (sync or async callables;
    raising means failing) in parallel and answers 200 `{"status": "ok"}`, or 503 naming
    each failing one: `{"status": "unavailable", "failing": {"pdns": "timed out after 5 s"}}`.
    Its answer is cached for `cache_seconds`."""
    readiness = Readiness(checks or {}, timeout, cache_seconds)

    async def healthz(request: Request) -> Response:
        return Response(_LIVE_BODY, media_type="application/json", headers=_NO_STORE)

    async def readyz(request: Request) -> Response:
        failing = await readiness.failing()
        if failing:
            return JSONResponse({"status": "unavailable", "failing": failing}, status_code=503, headers=_NO_STORE)
        return Response(_LIVE_BODY, media_type="application/json", headers=_NO_STORE)

    health = [Route("/healthz", healthz, methods=["GET"], name="healthz"),
              Route("/readyz", readyz, methods=["GET"], name="readyz")]
    return health + (metrics_routes(metrics, metrics_token) if serve_metrics else [])


def metrics_routes(metrics: Metrics, token: str | None = None) -> list[Route]:
    """`GET /metrics`; with `token`, only for `Authorization: Bearer <token>` (else 401)."""

    async def metrics_endpoint(request: Request) -> Response:
        if token is not None:
            scheme, _, presented = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(presented.strip().encode(), token.encode()):
                return JSONResponse({"error": "metrics: present the [metrics] token as a bearer token"}, 401,
                                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return [Route("/metrics", metrics_endpoint, methods=["GET"], name="metrics_endpoint")]
