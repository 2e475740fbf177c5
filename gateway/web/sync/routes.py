"""The synchronous flow's pages: the apply URL shows the consent page; its form confirms or cancels.

Handlers are plain functions: Starlette runs them in its thread pool, where the backend and
DNS calls they make may block.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time

from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backends.base import Backend, BackendError, ZoneChanged
from gateway.apply.instances import InstancePlan, commit_instance, plan_instance
from gateway.apply.intents import UNAVAILABLE, StateUnavailable, exclusive, failure_message
from gateway.apply.pipeline import ZoneNotHosted, hosted_zone
from gateway.engine.plan import PlanError
from gateway.engine.render import RenderError
from gateway.web.auth import zones
from gateway.web.auth.base import User
from gateway.web.auth.routes import login_redirect
from gateway.web.auth.session import current_user, peek_page, remember_page, take_page
from gateway.web.forms import submitted_form
from gateway.web.redirects import redirect_back, redirect_with
from gateway.web.sync.request import SyncError, SyncRequest, parse_sync_request
from gateway.web.ui import error_page, render_page
from gateway.web.ui.changes import spf_merges

log = logging.getLogger(__name__)

APPLY_PATH = "/v2/domainTemplates/providers/{provider_id}/services/{service_id}/apply"
CONSENT_PATH = "/v2/sync/consent"
PENDING_KEY = "sync"  # session key: {nonce: what the consent page showed}


def apply_page(request: Request) -> Response:
    runtime = request.app.state.runtime
    provider_id, service_id = request.path_params["provider_id"], request.path_params["service_id"]
    try:
        sync = parse_sync_request(runtime, provider_id, service_id, request.scope["query_string"].decode("latin-1"))
    except SyncError as exc:
        return refusal(request, exc)
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    try:
        plan = prepare(runtime, sync, user)
    except SyncError as exc:
        return refusal(request, exc)
    return consent_page(request, sync, plan, user)


async def confirm(request: Request) -> Response:
    form = await submitted_form(request)
    if isinstance(form, Response):
        return form
    return await run_in_threadpool(_confirm, request, dict(form.items()))


def _confirm(request: Request, form: dict[str, str]) -> Response:
    runtime = request.app.state.runtime
    # Read first, claimed below: when the state store cannot be written, the page still
    # knows where to send the user back to, and stays unanswered.
    pending = peek_page(request, PENDING_KEY, form.get("nonce"), time.time())
    user = current_user(request)
    query = form.get("query", "")
    if pending is None or user is None or user.username != pending["user"] or _hash(query) != pending["query"]:
        return expired_page(request, _posted_request(runtime, form))
    try:
        sync = parse_sync_request(runtime, pending["provider"], pending["service"], query)
    except SyncError as exc:
        return refusal(request, exc)
    try:
        if take_page(request, PENDING_KEY, form.get("nonce"), time.time()) is None:
            return expired_page(request, sync)  # answered meanwhile, on this replica or another
    except SQLAlchemyError as exc:
        log.error("sync consent: the state store cannot be written: %s", exc)
        return unavailable_page(request, sync, UNAVAILABLE)
    if form.get("decision") != "confirm":
        runtime.store.audit("cancel", f"user:{user.username}", sync.context.domain, _subject(sync))
        return finish(request, sync, {"error": "access_denied", "error_description": "user_cancel"},
                      "Nothing was changed", "You cancelled; your DNS records are as they were.")
    try:
        backend = zone_backend(runtime, sync)
        with exclusive(runtime.store, backend, hosted_zone(backend, sync.context)):
            plan = prepare(runtime, sync, user, backend)
            # Apply exactly what was shown, from the same read: if the zone moves after this
            # read the backend refuses the write, and the user sees the new plan instead.
            if plan_digest(plan) != pending["digest"]:
                return consent_page(request, sync, plan, user, changed=True)
            commit_instance(runtime.store, plan, actor=f"user:{user.username}")
    except SyncError as exc:
        return refusal(request, exc)
    except ZoneNotHosted as exc:
        return refusal(request, sync.refusal("invalid_request", str(exc), 404))
    except StateUnavailable as exc:
        return unavailable_page(request, sync, str(exc))
    except ZoneChanged:
        runtime.metrics.apply(plan.prepared.backend.name, "zone_changed", "sync")
        try:
            return consent_page(request, sync, prepare(runtime, sync, user), user, changed=True)
        except SyncError as exc:
            return refusal(request, exc)
    except BackendError as exc:
        runtime.metrics.apply(plan.prepared.backend.name, "error", "sync")
        log.error("sync apply of %s/%s on %s failed: %s", *sync.template.key, sync.context.domain, exc)
        return refusal(request, sync.refusal("server_error", failure_message(exc), 502))
    runtime.metrics.apply(plan.prepared.backend.name, "applied" if plan.changes else "nothing", "sync")
    return finish(request, sync, {}, "Done", f"{sync.service_label} is set up on {sync.context.fqdn}.")


def zone_backend(runtime, sync: SyncRequest) -> Backend:
    """The backend hosting the request's domain as a zone; `SyncError` otherwise."""
    try:
        backend = runtime.router.zone_backend(sync.context.domain_name)
    except BackendError as exc:
        raise unavailable(sync, exc) from None
    if backend is None:
        raise sync.refusal("invalid_request", f"domain: {sync.context.domain} is not a zone hosted here", 404)
    return backend


