"""The values a backend plugin trades in: RRset changes, extension records, the read scope,
and the record helpers every backend needs. dnspython's `Name`, `Rdata` and `RRset` are the
currency; this module adds nothing the engine would have to explain.

The engine builds these values and a backend consumes them; neither imports the other.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.NS
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.rrset

T = dns.rdatatype.RdataType

#: Types no apply may write or delete: the zone's SOA and its DNSSEC records.
UNTOUCHABLE = frozenset({T.SOA, T.RRSIG, T.NSEC, T.NSEC3, T.NSEC3PARAM, T.DNSKEY, T.CDS, T.CDNSKEY})


@dataclass(frozen=True)
class RRsetChange:
    """Replace the RRset at (name, rdtype): `before` as read, `after` as wanted (None: absent)."""

    name: dns.name.Name
    rdtype: T
    before: dns.rrset.RRset | None
    after: dns.rrset.RRset | None

    def __init__(self, name: dns.name.Name, rdtype: T, before: dns.rrset.RRset | None,
                 after: dns.rrset.RRset | None) -> None:
        # Set directly, not through object.__setattr__ as a frozen dataclass's own __init__
        # does: a plan makes one per RRset it changes.
        fields = self.__dict__
        fields["name"], fields["rdtype"], fields["before"], fields["after"] = name, rdtype, before, after


@dataclass(frozen=True)
class ExtensionChange:
    """Set the extension record of `type` at `name`: `before` as read, `after` as wanted (None: absent)."""

    type: str
    name: dns.name.Name
    before: ExtensionRecord | None
    after: ExtensionRecord | None


@dataclass(frozen=True)
class ExtensionRecord:
    """An extension record (APEXCNAME, REDIR301, ...): rendered fields, no DNS rdata."""

    type: str
    name: dns.name.Name
    fields: tuple[tuple[str, Any], ...]  # sorted by key, so equal values compare equal
    source: Any = field(compare=False, repr=False, default=None)  # the template record it came from

    @classmethod
    def of(cls, type: str, name: dns.name.Name, fields: Mapping[str, Any],
           source: Any = None) -> ExtensionRecord:
        return cls(type, name, tuple(sorted(fields.items())), source)  # type: ignore[arg-type]

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.fields).get(key, default)

    def to_json(self, origin: dns.name.Name) -> dict[str, Any]:
        """The shape of a record in plans and instance rows: name, type, and the fields."""
        fields = dict(self.fields)
        return {"name": relative_text(self.name, origin), "type": self.type, "ttl": fields.pop("ttl", None),
                "data": " ".join(str(v) for _, v in sorted(fields.items()))}


@dataclass(frozen=True)
class ReadScope:
    """What a planner must see: RRsets at `names`, and everything below `subtrees`.

    `types` narrows a name to the record types the planner can act on there (a name it does
    not list: every type), for backends that ask for each type on its own."""

    names: frozenset[dns.name.Name]
    subtrees: frozenset[dns.name.Name]
    types: Mapping[dns.name.Name, frozenset[T]] = field(default_factory=dict)


def relative_text(name: dns.name.Name, origin: dns.name.Name) -> str:
    """Owner name relative to `origin`, `@` for the apex."""
    return _relative_text(name.labels, origin.labels)


@functools.lru_cache(maxsize=4096)
def _relative_text(labels: tuple[bytes, ...], origin_labels: tuple[bytes, ...]) -> str:
    # Remembered by labels as written (case kept): plans and pages name the same few owners.
    name, origin = dns.name.Name(labels), dns.name.Name(origin_labels)
    if name == origin:
        return "@"
    if name.is_subdomain(origin):
        return name.relativize(origin).to_text()
    return name.to_text()


def make_rrset(name: dns.name.Name, ttl: int, rdatas: Iterable[dns.rdata.Rdata]) -> dns.rrset.RRset | None:
    """An RRset of the given rdatas, or None when there are none."""
    rdatas = list(rdatas)
    if not rdatas:
        return None
    rdtype = rdatas[0].rdtype
    for rdata in rdatas:
        if rdata.rdtype != rdtype or rdata.rdclass != _IN:
            raise dns.rdataset.IncompatibleTypes
    if rdtype in _SINGLETONS:
        rdatas = rdatas[-1:]  # as RRset.add keeps it: the last one
    rrset = dns.rrset.RRset(name, _IN, rdtype)
    rrset.ttl = ttl
    # What adding them one by one makes (the first of equal rdatas, in order), hashing each
    # at most once: an rdata made by `hashed_rdata` brings its hash along.
    hashed = _HASHED.get(id(rdatas[0]))
    if len(rdatas) == 1 and hashed is not None:
        rrset.items = hashed.copy()
        return rrset
    items: dict[dns.rdata.Rdata, None] = {}
    for rdata in rdatas:
        hashed = _HASHED.get(id(rdata))
        if hashed is None:
            items[rdata] = None
        else:
            items.update(hashed)  # an equal rdata already there stays, as with `items[rdata]`
    rrset.items = items
    return rrset


_IN = dns.rdataclass.IN
# The types an RRset holds one rdata of (`dns.rdatatype.is_singleton`), as a set to test.
_SINGLETONS = frozenset(t for t in T if dns.rdatatype.is_singleton(t))


# dnspython hashes an Rdata by encoding its canonical wire form again on every call. The
# rdata the engine makes over and over (a template's constant records, one address for many
# domains) are made once each (`hashed_rdata`) and kept here with a one-entry dict holding
# that hash, which an RRset's dict takes over without hashing again. Keyed by id: an entry
# holds its rdata, so while it is here no other live object has that id.
_HASHED: dict[int, dict[dns.rdata.Rdata, None]] = {}
_HASHED_MAX = 8192


def hashed_name(name: dns.name.Name) -> dict[dns.name.Name, None]:
    """A one-entry dict holding a Name equal to `name` (the same labels, case kept) with its
    hash, worked out once: a dict or frozenset built from it takes the hash over."""
    return _hashed_name(name.labels)


@functools.lru_cache(maxsize=8192)
def _hashed_name(labels: tuple[bytes, ...]) -> dict[dns.name.Name, None]:
    return {dns.name.Name(labels): None}


def hashed_rdata(rdata: dns.rdata.Rdata) -> dns.rdata.Rdata:
    """`rdata`, hashed now once so that the RRsets built of it (`make_rrset`) need not."""
    if len(_HASHED) >= _HASHED_MAX:
        _HASHED.clear()  # bounded; a dropped entry only costs its hash again
    _HASHED[id(rdata)] = {rdata: None}
    return rdata


def rdata_identity(rdata: dns.rdata.Rdata) -> object:
    """What makes two records the same record: TXT by its joined text, however it is split
    into strings (backends split long values differently); others by canonical rdata.

    A plain tuple, equal exactly when the rdata are (`Rdata.__eq__`: class, type, canonical
    wire form, and whether it holds relative names): cheap to hash again, unlike an Rdata."""
    if rdata.rdtype == dns.rdatatype.TXT:
        return (dns.rdatatype.TXT, b"".join(rdata.strings))  # type: ignore[attr-defined]
    kind = type(rdata)
    # The canonical wire form of these is their numbers and their names lowercased: the
    # name's labels say the same without encoding it (the engine's most common types).
    if kind in _ADDRESS_TYPES:  # dnspython keeps the canonical text of an address
        return (rdata.rdclass, rdata.rdtype, rdata.address)  # type: ignore[attr-defined]
    if kind in _TARGET_TYPES:
        return (rdata.rdclass, rdata.rdtype, name_key(rdata.target))  # type: ignore[attr-defined]
    if kind is dns.rdtypes.ANY.MX.MX:
        return (rdata.rdclass, rdata.rdtype, rdata.preference, name_key(rdata.exchange))  # type: ignore[attr-defined]
    if kind is dns.rdtypes.IN.SRV.SRV:
        return (rdata.rdclass, rdata.rdtype, rdata.priority, rdata.weight, rdata.port,  # type: ignore[attr-defined]
                name_key(rdata.target))  # type: ignore[attr-defined]
    try:
        return (rdata.rdclass, rdata.rdtype, rdata.to_digestable())
    except dns.name.NeedAbsoluteNameOrOrigin:
        return (rdata.rdclass, rdata.rdtype, None, rdata.to_digestable(dns.name.root))


_TARGET_TYPES = (dns.rdtypes.ANY.CNAME.CNAME, dns.rdtypes.ANY.NS.NS)
_ADDRESS_TYPES = (dns.rdtypes.IN.A.A, dns.rdtypes.IN.AAAA.AAAA)


def name_key(name: dns.name.Name) -> tuple[bytes, ...]:
    """A name as a plain tuple: its labels lowercased, root first. Keys are equal exactly when
    the names are, sort in dnspython's (RFC 4034 canonical) order, and a name is at or below
    another when the other's key is a prefix of its key."""
    return _name_key(name.labels)


@functools.lru_cache(maxsize=8192)
def _name_key(labels: tuple[bytes, ...]) -> tuple[bytes, ...]:
    # Remembered: the planner keys every name it meets, and meets the same few on every apply.
    return tuple([label.lower() for label in reversed(labels)])


def same_rrset(a: dns.rrset.RRset | None, b: dns.rrset.RRset | None) -> bool:
    """Same TTL and the same records; None stands for an absent RRset."""
    if a is None or b is None:
        return a is None and b is None
    return a.ttl == b.ttl and {rdata_identity(r) for r in a} == {rdata_identity(r) for r in b}
