"""One apply, from template to backend: the path every front end (CLI, sync flow, API) takes.

    render_template -> backend.read (touched names only) -> plan_changes -> backend.apply
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dns.name
import dns.rrset

from backends.base import Backend
from gateway.plan import Plan, plan_changes, read_scope
from gateway.render import ApplyContext, RenderedTemplate, render_template
from gateway.template import Template


class ZoneNotHosted(LookupError):
    """No configured backend hosts the domain's zone."""


@dataclass
class PreparedApply:
    """A plan ready to be shown and, once confirmed, applied."""

    backend: Backend
    zone: dns.name.Name
    rendered: RenderedTemplate
    plan: Plan
    current: list[dns.rrset.RRset] = field(default_factory=list)  # the RRsets read for the plan


def prepare_apply(backend: Backend, template: Template, context: ApplyContext, *,
                  defer_missing: bool = False) -> PreparedApply:
    """Render, read what the template touches, and plan. Raises RenderError, PlanError,
    ZoneNotHosted or BackendError; writes nothing. `defer_missing` plans what consent can
    know before the variables come (see render_template)."""
    zone = backend.find_zone(context.domain_name)
    if zone is None:
        raise ZoneNotHosted(f"backend {backend.name!r} does not host a zone for {context.domain}")
    rendered = render_template(template, context, defer_missing=defer_missing)
    scope = read_scope(rendered, zone)
    current = backend.read(zone, scope.names, scope.subtrees)
    plan = plan_changes(rendered, current, zone, backend.supported_extensions)
    return PreparedApply(backend, zone, rendered, plan, current)


def execute_apply(prepared: PreparedApply) -> bool:
    """Apply a prepared plan; False when there was nothing to do. Raises ZoneChanged
    when the zone moved since it was read (nothing is written then)."""
    if prepared.plan.is_empty:
        return False
    prepared.backend.apply(prepared.zone, prepared.plan.changes)
    return True
