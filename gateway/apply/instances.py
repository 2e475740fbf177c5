"""Template state: applying and reverting template instances recorded in the state store.

Re-applying a template on the same host replaces its previous instance: records the new
one no longer writes are removed. Groups add up: one instance per template and host holds
every group applied, and re-applying group A replaces only A's records. A multiInstance
template replaces only the instance with the same instanceId; without one, each apply
adds an instance. Revert removes exactly the records an instance wrote and that are still
as written; changed ones are reported, never clobbered, and records that were there before
the instance (written exactly as the template would) stay. The extra removals join the
engine's plan so the backend sees one atomic change, made through gateway.apply.intents under
the zone lock.

SPF records are merged, not written (SPFM), so an instance remembers the SPF terms it owns
instead: a row `{"name", "spf": [term, ...], "created": bool}` beside its records. Revert takes
those terms out of whatever the SPF record holds by then (the user may have edited it), keeps
the ones another instance still claims, and drops the record only when an instance created it
and nothing but `all` is left. The `all` qualifier the merge chose stays as it is.

Extensions are owned the same way, by rows beside the records: a web redirect
`{"name", "redirect": url, "code"}` (the store serves it to the HTTP listener while the
instance lives), a flattened alias `{"name", "alias": target, "ttl"}` (its A/AAAA records
are ordinary rows; `dcgw aliases refresh` re-applies the instance when the target moves),
and an extension record the backend writes itself `{"name", "extension": type, "fields"}`,
which revert removes when it is still as written.
"""

from __future__ import annotations

import copy
import functools
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

from backends.base import Backend
from backends.records import ExtensionChange, ExtensionRecord, RRsetChange, make_rrset, rdata_identity, same_rrset
from gateway.apply.extensions import NO_EXTENSIONS, GatewayExtensions
from gateway.apply.intents import Draft, exclusive, write, write_decided
from gateway.apply.pipeline import PreparedApply, hosted_zone, prepare_apply, read_and_plan, render_for
from gateway.engine.plan import Conflict, Plan, PlanError, apply_changes_to_rrsets, read_scope
from gateway.engine.records import Record, records_of
from gateway.engine.render import ApplyContext, RenderedTemplate, split_txt, txt_text
from gateway.engine.safety import UnsafeChange, check_changes
from gateway.engine.spf import SpfMergeError, is_spf, merge_spf, term_key
from gateway.engine.template import Essential, Template
from gateway.state import StateError, StateStore
from gateway.state.models import TemplateInstance
from gateway.state.store import instance_row

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
    instance_id: str | None = None


def record_dicts(records: Iterable[Record], **flags: bool) -> list[dict]:
    return [{"name": r.name.to_text(), "type": dns.rdatatype.to_text(r.rdata.rdtype), "ttl": r.ttl,
             "data": r.rdata.to_text(), **_provenance(getattr(r, "source", None)), **flags} for r in records]


def _provenance(source) -> dict:
    # Only records whose loss must drop their template are marked; OnApply ones may change freely.
    marks: dict = {"essential": True} if source is not None and source.essential == Essential.ALWAYS else {}
    if source is not None and source.group_id is not None:
        marks["group"] = source.group_id
    return marks


def _owned(rows: Iterable[dict]) -> list[Record]:
    """The records of `rows` the instance wrote itself (not those that were there before it)."""
    return records_from_dicts(row for row in rows if not row.get("preexisting"))


def _in_groups(row: dict, groups: frozenset[str] | None) -> bool:
    """Whether an apply of `groups` (None: every group) re-writes this row."""
    return groups is None or row.get("group") in groups


def _union_groups(previous: Iterable[TemplateInstance], groups: frozenset[str] | None) -> list[str]:
    """The groups an instance holds after this apply; [] stands for every group."""
    held = [set(i.group_ids) for i in previous]
    if groups is None or any(not g for g in held):
        return []
    return sorted(set(groups).union(*held))


