"""Template state: applying and reverting template instances recorded in the state store.

Re-applying a template on the same host replaces its previous instance: records the new
one no longer writes are removed. A multiInstance template only replaces the instance with
the same instanceId. Revert removes exactly the records an instance wrote and that are still
as written; changed ones are reported, never clobbered. The extra removals join the engine's
plan so the backend sees one atomic change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from backends.base import Backend
from gateway.apply import prepare_apply
from gateway.plan import Plan, RRsetChange, apply_changes_to_rrsets
from gateway.records import Record, make_rrset, rdata_identity, same_rrset
from gateway.render import ApplyContext
from gateway.state import StateError, StateStore
from gateway.template import Essential, Template

RRsetKey = tuple[dns.name.Name, int]


@dataclass
class InstanceResult:
    plan: Plan
    changes: list[RRsetChange] = field(default_factory=list)
    instance: int | None = None
    # Records an older instance wrote that were changed since, so were left alone.
    changed_since: list[Record] = field(default_factory=list)
    # "provider/service" of instances whose essential (Always) records this apply removes.
    disabled: list[str] = field(default_factory=list)


def record_dicts(records: Iterable[Record]) -> list[dict]:
    return [{"name": r.name.to_text(), "type": dns.rdatatype.to_text(r.rdata.rdtype), "ttl": r.ttl,
             "data": r.rdata.to_text(), **_essential_of(r)} for r in records]


def _essential_of(record: Record) -> dict:
    # Only records whose loss must drop their template are marked; OnApply ones may change freely.
    source = getattr(record, "source", None)
    return {"essential": True} if source is not None and source.essential == Essential.ALWAYS else {}


def records_from_dicts(rows: Iterable[dict]) -> list[Record]:
    return [Record(dns.name.from_text(row["name"]), int(row["ttl"]),
                   dns.rdata.from_text(dns.rdataclass.IN, row["type"], row["data"])) for row in rows]


def apply_instance(store: StateStore, backend: Backend, template: Template, context: ApplyContext, *,
                   instance_id: str | None, actor: str, force: bool = False) -> InstanceResult:
    """Apply `template` and record the instance; nothing is written when there are conflicts and not force."""
    prepared = prepare_apply(backend, template, context)
    result = InstanceResult(prepared.plan)
    previous = [i for i in store.instances(context.domain, context.host)
                if (i.provider_id, i.service_id) == (template.provider_id, template.service_id)
                and (not template.multi_instance or i.instance_id == instance_id)]
    removed = {_identity(r) for r in prepared.plan.delete}
    replaced_ids = {i.id for i in previous}
    broken = [i for i in store.instances(context.domain) if i.id not in replaced_ids and any(
        row.get("essential") and _identity(r) in removed
        for row, r in zip(i.records, records_from_dicts(i.records)))]
    result.disabled = [f"{i.provider_id}/{i.service_id}" for i in broken]
    if (prepared.plan.conflicts or broken) and not force:
        return result
    # A template that lost an essential record is removed as a whole.
    previous = previous + broken
    stale = [r for i in previous for r in records_from_dicts(i.records)]
    current = _union(prepared.current, backend.read(prepared.zone, {r.name for r in stale}, ()))
    after_plan = apply_changes_to_rrsets(current, prepared.plan.changes)
    rendered = [Record(r.name, r.ttl, r.rdata) for r in prepared.rendered.records]
    final, result.changed_since = _without(after_plan, stale, keep=rendered,
                                           still_needed=_needed_by_others(store, context, previous))
    # The instance owns what it added and what it took over from the instance it replaces,
    # never records that were there before any instance.
    inherited = {_identity(r) for r in stale}
    added = {_identity(r) for r in prepared.plan.add}
    written = [r for r in prepared.rendered.records if _identity(r) in added | inherited]
    result.changes = _changes(current, final)
    if result.changes:
        backend.apply(prepared.zone, result.changes)
    result.instance = store.record_instance(
        provider_id=template.provider_id, service_id=template.service_id, domain=context.domain,
        host=context.host, instance_id=instance_id, group_ids=list(context.group_ids or ()),
        params=dict(context.params), records=record_dicts(written), applied_by=actor,
        replaces=[i.id for i in previous])
    return result


def revert_instance(store: StateStore, backend: Backend, zone: dns.name.Name, instance_pk: int,
                    actor: str) -> tuple[list[RRsetChange], list[Record]]:
    """Remove what one instance wrote and is still as written; returns the changes and the records left."""
    instance = store.instance(instance_pk)
    if instance is None:
        raise StateError(f"instance {instance_pk}: not found")
    written = records_from_dicts(instance.records)
    current = backend.read(zone, {r.name for r in written}, ())
    others = [i for i in store.instances(instance.domain) if i.id != instance.id]
    final, changed = _without(current, written, keep=[], still_needed=[
        r for i in others for r in records_from_dicts(i.records)])
    changes = _changes(current, final)
    if changes:
        backend.apply(zone, changes)
    store.remove_instance(instance.id, actor, {"changed_since": record_dicts(changed)})
    return changes, changed


def _needed_by_others(store: StateStore, context: ApplyContext, replaced: Sequence) -> list[Record]:
    replaced_ids = {i.id for i in replaced}
    return [r for i in store.instances(context.domain) if i.id not in replaced_ids
            for r in records_from_dicts(i.records)]


def _without(rrsets: Iterable[dns.rrset.RRset], remove: Iterable[Record], keep: Iterable[Record],
             still_needed: Iterable[Record]) -> tuple[list[dns.rrset.RRset], list[Record]]:
    """`rrsets` less the `remove` records still present exactly (rdata and TTL); the others are reported."""
    by_key: dict[RRsetKey, dns.rrset.RRset] = {(r.name, r.rdtype): r for r in rrsets}
    protected = {_identity(r) for r in [*keep, *still_needed]}
    changed: list[Record] = []
    for record in remove:
        key = (record.name, record.rdata.rdtype)
        rrset = by_key.get(key)
        present = rrset is not None and any(rdata_identity(rd) == rdata_identity(record.rdata) for rd in rrset)
        if not present or rrset.ttl != record.ttl:
            changed.append(record)
            continue
        if _identity(record) in protected:
            continue
        remaining = [rd for rd in rrset if rdata_identity(rd) != rdata_identity(record.rdata)]
        smaller = make_rrset(record.name, rrset.ttl, remaining)
        if smaller is None:
            del by_key[key]
        else:
            by_key[key] = smaller
    return list(by_key.values()), changed


def _identity(record: Record) -> tuple:
    return (record.name, record.rdata.rdtype, rdata_identity(record.rdata))


def _union(*groups: Iterable[dns.rrset.RRset]) -> list[dns.rrset.RRset]:
    seen: dict[RRsetKey, dns.rrset.RRset] = {}
    for group in groups:
        for rrset in group:
            seen.setdefault((rrset.name, rrset.rdtype), rrset)
    return list(seen.values())


def _changes(before: Iterable[dns.rrset.RRset], after: Iterable[dns.rrset.RRset]) -> list[RRsetChange]:
    old = {(r.name, r.rdtype): r for r in before}
    new = {(r.name, r.rdtype): r for r in after}
    changes = []
    for key in sorted(old.keys() | new.keys(), key=lambda k: (k[0].to_text(), k[1])):
        if not same_rrset(old.get(key), new.get(key)):
            changes.append(RRsetChange(key[0], key[1], old.get(key), new.get(key)))
    return changes
