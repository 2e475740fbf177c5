"""Bearer-token API: apply and revert a template on a domain the token covers."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import dns.name
import dns.rdatatype
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from backends.base import BackendError, ZoneChanged
from gateway.apply.extensions import NO_EXTENSIONS, GatewayExtensions
from gateway.apply.instances import InstanceResult, apply_instance, record_dicts, revert_instance
from gateway.apply.intents import StateUnavailable, failure_message
from gateway.engine.domains import DomainError, idna_domain, idna_host
from gateway.engine.plan import PlanError
from gateway.engine.render import ApplyContext, RenderError, RenderLimits, TtlPolicy, group_ids
from gateway.engine.safety import SafetyPolicy
from gateway.engine.template import Template
from gateway.infra.observability import Metrics
from gateway.infra.registry import BackendRouter
from gateway.state import AccessRevoked, StateError, StateStore
from gateway.state.models import Grant
from gateway.web.auth import zones
from gateway.web.auth.base import Authenticator
from gateway.web.oauth.approvals import Approved
from gateway.web.oauth.params import BadRequest, request_params

# providerName and serviceName are display text of the consent, never template variables.
RESERVED = {"domain", "host", "groupId", "force", "instanceId", "providerName", "serviceName"}
ZONE_CHANGED_ATTEMPTS = 3

log = logging.getLogger(__name__)


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if self.status == 401 else None
        return JSONResponse({"code": self.code, "message": self.message}, self.status, headers=headers)


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def bearer_grant(store: StateStore, request: Request, *, verified: bool = False) -> Grant:
    """The live grant of the request's bearer token. `verified`: a token this process found
    live before is taken from memory, for a caller that writes only through a transaction that
    checks the token again (apply_instance's `access_token`)."""
    token = bearer_token(request)
    grant = None if token is None else (store.verified_grant if verified else store.grant_for_access_token)(token)
    if grant is None:
        raise revoked()
    return grant


def revoked() -> Refused:
    return Refused(401, "invalid_token", "the access token is missing, expired or revoked")


def covered(grant: Grant, provider_id: str, service_id: str, domain: str, host: str) -> None:
    """The token must cover exactly this provider, service, domain and host."""
    for ok, what in ((grant.client_id == provider_id, "provider"), (service_id in grant.services, "service"),
                     (grant.domain == domain, "domain"), (host in grant.hosts, "host")):
        if not ok:
            raise Refused(403, "insufficient_scope", f"{what}: not covered by this authorization")


def target(params: Mapping) -> tuple[str, str]:
    """domain and host as consent stored them: IDNA, lower case, "" for the apex."""
    try:
        return idna_domain(params.get("domain", "")), idna_host(params.get("host", ""))
    except DomainError as exc:
        raise Refused(400, "invalid_request", str(exc)) from None


def hosting_zone(router: BackendRouter, domain: str):
    """The backend and zone of `domain`, which must be the zone itself, as it was at consent:
    a name that has since become a zone of its own is someone else's now."""
    zone = dns.name.from_text(domain)
    try:
        backend = router.zone_backend(zone)
    except BackendError as exc:
        log.error("cannot route %s: %s", domain, exc)
        raise Refused(503, "temporarily_unavailable", "the DNS service cannot be reached; try again later") from None
    if backend is None:
        raise Refused(404, "zone_not_found", f"domain: {domain} is not a zone hosted here")
    return backend, zone


def still_controls(authenticator: Authenticator, grant: Grant) -> bool:
    """Whether the user who consented still controls the zone: a token must not outlive the
    user's hold on it (gateway.web.auth.zones decides; `Refused` 503 when it cannot tell, and the
    grant stays, so a control panel outage neither widens access nor ends it)."""
    try:
        return zones.still_controls(authenticator, grant.user, grant.domain)
    except zones.ZonesUnavailable:
        raise Refused(503, "temporarily_unavailable", "the domains of the user who authorized this could not "
                                                      "be checked; try again later") from None


def api_routes(store: StateStore, router: BackendRouter, templates: Mapping[tuple[str, str], Template], *,
               authenticator: Authenticator, ttl_policy: TtlPolicy = TtlPolicy(), limits: RenderLimits = RenderLimits(),
               safety: SafetyPolicy = SafetyPolicy(), metrics: Metrics | None = None,
               extensions: GatewayExtensions = NO_EXTENSIONS):
    metrics = metrics or Metrics()

    async def context_of(request: Request, *, verified: bool = False):
        # Before reading a body: strangers get a cheap 401.
        token = bearer_token(request)
        remembered = store.remembered_grant(token) if verified and token is not None else None
        grant = remembered or await run_in_threadpool(bearer_grant, store, request, verified=verified)
        try:
            params = await request_params(request)
        except BadRequest as exc:
            raise Refused(400, "invalid_request", str(exc)) from None
        provider_id, service_id = request.path_params["provider_id"], request.path_params["service_id"]
        domain, host = target(params)
        covered(grant, provider_id, service_id, domain, host)
        template = templates.get((provider_id, service_id))
        if template is None:
            raise Refused(404, "template_not_found", f"template {provider_id}/{service_id}: not found")
        found, controls = await run_in_threadpool(lambda: (hosting_zone(router, domain),
                                                           still_controls(authenticator, grant)))
        if not controls:
            await run_in_threadpool(store.revoke_grant, grant.id, grant.user)
            if metrics is not None:
                metrics.token_event("revoked")
            raise Refused(403, "access_denied", "the user who authorized this no longer controls the domain; "
                                                "the authorization is revoked")
        return params, grant, template, domain, host, found

    async def apply(request: Request) -> Response:
        try:
            params, grant, template, domain, host, (backend, zone) = await context_of(request, verified=True)
            variables = {k: v for k, v in params.items() if k not in RESERVED}
            context = ApplyContext(domain, host, variables, group_ids(params.getlist("groupId")), ttl_policy,
                                   limits, safety)
            force = params.get("force", "").lower() in ("1", "true")
            approved = Approved.of_grant(grant.approved or (), template.service_id, host)
            result = await run_in_threadpool(apply_with_retries, store, backend, template, context,
                                             instance_id=params.get("instanceId"), actor=f"client:{grant.client_id}",
                                             force=force, approved=approved.covers, extensions=extensions,
                                             access_token=bearer_token(request))
        except Refused as refused:
            return refused.response()
        except AccessRevoked:
            return revoked().response()
        except (RenderError, PlanError) as exc:
            return JSONResponse({"code": "invalid_request", "message": str(exc)}, 400)
        except StateUnavailable as exc:
            return unavailable_response(exc)
        except ZoneChanged:
            metrics.apply(backend.name, "zone_changed", "api")
            return JSONResponse({"code": "zone_changed", "message": "the zone kept changing; try again"}, 503)
        except BackendError as exc:
            metrics.apply(backend.name, "error", "api")
            log.error("API apply on %s through backend %r failed: %s", domain, backend.name, exc)
            return JSONResponse({"code": "backend_error", "message": failure_message(exc)}, 502)
        if result.instance is None:
            metrics.apply(backend.name, "conflict", "api")
            return await run_in_threadpool(conflict_response, store, grant, domain, zone, result, approved)
        metrics.apply(backend.name, "applied" if result.changes else "nothing", "api")
        body = {"changed": [{"name": c.name.to_text(), "type": dns.rdatatype.to_text(c.rdtype)}
                            for c in result.changes],
                "records_left_changed": record_dicts(result.changed_since)}
        if template.multi_instance:
            body["instanceId"] = result.instance_id
        return JSONResponse(body)

    async def revert(request: Request) -> Response:
        try:
            params, grant, template, domain, host, (backend, zone) = await context_of(request)
        except Refused as refused:
            return refused.response()
        instance_id = params.get("instanceId")
        try:
            matching = [i for i in await run_in_threadpool(store.instances, domain, host)
                        if (i.provider_id, i.service_id) == (template.provider_id, template.service_id)
                        and (instance_id is None or i.instance_id == instance_id)]
            if not matching:
                return JSONResponse({"warning": "nothing to revert"})
            changed = []
            for instance in matching:
                changed += (await run_in_threadpool(revert_instance, store, backend, zone, instance.id,
                                                    f"client:{grant.client_id}"))[1]
        except StateUnavailable as exc:
            return unavailable_response(exc)
        except StateError:  # reverted meanwhile by another request
            return JSONResponse({"warning": "nothing to revert"})
        except BackendError as exc:
            log.error("API revert on %s through backend %r failed: %s", domain, backend.name, exc)
            return JSONResponse({"code": "backend_error", "message": failure_message(exc)}, 502)
        if changed:
            return JSONResponse({"warning": "records changed since they were applied were left in place",
                                 "records": record_dicts(changed)})
        return Response(status_code=204)

    return apply, revert


def apply_with_retries(store: StateStore, backend, template: Template, context: ApplyContext, *,
                       instance_id: str | None, actor: str, force: bool, approved=None,
                       extensions: GatewayExtensions = NO_EXTENSIONS, access_token: str | None = None) -> InstanceResult:
    """An API caller sees no plan, so a zone that moved between read and write is simply
    read and planned again (conflicts included) before giving up."""
    for attempt in range(ZONE_CHANGED_ATTEMPTS):
        try:
            return apply_instance(store, backend, template, context, instance_id=instance_id, actor=actor,
                                  force=force, approved=approved, extensions=extensions, access_token=access_token)
        except ZoneChanged:
            if attempt == ZONE_CHANGED_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def unavailable_response(error: StateUnavailable) -> JSONResponse:
    return JSONResponse({"code": "temporarily_unavailable", "message": str(error)}, 503,
                        headers={"Retry-After": "5"})


def conflict_response(store: StateStore, grant: Grant, domain: str, zone: dns.name.Name, result,
                      approved: Approved) -> JSONResponse:
    """409 naming the conflicts the user did not see at consent (the ones they did are none)."""
    records = [{"type": shown["type"], "host": shown["name"], "data": shown["data"]}
               for shown in (c.record.to_json(zone) for c in approved.unapproved(result.plan.conflicts))]
    message = "the template conflicts with existing records"
    disabled = [d for d in result.disabled if d not in approved.disabled]
    if disabled:
        message += "; applying it would disable " + ", ".join(disabled)
    store.audit("refuse", f"client:{grant.client_id}", domain,
                {"reason": "conflict", "records": records, "disabled": result.disabled})
    return JSONResponse({"code": "conflict", "message": message, "records": records}, 409)
