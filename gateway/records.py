"""Concrete records: what a rendered template asks for, in dnspython's own types.

dnspython's `Name`, `Rdata` and `RRset` are the currency between the engine and the
backends; this module only adds the provenance the planner and the consent page need,
and the text forms shown to people and scripts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from gateway.template import TemplateRecord

RdataType = dns.rdatatype.RdataType


@dataclass(frozen=True)
class Record:
    """One DNS record: owner name (absolute), TTL and rdata."""

    name: dns.name.Name
    ttl: int
    rdata: dns.rdata.Rdata

    @property
    def rdtype(self) -> RdataType:
        return self.rdata.rdtype

    def to_json(self, origin: dns.name.Name) -> dict[str, Any]:
        """The `{"name", "type", "ttl", "data"}` shape of `dcgw preview --json`."""
        return {
            "name": relative_text(self.name, origin),
            "type": dns.rdatatype.to_text(self.rdtype),
            "ttl": self.ttl,
            "data": self.rdata.to_text(),
        }

    def sort_key(self) -> tuple:
        return (self.name.to_text(), self.rdtype, self.rdata.to_text())


@dataclass(frozen=True)
class RenderedRecord(Record):
    """A record rendered from a template record, remembering which one."""

    source: TemplateRecord = field(compare=False, repr=False, default=None)  # type: ignore[assignment]


@dataclass(frozen=True)
class SpfRules:
    """A rendered SPFM pseudo-record: rules to merge into the SPF TXT record at `name`."""

    name: dns.name.Name
    rules: str
    ttl: int | None
    source: TemplateRecord = field(compare=False, repr=False, default=None)  # type: ignore[assignment]


@dataclass(frozen=True)
class ExtensionRecord:
    """An extension record (APEXCNAME, REDIR301, ...): rendered fields, no DNS rdata."""

    type: str
    name: dns.name.Name
    fields: tuple[tuple[str, Any], ...]  # sorted by key, so equal values compare equal
    source: TemplateRecord = field(compare=False, repr=False, default=None)  # type: ignore[assignment]

    @classmethod
    def of(cls, type: str, name: dns.name.Name, fields: Mapping[str, Any],
           source: TemplateRecord | None = None) -> ExtensionRecord:
        return cls(type, name, tuple(sorted(fields.items())), source)  # type: ignore[arg-type]

    def get(self, key: str, default: Any = None) -> Any:
        return dict(self.fields).get(key, default)

    def to_json(self, origin: dns.name.Name) -> dict[str, Any]:
        """The shape of a record in plans and instance rows: name, type, and the fields."""
        fields = dict(self.fields)
        return {"name": relative_text(self.name, origin), "type": self.type, "ttl": fields.pop("ttl", None),
                "data": " ".join(str(v) for _, v in sorted(fields.items()))}


def relative_text(name: dns.name.Name, origin: dns.name.Name) -> str:
    """Owner name relative to `origin`, `@` for the apex."""
    if name == origin:
        return "@"
    if name.is_subdomain(origin):
        return name.relativize(origin).to_text()
    return name.to_text()


def records_of(rrsets: Iterable[dns.rrset.RRset]) -> list[Record]:
    """Flatten RRsets into records."""
    return [Record(rrset.name, rrset.ttl, rdata) for rrset in rrsets for rdata in rrset]


def make_rrset(name: dns.name.Name, ttl: int, rdatas: Iterable[dns.rdata.Rdata]) -> dns.rrset.RRset | None:
    """An RRset of the given rdatas, or None when there are none."""
    rdatas = list(rdatas)
    if not rdatas:
        return None
    rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdatas[0].rdtype)
    for rdata in rdatas:
        rrset.add(rdata, ttl)
    rrset.update_ttl(ttl)
    return rrset


def rdata_identity(rdata: dns.rdata.Rdata) -> object:
    """What makes two records the same record: TXT by its joined text, however it is split
    into strings (backends split long values differently); others by canonical rdata."""
    if rdata.rdtype == dns.rdatatype.TXT:
        return (dns.rdatatype.TXT, b"".join(rdata.strings))  # type: ignore[attr-defined]
    return rdata


def same_rrset(a: dns.rrset.RRset | None, b: dns.rrset.RRset | None) -> bool:
    """Same TTL and the same records; None stands for an absent RRset."""
    if a is None or b is None:
        return a is None and b is None
    return a.ttl == b.ttl and {rdata_identity(r) for r in a} == {rdata_identity(r) for r in b}
