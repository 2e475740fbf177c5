"""What no apply may touch, and how much one apply may delete (spec "Security Considerations").

    check_changes(plan.changes, zone, SafetyPolicy(protected_names=("_dmarc",), max_deletes=25))

The discovery record (`_domainconnect`), the apex SOA and NS and DNSSEC material belong to
the DNS host: a template, or a variable in one, must not replace or delete them. The names
in `[safety] protected_names` are added to that list. An apply deleting more than
`safety.max_deletes` records is refused even with `force`, as octoDNS refuses big deletes:
a mistake that large is not something a service provider's request should make.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import dns.name
import dns.rdatatype
import dns.rrset

from backends.records import name_key, rdata_identity, relative_text

T = dns.rdatatype.RdataType
DISCOVERY_LABEL = "_domainconnect"
DNSSEC_TYPES = frozenset({T.DNSKEY, T.DS, T.RRSIG, T.NSEC, T.NSEC3, T.NSEC3PARAM, T.CDS, T.CDNSKEY})
APEX_TYPES = frozenset({T.SOA, T.NS})
DEFAULT_MAX_DELETES = 25


class UnsafeChange(ValueError):
    """An apply that would touch a protected name or type, or delete too much; nothing is written."""


@dataclass(frozen=True)
class SafetyPolicy:
    """`[safety]`: names added to the protected ones (relative to each zone, or absolute with a
    final dot) and the most records one apply may delete."""

    protected_names: tuple[str, ...] = ()
    max_deletes: int = DEFAULT_MAX_DELETES

    def protected_in(self, zone: dns.name.Name) -> frozenset[dns.name.Name]:
        names = (DISCOVERY_LABEL, *self.protected_names)
        return frozenset(zone if text == "@" else dns.name.from_text(text, origin=zone) for text in names)


class RRsetChangeLike(Protocol):
    """What check_changes reads of a change (plan.RRsetChange): owner, type, RRsets before and after."""

    name: dns.name.Name
    rdtype: int
    before: dns.rrset.RRset | None
    after: dns.rrset.RRset | None


def check_changes(changes: Iterable[RRsetChangeLike], zone: dns.name.Name, policy: SafetyPolicy) -> None:
    """`UnsafeChange` naming the first protected name or type written or deleted, or the
    number of records deleted when it exceeds `policy.max_deletes`."""
    changes = list(changes)
    check_keyed_changes(changes, [name_key(change.name) for change in changes],
                        sum(_deleted_count(change.before, change.after) for change in changes), zone, policy)


def check_keyed_changes(changes: Sequence[RRsetChangeLike], owners: Sequence[tuple[bytes, ...]], deleted: int,
                        zone: dns.name.Name, policy: SafetyPolicy) -> None:
    """`check_changes`, given each change's owner as `name_key` keys it and the number of
    records the changes delete: the planner has both at hand when it builds the changes."""
    zone_key = name_key(zone)
    protected = _protected_keys(zone_key, policy)
    for change, owner in zip(changes, owners):
        if change.rdtype in DNSSEC_TYPES:
            raise UnsafeChange(f"{_type(change)} at {_at(change, zone)}: DNSSEC records are managed by the DNS host, "
                               "not by templates")
        if owner == zone_key and change.rdtype in APEX_TYPES:
            raise UnsafeChange(f"{_type(change)} at the zone apex: the zone's own {_type(change)} records cannot be "
                               "changed")
        if owner in protected:
            raise UnsafeChange(f"{_at(change, zone)} is a protected name (the DNS host's own records); nothing may "
                               "be written or deleted there")
    if deleted > policy.max_deletes:
        raise UnsafeChange(f"the change would delete {deleted} records, more than safety.max_deletes "
                           f"({policy.max_deletes}) allows for one apply, even with force")


@functools.lru_cache(maxsize=1024)
def _protected_keys(zone_key: tuple[bytes, ...], policy: SafetyPolicy) -> frozenset[tuple[bytes, ...]]:
    # Worked out once per zone and policy: every apply to the zone checks the same names.
    zone = dns.name.Name(reversed(zone_key))
    return frozenset(name_key(name) for name in policy.protected_in(zone))


def _type(change: RRsetChangeLike) -> str:
    return dns.rdatatype.to_text(change.rdtype)


def _at(change: RRsetChangeLike, zone: dns.name.Name) -> str:
    return relative_text(change.name, zone)


def _deleted_count(before: dns.rrset.RRset | None, after: dns.rrset.RRset | None) -> int:
    if before is None:
        return 0
    if after is None:
        return len(before)
    kept = {rdata_identity(rd) for rd in after}
    return sum(1 for rd in before if rdata_identity(rd) not in kept)
