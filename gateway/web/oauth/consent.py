"""The consent step of the asynchronous flow (spec "OAuth Flow: Getting an Authorization Code").

    GET  /v2/domainTemplates/providers/{providerId}[/services/{serviceId}]?domain=&host=&client_id=...
    POST /v2/oauth/consent      (Allow or Deny, CSRF-protected)

Until client_id and redirect_uri are known to be registered, every problem is an error page:
redirecting to an unchecked URI would make the gateway an open redirector. After that,
problems go back to the client as OAuth errors on its redirect_uri.

What the user consents to travels in the page's form; the state store keeps only its
digest for the session, keyed by a nonce the page carries and taken once (on any replica).
The form is trusted only when it matches that digest.

Variables come at apply time (spec "OAuth Flow: Getting an Authorization Code"), so the page
shows what it can: a value needing a variable not given is shown as the template writes it,
and a record whose host needs one is shown unplaced. Conflicts are found for every record
whose name and type are known; the existing records the page says would be replaced or
removed are remembered with the grant, and an API apply that removes only those is what the
user allowed (see gateway.web.oauth.approvals).

A consent URL is answered before anyone signs in, so its work is bounded (MAX_HOSTS hosts,
MAX_SCOPE templates) and runs off the event loop, like every database and backend call.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import dns.exception
import dns.name
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from backends.base import Backend, BackendError
from backends.records import relative_text
from gateway.apply.extensions import refusal
from gateway.apply.instances import plan_instance
from gateway.apply.pipeline import ZoneNotHosted
from gateway.engine.domains import DomainError, idna_domain, idna_host
from gateway.engine.plan import PlanError
from gateway.engine.render import ApplyContext, PendingRecord, RenderedTemplate, RenderError, group_ids, render_template
from gateway.engine.template import Template
from gateway.state import StateError
from gateway.state.pkce import PkceError, checked_challenge
from gateway.web.auth import zones
from gateway.web.auth.base import User
from gateway.web.auth.routes import login_redirect
from gateway.web.auth.session import current_user, remember_page, take_page
from gateway.web.forms import submitted_form
from gateway.web.oauth.approvals import approval_of
from gateway.web.redirects import redirect_back
from gateway.web.ui import error_page, render_page
from gateway.web.ui.changes import spf_merges

CONSENT_PATH = "/v2/oauth/consent"
PENDING = "oauth_consent"  # session key: {nonce: what the page showed}
MAX_STATE = 400  # characters of `state` carried back to the client
MAX_HOSTS = 20  # each host is rendered and planned for every template in scope
MAX_SCOPE = 20
# Consent pages checked at once. One URL may cost 400 renders before anyone signs in; threads
# beyond this wait on the event loop (holding no thread), so a flood of them cannot starve the
# other requests of CPU and of the thread pool.
CONSENT_WORKERS = anyio.CapacityLimiter(1)
# Query keys of the consent request itself; every other key is a template variable.
REQUEST_KEYS = frozenset({"domain", "host", "client_id", "redirect_uri", "scope", "state", "response_type",
                          "providerName", "serviceName", "code_challenge", "code_challenge_method", "groupId"})
APPROVED_FIELD = "approved"  # the form carries what the page showed would go; the session only its hash


class PageError(Exception):
    """A problem shown on an error page: the redirect_uri cannot be trusted (yet)."""

    def __init__(self, status: int, heading: str, message: str) -> None:
        super().__init__(message)
        self.status, self.heading, self.message = status, heading, message


class Refused(Exception):
    """A problem reported to the client as `error` and `error_description` on its redirect_uri."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


@dataclass(frozen=True)
class ReturnTo:
    """Where the answer goes: a redirect_uri registered for client_id, and the client's state."""

    client_id: str
    redirect_uri: str
    state: str | None

    def redirect(self, **params: str) -> RedirectResponse:
        return redirect_back(self.redirect_uri, params, self.state)

    def error(self, refused: Refused) -> RedirectResponse:
        return self.redirect(error=refused.error, error_description=refused.description)