def records_from_dicts(rows: Iterable[dict]) -> list[Record]:
    return [_stored_record(row["name"], int(row["ttl"]), row["type"], row["data"]) for row in _record_rows(rows)]


@functools.lru_cache(maxsize=8192)
def _stored_record(name: str, ttl: int, rtype: str, data: str) -> Record:
    # Remembered: every plan for a domain reads its instances' rows again, and they seldom change.
    return Record(dns.name.from_text(name), ttl, dns.rdata.from_text(dns.rdataclass.IN, rtype, data))


# Keys that mark a row as something other than a DNS record the instance wrote.
_OWNED_KINDS = frozenset({"spf", "redirect", "alias", "extension"})


def _record_rows(rows: Iterable[dict]) -> list[dict]:
    return [row for row in rows if not _OWNED_KINDS & row.keys()]


def _extension_rows(rows: Iterable[dict]) -> list[dict]:
    return [row for row in rows if "extension" in row]


def extensions_from_rows(rows: Iterable[dict]) -> list[ExtensionRecord]:
    return [ExtensionRecord.of(row["extension"], dns.name.from_text(row["name"]), row["fields"])
            for row in _extension_rows(rows)]


def _redirect_rows(rows: Iterable[dict]) -> list[dict]:
    return [row for row in rows if "redirect" in row]


def owned_extension_rows(prepared: PreparedApply, inherited: Iterable[ExtensionRecord]) -> list[dict]:
    """The redirect, alias and extension rows the instance being applied owns."""
    rendered = prepared.rendered
    # Each row names its group, so re-applying another group carries it and re-applying its own replaces it.
    rows = [{"name": r.name.to_text(), "redirect": r.target, "code": r.code, **_group_of(r.group)}
            for r in rendered.redirects]
    rows += [{"name": a.name.to_text(), "alias": a.target.to_text(), "ttl": a.ttl, **_group_of(a.group)}
             for a in rendered.aliases]
    # Like records: what it writes, or took over from the instance it replaces, never one that was there before.
    added = {c.after for c in prepared.plan.extension_changes if c.after is not None} | set(inherited)
    rows += [{"name": e.name.to_text(), "extension": e.type, "fields": dict(e.fields),
              **_group_of(e.source.group_id if e.source is not None else None)}
             for e in rendered.extensions if e in added]
    return rows


def _group_of(group: str | None) -> dict:
    return {"group": group} if group is not None else {}


def describe_row(row: dict) -> str:
    """One row of an instance for people: `name TYPE data`."""
    if "spf" in row:
        return f"{row['name']} TXT (SPF terms) {' '.join(row['spf'])}"
    if "redirect" in row:
        return f"{row['name']} REDIR{row['code']} {row['redirect']}"
    if "alias" in row:
        return f"{row['name']} APEXCNAME (flattened) {row['alias']}"
    if "extension" in row:
        return f"{row['name']} {row['extension']} {' '.join(str(v) for _, v in sorted(row['fields'].items()))}"
    return f"{row['name']} {row['type']} {row['data']}"


def _spf_rows(rows: Iterable[dict]) -> list[dict]:
    return [row for row in rows if "spf" in row]


