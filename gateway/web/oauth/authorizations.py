"""The user's own view of the asynchronous flow: which providers may change which domains, and revoking them.

    GET  /authorizations                       the signed-in user's live grants
    POST /authorizations/{grant_id}/revoke     CSRF-checked; only the owner's grant

Revoking a grant revokes every access and refresh token it issued (the state store does both
in one transaction), so the provider's next API call gets 401.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.engine.template import Template
from gateway.infra.observability import metrics_of
from gateway.state import StateError
from gateway.state.models import Grant
from gateway.web.auth import zones
from gateway.web.auth.base import Authenticator, User
from gateway.web.auth.routes import login_redirect
from gateway.web.auth.session import current_user
from gateway.web.forms import submitted_form
from gateway.web.oauth.consent import PageError, problem_page
from gateway.web.ui import render_page

REVOKED_NOTICE = "revoked"  # session key: the grant id the next /authorizations page reports once


def authorizations_page(request: Request) -> Response:
    # A plain function: Starlette runs it in the thread pool, where the state store may block.
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    runtime = request.app.state.runtime
    grants = runtime.store.grants_of(user.username)
    lost, unchecked = domains_lost(runtime.authenticator, user, grants)
    return render_page(request, "authorizations.html", {
        # Only what revoke() put in the session, once: a link cannot make this page say anything.
        "user": user, "grants": grants, "revoked": request.session.pop(REVOKED_NOTICE, None),
        "lost": lost, "zones_unchecked": zones.UNAVAILABLE if unchecked else "",
        "provider_names": {g.client_id: provider_name(runtime.templates, g.client_id) for g in grants},
        "service_names": {g.id: [service_name(runtime.templates, g.client_id, s) for s in g.services] for g in grants},
    })


async def revoke(request: Request) -> Response:
    form = await submitted_form(request)
    if isinstance(form, Response):
        return form
    user = current_user(request)
    if user is None:
        return problem_page(request, PageError(401, "Not signed in", "sign in to manage your authorizations"))
    grant_id = request.path_params["grant_id"]
    try:
        # The store refuses another user's grant exactly like a missing one, so ids reveal nothing.
        await run_in_threadpool(request.app.state.runtime.store.revoke_grant, grant_id, user.username)
    except StateError as exc:
        return problem_page(request, PageError(404, "Authorization not found", str(exc)))
    metrics = metrics_of(request)
    if metrics is not None:
        metrics.token_event("revoked")
    request.session[REVOKED_NOTICE] = grant_id
    return RedirectResponse(str(request.url_for("authorizations")), 303, headers={"Cache-Control": "no-store"})


def domains_lost(authenticator: Authenticator, user: User, grants: Sequence[Grant]) -> tuple[set[int], bool]:
    """Ids of the grants on domains `user` no longer controls (they end at their next use), and
    whether the zone source failed, in which case nothing can be said about any of them."""
    try:
        return {g.id for g in grants if not zones.controls(authenticator, user, g.domain)}, False
    except zones.ZonesUnavailable:
        return set(), True


def provider_name(templates: Mapping[tuple[str, str], Template], client_id: str) -> str:
    """The providerName of the client's templates, falling back to its id."""
    return next((t.provider_name for (provider, _), t in templates.items() if provider == client_id), client_id)


def service_name(templates: Mapping[tuple[str, str], Template], client_id: str, service_id: str) -> str:
    """The serviceName of a template still onboarded, else its id."""
    template = templates.get((client_id, service_id))
    return template.service_name if template is not None else service_id