@dataclass(frozen=True)
class ConsentRequest:
    """A checked consent request: one provider, its templates, one domain, some hosts."""

    return_to: ReturnTo
    provider_id: str
    templates: tuple[Template, ...]
    domain: str  # IDNA, lower case, no final dot
    zone: dns.name.Name
    backend: Backend
    hosts: tuple[str, ...]  # "" is the apex
    variables: Mapping[str, str]
    # providerName / serviceName: shown beside the template's names, never instead, and only
    # for templates that share them (sharedProviderName / sharedServiceName, spec "Provider Name").
    provider_note: str = ""
    service_note: str = ""
    code_challenge: str | None = None  # PKCE (RFC 7636), checked when the code is redeemed
    code_challenge_method: str | None = None
    group_ids: frozenset[str] | None = None  # what the preview shows; None: every record
    # Each template at each host as the check rendered it, so that the preview plans it without rendering again.
    rendered: Mapping[tuple[tuple[str, str], str], RenderedTemplate] = field(default_factory=dict, repr=False)

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(t.service_id for t in self.templates)

    @property
    def zone_text(self) -> str:
        return self.zone.to_text(omit_final_dot=True)

    def shown(self) -> dict[str, str]:
        """The fields the form carries back, as the page showed them."""
        return {"domain": self.domain, "host": ",".join(self.hosts), "scope": " ".join(self.services)}


@dataclass
class Preview:
    """What one template would do at one host if it were applied now."""

    template: Template
    host: str
    add: list[dict[str, Any]] = field(default_factory=list)
    pending: list[dict[str, Any]] = field(default_factory=list)  # records waiting for apply-time variables
    remove: list[dict[str, Any]] = field(default_factory=list)
    spf: list[dict[str, Any]] = field(default_factory=list)  # SPF merges: the terms added
    conflicts: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)  # "provider/service" of applied templates it breaks
    warnings: list[str] = field(default_factory=list)
    approval: dict[str, Any] = field(default_factory=dict)  # what the grant remembers (approvals.approval_of)


def now() -> float:
    """Seconds since the epoch; tests move it."""
    return time.time()


# --- checking the request ----------------------------------------------------------------


def trusted_return(runtime: Any, query: Mapping[str, str]) -> ReturnTo:
    """client_id and redirect_uri, or a PageError: nothing may be redirected before this passes."""
    client_id, redirect_uri = query.get("client_id", ""), query.get("redirect_uri", "")
    if not client_id:
        raise PageError(400, "Incomplete request", "client_id: required")
    client = runtime.store.client(client_id)
    if client is None:
        raise PageError(400, "Unknown service provider", f"client_id: {client_id!r} is not registered here")
    if not redirect_uri:
        raise PageError(400, "Incomplete request", "redirect_uri: required")
    if redirect_uri not in client.redirect_uris:
        raise PageError(400, "Unexpected return address",
                        f"redirect_uri: not one registered for {client_id}; nothing was sent to it")
    return ReturnTo(client_id, redirect_uri, query.get("state"))


