"""Zones held in memory (dnspython `Zone`): loading master files and taking slices of them."""

from __future__ import annotations

import functools
from collections.abc import Collection
from pathlib import Path

import dns.exception
import dns.name
import dns.rrset
import dns.zone

from backends.records import name_key


class ZoneFileError(ValueError):
    """A master file that cannot be read or parsed."""


def load_zone_file(path: str | Path, origin: dns.name.Name) -> dns.zone.Zone:
    """Parse an RFC 1035 master file whose origin is `origin` (absolute names kept)."""
    try:
        return dns.zone.from_file(str(path), origin=origin, relativize=False, check_origin=True)
    except OSError as exc:
        raise ZoneFileError(f"{path}: cannot read zone file: {exc.strerror or exc}") from exc
    except (dns.exception.DNSException, ValueError) as exc:
        raise ZoneFileError(f"{path}: not a valid zone file for {origin.to_text()}: {exc}") from exc


def zone_rrsets(zone: dns.zone.Zone) -> list[dns.rrset.RRset]:
    """Every RRset of the zone, in name order."""
    return [_rrset(name, rdataset) for name in sorted(zone.nodes) for rdataset in zone.nodes[name]]


def rrsets_in_scope(zone: dns.zone.Zone, names: Collection[dns.name.Name],
                    subtrees: Collection[dns.name.Name] = ()) -> list[dns.rrset.RRset]:
    """The RRsets at `names` (one lookup each) and at or below each of `subtrees`."""
    nodes = zone.nodes
    # Pairs, not a dict keyed by name: hashing a Name walks its every byte in Python.
    found = [(name, node) for name in names if (node := nodes.get(_lookup_key(name.labels))) is not None]
    if subtrees:
        below = dict(found)
        below.update((name, node) for name, node in nodes.items() if any(name.is_subdomain(top) for top in subtrees))
        found = list(below.items())
    # In name order (canonical: as `name_key` sorts), each node looked up once.
    return [_rrset(name, rdataset) for name, node in sorted(found, key=lambda item: name_key(item[0]))
            for rdataset in node]


class _LookupKey(dns.name.Name):
    """A name to look up in a dict keyed by names, its hash and key worked out once: hashing
    and comparing a Name walk its every byte in Python. It equals exactly the names the
    name equals (`name_key`); only lookups use it, so no other code meets one."""

    __slots__ = ("_hash", "_key")

    def __init__(self, labels: tuple[bytes, ...]) -> None:
        super().__init__(labels)
        object.__setattr__(self, "_hash", hash(dns.name.Name(labels)))
        object.__setattr__(self, "_key", name_key(self))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        # Tried before the stored name's own __eq__, as Python tries a subclass's first.
        return isinstance(other, dns.name.Name) and name_key(other) == self._key

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)


@functools.lru_cache(maxsize=8192)
def _lookup_key(labels: tuple[bytes, ...]) -> _LookupKey:
    return _LookupKey(labels)


def _rrset(name: dns.name.Name, rdataset) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(name, rdataset.rdclass, rdataset.rdtype, rdataset.covers)
    rrset.ttl = rdataset.ttl
    # The rdataset's own items: copying the dict reuses their hashes, where adding each
    # rdata again would hash its canonical wire form.
    rrset.items = dict(rdataset.items)
    return rrset
