"""Following flattened aliases: an APEXCNAME written as A/AAAA records is only as fresh as the
last lookup of its target, so `dcgw aliases refresh` looks again and applies what moved.

A refresh re-applies each instance that remembers a flattened alias, with the context it
was applied with, through the normal instance path: the target is resolved anew, records
that are still what the instance wrote are replaced, and nothing happens when the addresses
did not change. A record someone changed since is a conflict, reported and left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dns.name

from backends.base import BackendError
from gateway.apply.extensions import GatewayExtensions
from gateway.apply.instances import commit_instance, plan_instance
from gateway.engine.plan import PlanError
from gateway.engine.render import ApplyContext, RenderError, TtlPolicy
from gateway.engine.template import Template
from gateway.infra.registry import BackendRouter
from gateway.state import StateStore
from gateway.state.models import TemplateInstance

ACTOR = "cli:aliases-refresh"


@dataclass(frozen=True)
class RefreshOutcome:
    instance: TemplateInstance
    status: str  # "unchanged", "refreshed" or "failed"
    detail: str = ""

    @property
    def where(self) -> str:
        i = self.instance
        host = f"{i.host}.{i.domain}" if i.host else i.domain
        return f"{host} {i.provider_id}/{i.service_id}" + (f" ({i.instance_id})" if i.instance_id else "")


def has_flattened_alias(instance: TemplateInstance) -> bool:
    return any("alias" in row for row in instance.records)


def refresh_aliases(store: StateStore, router: BackendRouter, templates: Mapping[tuple[str, str], Template],
                    extensions: GatewayExtensions, ttl_policy: TtlPolicy,
                    domain: str | None = None) -> list[RefreshOutcome]:
    """Re-resolve every flattened alias (of `domain`, or everywhere) and apply the differences."""
    return [refresh_instance(store, router, templates, extensions, ttl_policy, instance)
            for instance in store.instances(domain) if has_flattened_alias(instance)]


def refresh_instance(store: StateStore, router: BackendRouter, templates: Mapping[tuple[str, str], Template],
                     extensions: GatewayExtensions, ttl_policy: TtlPolicy,
                     instance: TemplateInstance) -> RefreshOutcome:
    template = templates.get((instance.provider_id, instance.service_id))
    if template is None:
        return RefreshOutcome(instance, "failed", "the template is no longer onboarded (gateway.templates)")
    context = ApplyContext(instance.domain, instance.host, dict(instance.params),
                           frozenset(instance.group_ids) or None, ttl_policy)
    try:
        route = router.backend_for(dns.name.from_text(instance.domain))
        if route is None:
            return RefreshOutcome(instance, "failed", "no configured backend hosts the zone any more")
        plan = plan_instance(store, route[0], template, context, instance_id=instance.instance_id,
                             extensions=extensions)
        if plan.conflicts or plan.disabled:
            reasons = [c.reason for c in plan.conflicts] + [f"it would disable {d}" for d in plan.disabled]
            return RefreshOutcome(instance, "failed", "records changed since the apply, left alone: "
                                  + "; ".join(reasons))
        if not plan.changes and not plan.extension_changes:
            return RefreshOutcome(instance, "unchanged")
        commit_instance(store, plan, ACTOR)
    except (RenderError, PlanError, BackendError) as exc:
        return RefreshOutcome(instance, "failed", str(exc))
    added = ", ".join(sorted(r.rdata.to_text() for r in plan.records_added() if hasattr(r, "rdata")))
    removed = ", ".join(sorted(r.rdata.to_text() for r in plan.records_removed() if hasattr(r, "rdata")))
    return RefreshOutcome(instance, "refreshed", f"+ {added or 'nothing'}; - {removed or 'nothing'}")