def check_request(runtime: Any, provider_id: str, service_id: str | None, query: Mapping[str, str],
                  return_to: ReturnTo) -> ConsentRequest:
    """Everything that needs no signed-in user; `Refused` with the OAuth error code otherwise."""
    check_bounds(query, service_id)
    if return_to.client_id != provider_id:
        raise Refused("unauthorized_client", f"client_id: {return_to.client_id!r} may only ask for the "
                                             f"templates of provider {return_to.client_id!r}, not {provider_id!r}")
    if len(return_to.state or "") > MAX_STATE:
        raise Refused("invalid_request", f"state: longer than {MAX_STATE} characters")
    response_type = query.get("response_type")
    if response_type is not None and response_type != "code":
        raise Refused("unsupported_response_type", f"response_type: {response_type!r} is not supported; use code")
    templates = scope_templates(runtime.templates, provider_id, service_id, query.get("scope", ""))
    try:
        domain = idna_domain(query.get("domain", ""))
    except DomainError as exc:
        raise Refused("invalid_request", str(exc)) from None
    hosts = host_list(query.get("host", ""))
    zone = dns.name.from_text(domain)
    try:
        backend = runtime.router.zone_backend(zone)
    except BackendError:
        raise Refused("server_error", "domain: the DNS backend could not be asked; try again later") from None
    # Grants are for a zone as a whole (the spec's "root domain"); hosts name what lies below.
    if backend is None:
        raise Refused("invalid_request", f"domain: {domain} is not a zone hosted here")
    try:
        challenge, method = checked_challenge(query.get("code_challenge"), query.get("code_challenge_method"))
    except PkceError as exc:
        raise Refused("invalid_request", str(exc)) from None
    variables = {key: value for key, value in query.items() if key not in REQUEST_KEYS}
    groups = group_ids(query.getlist("groupId")) if hasattr(query, "getlist") else None
    rendered = {}
    for template in templates:
        # Before sign-in: a template this backend cannot apply is refused now, not after.
        problem = refusal(template, backend, runtime.extensions, groups)
        if problem:
            raise Refused("invalid_request", f"{template.service_id}: {problem}")
        for host in hosts:
            try:  # a value given must be valid now; one not given yet comes with the apply
                context = ApplyContext(domain, host, variables, groups, **runtime.config.apply_policies())
                rendered[template.key, host] = render_template(template, context, defer_missing=True)
            except RenderError as exc:
                where = f"{template.service_id} at {host or 'the apex'}"
                raise Refused("invalid_request", f"{where}: {exc}") from None
    shared_provider = all(t.shared_provider_name for t in templates)
    return ConsentRequest(return_to, provider_id, templates, domain, zone, backend, hosts, variables,
                          query.get("providerName", "").strip() if shared_provider else "",
                          query.get("serviceName", "").strip(), challenge, method, groups, rendered)


def scope_templates(catalog: Mapping[tuple[str, str], Template], provider_id: str, service_id: str | None,
                    scope: str) -> tuple[Template, ...]:
    """The templates named by `scope` (space or + separated) and the path's serviceId, in order."""
    names = scope_names(scope, service_id)
    if not names:
        raise Refused("invalid_scope", "scope: name at least one serviceId")
    unknown = [name for name in names if (provider_id, name) not in catalog]
    if unknown:
        raise Refused("invalid_scope", f"scope: {', '.join(unknown)} is not a template of {provider_id} here")
    return tuple(catalog[(provider_id, name)] for name in names)


def check_bounds(query: Mapping[str, str], service_id: str | None) -> None:
    """At most MAX_HOSTS hosts and MAX_SCOPE templates: each host is rendered and planned for
    each template, before anyone signs in. Counting only, so it is cheap anywhere."""
    if query.get("host", "").count(",") >= MAX_HOSTS:
        raise Refused("invalid_request", f"host: more than the {MAX_HOSTS} hosts one request may name")
    names = scope_names(query.get("scope", ""), service_id)
    if len(names) > MAX_SCOPE:
        raise Refused("invalid_request", f"scope: {len(names)} templates, more than the {MAX_SCOPE} "
                                         "one request may name")


def scope_names(scope: str, service_id: str | None) -> list[str]:
    """The serviceIds of `scope` (space or + separated) and of the path, once each, in order."""
    names = [s for s in re.split(r"[\s+]+", scope) if s]
    if service_id is not None:
        names.append(service_id)
    return list(dict.fromkeys(names))


def host_list(text: str) -> tuple[str, ...]:
    """The comma separated `host` parameter; an empty entry (or none at all) is the apex."""
    try:
        return tuple(dict.fromkeys(idna_host(entry) for entry in text.split(",")))
    except DomainError as exc:
        raise Refused("invalid_request", str(exc)) from None


# --- what the page shows -------------------------------------------------------------------


