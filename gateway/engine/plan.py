"""Plan what applying a rendered template changes in a zone (spec "Record Types and Conflicts").

The planner sees only the RRsets at the names the template touches (their ancestors for
delegations, and the subtree below an NS record), so its cost follows the template, not
the zone. It returns RRset-level changes for a backend and record-level additions,
deletions and conflicts for a person or a 409 body.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rrset

from backends.records import (
    UNTOUCHABLE, ExtensionChange, ExtensionRecord, ReadScope, RRsetChange, hashed_name, make_rrset, name_key,
    rdata_identity, relative_text,
)
from gateway.engine.records import Record, RenderedRecord, records_of
from gateway.engine.render import RenderedTemplate, txt_rdata, txt_text
from gateway.engine.safety import UnsafeChange, check_keyed_changes
from gateway.engine.spf import SpfMergeError, SpfRulesError, is_spf, merge_spf
from gateway.engine.template import TxtConflictMode

T = dns.rdatatype.RdataType
ADDRESS_TYPES = frozenset({T.A, T.AAAA})
APEX_ALIAS = "APEXCNAME"
# What an alias answers for in place of records of its own.
ALIAS_DISPLACES = ADDRESS_TYPES | {T.CNAME}
RRsetKey = tuple[dns.name.Name, T]


class PlanError(ValueError):
    """The template cannot be applied as a whole (its own records cannot coexist, ...)."""


class UnsupportedRecordType(PlanError):
    """The template uses an extension record type the backend does not implement."""


@dataclass(frozen=True)
class Conflict:
    """An existing record (or extension record) the template removes, and why."""

    record: Record | ExtensionRecord
    reason: str


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
    return _scoped(rendered, zone)[0]


# A read scope as the planner consults it: the keys of its names, its narrowed types by
# name key, and the keys of its subtrees.
_ScopeKeys = tuple[frozenset["_NameKey"], dict["_NameKey", frozenset[T]], list["_NameKey"]]


def _scoped(rendered: RenderedTemplate, zone: dns.name.Name) -> tuple[ReadScope, _ScopeKeys]:
    key = name_key(zone)  # hashing a Name walks its every byte in Python
    found = rendered.scopes.get(key)
    if found is None:
        # A scope follows only the owners (as written) and types of the template's records:
        # every apply of a template to a domain has the same one, worked out once.
        signature = _scope_signature(rendered, key)
        found = _SCOPES.get(signature)
        if found is None:
            if len(_SCOPES) >= _SCOPES_MAX:
                _SCOPES.clear()  # bounded; a dropped scope is only worked out again
            found = _SCOPES[signature] = _read_scope(rendered, zone)
        rendered.scopes[key] = found
    return found


def _scope_signature(rendered: RenderedTemplate, zone_key: _NameKey) -> tuple:
    """What `_read_scope` reads of `rendered`: each owner's labels as written (a scope keeps
    the case of the first), with the types that decide what is read there."""
    return (zone_key, tuple([(r.name.labels, r.rdata.rdtype) for r in rendered.records]),
            tuple([s.name.labels for s in rendered.spf]), tuple([e.name.labels for e in rendered.extensions]),
            tuple([(p.name.labels, p.source.type, p.rdtype) for p in rendered.pending if p.name is not None]))


# Scopes by `_scope_signature`. Their values are never changed once made: shared by every pass.
_SCOPES: dict[tuple, tuple[ReadScope, _ScopeKeys]] = {}
_SCOPES_MAX = 4096


def _read_scope(rendered: RenderedTemplate, zone: dns.name.Name) -> tuple[ReadScope, _ScopeKeys]:
    zone_key = name_key(zone)
    names: dict[_NameKey, dns.name.Name] = {}
    # What the planner acts on at each name (`_conflict`, `_merge_spf`, `_build_changes`):
    # the types written there, A beside AAAA, TXT for SPF, and CNAME and NS everywhere; a new
    # CNAME or NS (or an extension) conflicts with anything, so there every type (None).
    types: dict[_NameKey, set[T] | None] = {}
    owners = [(r.name, _types_acted_on(r.rdtype)) for r in rendered.records]
    owners += [(s.name, {T.TXT, T.CNAME, T.NS}) for s in rendered.spf]
    owners += [(e.name, None) for e in rendered.extensions]
    # Records whose values come at apply: their names and types are known now.
    owners += [(p.name, _pending_types(p)) for p in rendered.pending if p.name is not None]
    for owner, acted_on in owners:
        key = name_key(owner)
        names.setdefault(key, owner)
        known = types.get(key, set())
        types[key] = None if known is None or acted_on is None else known | acted_on
    for key, owner in list(names.items()):
        if len(key) > len(zone_key) and key[:len(zone_key)] == zone_key:
            for depth in range(1, len(key) - len(zone_key)):
                if key[:-depth] not in names:
                    names[key[:-depth]] = dns.name.Name(owner.labels[depth:])
                    types[key[:-depth]] = {T.NS}  # above a record, only a delegation matters
    subtrees = {r.name for r in [*rendered.records, *rendered.pending] if r.name is not None and r.rdtype == T.NS}
    # Hashing a Name walks its every byte in Python: the names come with their hashes
    # (`hashed_name`), which a frozenset or dict built from a dict takes over.
    every_name: dict[dns.name.Name, None] = {}
    narrowed: dict[dns.name.Name, frozenset[T]] = {}
    narrowed_keys: dict[_NameKey, frozenset[T]] = {}
    for key, found in types.items():  # `types` has every name
        hashed = hashed_name(names[key])
        every_name.update(hashed)
        if found is not None:
            narrowed_keys[key] = frozenset(found)
            narrowed.update(dict.fromkeys(hashed, narrowed_keys[key]))
    scope = ReadScope(frozenset(every_name), frozenset(subtrees), narrowed)
    return scope, (frozenset(types), narrowed_keys, [name_key(top) for top in scope.subtrees])


def _pending_types(pending) -> set[T] | frozenset[T] | None:
    if pending.source.type == "SPFM":
        return {T.TXT, T.CNAME, T.NS}
    return None if pending.rdtype is None else _types_acted_on(pending.rdtype)


def _types_acted_on(rdtype: T) -> frozenset[T] | None:
    found = _ACTED_ON.get(rdtype, _UNKNOWN)
    if found is _UNKNOWN:
        found = _ACTED_ON[rdtype] = None if rdtype in (T.CNAME, T.NS) else \
            frozenset({rdtype, T.CNAME, T.NS} | (ADDRESS_TYPES if rdtype in ADDRESS_TYPES else set()))
    return found


_ACTED_ON: dict[T, frozenset[T] | None] = {}  # per type, worked out once
_UNKNOWN = object()


def plan_changes(rendered: RenderedTemplate, current: Iterable[dns.rrset.RRset], zone: dns.name.Name,
                 supported_extensions: frozenset[str] = frozenset(),
                 current_extensions: Iterable[ExtensionRecord] = ()) -> Plan:
    """Compute the changes that apply `rendered` to a zone whose relevant RRsets are `current`
    (and extension records `current_extensions`, of a backend that writes them itself)."""
    unsupported = sorted({e.type for e in rendered.extensions} - supported_extensions)
    if unsupported:
        raise UnsupportedRecordType(
            f"the template uses {', '.join(unsupported)}, an extension this backend does not support")
    keys = _Keys(zone)
    records = rendered.records
    record_keys = [keys.name(r.name) for r in records]  # each worked out once
    _check_coherent(records, record_keys, keys)

    # Callers pass the RRsets in `read_scope`; anything else they pass is ignored, so the
    # work below follows the template even when a caller hands over a whole zone.
    scope, (in_scope, narrowed, subtrees) = _scoped(rendered, zone)
    existing: dict[_RRsetKey, dns.rrset.RRset] = {}
    by_name: dict[_NameKey, list[_Existing]] = {}
    identity = keys.identity
    for rrset in current:
        if rrset.rdtype in UNTOUCHABLE:
            continue
        owner = keys.name(rrset.name)
        rdtype = rrset.rdtype
        below = bool(subtrees) and any(owner[:len(top)] == top for top in subtrees)
        if not below and (owner not in in_scope or rdtype not in narrowed.get(owner, (rdtype,))):
            continue  # outside the scope, or a type nothing here acts on
        rrset_key = (owner, rdtype)
        existing[rrset_key] = rrset
        name, ttl = rrset.name, rrset.ttl
        entries = by_name.get(owner)
        if entries is None:
            entries = by_name[owner] = []
        entries += [(Record(name, ttl, rdata), (rrset_key, identity(rdata))) for rdata in rrset.items]  # `records_of`

    plan = Plan(zone=zone, warnings=list(rendered.warnings))
    # Each with the key of its name, worked out once.
    desired: list[tuple[RenderedRecord, TxtConflictMode, str | None, _NameKey]] = [
        (r, r.source.txt_conflict_mode, r.source.txt_conflict_prefix, key) for r, key in zip(records, record_keys)]
    removals: dict[tuple[_RRsetKey, object], tuple[Record, str | None]] = {}

    for spf_record, owner_key, replaced, problem in _merge_spf(rendered, existing, by_name, plan, keys):
        desired.append((spf_record, TxtConflictMode.NONE, None, owner_key))
        for old, key in replaced:
            removals[key] = (old, problem)

    wanted = {((new_key, r.rdata.rdtype), identity(r.rdata)) for r, _, _, new_key in desired}
    for record, mode, prefix, new_key in desired:
        rdtype = record.rdata.rdtype
        for old, key in _candidates(rdtype, new_key, by_name, keys):
            if key in wanted or key in removals:
                continue
            reason = _conflict(record, rdtype, new_key, mode, prefix, old, key[0][0], keys)
            if reason:
                removals[key] = (old, reason)

    if rendered.pending:
        _pending_conflicts(rendered, existing, by_name, keys, wanted, removals)
    extension_conflicts = _plan_extensions(plan, rendered, desired, current_extensions,
                                           by_name, removals, scope, keys)
    plan.conflicts = [Conflict(old, reason) for old, reason in removals.values() if reason]
    plan.conflicts += extension_conflicts
    owners, deleted = _build_changes(plan, existing, desired, removals, keys)
    # Checked on the plan itself, so no front end (and no `force`) can skip it.
    try:
        check_keyed_changes(plan.changes, owners, deleted, zone, rendered.context.safety)
    except UnsafeChange as exc:
        raise PlanError(str(exc)) from None
    return plan


def _plan_extensions(plan: Plan, rendered: RenderedTemplate, desired_entries: list[tuple],
                     current_extensions: Iterable[ExtensionRecord], by_name: dict[_NameKey, list[_Existing]],
                     removals: dict, scope: ReadScope, keys: _Keys) -> list[Conflict]:
    """Extension changes for the backend; an alias displaces the A, AAAA and CNAME records at
    its name, and address records written where an alias is displace the alias."""
    if not rendered.extensions and not current_extensions:
        return []  # most templates, on most backends
    desired = [r for r, _, _, _ in desired_entries]  # as `plan_changes` lists them
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
            for old, old_key in by_name.get(keys.name(name), ()):
                if old.rdtype in ALIAS_DISPLACES:
                    removals[old_key] = (
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


def _pending_conflicts(rendered: RenderedTemplate, existing: dict[_RRsetKey, dns.rrset.RRset],
                       by_name: dict[_NameKey, list[_Existing]], keys: _Keys, wanted: set,
                       removals: dict[tuple[_RRsetKey, object], tuple[Record, str | None]]) -> None:
    """Conflicts of records whose value waits for the apply: which existing records go
    depends on their name and type only (the TXT prefix is never a variable), so they are
    known now. An SPF record that cannot be merged is replaced whatever the rules."""
    for pending in rendered.pending:
        if pending.name is None:
            continue  # placed only at apply, and checked then
        if pending.source.type == "SPFM":
            txt = existing.get((keys.name(pending.name), T.TXT))
            spf_records = [r for r in records_of([txt]) if is_spf(txt_text(r.rdata))] if txt is not None else []
            problem = _spf_problem(pending.name, spf_records)
            for old in spf_records if problem else ():
                removals.setdefault(keys.record(old), (old, problem))
            continue
        if pending.rdtype is None:
            continue  # extensions write no plain records
        new_key = keys.name(pending.name)
        for old, key in _candidates(pending.rdtype, new_key, by_name, keys):
            if key in wanted or key in removals:
                continue
            reason = _conflict(pending, pending.rdtype, new_key, pending.source.txt_conflict_mode,
                               pending.source.txt_conflict_prefix, old, key[0][0], keys)
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


# Names compared as dnspython compares them, without its per-call cost (`name_key`).
_NameKey = tuple[bytes, ...]
_RRsetKey = tuple[_NameKey, T]
# An existing record with its key in `removals` (`_Keys.record`), worked out once.
_Existing = tuple[Record, tuple[_RRsetKey, object]]


class _Keys:
    """Canonical keys of one planning pass, each computed once: names, and record identities."""

    # A name's key: `name_key` remembers keys by labels already, across passes.
    name = staticmethod(name_key)

    def __init__(self, zone: dns.name.Name) -> None:
        # Keyed by id, each holding its object so that no id is reused during the pass.
        self._identities: dict[int, tuple[dns.rdata.Rdata, object]] = {}
        self.zone = zone
        self.zone_key = self.name(zone)

    def identity(self, rdata: dns.rdata.Rdata) -> object:
        found = self._identities.get(id(rdata))
        if found is None:
            found = self._identities[id(rdata)] = (rdata, rdata_identity(rdata))
        return found[1]

    def record(self, record: Record) -> tuple[_RRsetKey, object]:
        return (self.name(record.name), record.rdata.rdtype), self.identity(record.rdata)


def _in_scope(name: dns.name.Name, scope: ReadScope) -> bool:
    return name in scope.names or any(name.is_subdomain(top) for top in scope.subtrees)


def _candidates(rdtype: T, own: _NameKey, by_name: dict[_NameKey, list[_Existing]], keys: _Keys) -> list[_Existing]:
    """Existing records that could conflict with a record of `rdtype` at the name keyed `own`:
    at its name, delegations above it, and for a new delegation everything below it."""
    found = list(by_name.get(own, ()))
    zone_depth = len(keys.zone_key)
    if len(own) > zone_depth and own[:zone_depth] == keys.zone_key:  # below the apex, inside the zone
        for depth in range(len(own) - 1, zone_depth - 1, -1):  # its parent, ..., the apex
            above = by_name.get(own[:depth])
            if above:
                found += [entry for entry in above if entry[0].rdata.rdtype == T.NS]
    if rdtype == T.NS:
        found += [entry for owner, entries in by_name.items()
                  if owner != own and owner[:len(own)] == own for entry in entries]
    return found


def _check_coherent(records: list[RenderedRecord], record_keys: list[_NameKey], keys: _Keys) -> None:
    # Only a CNAME can clash with the template's other records: only its names are looked at.
    cname_owners = {key for r, key in zip(records, record_keys) if r.rdata.rdtype == T.CNAME}
    if not cname_owners:
        return
    by_name: dict[_NameKey, list[RenderedRecord]] = {}
    for record, owner in zip(records, record_keys):
        if owner in cname_owners:
            by_name.setdefault(owner, []).append(record)
    for group in by_name.values():
        name = group[0].name
        # Alternative groups often repeat one CNAME; applied together they are one record.
        cnames = {keys.identity(r.rdata) for r in group if r.rdata.rdtype == T.CNAME}
        if len(cnames) > 1:
            raise PlanError(f"the template puts {len(cnames)} CNAME records at {name.to_text()}; "
                            "a name holds at most one")
        if cnames and any(r.rdata.rdtype != T.CNAME for r in group):
            others = sorted({dns.rdatatype.to_text(r.rdtype) for r in group if r.rdtype != T.CNAME})
            raise PlanError(f"the template puts a CNAME beside {', '.join(others)} at {name.to_text()}; "
                            "a CNAME cannot coexist with other records")


def _merge_spf(rendered: RenderedTemplate, existing: dict[_RRsetKey, dns.rrset.RRset],
               by_name: dict[_NameKey, list[_Existing]], plan: Plan, keys: _Keys):
    """Yield (merged SPF record, its name's key, existing SPF records it replaces with their keys,
    conflict reason or None)."""
    rules_by_name: dict[_NameKey, tuple[dns.name.Name, list]] = {}
    for spf in rendered.spf:
        rules_by_name.setdefault(keys.name(spf.name), (spf.name, []))[1].append(spf)
    for owner_key, (name, group) in rules_by_name.items():
        txt = existing.get((owner_key, T.TXT))
        # The TXT RRset's records, in its order (`records_of`), as the read listed them.
        current = [entry for entry in by_name[owner_key] if entry[0].rdata.rdtype == T.TXT] if txt is not None else []
        spf_records = [entry for entry in current if is_spf(txt_text(entry[0].rdata))]
        ttls = [s.ttl for s in group if s.ttl is not None]
        ttl = min(ttls) if ttls else (txt.ttl if txt is not None else rendered.context.ttl_policy.default)
        rules = [s.rules for s in group]
        problem = None
        try:
            try:
                if len(spf_records) > 1:
                    raise SpfMergeError(f"{name.to_text()} has {len(spf_records)} SPF records")
                merged = merge_spf(txt_text(spf_records[0][0].rdata) if spf_records else None, rules)
            except SpfMergeError as exc:
                problem = f"SPF record cannot be merged ({exc}); applying replaces it"
                merged = merge_spf(None, rules)
        except SpfRulesError as exc:  # rendering refuses these first; a caller may not have rendered
            raise PlanError(str(exc)) from None
        if merged.over_lookup_limit:
            plan.warnings.append(f"the SPF record at {relative_text(name, plan.zone)} needs {merged.lookups} "
                                 "DNS lookups, more than the limit of 10 receivers enforce")
        rdata = txt_rdata(merged.text)
        source = group[0].source
        yield RenderedRecord(name, ttl, rdata, source), owner_key, spf_records, problem


def _conflict(new: Record, new_type: T, new_key: _NameKey, mode: TxtConflictMode, prefix: str | None, old: Record,
              old_key: _NameKey, keys: _Keys) -> str | None:
    """Why `old` must go when `new` (of `new_type`) is written, or None when they coexist (the keys
    of their names given). `new` may be a PendingRecord: no rdata yet."""
    old_type = old.rdata.rdtype
    if old_key == new_key:
        if old_type == T.CNAME:
            return f"the existing CNAME at {_at(old, keys)} conflicts with the new {_text(new_type)} record"
        if new_type == T.CNAME:
            return f"the new CNAME at {_at(old, keys)} conflicts with every other record there"
        if new_type == T.NS:
            return f"the new delegation (NS) at {_at(old, keys)} replaces every record at and below it"
        if old_type == T.NS and old_key != keys.zone_key:
            return f"{_at(old, keys)} is delegated (NS); the new {_text(new_type)} record replaces the delegation"
        if new_type == old_type and new_type in (T.MX, T.SRV):
            return f"the new {_text(new_type)} record replaces the {_text(old_type)} records at {_at(old, keys)}"
        if new_type in ADDRESS_TYPES and old_type in ADDRESS_TYPES:
            return f"the new {_text(new_type)} record replaces the A and AAAA records at {_at(old, keys)}"
        if new_type == T.TXT and old_type == T.TXT:
            if mode is TxtConflictMode.ALL:
                return f"the new TXT record replaces all TXT records at {_at(old, keys)}"
            if mode is TxtConflictMode.PREFIX and prefix is not None and txt_text(old.rdata).startswith(prefix):
                return f"the new TXT record replaces TXT records starting with {prefix!r} at {_at(old, keys)}"
        return None
    if new_type == T.NS and old_key[:len(new_key)] == new_key:
        return f"the new delegation (NS) at {relative_text(new.name, keys.zone)} replaces everything below it"
    if old_type == T.NS and old_key != keys.zone_key and new_key[:len(old_key)] == old_key:
        return f"{_at(old, keys)} is delegated (NS); the new {_text(new_type)} record below it replaces the delegation"
    return None


def _at(record: Record, keys: _Keys) -> str:
    return relative_text(record.name, keys.zone)


_text = dns.rdatatype.to_text


def _build_changes(plan: Plan, existing: dict[_RRsetKey, dns.rrset.RRset], desired: list[tuple],
                   removals: dict[tuple[_RRsetKey, object], tuple[Record, str | None]],
                   keys: _Keys) -> tuple[list[_NameKey], int]:
    """The RRset changes, additions and deletions of `desired` (as `plan_changes` lists them: each
    record with its TXT matching and its name's key) and `removals`;
    returns each change's owner key and how many records the changes delete, for the safety check."""
    # Each RRset is named as its first wanted record names it, else as its first removed record.
    names: dict[_RRsetKey, dns.name.Name] = {}
    wanted_by_key: dict[_RRsetKey, list[Record]] = {}
    for record, _, _, owner in desired:
        key = (owner, record.rdata.rdtype)
        wanted = wanted_by_key.get(key)
        if wanted is None:
            names[key] = record.name
            wanted_by_key[key] = [record]
        else:
            wanted.append(record)
    removed_by_key: dict[_RRsetKey, set[object]] = {}
    for (key, identity), (old, _) in removals.items():
        names.setdefault(key, old.name)
        removed = removed_by_key.get(key)
        if removed is None:
            removed_by_key[key] = {identity}
        else:
            removed.add(identity)

    identity = keys.identity
    changes, add, delete = plan.changes, plan.add, plan.delete
    owners: list[_NameKey] = []
    deleted = 0  # records whose rdata the changes drop (`safety._deleted_count`), whatever the TTL
    for key in sorted(names):  # by name key, then type: RdataType orders as its number
        name = names[key]
        before = existing.get(key)
        wanted = wanted_by_key.get(key, ())
        if before is None:
            # A new RRset: the wanted rdatas, each once, and every one of them added.
            if len(wanted) == 1:  # most RRsets a template writes: its one record is the one added
                only = wanted[0]
                after = make_rrset(name, only.ttl, [only.rdata])
                changes.append(RRsetChange(name, key[1], None, after))
                owners.append(key[0])
                add.append(Record(name, only.ttl, only.rdata))
                continue
            rdatas, identities = [], set()
            for record in wanted:
                wanted_identity = identity(record.rdata)
                if wanted_identity not in identities:
                    identities.add(wanted_identity)
                    rdatas.append(record.rdata)
            after = make_rrset(name, min([r.ttl for r in wanted]), rdatas) if wanted else None
            if after is None:
                continue  # nothing before, nothing after
            changes.append(RRsetChange(name, key[1], None, after))
            owners.append(key[0])
            add += [Record(after.name, after.ttl, rdata) for rdata in after.items]
            continue
        before_rdatas = list(before.items)
        before_identities = [identity(rdata) for rdata in before_rdatas]
        removed = removed_by_key.get(key, ())
        rdatas = [rdata for rdata, i in zip(before_rdatas, before_identities) if i not in removed]
        identities = {i for i in before_identities if i not in removed}
        for record in wanted:
            wanted_identity = identity(record.rdata)
            if wanted_identity not in identities:
                identities.add(wanted_identity)
                rdatas.append(record.rdata)
        ttl = min([r.ttl for r in wanted]) if wanted else before.ttl
        kept = set(before_identities)
        if len(rdatas) == len(before_rdatas) and ttl == before.ttl and identities == kept:
            continue  # what `after` would be is `before`
        after = make_rrset(name, ttl, rdatas)
        if after is None:  # every record of it goes (a CNAME displacing an address, ...)
            changes.append(RRsetChange(name, key[1], before, None))
            owners.append(key[0])
            deleted += len(before_rdatas)
            delete += [Record(before.name, before.ttl, rdata) for rdata in before_rdatas]
            continue
        after_identities = {identity(rdata) for rdata in after.items}
        # A record is its RRset's name, TTL and one rdata (`records_of`): with another TTL,
        # every record of the RRset is another record.
        same_ttl = before.ttl == after.ttl
        if same_ttl and after_identities == kept:
            continue  # `same_rrset`
        changes.append(RRsetChange(name, key[1], before, after))
        owners.append(key[0])
        dropped = [(rdata, i) for rdata, i in zip(before_rdatas, before_identities) if i not in after_identities]
        deleted += len(dropped)
        delete += [Record(before.name, before.ttl, rdata)
                   for rdata, _ in (dropped if same_ttl else zip(before_rdatas, before_identities))]
        if same_ttl:
            add += [Record(after.name, after.ttl, rdata) for rdata in after.items if identity(rdata) not in kept]
        else:
            add += [Record(after.name, after.ttl, rdata) for rdata in after.items]
    return owners, deleted


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
