"""The customer's "Connected services": the template instances on the zones a signed-in user
controls, whatever flow applied them, and disconnecting one.

    GET  /connections                         the list: service, host, when, records
    GET  /connections/{id}/disconnect         what disconnecting would remove, to confirm
    POST /connections/{id}/disconnect         CSRF-checked; removes it (audited as a revert)

The confirmation shows exactly what the revert would change, planned by the revert's own
planning step; the form carries a digest of it, and when the zone moved in between, the new
changes are shown again instead of applied unseen. An instance on a zone the user does not
control is answered like a missing one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

import dns.name
import dns.rdatatype
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from backends.base import BackendError, ZoneChanged
from backends.records import RRsetChange, relative_text
from gateway.apply.instances import plan_revert, revert_instance
from gateway.state import StateError
from gateway.state.models import TemplateInstance
from gateway.web.auth.base import ANY_ZONE, User
from gateway.web.auth.routes import login_redirect
from gateway.web.auth.session import current_user
from gateway.web.forms import submitted_form
from gateway.web.oauth.consent import PageError, problem_page
from gateway.web.ui import render_page

log = logging.getLogger(__name__)

MAX_LISTED = 500
FORM_FIELDS = 4


def connection_routes() -> list[Route]:
    return [
        Route("/connections", connections_page, methods=["GET"], name="connections"),
        Route("/connections/{instance_id:int}/disconnect", disconnect_page, methods=["GET"],
              name="disconnect_connection"),
        Route("/connections/{instance_id:int}/disconnect", disconnect_submit, methods=["POST"],
              name="disconnect_connection_submit"),
    ]


# -- the revert, through one seam ------------------------------------------------------------


def disconnect(store, backend, zone: dns.name.Name, instance_pk: int, actor: str):
    """Remove what an instance wrote (the gateway's one revert)."""
    return revert_instance(store, backend, zone, instance_pk, actor)


def preview_disconnect(store, backend, zone: dns.name.Name, instance_pk: int) -> list[RRsetChange]:
    """The changes `disconnect` would make now, planned by the revert itself, without making them."""
    try:
        return plan_revert(store, backend, zone, instance_pk)[1]
    except StateError:
        return []


# -- pages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    id: int
    service: str
    provider: str
    domain: str
    host: str
    applied_at: str
    flow: str
    records: list[dict]


async def connections_page(request: Request) -> Response:
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    runtime = request.app.state.runtime
    instances = await run_in_threadpool(instances_of, runtime.store, user)
    connections = [connection_of(runtime.templates, instance) for instance in instances]
    return render_page(request, "connections.html", {
        "user": user, "connections": connections, "disconnected": request.query_params.get("disconnected")})


async def disconnect_page(request: Request) -> Response:
    found = await _owned_instance(request)
    if isinstance(found, Response):
        return found
    user, instance, backend, zone = found
    return await _confirmation(request, user, instance, backend, zone)


async def disconnect_submit(request: Request) -> Response:
    form = await submitted_form(request, FORM_FIELDS)
    if isinstance(form, Response):
        return form
    found = await _owned_instance(request)
    if isinstance(found, Response):
        return found
    user, instance, backend, zone = found
    runtime = request.app.state.runtime
    changes = await run_in_threadpool(preview_disconnect, runtime.store, backend, zone, instance.id)
    if form.get("digest") != changes_digest(changes):
        return await _confirmation(request, user, instance, backend, zone, changed=True, changes=changes)
    try:
        await run_in_threadpool(disconnect, runtime.store, backend, zone, instance.id, f"user:{user.username}")
    except StateError:
        return _not_found(request)
    except ZoneChanged:
        return await _confirmation(request, user, instance, backend, zone, changed=True)
    except BackendError as exc:  # the user gets a page in plain words, the log the detail
        log.error("disconnecting instance %s on %s failed: %s", instance.id, instance.domain, exc)
        return problem_page(request, PageError(502, "The DNS could not be changed",
                                               "Nothing was removed. Please try again in a few minutes."))
    url = request.url_for("connections").include_query_params(disconnected=connection_of(
        runtime.templates, instance).service)
    return RedirectResponse(str(url), 303, headers={"Cache-Control": "no-store"})


async def _confirmation(request: Request, user: User, instance: TemplateInstance, backend, zone: dns.name.Name, *,
                        changed: bool = False, changes: list[RRsetChange] | None = None) -> Response:
    runtime = request.app.state.runtime
    if changes is None:
        changes = await run_in_threadpool(preview_disconnect, runtime.store, backend, zone, instance.id)
    removed, replaced_by = change_rows(changes, zone)
    return render_page(request, "disconnect.html", {
        "user": user, "connection": connection_of(runtime.templates, instance), "removed": removed,
        "replaced_by": replaced_by, "digest": changes_digest(changes), "changed": changed})


async def _owned_instance(request: Request):
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    runtime = request.app.state.runtime
    instance = await run_in_threadpool(runtime.store.instance, request.path_params["instance_id"])
    if instance is None or not user.controls(instance.domain):
        return _not_found(request)
    route = await run_in_threadpool(runtime.router.backend_for, dns.name.from_text(instance.domain))
    if route is None:
        return _not_found(request)
    backend, zone = route
    return user, instance, backend, zone


def _not_found(request: Request) -> Response:
    return problem_page(request, PageError(404, "Connection not found",
                                           "This service is not connected to a domain you manage."))


# -- what the pages show -------------------------------------------------------------------------


def instances_of(store, user: User) -> list[TemplateInstance]:
    """The instances on the user's zones, newest first, at most MAX_LISTED."""
    if ANY_ZONE in user.zones:
        return store.newest_instances(None, MAX_LISTED)
    return store.newest_instances(user.zones, MAX_LISTED) if user.zones else []


def connection_of(templates, instance: TemplateInstance) -> Connection:
    template = templates.get((instance.provider_id, instance.service_id))
    zone = dns.name.from_text(instance.domain)
    return Connection(
        id=instance.id,
        service=template.service_name if template is not None else instance.service_id,
        provider=template.provider_name if template is not None else instance.provider_id,
        domain=instance.domain,
        host=instance.host,
        applied_at=instance.applied_at.strftime("%Y-%m-%d %H:%M UTC"),
        flow="through the service's API" if instance.applied_by.startswith("client:") else "on a page you confirmed",
        records=[{**row, "name": relative_text(dns.name.from_text(row["name"]), zone)}
                 for row in instance.records if "type" in row and "data" in row],
    )


def change_rows(changes: Iterable[RRsetChange], zone: dns.name.Name) -> tuple[list[dict], list[dict]]:
    """The records a set of changes removes, and those put in their place (an SPF record without
    the service's terms), as the record tables show them."""
    removed, replaced_by = [], []
    for change in changes:
        before = {rdata.to_text(): change.before.ttl for rdata in change.before} if change.before else {}
        after = {rdata.to_text(): change.after.ttl for rdata in change.after} if change.after else {}
        row = {"name": relative_text(change.name, zone), "type": dns.rdatatype.to_text(change.rdtype)}
        removed += [{**row, "ttl": ttl, "data": data} for data, ttl in before.items() if data not in after]
        replaced_by += [{**row, "ttl": ttl, "data": data} for data, ttl in after.items() if data not in before]
    return removed, replaced_by


def changes_digest(changes: Iterable[RRsetChange]) -> str:
    described = [[c.name.to_text(), int(c.rdtype), sorted(r.to_text() for r in c.before or ()),
                  sorted(r.to_text() for r in c.after or ())] for c in changes]
    return hashlib.sha256(json.dumps(described).encode()).hexdigest()