@dataclass
class InstancePlan:
    """Everything one apply would do, computed from one read: shown to the user, then committed as is."""

    prepared: PreparedApply
    instance_id: str | None
    current: list[dns.rrset.RRset]  # what was read; the backend refuses the write if it changed
    changes: list[RRsetChange]
    written: list[dict]  # the rows the new instance will own
    replaces: list[TemplateInstance]  # the previous instance and any disabled ones
    disabled: list[str]  # "provider/service" of instances losing an essential record
    changed_since: list[Record]
    group_ids: list[str] = field(default_factory=list)  # the groups the instance holds; []: every group
    extension_changes: list[ExtensionChange] = field(default_factory=list)

    @property
    def conflicts(self) -> list[Conflict]:
        return self.prepared.plan.conflicts

    def records_added(self) -> list[Record | ExtensionRecord]:
        """What a person is shown as added: records, extension records, and redirects started."""
        old = _redirects(row for i in self.replaces for row in i.records)
        return [*(r for c in self.changes for r in _only_in(c.after, c.before)),
                *(c.after for c in self.extension_changes if c.after is not None),
                *(r for r in _redirects(self.written) if r not in old)]

    def records_removed(self) -> list[Record | ExtensionRecord]:
        new = _redirects(self.written)
        return [*(r for c in self.changes for r in _only_in(c.before, c.after)),
                *(c.before for c in self.extension_changes if c.before is not None),
                *(r for r in _redirects(row for i in self.replaces for row in i.records) if r not in new)]

    def instance_row(self, actor: str) -> dict:
        context, template = self.prepared.rendered.context, self.prepared.rendered.template
        return instance_row(provider_id=template.provider_id, service_id=template.service_id,
                            domain=context.domain, host=context.host, instance_id=self.instance_id,
                            group_ids=self.group_ids, params=dict(context.params), records=self.written,
                            applied_by=actor, multi_instance=template.multi_instance)


def _redirects(rows: Iterable[dict]) -> list[ExtensionRecord]:
    """Redirect rows in the shape of records, for people: REDIR301 www -> https://..."""
    return [ExtensionRecord.of(f"REDIR{row['code']}", dns.name.from_text(row["name"]), {"target": row["redirect"]})
            for row in _redirect_rows(rows)]


def new_instance_id() -> str:
    """An instanceId for a multiInstance apply that names none."""
    return secrets.token_hex(8)


def plan_instance(store: StateStore, backend: Backend, template: Template, context: ApplyContext, *,
                  instance_id: str | None, extensions: GatewayExtensions = NO_EXTENSIONS,
                  defer_missing: bool = False, rendered: RenderedTemplate | None = None) -> InstancePlan:
    """The whole change applying `template` makes, replaced and disabled instances included; writes nothing.
    `defer_missing`: for consent, records needing variables not given yet are pending (never committed)."""
    prepared = prepare_apply(backend, template, context, extensions, defer_missing=defer_missing, rendered=rendered)
    # read once: every decision below sees the same state
    return _plan_from(prepared, store.instances(context.domain), instance_id)