def prepare(runtime, sync: SyncRequest, user: User, backend: Backend | None = None) -> InstancePlan:
    """Find the zone, check the user controls it, and plan the whole change; `SyncError` otherwise."""
    domain = sync.context.domain
    backend = backend or zone_backend(runtime, sync)
    try:
        allowed = zones.controls(runtime.authenticator, user, domain)
    except zones.ZonesUnavailable:
        raise sync.refusal("temporarily_unavailable", zones.UNAVAILABLE, 503) from None
    if not allowed:
        runtime.store.audit("refuse", f"user:{user.username}", domain, {**_subject(sync), "reason": "zone access"})
        raise sync.refusal("access_denied", "this account cannot manage the domain", 403)
    try:
        return plan_instance(runtime.store, backend, sync.template, sync.context, instance_id=None,
                             extensions=runtime.extensions, rendered=sync.rendered)
    except (RenderError, PlanError) as exc:
        raise sync.refusal("invalid_request", str(exc)) from None
    except ZoneNotHosted as exc:
        raise sync.refusal("invalid_request", str(exc), 404) from None
    except BackendError as exc:
        raise unavailable(sync, exc) from None


def unavailable_page(request: Request, sync: SyncRequest, message: str) -> Response:
    """The state store is down or the zone busy: nothing was changed; a way back to the service."""
    back = None
    if sync.redirect_uri:
        back = redirect_back(sync.redirect_uri, {"error": "temporarily_unavailable", "error_description": message},
                             sync.state).headers["location"]
    return error_page(request, "Try again in a moment", message, 503, back=back,
                      back_label=f"Back to {sync.template.provider_name}")


def unavailable(sync: SyncRequest, error: BackendError) -> SyncError:
    # Backend messages name servers, paths and accounts: they go to the log, never to the caller.
    log.error("sync flow for %s: backend failure: %s", sync.context.domain, error)
    return sync.refusal("temporarily_unavailable", "the DNS service is unavailable; try again later", 503)


def shown_changes(plan: InstancePlan) -> dict[str, list]:
    """What the consent page lists: every record added and removed, and the services disabled."""
    zone = plan.prepared.zone
    add, delete, spf = spf_merges([r.to_json(zone) for r in plan.records_added()],
                                  [r.to_json(zone) for r in plan.records_removed()])
    return {"add": add, "delete": delete, "spf": spf, "disabled": plan.disabled}


