"""What no apply may touch, and how much one apply may delete (spec "Security Considerations").

    check_changes(plan.changes, zone, SafetyPolicy(protected_names=("_dmarc",), max_deletes=25))

The discovery record (`_domainconnect`), the apex SOA and NS and DNSSEC material belong to
the DNS host: a template, or a variable in one, must not replace or delete them. The names
in `[safety] protected_names` are added to that list. An apply deleting more than
`safety.max_deletes` records is refused even with `force`, as octoDNS refuses big deletes:
a mistake that large is not something a service provider's request should make.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import dns.name
import dns.rdatatype
import dns.rrset

from gateway.records import rdata_identity, relative_text

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
    protected = policy.protected_in(zone)
    deleted = 0
    for change in changes:
        at = relative_text(change.name, zone)
        rtype = dns.rdatatype.to_text(change.rdtype)
        if change.rdtype in DNSSEC_TYPES:
            raise UnsafeChange(f"{rtype} at {at}: DNSSEC records are managed by the DNS host, not by templates")
        if change.name == zone and change.rdtype in APEX_TYPES:
            raise UnsafeChange(f"{rtype} at the zone apex: the zone's own {rtype} records cannot be changed")
        if change.name in protected:
            raise UnsafeChange(f"{at} is a protected name (the DNS host's own records); nothing may be written "
                               "or deleted there")
        deleted += _deleted_count(change.before, change.after)
    if deleted > policy.max_deletes:
        raise UnsafeChange(f"the change would delete {deleted} records, more than safety.max_deletes "
                           f"({policy.max_deletes}) allows for one apply, even with force")


def _deleted_count(before: dns.rrset.RRset | None, after: dns.rrset.RRset | None) -> int:
    if before is None:
        return 0
    kept = {rdata_identity(rd) for rd in after} if after is not None else set()
    return sum(1 for rd in before if rdata_identity(rd) not in kept)
