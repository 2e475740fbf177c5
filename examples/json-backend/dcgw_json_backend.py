"""`jsonfile`: zones as JSON files, an example of a complete backend plugin.

Each zone is `{directory}/{zone}.json` holding `{"rrsets": [{"name", "type", "ttl", "data": [...]}]}`
with absolute names and record data in presentation format.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from backends.base import Backend, BackendError, ConfigError, RRsetChange, ZoneChanged, same_rrset

Key = tuple[dns.name.Name, dns.rdatatype.RdataType]


class JsonFileBackend(Backend):
    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.directory = Path(self.option("directory", kind=str))
        if not self.directory.is_dir():
            raise ConfigError(f"backend {name!r}: option 'directory': {self.directory} is not a directory")
        self.reads = 0  # file reads, for the conformance kit's cost check

    def path(self, zone: dns.name.Name) -> Path:
        return self.directory / f"{zone.to_text(omit_final_dot=True)}.json"

    def zones(self) -> list[dns.name.Name]:
        return [dns.name.from_text(p.name[: -len(".json")]) for p in sorted(self.directory.glob("*.json"))]

    def read(self, zone: dns.name.Name, names: Collection[dns.name.Name],
             subtrees: Collection[dns.name.Name] = ()) -> list[dns.rrset.RRset]:
        wanted = set(names)
        return [rrset for (name, _), rrset in sorted(self._load(zone).items())
                if name in wanted or any(name.is_subdomain(top) for top in subtrees)]

    def apply(self, zone: dns.name.Name, changes: Sequence[RRsetChange]) -> None:
        # The backend kit's zone lock: one writer per zone across every gateway process that
        # shares the state store. Re-read under it: the plan was made from an earlier read.
        with self.zone_lock(zone):
            rrsets = self._load(zone)
            for change in changes:
                if not same_rrset(rrsets.get((change.name, change.rdtype)), change.before):
                    raise ZoneChanged(f"backend {self.name!r}: zone {zone}: {change.name} "
                                      f"{dns.rdatatype.to_text(change.rdtype)} changed since it was read")
            for change in changes:
                if change.after is None:
                    rrsets.pop((change.name, change.rdtype), None)
                else:
                    rrsets[(change.name, change.rdtype)] = change.after
            self._save(zone, rrsets)

    def _load(self, zone: dns.name.Name) -> dict[Key, dns.rrset.RRset]:
        self.reads += 1
        try:
            document = json.loads(self.path(zone).read_text())
            return {(r.name, r.rdtype): r for r in map(rrset_from_json, document["rrsets"])}
        except OSError as exc:
            raise BackendError(f"backend {self.name!r}: zone {zone}: {exc.strerror or exc}") from None
        except (ValueError, KeyError, TypeError, dns.exception.DNSException) as exc:
            raise BackendError(f"backend {self.name!r}: zone {zone}: invalid zone data: {exc}") from None

    def _save(self, zone: dns.name.Name, rrsets: dict[Key, dns.rrset.RRset]) -> None:
        path = self.path(zone)
        document = {"rrsets": [rrset_to_json(rrsets[key]) for key in sorted(rrsets)]}
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "w") as file:
                json.dump(document, file, indent=1)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)  # readers see the old zone or the new one, never half
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise BackendError(f"backend {self.name!r}: zone {zone}: cannot write: {exc}") from None


def rrset_from_json(item: dict[str, Any]) -> dns.rrset.RRset:
    return dns.rrset.from_text_list(item["name"], item["ttl"], dns.rdataclass.IN, item["type"], item["data"])


def rrset_to_json(rrset: dns.rrset.RRset) -> dict[str, Any]:
    return {"name": rrset.name.to_text(), "type": dns.rdatatype.to_text(rrset.rdtype), "ttl": rrset.ttl,
            "data": [rdata.to_text() for rdata in rrset]}


def empty_zone(directory: Path, zone: str) -> Path:
    """Create a zone holding only its SOA and NS records."""
    origin = zone.rstrip(".") + "."
    path = directory / f"{zone.rstrip('.')}.json"
    path.write_text(json.dumps({"rrsets": [
        {"name": origin, "type": "SOA", "ttl": 3600,
         "data": [f"ns1.{origin} hostmaster.{origin} 1 3600 600 86400 300"]},
        {"name": origin, "type": "NS", "ttl": 3600, "data": [f"ns1.{origin}"]},
    ]}))
    return path