def _plan_from(prepared: PreparedApply, applied: Sequence[TemplateInstance], instance_id: str | None) -> InstancePlan:
    """`plan_instance` once DNS and the domain's instances (`applied`) are read."""
    backend, template, context = prepared.backend, prepared.rendered.template, prepared.rendered.context
    if template.multi_instance and instance_id is None:
        instance_id = new_instance_id()  # a new instance; it replaces none
    previous = replaced_instances(template, context, instance_id, applied)
    groups = context.group_ids
    # Rows of the previous instance this apply writes again, and rows of its other groups, kept.
    rewritten = [row for i in previous for row in i.records if _in_groups(row, groups)]
    carried = [row for i in previous for row in i.records if not _in_groups(row, groups)]
    # Re-applying replaces the previous instance, so its own records are no conflict (spec
    # "Apply, Re-apply, and Multi-Instance"); they are still removed by the plan.
    replaced = {_identity(r) for r in records_from_dicts(rewritten)}
    prepared.plan.conflicts = [c for c in prepared.plan.conflicts if _identity(c.record) not in replaced]
    broken = disabled_instances(prepared.plan, applied, {i.id for i in previous})
    # A template that lost an essential record is removed as a whole.
    stale_rows = rewritten + [row for i in broken for row in i.records]
    stale = _owned(stale_rows)
    stale_spf = _spf_rows(stale_rows)
    spf_owned = _spf_claims(prepared, applied)
    gone = {i.id for i in [*previous, *broken]}
    others = [i for i in applied if i.id not in gone]
    # Only what the plan did not read already (a name, or a type the read left out there):
    # a re-apply usually touches the same ones.
    scope = read_scope(prepared.rendered, prepared.zone)
    stale_rrsets = [(r.name, r.rdtype) for r in stale] + [
        (dns.name.from_text(row["name"]), dns.rdatatype.TXT) for row in stale_spf]
    unread = {name for name, rdtype in stale_rrsets
              if name not in scope.names or rdtype not in scope.types.get(name, (rdtype,))}
    current = _union(prepared.current, backend.read(prepared.zone, unread, ()) if unread else [])
    after_plan = apply_changes_to_rrsets(current, prepared.plan.changes)
    rendered = [Record(r.name, r.ttl, r.rdata) for r in prepared.rendered.records]
    final, _ = _without(after_plan, stale, keep=[*rendered, *records_from_dicts(carried)],
                        still_needed=[r for i in others for r in records_from_dicts(i.records)])
    # Changed since means changed by someone else before this apply, so it is judged on what
    # was read: a record the plan itself replaces (a DDNS update's old address) is not one.
    _, changed_since = _without(current, stale, keep=[], still_needed=[])
    # Terms the replaced instances owned go unless the new instance or another one claims them.
    final = _unmerge_spf(final, stale_spf, _spf_terms_by_name([*spf_owned, *_spf_rows(carried), *(
        row for i in others for row in _spf_rows(i.records))]))
    changes = _changes(current, final)
    try:  # the whole change counts: a replaced or disabled instance's records are deleted too
        check_changes(changes, prepared.zone, context.safety)
    except UnsafeChange as exc:
        raise PlanError(str(exc)) from None
    stale_extensions = extensions_from_rows(stale_rows)
    extension_changes = prepared.plan.extension_changes + _stale_extension_removals(
        prepared, stale_extensions, [e for i in others for e in extensions_from_rows(i.records)]
        + extensions_from_rows(carried))
    return InstancePlan(prepared, instance_id, current, changes,
                        _written(prepared, current, stale) + spf_owned
                        + owned_extension_rows(prepared, stale_extensions) + carried,
                        previous + broken, [f"{i.provider_id}/{i.service_id}" for i in broken], changed_since,
                        _union_groups(previous, groups), extension_changes)


def _written(prepared: PreparedApply, current: Iterable[dns.rrset.RRset], inherited_records: list[Record]) -> list[dict]:
    """The rows of the rendered records: owned when this apply adds them or takes them over from
    the instance it replaces; pre-existing when they were already there exactly as rendered."""
    inherited = {_identity(r) for r in inherited_records}
    added = {_identity(r) for r in prepared.plan.add}
    present = {(_identity(r), r.ttl) for r in records_of(current)}
    owned = [r for r in prepared.rendered.records if _identity(r) in added | inherited]
    there = [r for r in prepared.rendered.records
             if _identity(r) not in added | inherited and (_identity(r), r.ttl) in present]
    return record_dicts(owned) + record_dicts(there, preexisting=True)


def _stale_extension_removals(prepared: PreparedApply, stale: Sequence[ExtensionRecord],
                              still_needed: Sequence[ExtensionRecord]) -> list[ExtensionChange]:
    """Extension records of replaced instances that the new one no longer writes: removed
    when still as written and no other instance (nor a group kept) claims the same."""
    planned = {(c.name, c.type) for c in prepared.plan.extension_changes}
    wanted = {(e.name, e.type) for e in prepared.rendered.extensions}
    candidates = [e for e in stale if (e.name, e.type) not in planned | wanted and e not in still_needed]
    if not candidates:
        return []
    unread = {e.name for e in candidates} - read_scope(prepared.rendered, prepared.zone).names
    current = prepared.current_extensions + (
        prepared.backend.read_extensions(prepared.zone, unread) if unread else [])
    return [ExtensionChange(e.type, e.name, e, None) for e in dict.fromkeys(candidates) if e in current]