def previews(runtime: Any, asked: ConsentRequest) -> list[Preview]:
    """Each template at each host, planned against the zone as it is now (reads only)."""
    backend, zone = asked.backend, asked.zone
    shown = []
    for template in asked.templates:
        for host in asked.hosts:
            context = ApplyContext(asked.domain, host, dict(asked.variables), asked.group_ids,
                                   **runtime.config.apply_policies())
            try:
                plan = plan_instance(runtime.store, backend, template, context, instance_id=None, defer_missing=True,
                                     extensions=runtime.extensions, rendered=asked.rendered.get((template.key, host)))
            except (RenderError, PlanError, ZoneNotHosted) as exc:
                raise Refused("invalid_request", f"{template.service_id} at {host or 'the apex'}: {exc}") from None
            except BackendError:
                raise Refused("server_error", "the DNS backend could not be read; try again later") from None
            add, remove, spf = spf_merges([r.to_json(zone) for r in plan.records_added()],
                                          [r.to_json(zone) for r in plan.records_removed()])
            shown.append(Preview(template, host, add=add, spf=spf,
                                 pending=pending_rows(plan.prepared.rendered.pending, zone, template.provider_name),
                                 remove=remove,
                                 conflicts=[c.reason for c in plan.conflicts], disabled=plan.disabled,
                                 warnings=list(plan.prepared.plan.warnings), approval=approval_of(plan)))
    return shown


def pending_rows(pending: list[PendingRecord], zone: dns.name.Name, provider: str) -> list[dict[str, Any]]:
    """Rows of the records table for records waiting for apply-time variables."""
    rows = []
    for record in pending:
        placed = record.name is not None
        rows.append({
            "name": relative_text(record.name, zone) if placed else record.host_as_written(),
            "type": record.source.type, "ttl": record.ttl if record.ttl is not None else record.source.ttl,
            "data": record.value_as_written(),
            "note": f"set by {provider} when applied" if placed else
                    f"the host is set by {provider} when applied, so this record cannot be placed yet; "
                    "conflicts for it are checked at apply time",
        })
    return rows


def approvals_text(shown: list[Preview]) -> str:
    """What the grant will remember, as the form carries it (canonical JSON)."""
    return json.dumps([p.approval for p in shown], sort_keys=True, separators=(",", ":"))


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- handlers ----------------------------------------------------------------------------


async def consent_page(request: Request) -> Response:
    """GET: check the request, make sure who is asking controls the zone, show what would change.
    Rendering, planning and the state store run in worker threads; only counting is done here."""
    runtime = request.app.state.runtime
    query = request.query_params
    try:
        return_to = await run_in_threadpool(trusted_return, runtime, query)
    except PageError as problem:
        return problem_page(request, problem)
    try:
        check_bounds(query, request.path_params.get("service_id"))  # refused at once, never queued
    except Refused as refused:
        return return_to.error(refused)
    return await anyio.to_thread.run_sync(show_consent, request, return_to, limiter=CONSENT_WORKERS)


def show_consent(request: Request, return_to: ReturnTo) -> Response:
    runtime = request.app.state.runtime
    query = request.query_params
    try:
        asked = check_request(runtime, request.path_params["provider_id"], request.path_params.get("service_id"),
                              query, return_to)
        user = current_user(request)
        if user is None:
            return login_redirect(request)
        if not user_controls(runtime, user, asked.zone_text):
            runtime.store.audit("refuse", f"user:{user.username}", asked.domain,
                                {"reason": "zone not controlled", "client_id": return_to.client_id})
            raise Refused("access_denied", f"domain: the signed-in user does not control {asked.zone_text}")
        shown = previews(runtime, asked)
    except Refused as refused:
        return return_to.error(refused)
    approved = approvals_text(shown)
    request_shown = shown_request(asked, approved)
    nonce = remember(request, request_shown, user)
    return render_page(request, "oauth_consent.html", {
        "user": user, "asked": asked, "previews": shown, "nonce": nonce, "fields": asked.shown(),
        "approved": approved, "approved_field": APPROVED_FIELD, "request_shown": request_shown,
        "action": CONSENT_PATH, "provider_name": asked.templates[0].provider_name,
        "warn_phishing": any(t.warn_phishing for t in asked.templates),
    }, return_to=return_to.redirect_uri)


async def consent_answer(request: Request) -> Response:
    """POST: Allow issues a code for exactly what the page showed; Deny tells the client so."""
    form = await submitted_form(request)
    if isinstance(form, Response):
        return form
    return await run_in_threadpool(answer_consent, request, form)


