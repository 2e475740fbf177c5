"""Plan what applying a rendered template changes in a zone (spec "Record Types and Conflicts").

The planner sees only the RRsets at the names the template touches (their ancestors for
delegations, and the subtree below an NS record), so its cost follows the template, not
the zone. It returns RRset-level changes for a backend and record-level additions,
deletions and conflicts for a person or a 409 body.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset

from gateway.records import (
    ExtensionRecord, Record, RenderedRecord, make_rrset, rdata_identity, records_of, relative_text, same_rrset,
)
from gateway.render import RenderedTemplate, split_txt, txt_text
from gateway.safety import UnsafeChange, check_changes
from gateway.spf import SpfMergeError, SpfRulesError, is_spf, merge_spf
from gateway.template import TxtConflictMode

T = dns.rdatatype.RdataType
ADDRESS_TYPES = frozenset({T.A, T.AAAA})
APEX_ALIAS = "APEXCNAME"
# What an alias answers for in place of records of its own.
ALIAS_DISPLACES = ADDRESS_TYPES | {T.CNAME}
# Records a template never touches: DNSSEC material and the zone's SOA.
UNTOUCHABLE = frozenset({T.SOA, T.RRSIG, T.NSEC, T.NSEC3, T.NSEC3PARAM, T.DNSKEY, T.CDS, T.CDNSKEY})

RRsetKey = tuple[dns.name.Name, T]


class PlanError(ValueError):
    """The template cannot be applied as a whole (its own records cannot coexist, ...)."""


class UnsupportedRecordType(PlanError):
    """The template uses an extension record type the backend does not implement."""


@dataclass(frozen=True)
class RRsetChange:
    """Replace the RRset at (name, rdtype): `before` as read, `after` as wanted (None: absent)."""

    name: dns.name.Name
    rdtype: T
    before: dns.rrset.RRset | None
    after: dns.rrset.RRset | None


@dataclass(frozen=True)
class ExtensionChange:
    """Set the extension record of `type` at `name`: `before` as read, `after` as wanted (None: absent)."""

    type: str
    name: dns.name.Name
    before: ExtensionRecord | None
    after: ExtensionRecord | None


@dataclass(frozen=True)
class Conflict:
    """An existing record (or extension record) the template removes, and why."""

    record: Record | ExtensionRecord
    reason: str


@dataclass(frozen=True)
class ReadScope:
    """What a planner must see: RRsets at `names`, and everything below `subtrees`."""

    names: frozenset[dns.name.Name]
    subtrees: frozenset[dns.name.Name]


@dataclass
class Plan:
    zone: dns.name.Name
    changes: list[RRsetChange] = field(default_factory=list)
    add: list[Record] = field(default_factory=list)  # and the ExtensionRecords of extension_changes
    delete: list[Record] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Changes to extension records the backend writes itself (its supported_extensions).
    extension_changes: list[ExtensionChange] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.changes and not self.extension_changes

    def to_json(self) -> dict[str, list[dict]]:
        return {
            "add": [r.to_json(self.zone) for r in self.add],
            "delete": [r.to_json(self.zone) for r in self.delete],
        }


def read_scope(rendered: RenderedTemplate, zone: dns.name.Name) -> ReadScope:
    """The names whose RRsets decide the plan: owners, their ancestors inside the zone
    (an NS there is a delegation), and the subtrees under NS records."""
    owners = {r.name for r in rendered.records} | {s.name for s in rendered.spf}
    owners |= {e.name for e in rendered.extensions}
    owners |= {p.name for p in rendered.pending if p.name is not None}
    names: set[dns.name.Name] = set()
    for owner in owners:
        names.add(owner)
        name = owner
        while name != zone and name.is_subdomain(zone):
            names.add(name)
            name = name.parent()
    subtrees = {r.name for r in [*rendered.records, *rendered.pending] if r.name is not None and r.rdtype == T.NS}
    return ReadScope(frozenset(names), frozenset(subtrees))


def plan_changes(rendered: RenderedTemplate, current: Iterable[dns.rrset.RRset], zone: dns.name.Name,
                 supported_extensions: frozenset[str] = frozenset(),
                 current_extensions: Iterable[ExtensionRecord] = ()) -> Plan:
    """Compute the changes that apply `rendered` to a zone whose relevant RRsets are `current`
    (and extension records `current_extensions`, of a backend that writes them itself)."""
    unsupported = sorted({e.type for e in rendered.extensions} - supported_extensions)
    if unsupported:
        raise UnsupportedRecordType(
            f"the template uses {', '.join(unsupported)}, an extension this backend does not support")
    _check_coherent(rendered.records)

    # Callers pass the RRsets in `read_scope`; anything else they pass is ignored, so the
    # work below follows the template even when a caller hands over a whole zone.
    scope = read_scope(rendered, zone)
    existing: dict[RRsetKey, dns.rrset.RRset] = {}
    by_name: dict[dns.name.Name, list[Record]] = defaultdict(list)
    for rrset in current:
        if rrset.rdtype in UNTOUCHABLE or not _in_scope(rrset.name, scope):
            continue
        existing[(rrset.name, rrset.rdtype)] = rrset
        by_name[rrset.name].extend(records_of([rrset]))

    plan = Plan(zone=zone, warnings=list(rendered.warnings))
    desired: list[tuple[RenderedRecord, TxtConflictMode, str | None]] = [
        (r, r.source.txt_conflict_mode, r.source.txt_conflict_prefix) for r in rendered.records]
    removals: dict[tuple[RRsetKey, object], tuple[Record, str | None]] = {}

    for spf_record, replaced, problem in _merge_spf(rendered, existing, plan):
        desired.append((spf_record, TxtConflictMode.NONE, None))
        for old in replaced:
            removals[((old.name, old.rdtype), rdata_identity(old.rdata))] = (old, problem)

    wanted = {((r.name, r.rdtype), rdata_identity(r.rdata)) for r, _, _ in desired}
    for record, mode, prefix in desired:
        for old in _candidates(record, by_name, zone):
            key = ((old.name, old.rdtype), rdata_identity(old.rdata))
            if key in wanted or key in removals:
                continue
            reason = _conflict(record, mode, prefix, old, zone)
            if reason:
                removals[key] = (old, reason)

    _pending_conflicts(rendered, existing, by_name, zone, wanted, removals)
    extension_conflicts = _plan_extensions(plan, rendered, [r for r, _, _ in desired], current_extensions,
                                           by_name, removals, scope)
    plan.conflicts = [Conflict(old, reason) for old, reason in removals.values() if reason]
    plan.conflicts += extension_conflicts
    _build_changes(plan, existing, [r for r, _, _ in desired], removals)
    # Checked on the plan itself, so no front end (and no `force`) can skip it.
    try:
        check_changes(plan.changes, zone, rendered.context.safety)
    except UnsafeChange as exc:
        raise PlanError(str(exc)) from None
    return plan


def _plan_extensions(plan: Plan, rendered: RenderedTemplate, desired: list[Record],
                     current_extensions: Iterable[ExtensionRecord], by_name: dict[dns.name.Name, list[Record]],
                     removals: dict, scope: ReadScope) -> list[Conflict]:
    """Extension changes for the backend; an alias displaces the A, AAAA and CNAME records at
    its name, and address records written where an alias is displace the alias."""
    current = {(e.name, e.type): e for e in current_extensions if _in_scope(e.name, scope)}
    wanted: dict[tuple[dns.name.Name, str], ExtensionRecord] = {}
    for extension in rendered.extensions:
        key = (extension.name, extension.type)
        if key in wanted and wanted[key] != extension:
            raise PlanError(f"the template puts two different {extension.type} records at {extension.name.to_text()}")
        wanted[key] = extension
    conflicts = []
    at = lambda name: relative_text(name, plan.zone)  # noqa: E731
    for (name, rtype), extension in wanted.items():
        if rtype == APEX_ALIAS:
            clash = sorted({dns.rdatatype.to_text(r.rdtype) for r in desired
                            if r.name == name and r.rdtype in ALIAS_DISPLACES})
            if clash:
                raise PlanError(f"the template puts an APEXCNAME beside {', '.join(clash)} at {name.to_text()}; "
                                "an alias stands for those records")
            for old in by_name.get(name, ()):
                if old.rdtype in ALIAS_DISPLACES:
                    removals[((old.name, old.rdtype), rdata_identity(old.rdata))] = (
                        old, f"the new APEXCNAME at {at(name)} replaces the "
                             f"{dns.rdatatype.to_text(old.rdtype)} records there")
        before = current.get((name, rtype))
        if before == extension:
            continue
        plan.extension_changes.append(ExtensionChange(rtype, name, before, extension))
        plan.add.append(extension)  # type: ignore[arg-type]
        if before is not None:
            plan.delete.append(before)  # type: ignore[arg-type]
            conflicts.append(Conflict(before, f"the new {rtype} at {at(name)} replaces the existing one"))  # type: ignore[arg-type]
    for (name, rtype), old in current.items():
        if (name, rtype) in wanted or rtype != APEX_ALIAS:
            continue
        if any(r.name == name and r.rdtype in ALIAS_DISPLACES for r in desired):
            plan.extension_changes.append(ExtensionChange(rtype, name, old, None))
            plan.delete.append(old)  # type: ignore[arg-type]
            conflicts.append(Conflict(old, f"the new records at {at(name)} replace the APEXCNAME there"))  # type: ignore[arg-type]
    return conflicts


def _pending_conflicts(rendered: RenderedTemplate, existing: dict[RRsetKey, dns.rrset.RRset],
                       by_name: dict[dns.name.Name, list[Record]], zone: dns.name.Name, wanted: set,
                       removals: dict[tuple[RRsetKey, object], tuple[Record, str | None]]) -> None:
    """Conflicts of records whose value waits for the apply: which existing records go
    depends on their name and type only (the TXT prefix is never a variable), so they are
    known now. An SPF record that cannot be merged is replaced whatever the rules."""
    for pending in rendered.pending:
        if pending.name is None:
            continue  # placed only at apply, and checked then
        if pending.source.type == "SPFM":
            txt = existing.get((pending.name, T.TXT))
            spf_records = [r for r in records_of([txt]) if is_spf(txt_text(r.rdata))] if txt is not None else []
            problem = _spf_problem(pending.name, spf_records)
            for old in spf_records if problem else ():
                removals.setdefault(((old.name, old.rdtype), rdata_identity(old.rdata)), (old, problem))
            continue
        if pending.rdtype is None:
            continue  # extensions write no plain records
        for old in _candidates(pending, by_name, zone):
            key = ((old.name, old.rdtype), rdata_identity(old.rdata))
            if key in wanted or key in removals:
                continue
            reason = _conflict(pending, pending.source.txt_conflict_mode, pending.source.txt_conflict_prefix,
                               old, zone)
            if reason:
                removals[key] = (old, reason)


def _spf_problem(name: dns.name.Name, spf_records: list[Record]) -> str | None:
    """Why the SPF records at `name` cannot take merged rules, or None."""
    try:
        if len(spf_records) > 1:
            raise SpfMergeError(f"{name.to_text()} has {len(spf_records)} SPF records")
        merge_spf(txt_text(spf_records[0].rdata) if spf_records else None, [])
    except SpfMergeError as exc:
        return f"SPF record cannot be merged ({exc}); applying replaces it"
    return None


def _in_scope(name: dns.name.Name, scope: ReadScope) -> bool:
    return name in scope.names or any(name.is_subdomain(top) for top in scope.subtrees)


def _candidates(record: Record, by_name: dict[dns.name.Name, list[Record]], zone: dns.name.Name) -> list[Record]:
    """Existing records that could conflict with `record`: at its name, delegations above it,
    and for a new delegation everything below it."""
    found = list(by_name.get(record.name, ()))
    name = record.name
    while name != zone and name.is_subdomain(zone):
        name = name.parent()
        found += [r for r in by_name.get(name, ()) if r.rdtype == T.NS]
    if record.rdtype == T.NS:
        found += [r for owner, records in by_name.items()
                  if owner != record.name and owner.is_subdomain(record.name) for r in records]
    return found


def _check_coherent(records: list[RenderedRecord]) -> None:
    by_name: dict[dns.name.Name, list[RenderedRecord]] = defaultdict(list)
    for record in records:
        by_name[record.name].append(record)
    for name, group in by_name.items():
        cnames = [r for r in group if r.rdtype == T.CNAME]
        if len(cnames) > 1:
            raise PlanError(f"the template puts {len(cnames)} CNAME records at {name.to_text()}; "
                            "a name holds at most one")
        if cnames and len(group) > 1:
            others = sorted({dns.rdatatype.to_text(r.rdtype) for r in group if r.rdtype != T.CNAME})
            raise PlanError(f"the template puts a CNAME beside {', '.join(others)} at {name.to_text()}; "
                            "a CNAME cannot coexist with other records")


def _merge_spf(rendered: RenderedTemplate, existing: dict[RRsetKey, dns.rrset.RRset], plan: Plan):
    """Yield (merged SPF record, existing SPF records it replaces, conflict reason or None)."""
    rules_by_name: dict[dns.name.Name, list] = defaultdict(list)
    for spf in rendered.spf:
        rules_by_name[spf.name].append(spf)
    for name, group in rules_by_name.items():
        txt = existing.get((name, T.TXT))
        current = [r for r in records_of([txt])] if txt is not None else []
        spf_records = [r for r in current if is_spf(txt_text(r.rdata))]
        ttls = [s.ttl for s in group if s.ttl is not None]
        ttl = min(ttls) if ttls else (txt.ttl if txt is not None else rendered.context.ttl_policy.default)
        rules = [s.rules for s in group]
        problem = None
        try:
            try:
                if len(spf_records) > 1:
                    raise SpfMergeError(f"{name.to_text()} has {len(spf_records)} SPF records")
                merged = merge_spf(txt_text(spf_records[0].rdata) if spf_records else None, rules)
            except SpfMergeError as exc:
                problem = f"SPF record cannot be merged ({exc}); applying replaces it"
                merged = merge_spf(None, rules)
        except SpfRulesError as exc:  # rendering refuses these first; a caller may not have rendered
            raise PlanError(str(exc)) from None
        if merged.over_lookup_limit:
            plan.warnings.append(f"the SPF record at {relative_text(name, plan.zone)} needs {merged.lookups} "
                                 "DNS lookups, more than the limit of 10 receivers enforce")
        rdata = dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, T.TXT, split_txt(merged.text))
        source = group[0].source
        yield RenderedRecord(name=name, ttl=ttl, rdata=rdata, source=source), spf_records, problem


def _conflict(new: Record, mode: TxtConflictMode, prefix: str | None, old: Record,
              zone: dns.name.Name) -> str | None:
    """Why `old` must go when `new` is written, or None when they coexist."""
    new_type, old_type = dns.rdatatype.to_text(new.rdtype), dns.rdatatype.to_text(old.rdtype)
    at = relative_text(old.name, zone)
    if old.name == new.name:
        if old.rdtype == T.CNAME:
            return f"the existing CNAME at {at} conflicts with the new {new_type} record"
        if new.rdtype == T.CNAME:
            return f"the new CNAME at {at} conflicts with every other record there"
        if new.rdtype == T.NS:
            return f"the new delegation (NS) at {at} replaces every record at and below it"
        if old.rdtype == T.NS and old.name != zone:
            return f"{at} is delegated (NS); the new {new_type} record replaces the delegation"
        if new.rdtype in (T.MX, T.SRV) and old.rdtype == new.rdtype:
            return f"the new {new_type} record replaces the {old_type} records at {at}"
        if new.rdtype in ADDRESS_TYPES and old.rdtype in ADDRESS_TYPES:
            return f"the new {new_type} record replaces the A and AAAA records at {at}"
        if new.rdtype == T.TXT and old.rdtype == T.TXT:
            if mode is TxtConflictMode.ALL:
                return f"the new TXT record replaces all TXT records at {at}"
            if mode is TxtConflictMode.PREFIX and prefix is not None and txt_text(old.rdata).startswith(prefix):
                return f"the new TXT record replaces TXT records starting with {prefix!r} at {at}"
        return None
    if new.rdtype == T.NS and old.name.is_subdomain(new.name):
        return f"the new delegation (NS) at {relative_text(new.name, zone)} replaces everything below it"
    if old.rdtype == T.NS and old.name != zone and new.name.is_subdomain(old.name):
        return f"{at} is delegated (NS); the new {new_type} record below it replaces the delegation"
    return None


def _build_changes(plan: Plan, existing: dict[RRsetKey, dns.rrset.RRset], desired: list[Record],
                   removals: dict[tuple[RRsetKey, object], tuple[Record, str | None]]) -> None:
    wanted_by_key: dict[RRsetKey, list[Record]] = defaultdict(list)
    for record in desired:
        wanted_by_key[(record.name, record.rdtype)].append(record)
    removed_by_key: dict[RRsetKey, set[object]] = defaultdict(set)
    for (key, identity), _ in removals.items():
        removed_by_key[key].add(identity)

    for key in sorted(set(wanted_by_key) | set(removed_by_key), key=_key_order):
        name, rdtype = key
        before = existing.get(key)
        kept = [r for r in (records_of([before]) if before is not None else [])
                if rdata_identity(r.rdata) not in removed_by_key[key]]
        wanted = wanted_by_key.get(key, [])
        identities = {rdata_identity(r.rdata) for r in kept}
        rdatas = [r.rdata for r in kept]
        for record in wanted:
            identity = rdata_identity(record.rdata)
            if identity not in identities:
                identities.add(identity)
                rdatas.append(record.rdata)
        ttl = min(r.ttl for r in wanted) if wanted else (before.ttl if before is not None else 0)
        after = make_rrset(name, ttl, rdatas)
        if same_rrset(before, after):
            continue
        plan.changes.append(RRsetChange(name, rdtype, before, after))
        before_records = set(_ttl_identity(r) for r in records_of([before])) if before is not None else set()
        after_records = set(_ttl_identity(r) for r in records_of([after])) if after is not None else set()
        plan.delete += [r for r in records_of([before] if before is not None else [])
                        if _ttl_identity(r) not in after_records]
        plan.add += [r for r in records_of([after] if after is not None else [])
                     if _ttl_identity(r) not in before_records]


def _ttl_identity(record: Record) -> tuple[int, object]:
    return (record.ttl, rdata_identity(record.rdata))


def _key_order(key: RRsetKey) -> tuple:
    name, rdtype = key
    return (name, int(rdtype))


def apply_changes_to_rrsets(rrsets: Iterable[dns.rrset.RRset], changes: Iterable[RRsetChange]) -> list[dns.rrset.RRset]:
    """The RRsets after `changes`, for previews and tests."""
    result: dict[RRsetKey, dns.rrset.RRset] = {(r.name, r.rdtype): r for r in rrsets}
    for change in changes:
        if change.after is None:
            result.pop((change.name, change.rdtype), None)
        else:
            result[(change.name, change.rdtype)] = change.after
    return [result[key] for key in sorted(result, key=_key_order)]