def commit_instance(store: StateStore, plan: InstancePlan, actor: str) -> int:
    """Write `plan` in one backend change and record the instance, crash-safe (gateway.apply.intents).
    `ZoneChanged` (nothing written) when the zone moved since the plan's read. The caller
    holds the zone lock (`exclusive`)."""
    prepared = plan.prepared
    return write(store, prepared.backend, prepared.zone, prepared.rendered.context.domain, plan.changes,
                 instance=plan.instance_row(actor), replaces=[i.id for i in plan.replaces], actor=actor,
                 extensions=plan.extension_changes)


def apply_instance(store: StateStore, backend: Backend, template: Template, context: ApplyContext, *,
                   instance_id: str | None, actor: str, force: bool = False,
                   approved: Callable[[InstancePlan], bool] | None = None,
                   extensions: GatewayExtensions = NO_EXTENSIONS, access_token: str | None = None) -> InstanceResult:
    """Apply `template` and record the instance; nothing is written when there are conflicts and not
    force, unless `approved(plan)` says the user already allowed them all (at OAuth consent).
    With `access_token`, nothing is written unless that token is still live when the write is
    recorded (`AccessRevoked`).

    The zone is held from the read to the record only (rendering comes first), and the state
    store is reached twice: once for the zone's pending intents, its instances and the new
    intent, once for the record (gateway.apply.intents.write_decided)."""
    zone = hosted_zone(backend, context)
    rendered = render_for(backend, template, context, extensions)
    with exclusive(store, backend, zone, settle=False):
        prepared = read_and_plan(backend, zone, rendered)
        decided: list[tuple[InstanceResult, bool]] = []

        def decide(applied: list[TemplateInstance]) -> Draft | None:
            # Planned again when settling an intent changed the instances (never DNS).
            plan = _plan_from(replace(prepared, plan=copy.copy(prepared.plan)), applied, instance_id)
            result = InstanceResult(plan.prepared.plan, disabled=plan.disabled)
            if (plan.conflicts or plan.disabled) and not force and not (approved is not None and approved(plan)):
                decided.append((result, False))
                return None
            result.changes, result.changed_since, result.instance_id = plan.changes, plan.changed_since, plan.instance_id
            decided.append((result, True))
            return Draft(plan.changes, plan.instance_row(actor), [i.id for i in plan.replaces], actor,
                         extensions=plan.extension_changes)

        instance = write_decided(store, backend, zone, context.domain, decide, access_token=access_token)
        result, written = decided[-1]
        if written:
            result.instance = instance
        return result


def replaced_instances(template: Template, context: ApplyContext, instance_id: str | None,
                       applied: Sequence[TemplateInstance]) -> list[TemplateInstance]:
    """The instances an apply replaces: the same template on the same host (and instanceId when multiInstance)."""
    return [i for i in applied if i.host == context.host
            and (i.provider_id, i.service_id) == (template.provider_id, template.service_id)
            and (not template.multi_instance or i.instance_id == instance_id)]


def disabled_instances(plan: Plan, applied: Sequence[TemplateInstance],
                       replaced_ids: set[int]) -> list[TemplateInstance]:
    """Other applied instances that lose an essential (Always) record to `plan`, so would be removed whole."""
    removed = {_identity(r) for r in plan.delete}
    return [i for i in applied if i.id not in replaced_ids and any(
        row.get("essential") and _identity(r) in removed
        for row, r in zip(_record_rows(i.records), records_from_dicts(i.records)))]


def revert_instance(store: StateStore, backend: Backend, zone: dns.name.Name, instance_pk: int,
                    actor: str) -> tuple[list[RRsetChange], list[Record]]:
    """Remove what one instance wrote and is still as written; returns the changes and the records left."""
    with exclusive(store, backend, zone):
        instance, changes, changed, extension_changes = plan_revert(store, backend, zone, instance_pk)
        write(store, backend, zone, instance.domain, changes, instance=None, replaces=[instance.id], actor=actor,
              audit={"changed_since": record_dicts(changed)}, extensions=extension_changes)
        return changes, changed