def answer_consent(request: Request, form: Mapping[str, Any]) -> Response:
    user = current_user(request)
    if user is None:
        return problem_page(request, PageError(401, "Not signed in", "sign in, then start again from the service"))
    pending = take_page(request, PENDING, form.get("consent"), now())
    if pending is None:
        return problem_page(request, PageError(400, "Request expired", "consent: this request is unknown, expired "
                                                                     "or already answered; start again"))
    if pending["user"] != user.username:
        return problem_page(request, PageError(403, "Different user", "consent: shown to another user"))
    shown_text = form.get("request")
    if not isinstance(shown_text, str) or text_hash(shown_text) != pending["digest"]:
        return problem_page(request, PageError(400, "Request changed", "request: differs from what was shown; "
                                                                     "nothing was authorized"))
    shown = json.loads(shown_text)
    for name, value in shown["fields"].items():
        if form.get(name) != value:
            return problem_page(request, PageError(400, "Request changed", f"{name}: differs from what was shown; "
                                                                         "nothing was authorized"))
    approved = form.get(APPROVED_FIELD)
    if not isinstance(approved, str) or text_hash(approved) != shown["approved"]:
        return problem_page(request, PageError(400, "Request changed", f"{APPROVED_FIELD}: differs from what "
                                                                     "was shown; nothing was authorized"))
    return_to = ReturnTo(shown["client_id"], shown["redirect_uri"], shown["state"])
    decision = form.get("decision")
    if decision == "deny":
        request.app.state.runtime.store.audit("consent_deny", f"user:{user.username}", shown["fields"]["domain"], {
            "client_id": return_to.client_id, "hosts": shown["hosts"], "services": shown["services"]})
        return return_to.error(Refused("access_denied", "user_cancel"))
    if decision != "allow":
        return problem_page(request, PageError(400, "No decision", "decision: must be allow or deny"))
    return allow(request, user, shown, return_to, json.loads(approved))


def allow(request: Request, user: User, shown: dict[str, Any], return_to: ReturnTo,
          approved: list[dict[str, Any]]) -> Response:
    # Zones may have been taken away since the page was shown.
    try:
        allowed = user_controls(request.app.state.runtime, user, shown["zone"])
    except Refused as refused:
        return return_to.error(refused)
    if not allowed:
        return return_to.error(Refused("access_denied", f"domain: the signed-in user does not control {shown['zone']}"))
    try:
        code = request.app.state.runtime.store.create_grant(
            return_to.client_id, user.username, shown["fields"]["domain"], shown["hosts"], shown["services"],
            return_to.redirect_uri, approved=approved, code_challenge=shown.get("code_challenge"),
            code_challenge_method=shown.get("code_challenge_method"))
    except StateError as exc:  # the client was removed or its redirect_uri changed meanwhile
        return problem_page(request, PageError(400, "Service provider changed", str(exc)))
    return return_to.redirect(code=code)


def user_controls(runtime, user: User, zone: str) -> bool:
    """The one zone check, called in a worker thread (it may ask the control panel); `Refused`
    when it failed."""
    try:
        return zones.controls(runtime.authenticator, user, zone)
    except zones.ZonesUnavailable:
        raise Refused("temporarily_unavailable", zones.UNAVAILABLE) from None


def shown_request(asked: ConsentRequest, approved: str) -> str:
    """What the page asks the user to allow, as the JSON text its form carries back."""
    return json.dumps({
        "client_id": asked.return_to.client_id, "redirect_uri": asked.return_to.redirect_uri,
        "state": asked.return_to.state, "zone": asked.zone_text, "hosts": list(asked.hosts),
        "services": list(asked.services), "fields": asked.shown(), "approved": text_hash(approved),
        "code_challenge": asked.code_challenge, "code_challenge_method": asked.code_challenge_method,
    }, separators=(",", ":"), sort_keys=True)


def remember(request: Request, request_shown: str, user: User) -> str:
    """Keep the hash of what the page shows for this session in the store; the page carries the nonce."""
    return remember_page(request, PENDING, {"user": user.username, "digest": text_hash(request_shown)}, now())


def problem_page(request: Request, problem: PageError) -> Response:
    return error_page(request, problem.heading, problem.message, problem.status)
