"""Changes a user allowed at consent, so that an API apply making only those needs no `force`.

The spec's 409 is for conflicts introduced after consent (spec "Apply Template to Domain"):
when the consent page said "the new A record replaces the A record at @" and the user
allowed it, replacing that record later is what was agreed to. A grant keeps, per template
and host, the existing records the page listed as replaced or removed and the applied
templates it said would be turned off:

    {"service": "...", "host": "...", "records": [{"name", "type", "data"}], "disabled": ["provider/service"]}

Records match on owner name, type and data (not TTL). Anything else the apply would remove
is a conflict, answered 409 as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from backends.records import ExtensionRecord, rdata_identity
from gateway.apply.instances import InstancePlan
from gateway.engine.plan import Conflict
from gateway.engine.records import Record

RecordKey = tuple[dns.name.Name, object]


def approval_of(plan: InstancePlan) -> dict:
    """What the consent page shows `plan` would replace or remove, as a grant remembers it."""
    context = plan.prepared.rendered.context
    return {"service": plan.prepared.rendered.template.service_id, "host": context.host,
            "records": [_record_row(r) for r in plan.records_removed()],
            "disabled": list(plan.disabled)}


def _record_row(record: Record | ExtensionRecord) -> dict:
    if isinstance(record, ExtensionRecord):
        return {"name": record.name.to_text(), "extension": record.type, "fields": dict(record.fields)}
    return {"name": record.name.to_text(), "type": dns.rdatatype.to_text(record.rdtype), "data": record.rdata.to_text()}


def record_key(record: Record | ExtensionRecord) -> RecordKey:
    if isinstance(record, ExtensionRecord):
        return (record.name, (record.type, record.fields))
    return (record.name, rdata_identity(record.rdata))


def _row_key(row: dict) -> RecordKey | None:
    if "extension" in row:
        try:
            return record_key(ExtensionRecord.of(row["extension"], dns.name.from_text(row["name"]), row["fields"]))
        except (KeyError, TypeError, AttributeError, dns.exception.DNSException):
            return None
    try:
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.from_text(row["type"]), row["data"],
                                    origin=dns.name.root, relativize=False)
        return (dns.name.from_text(row["name"]), rdata_identity(rdata))
    except (KeyError, TypeError, ValueError, dns.exception.DNSException):
        return None  # a row no record can match


@dataclass(frozen=True)
class Approved:
    """What the user allowed for one template at one host."""

    records: frozenset[RecordKey] = frozenset()
    disabled: frozenset[str] = frozenset()

    @classmethod
    def of_grant(cls, approved: Iterable[dict], service_id: str, host: str) -> "Approved":
        rows = [a for a in approved if a.get("service") == service_id and a.get("host") == host]
        keys = {_row_key(r) for a in rows for r in a.get("records", ())}
        return cls(frozenset(keys - {None}), frozenset(d for a in rows for d in a.get("disabled", ())))

    def unapproved(self, conflicts: Sequence[Conflict]) -> list[Conflict]:
        """The conflicts the consent page did not show."""
        return [c for c in conflicts if record_key(c.record) not in self.records]

    def covers(self, plan: InstancePlan) -> bool:
        """Whether everything `plan` removes or turns off was shown at consent."""
        return not self.unapproved(plan.conflicts) and set(plan.disabled) <= self.disabled