def plan_revert(store: StateStore, backend: Backend, zone: dns.name.Name, instance_pk: int
                ) -> tuple[TemplateInstance, list[RRsetChange], list[Record], list[ExtensionChange]]:
    """What reverting an instance would change now (reads only): the instance, the RRset
    changes, the records it wrote that changed since and so stay, and the extension changes."""
    instance = store.instance(instance_pk)
    if instance is None:
        raise StateError(f"instance {instance_pk}: not found")
    written = _owned(instance.records)
    spf = _spf_rows(instance.records)
    current = backend.read(zone, {r.name for r in written} | {dns.name.from_text(row["name"]) for row in spf}, ())
    others = [i for i in store.instances(instance.domain) if i.id != instance.id]
    final, changed = _without(current, written, keep=[], still_needed=[
        r for i in others for r in records_from_dicts(i.records)])
    final = _unmerge_spf(final, spf, _spf_terms_by_name(row for i in others for row in _spf_rows(i.records)))
    extension_changes = _extension_removals(backend, zone, extensions_from_rows(instance.records),
                                            [e for i in others for e in extensions_from_rows(i.records)])
    return instance, _changes(current, final), changed, extension_changes


def _extension_removals(backend: Backend, zone: dns.name.Name, written: Sequence[ExtensionRecord],
                        still_needed: Sequence[ExtensionRecord]) -> list[ExtensionChange]:
    """Remove the extension records an instance wrote that are still as written and no other instance claims."""
    candidates = [e for e in written if e not in still_needed]
    if not candidates:
        return []
    current = backend.read_extensions(zone, {e.name for e in candidates})
    return [ExtensionChange(e.type, e.name, e, None) for e in candidates if e in current]


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


def _spf_keys(tokens: Iterable[str]) -> list[str]:
    keys = [term_key(t) for t in tokens if t.lower() != "v=spf1"]
    return list(dict.fromkeys(k for k in keys if k != "all"))


def _spf_claims(prepared: PreparedApply, applied: Sequence[TemplateInstance]) -> list[dict]:
    """The SPF rows of the instance being applied: the terms of its rules it owns at each name.

    It owns a term it adds and one another instance (or the one it replaces) added before;
    never a term the record held before any instance. It created the record when there was
    none (or it replaced one that could not be merged), or when another instance created it.
    """
    rules: dict[tuple[dns.name.Name, str | None], list[str]] = defaultdict(list)
    for spf in prepared.rendered.spf:
        rules[(spf.name, spf.source.group_id if spf.source is not None else None)].append(spf.rules)
    current = {(r.name, r.rdtype): r for r in prepared.current}
    claimed_rows = [row for i in applied for row in _spf_rows(i.records)]
    rows = []
    for (name, group), texts in rules.items():
        existing = _mergeable_spf(current.get((name, dns.rdatatype.TXT)))
        before = set(_spf_keys(existing.split())) if existing is not None else set()
        at_name = [row for row in claimed_rows if dns.name.from_text(row["name"]) == name]
        claimed = {key for row in at_name for key in row["spf"]}
        owned = [key for key in _spf_keys(t for text in texts for t in text.split())
                 if key not in before or key in claimed]
        created = existing is None or any(row.get("created") for row in at_name)
        if owned:
            rows.append({"name": name.to_text(), "spf": owned, "created": created,
                         **({"group": group} if group is not None else {})})
    return rows


def _mergeable_spf(txt: dns.rrset.RRset | None) -> str | None:
    """The text of the one SPF record in `txt` that rules can merge into, or None."""
    texts = [txt_text(rd) for rd in txt if is_spf(txt_text(rd))] if txt is not None else []
    if len(texts) != 1:
        return None
    try:
        merge_spf(texts[0], [])
    except SpfMergeError:
        return None
    return texts[0]


