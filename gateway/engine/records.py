"""Concrete records: what a rendered template asks for, in dnspython's own types.

dnspython's `Name`, `Rdata` and `RRset` are the currency between the engine and the
backends; this module only adds the provenance the planner and the consent page need,
and the text forms shown to people and scripts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import dns.name
import dns.rdata
import dns.rdatatype
import dns.rdtypes.IN.A
import dns.rrset

from backends.records import relative_text
from gateway.engine.template import TemplateRecord

RdataType = dns.rdatatype.RdataType


@dataclass(frozen=True)
class Record:
    """One DNS record: owner name (absolute), TTL and rdata."""

    name: dns.name.Name
    ttl: int
    rdata: dns.rdata.Rdata

    def __init__(self, name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> None:
        # The frozen dataclass's own __init__ sets each field through object.__setattr__;
        # a plan makes a record per rdata it reads or writes, so they are set directly.
        fields = self.__dict__
        fields["name"], fields["ttl"], fields["rdata"] = name, ttl, rdata

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

    def __init__(self, name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata,
                 source: TemplateRecord = None) -> None:  # type: ignore[assignment]
        fields = self.__dict__  # as `Record.__init__`
        fields["name"], fields["ttl"], fields["rdata"], fields["source"] = name, ttl, rdata, source


@dataclass(frozen=True)
class SpfRules:
    """A rendered SPFM pseudo-record: rules to merge into the SPF TXT record at `name`."""

    name: dns.name.Name
    rules: str
    ttl: int | None
    source: TemplateRecord = field(compare=False, repr=False, default=None)  # type: ignore[assignment]


def records_of(rrsets: Iterable[dns.rrset.RRset]) -> list[Record]:
    """Flatten RRsets into records."""
    return [Record(rrset.name, rrset.ttl, rdata) for rrset in rrsets for rdata in rrset]