def plan_digest(plan: InstancePlan, shown: dict[str, list] | None = None) -> str:
    """What the user was shown (`shown_changes`, when already made), so a changed zone is never applied unseen."""
    shown = shown if shown is not None else shown_changes(plan)
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()


def consent_page(request: Request, sync: SyncRequest, plan: InstancePlan, user: User, *,
                 changed: bool = False) -> Response:
    shown = shown_changes(plan)
    # The query travels in the form and only its hash in the cookie, which browsers cap at 4 KB.
    nonce = remember_page(request, PENDING_KEY, {
        "query": _hash(sync.raw_query), "provider": sync.template.provider_id, "service": sync.template.service_id,
        "digest": plan_digest(plan, shown), "user": user.username}, time.time())
    return render_page(request, "consent.html", {
        "user": user, "sync": sync, "template": sync.template, "nonce": nonce, "changed": changed,
        "query": sync.raw_query,
        **shown,
        "warnings": [*plan.prepared.rendered.warnings, *plan.prepared.plan.warnings],
        "confirm_url": request.url_for("sync_consent").path,
    }, return_to=sync.redirect_uri)


def finish(request: Request, sync: SyncRequest, params: dict[str, str], heading: str, message: str) -> Response:
    """Back to the service provider, or a page that closes itself when there is nowhere to go."""
    if sync.redirect_uri:
        return redirect_back(sync.redirect_uri, params, sync.state)
    return render_page(request, "done.html", {"heading": heading, "message": message, "user": current_user(request)})


# What a customer reads for a refused request; its developer detail (error.description) goes to
# the log. Server-side refusals (5xx) are already written for the customer and shown as they are.
PLAIN_WORDS = {
    403: "The link from the service could not be verified, so nothing was changed. Go back to the service and "
         "start again from there.",
    404: "This DNS host does not offer the service this link asks for. Nothing was changed.",
}
PLAIN_DEFAULT = ("The link from the service is incomplete or not valid, so nothing was changed. Go back to the "
                 "service and start again from there.")


def refusal(request: Request, error: SyncError) -> Response:
    if error.redirect_uri:
        return redirect_back(error.redirect_uri, {"error": error.error, "error_description": error.description},
                             error.state)
    log.info("sync request refused (%s, %d): %s", error.error, error.status, error.description)
    if error.status >= 500:
        return error_page(request, "This change cannot be made", error.description, error.status)
    # The reason stays on the page, small, for the service's developers: it names what was wrong.
    return error_page(request, "This change cannot be made", PLAIN_WORDS.get(error.status, PLAIN_DEFAULT),
                      error.status, detail=f"For the service's developers: {error.description}")


def expired_page(request: Request, sync: SyncRequest | None) -> Response:
    """The consent form came back too late or from another session: nothing was changed. With a
    verified return address the page offers the way back to the service provider."""
    back = None
    if sync is not None and sync.redirect_uri:
        url = redirect_with(sync.redirect_uri, {"error": "access_denied", "error_description": "expired",
                                                **({"state": sync.state} if sync.state is not None else {})})
        back = (url, f"Back to {sync.provider_label}")
    return error_page(request, "This page has expired", "Nothing was changed. Start again from the service's page.",
                      400, back=back[0] if back else None, back_label=back[1] if back else "Back")




def _posted_request(runtime, form: dict[str, str]) -> SyncRequest | None:
    """The request a stale consent form carried, when it still checks out (template, signature,
    redirect_uri): only then is its return address verified."""
    try:
        return parse_sync_request(runtime, form.get("provider", ""), form.get("service", ""), form.get("query", ""))
    except SyncError:
        return None


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _subject(sync: SyncRequest) -> dict:
    return {"provider": sync.template.provider_id, "service": sync.template.service_id, "host": sync.context.host}


def sync_routes() -> list[Route]:
    return [
        Route(APPLY_PATH, apply_page, methods=["GET"], name="sync_apply"),
        Route(CONSENT_PATH, confirm, methods=["POST"], name="sync_consent"),
    ]