def _spf_terms_by_name(rows: Iterable[dict]) -> dict[dns.name.Name, set[str]]:
    terms: dict[dns.name.Name, set[str]] = defaultdict(set)
    for row in rows:
        terms[dns.name.from_text(row["name"])].update(row["spf"])
    return terms


def _unmerge_spf(rrsets: Iterable[dns.rrset.RRset], rows: Iterable[dict],
                 still_claimed: dict[dns.name.Name, set[str]]) -> list[dns.rrset.RRset]:
    """Take the terms of `rows` out of the SPF records, keeping the ones still claimed and the order."""
    by_key: dict[RRsetKey, dns.rrset.RRset] = {(r.name, r.rdtype): r for r in rrsets}
    for row in rows:
        name = dns.name.from_text(row["name"])
        txt = by_key.get((name, dns.rdatatype.TXT))
        remove = set(row["spf"]) - still_claimed.get(name, set())
        spf = [rd for rd in txt if is_spf(txt_text(rd))] if txt is not None else []
        if len(spf) != 1 or not remove:
            continue  # gone, or made ambiguous by hand: leave it to the user
        tokens = txt_text(spf[0]).split()
        kept = [t for t in tokens[1:] if term_key(t) not in remove]
        if len(kept) == len(tokens) - 1:
            continue
        rdatas = [rd for rd in txt if rd is not spf[0]]
        if not (row.get("created") and all(term_key(t) == "all" for t in kept)):
            text = " ".join([tokens[0], *kept])
            rdatas.append(dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, split_txt(text)))
        smaller = make_rrset(name, txt.ttl, rdatas)
        if smaller is None:
            del by_key[(name, dns.rdatatype.TXT)]
        else:
            by_key[(name, dns.rdatatype.TXT)] = smaller
    return list(by_key.values())


def _only_in(rrset: dns.rrset.RRset | None, other: dns.rrset.RRset | None) -> list[Record]:
    """Records of `rrset` that `other` lacks (a changed TTL counts as a different record)."""
    if rrset is None:
        return []
    kept = {rdata_identity(rd) for rd in other} if other is not None and other.ttl == rrset.ttl else set()
    return [Record(rrset.name, rrset.ttl, rd) for rd in rrset if rdata_identity(rd) not in kept]


def _identity(record: Record | ExtensionRecord) -> tuple:
    if isinstance(record, ExtensionRecord):
        return (record.name, record.type, record.fields)
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


def instance_differences(instance: TemplateInstance, backend: Backend, zone: dns.name.Name) -> list[dict]:
    """What the backend serves that differs from what `instance` recorded: each record it
    owns or found there that is gone or changed, and each SPF term it owns that is missing."""
    names = {dns.name.from_text(row["name"]) for row in instance.records}
    current = {(r.name, r.rdtype): r for r in backend.read(zone, names, ())} if names else {}
    problems = []
    for row, record in zip(_record_rows(instance.records), records_from_dicts(instance.records)):
        rrset = current.get((record.name, record.rdtype))
        present = rrset is not None and any(rdata_identity(rd) == rdata_identity(record.rdata) for rd in rrset)
        if not present:
            problems.append({"record": row, "problem": "missing"})
        elif rrset.ttl != record.ttl:
            problems.append({"record": row, "problem": f"TTL is {rrset.ttl}"})
    for row in _spf_rows(instance.records):
        txt = current.get((dns.name.from_text(row["name"]), dns.rdatatype.TXT))
        spf = [txt_text(rd) for rd in txt if is_spf(txt_text(rd))] if txt is not None else []
        held = {term_key(t) for t in spf[0].split()[1:]} if len(spf) == 1 else set()
        missing = [term for term in row["spf"] if term not in held]
        if missing:
            problems.append({"record": row, "problem": "SPF terms missing: " + " ".join(missing)})
    return problems
