"""Discovery: `GET /v2/{domain}/settings` and the template query
`GET /v2/domainTemplates/providers/{providerId}/services/{serviceId}` (spec "DNS Provider
Discovery", "Query Supported Template")."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import dns.name
import dns.rdatatype
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from backends.base import BackendError
from gateway.apply.extensions import applicable
from gateway.engine.domains import DomainError, idna_domain

NOT_FOUND = {"error": "not_found"}

log = logging.getLogger(__name__)


def settings_body(runtime, domain: str, name_servers: list[str]) -> dict:
    gateway = runtime.config.gateway
    body = {
        "providerId": gateway.provider_id,
        "providerName": gateway.provider_name,
        "providerDisplayName": gateway.provider_display_name,
        "urlSyncUX": gateway.base_url,
        "urlAsyncUX": gateway.base_url,
        "urlAPI": gateway.base_url,
        "width": gateway.width,
        "height": gateway.height,
    }
    if gateway.control_panel_url:
        body["urlControlPanel"] = gateway.control_panel_url.replace("%domain%", domain)
    if name_servers:
        body["nameServers"] = name_servers
    return body


class SettingsCache:
    """Settings answers by domain for a short while. Every service provider asks for them before
    anything else, the answer changes only when a zone is added or removed, and a backend
    round trip per ask would make discovery the gateway's slowest endpoint."""

    def __init__(self, ttl: float = 60.0, not_found_ttl: float = 10.0, maxsize: int = 10_000,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self._ttl = {200: ttl, 404: not_found_ttl}  # a new zone is found again soon
        self._maxsize = maxsize
        self._timer = timer
        # domain -> (expiry, answer), oldest first. A read is one dict lookup, without the
        # lock: the most frequent request the gateway answers pays nothing else.
        self._answers: dict[str, tuple[float, tuple[int, bytes]]] = {}
        self._lock = threading.Lock()

    def get(self, domain: str) -> tuple[int, bytes] | None:
        entry = self._answers.get(domain)
        if entry is None or entry[0] <= self._timer():
            return None
        return entry[1]

    def put(self, domain: str, answer: tuple[int, bytes]) -> None:
        ttl = self._ttl.get(answer[0])
        if ttl is None:
            return  # a failure is asked again
        with self._lock:
            now = self._timer()
            if domain not in self._answers and len(self._answers) >= self._maxsize:
                # Expired entries go first, then the oldest, down to 90% so that a run of new
                # domains rebuilds the dict once per tenth of the bound, not on every ask.
                live = {d: e for d, e in self._answers.items() if e[0] > now}
                while live and len(live) > self._maxsize * 0.9:
                    del live[next(iter(live))]
                self._answers = live
            self._answers.pop(domain, None)  # re-inserted last: the newest
            self._answers[domain] = (now + ttl, answer)


async def settings(request: Request) -> Response:
    runtime = request.app.state.runtime
    try:
        domain = idna_domain(request.path_params["domain"])
    except DomainError as exc:
        return JSONResponse({"error": "invalid_request", "error_description": str(exc)}, 400)
    answer = runtime.settings_cache.get(domain)
    if answer is None:
        status, body = await run_in_threadpool(look_up_settings, runtime, domain)
        answer = (status, JSONResponse(body).body)  # encoded once, sent as often as asked
        runtime.settings_cache.put(domain, answer)
    return Response(answer[1], answer[0], media_type="application/json")


def look_up_settings(runtime, domain: str) -> tuple[int, dict]:
    """(status, body) of the settings of `domain`, asking the backend that hosts it."""
    name = dns.name.from_text(domain)
    try:
        backend = runtime.router.zone_backend(name)  # the zone itself only, never a name inside it
        if backend is None:
            return 404, NOT_FOUND
        apex = backend.read(name, {name}, set())
    except BackendError as exc:
        log.error("settings for %s: backend failure: %s", domain, exc)  # details name internal servers
        return 503, {"error": "temporarily_unavailable", "error_description": "the DNS service is unavailable"}
    name_servers = sorted(rd.target.to_text(omit_final_dot=True) for rrset in apex
                          if rrset.rdtype == dns.rdatatype.NS for rd in rrset)
    return 200, settings_body(runtime, domain, name_servers)


def template_version(request: Request) -> Response:
    """200 with `{"version": N}` for an onboarded template (never an empty body: some clients
    fail on one), 404 otherwise. Ids are case-sensitive, as the spec says.

    A template that no configured backend could apply (an extension none of them supports,
    in every group) is 404 too: clients take a 200 as "send the user here"."""
    runtime = request.app.state.runtime
    template = runtime.templates.get((request.path_params["provider_id"], request.path_params["service_id"]))
    if template is None or not any(applicable(template, backend, runtime.extensions)
                                   for backend in runtime.router.backends):
        return JSONResponse(NOT_FOUND, 404)
    return JSONResponse({"version": template.version if template.version is not None else 0})
