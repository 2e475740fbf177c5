"""One apply, from template to backend: the path every front end (CLI, sync flow, API) takes.

    render_template -> expand_extensions -> backend.read (touched names only) -> plan_changes -> backend.apply
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rrset

from backends.base import Backend
from backends.records import ExtensionChange, ExtensionRecord, RRsetChange
from gateway.apply.extensions import NO_EXTENSIONS, GatewayExtensions, expand_extensions, refusal
from gateway.engine.plan import ALIAS_DISPLACES, Plan, UnsupportedRecordType, plan_changes, read_scope
from gateway.engine.render import ApplyContext, RenderedTemplate, render_template
from gateway.engine.template import Template


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
    current_extensions: list[ExtensionRecord] = field(default_factory=list)  # and the extension records


def hosted_zone(backend: Backend, context: ApplyContext) -> dns.name.Name:
    """The zone `backend` hosts for the context's domain; `ZoneNotHosted` when none."""
    zone = backend.find_zone(context.domain_name)
    if zone is None:
        raise ZoneNotHosted(f"backend {backend.name!r} does not host a zone for {context.domain}")
    return zone


def prepare_apply(backend: Backend, template: Template, context: ApplyContext,
                  extensions: GatewayExtensions = NO_EXTENSIONS, *, defer_missing: bool = False,
                  rendered: RenderedTemplate | None = None) -> PreparedApply:
    """Render, read what the template touches, and plan. Raises RenderError, PlanError
    (UnsupportedRecordType before anything is read), ZoneNotHosted or BackendError; writes
    nothing. `defer_missing` plans what consent can know before the variables come (see
    render_template). `rendered`: render_template's answer for this template and context, when
    the caller has it already (a request checked before it is planned)."""
    _refuse_unsupported(backend, template, context, extensions)
    zone = hosted_zone(backend, context)
    if rendered is None:
        rendered = render_template(template, context, defer_missing=defer_missing)
    return read_and_plan(backend, zone, expand_extensions(rendered, backend, extensions))


def render_for(backend: Backend, template: Template, context: ApplyContext,
               extensions: GatewayExtensions = NO_EXTENSIONS) -> RenderedTemplate:
    """What `prepare_apply` renders, with no backend call: done before taking the zone lock."""
    _refuse_unsupported(backend, template, context, extensions)
    return expand_extensions(render_template(template, context), backend, extensions)


def _refuse_unsupported(backend: Backend, template: Template, context: ApplyContext,
                        extensions: GatewayExtensions) -> None:
    problem = refusal(template, backend, extensions, context.group_ids)
    if problem:
        raise UnsupportedRecordType(problem)


def read_and_plan(backend: Backend, zone: dns.name.Name, rendered: RenderedTemplate) -> PreparedApply:
    """The second half of `prepare_apply`: read what `rendered` touches in `zone`, and plan."""
    scope = read_scope(rendered, zone)
    if backend.supported_extensions:
        current, current_extensions = backend.read_with_extensions(zone, scope.names, scope.subtrees,
                                                                   _extension_scope(rendered))
    else:
        current, current_extensions = backend.read_for_plan(zone, scope), []
    plan = plan_changes(rendered, current, zone, backend.supported_extensions, current_extensions)
    return PreparedApply(backend, zone, rendered, plan, current, current_extensions)


def _extension_scope(rendered: RenderedTemplate) -> set[dns.name.Name]:
    """Where an extension record could matter: where the template writes one, and where it
    writes records an alias would stand in for."""
    return {e.name for e in rendered.extensions} | {r.name for r in rendered.records if r.rdtype in ALIAS_DISPLACES}


def write_changes(backend: Backend, zone: dns.name.Name, changes: Sequence[RRsetChange],
                  extension_changes: Sequence[ExtensionChange] = ()) -> None:
    """One atomic backend write; extension changes go along only when there are some, so a
    backend that declares no extension keeps its two-argument `apply`."""
    if extension_changes:
        backend.apply(zone, changes, extensions=extension_changes)
    elif changes:
        backend.apply(zone, changes)


def execute_apply(prepared: PreparedApply) -> bool:
    """Apply a prepared plan; False when there was nothing to do. Raises ZoneChanged
    when the zone moved since it was read (nothing is written then)."""
    if prepared.plan.is_empty:
        return False
    write_changes(prepared.backend, prepared.zone, prepared.plan.changes, prepared.plan.extension_changes)
    return True
