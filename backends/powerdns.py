"""`powerdns`: the PowerDNS Authoritative HTTP API (tested against 4.7).

    [[backends]]
    name = "pdns"
    driver = "powerdns"
    api_url = "http://127.0.0.1:8081"     # the webserver of pdns_server, without /api/v1
    api_key = "env:PDNS_API_KEY"
    server_id = "localhost"               # optional
    timeout = 10                          # optional; seconds per HTTP request
    lock_timeout = 30                     # optional; seconds to wait for another apply to the zone
    search_limit = 10000                  # optional; most search results one read accepts

A thin httpx client rather than python-powerdns: that library (2.1.0, 2021) imports
`requests` without declaring it, and its record helpers send REPLACE and DELETE as
separate PATCHes, so an apply would not be atomic. Six endpoints do not need a library.

Reads never fetch the whole zone. The RRsets at a name come from the zone with
`?rrset_name=`: exact and scoped to the zone. PowerDNS leaves disabled records out of
that answer, which is what the planner must see (they are not served). Subtrees and the
re-read before a write use `search-data`, the only call that also reports disabled
records; it matches names *and* contents, so results are filtered, and a result list
that reaches `search_limit` is refused rather than trusted.

An apply is one PATCH, which PowerDNS applies all or nothing. The API has no
conditional write, so an apply holds the zone lock of the backend kit (`zone_lock`: in
the state store, so it holds across every gateway process on every host that shares
it), re-reads exactly the changed names, compares them with what the plan read, and
only then sends the PATCH. Writes made outside the gateway (another API client,
pdnsutil, a control panel) take no such lock: one can still land in the round trip
between that re-read and the PATCH. A caller that plans and writes at once holds the
zone for both (`holding`): its read is then the search, under the lock, and the apply
sends only the PATCH, two requests in all. Zones found by `find_zone` are remembered
until a request naming one answers 404 or 422.

What the plan does not change is never sent, so other RRsets keep their records,
comments and disabled records. A changed RRset keeps its comments (a REPLACE without
`comments` leaves them) and its disabled records (sent again, still disabled); an RRset
the plan removes is deleted with its comments unless disabled records remain in it.
Record types dnspython does not know (PowerDNS's ALIAS and LUA) are skipped when read.

APEXCNAME is written as PowerDNS's own ALIAS record (`supported_extensions`): it is read
with `read_extensions` and changed in the same PATCH as the RRsets. PowerDNS serves an
ALIAS by resolving its target, so pdns.conf needs `resolver=` (a recursive resolver, IP or
IP:port) and `expand-alias=yes`; without them it answers SERVFAIL for the apex's addresses.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tokenizer
import httpx

from backends.base import (
    Backend, BackendError, ConfigError, ExtensionChange, ExtensionRecord, RememberedZones, RRsetChange, ZoneChanged,
)
from backends.records import make_rrset, same_rrset

OPTIONS = frozenset({"api_url", "api_key", "server_id", "timeout", "lock_timeout", "lock_dir", "search_limit"})
MAX_MESSAGE = 500  # characters of a server's error body quoted in an error
APEXCNAME = "APEXCNAME"
ALIAS = "ALIAS"  # PowerDNS's server-side alias, its APEXCNAME

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Record:
    """One record as the API reports it."""

    name: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    ttl: int
    content: str
    disabled: bool


class PowerDNSBackend(Backend):
    known_options = OPTIONS
    supported_extensions = frozenset({APEXCNAME})

    def __init__(self, name: str, options: Mapping[str, Any], *,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(name, options)
        self.api_url = self.option("api_url", kind=str).rstrip("/")
        parts = urlsplit(self.api_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"backend {name!r}: option 'api_url' must be an http:// or https:// URL, "
                              f"not {self.api_url!r}")
        api_key = self.option("api_key", kind=str)
        if not api_key:
            raise ConfigError(f"backend {name!r}: option 'api_key' is empty")
        self.server_id = self.option("server_id", "localhost", str)
        if not self.server_id:
            raise ConfigError(f"backend {name!r}: option 'server_id' is empty")
        timeout = self._positive("timeout", 10.0)
        self.lock_timeout = self._positive("lock_timeout", 30.0)
        if "lock_dir" in self.options:
            # Accepted so that a config written for earlier versions still starts.
            log.warning("backend %r: option 'lock_dir' is no longer used (zone locks are kept in the state "
                        "store, shared by every gateway process); remove it", name)
        self.search_limit = self.option("search_limit", 10_000, int)
        if isinstance(self.search_limit, bool) or self.search_limit < 1:
            raise ConfigError(f"backend {name!r}: option 'search_limit' must be a positive integer")
        self.http = httpx.Client(base_url=f"{self.api_url}/api/v1/servers/{quote(self.server_id, safe='')}",
                                 headers={"X-API-Key": api_key, "Accept": "application/json"},
                                 timeout=timeout, transport=transport)
        self.found_zones = RememberedZones()
        self._local = threading.local()  # the zone this thread holds (`holding`), and what it read

    def _positive(self, key: str, default: float) -> float:
        value = self.option(key, default, (int, float))
        if isinstance(value, bool) or value <= 0:
            raise ConfigError(f"backend {self.name!r}: option {key!r} must be a positive number of seconds")
        return float(value)

    # -- zones ------------------------------------------------------------------------------

    def zones(self) -> list[dns.name.Name]:
        return [dns.name.from_text(zone["name"]) for zone in self._json("GET", "/zones", None)]

    def check_ready(self) -> None:
        # One small answer, whatever the number of zones.
        self._json("GET", "/statistics", None, params={"statistic": "uptime"})

    def find_zone(self, domain: dns.name.Name) -> dns.name.Name | None:
        # One filtered lookup per label: the cost follows the name, not the number of zones.
        # Zones found are remembered (a request naming one that answers 404 or 422 forgets
        # it); names that are not zones are asked again, so a new zone is found at once.
        name = domain
        while name != dns.name.root:
            if name in self.found_zones:
                return name
            if self._json("GET", "/zones", None, params={"zone": name.to_text()}):
                self.found_zones.remember(name)
                return name
            name = name.parent()
        return None

    # -- reading ----------------------------------------------------------------------------

    def read(self, zone: dns.name.Name, names: Collection[dns.name.Name],
             subtrees: Collection[dns.name.Name] = ()) -> list[dns.rrset.RRset]:
        return self.read_with_extensions(zone, names, subtrees, ())[0]

    def read_extensions(self, zone: dns.name.Name, names: Collection[dns.name.Name]) -> list[ExtensionRecord]:
        return self.read_with_extensions(zone, (), (), names)[1]

    def read_with_extensions(self, zone: dns.name.Name, names: Collection[dns.name.Name],
                             subtrees: Collection[dns.name.Name],
                             extension_names: Collection[dns.name.Name]) -> tuple[list[dns.rrset.RRset],
                                                                                  list[ExtensionRecord]]:
        # One request per name answers both: its RRsets and its ALIAS.
        records: list[_Record] = []
        aliases: list[ExtensionRecord] = []
        held = self._held(zone)
        for name in sorted(set(names) | set(extension_names)):
            if held is not None:
                # Under the zone lock: the search (disabled records and aliases too) is what the
                # apply needs, so it is the one read of this name.
                items = self._search_items(zone, name)
                held[name] = _search_records(items, name, subtree=False)
                if name in names:
                    records += held[name]
                if name in extension_names and (alias := _alias_in_search(items, name)) is not None:
                    aliases.append(alias)
                continue
            body = self._rrsets_at(zone, name)
            if name in names:
                # 4.7 adds the comment-only RRsets of other names to a filtered answer: filter again.
                records += [r for r in _zone_records(body) if r.name == name]
            if name in extension_names and (alias := _alias_of(body, name)) is not None:
                aliases.append(alias)
        for top in sorted(set(subtrees)):
            records += [r for r in self._search(zone, top, subtree=True) if r.name not in names]
        return _rrsets((r for r in records if not r.disabled), self._where(zone)), aliases

    def _rrsets_at(self, zone: dns.name.Name, name: dns.name.Name) -> dict[str, Any]:
        """The zone's answer for exactly `name`, in this zone only."""
        return self._json("GET", _zone_path(zone), zone, params={"rrset_name": name.to_text()})

    def _search(self, zone: dns.name.Name, name: dns.name.Name, subtree: bool = False) -> list[_Record]:
        """Records of `zone` at `name` (with `subtree`, at or below it), disabled ones too."""
        return _search_records(self._search_items(zone, name, subtree), name, subtree)

    def _search_items(self, zone: dns.name.Name, name: dns.name.Name, subtree: bool = False) -> list[dict[str, Any]]:
        """The search's answers for `name` in `zone`, as the API gives them (ALIAS included)."""
        # In a search `*` matches any text and `?` one character, with no escape: a literal
        # `*` label (a wildcard record) is searched as `?`, and the results filtered.
        query = name.to_text(omit_final_dot=True).lower().replace("*", "?")
        if subtree:
            query = f"*{query}"
        found = self._json("GET", "/search-data", zone,
                           params={"q": query, "object_type": "record", "max": str(self.search_limit)})
        if len(found) >= self.search_limit:
            raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: more than {self.search_limit} "
                               f"records match {query!r} in PowerDNS's search (it matches names and contents); "
                               f"raise option 'search_limit'")
        return [item for item in found
                if item.get("object_type") == "record" and dns.name.from_text(item["zone"]) == zone]

    # -- writing ----------------------------------------------------------------------------

    def apply(self, zone: dns.name.Name, changes: Sequence[RRsetChange],
              extensions: Sequence[ExtensionChange] = ()) -> None:
        if not changes and not extensions:
            return
        for change in [*changes, *extensions]:
            if not change.name.is_subdomain(zone):
                raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: {change.name} is outside the zone")
        for extension in extensions:
            if extension.type != APEXCNAME:
                raise BackendError(f"backend {self.name!r}: extension {extension.type} is not supported")
        held = self._held(zone)
        with self.zone_lock(zone):  # taken again by the thread that holds it: no wait
            for extension in extensions:
                if _alias_of(self._rrsets_at(zone, extension.name), extension.name) != extension.before:
                    raise ZoneChanged(f"backend {self.name!r}: zone {_text(zone)}: the ALIAS at {extension.name} "
                                      "changed since it was read; nothing was written")
            current = self._current(zone, {change.name for change in changes}, held or {})
            for change in changes:
                enabled = [r for r in current[change.name, change.rdtype] if not r.disabled]
                if not same_rrset(_rrset_of(enabled, self._where(zone)), change.before):
                    raise ZoneChanged(f"backend {self.name!r}: zone {_text(zone)}: {change.name} "
                                      f"{dns.rdatatype.to_text(change.rdtype)} changed since it was read; "
                                      f"nothing was written")
            # PowerDNS checks CNAME exclusivity against the zone as each entry is applied: the
            # entries that take served records away go first, so a CNAME can replace an A and back.
            ordered = sorted(changes, key=lambda change: change.after is not None)
            rrsets = [_patch_rrset(zone, change, current[change.name, change.rdtype]) for change in ordered]
            # Aliases follow the same order: one going away first, one coming in after the rest.
            rrsets = [_patch_alias(e) for e in extensions if e.after is None] + rrsets + [
                _patch_alias(e) for e in extensions if e.after is not None]
            if held is not None:
                held.clear()  # written over: a second apply in the block reads afresh
            self._call("PATCH", _zone_path(zone), zone, json={"rrsets": rrsets})

    def _current(self, zone: dns.name.Name, names: Iterable[dns.name.Name],
                 held: Mapping[dns.name.Name, list[_Record]]) -> dict[tuple[dns.name.Name, dns.rdatatype.RdataType],
                                                                        list[_Record]]:
        """Every record at `names` (disabled ones too): as read under the lock, else searched now."""
        by_rrset: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], list[_Record]] = defaultdict(list)
        for name in sorted(set(names)):
            for record in held[name] if name in held else self._search(zone, name):
                by_rrset[record.name, record.rdtype].append(record)
        return by_rrset

    @contextlib.contextmanager
    def holding(self, zone: dns.name.Name) -> Iterator[None]:
        """Hold the zone lock for the whole block: its reads are the apply's re-read."""
        if self._held(zone) is not None:
            yield  # already held by this thread
            return
        with self.zone_lock(zone):
            self._local.zone, self._local.records = zone, {}
            try:
                yield
            finally:
                self._local.zone = self._local.records = None

    def _held(self, zone: dns.name.Name) -> dict[dns.name.Name, list[_Record]] | None:
        """What this thread read of `zone` while holding it, or None when it does not hold it."""
        if getattr(self._local, "zone", None) == zone:
            return self._local.records
        return None

    def lock_scope(self) -> str:
        # Two backend names for one server must still share its zones' locks.
        return f"powerdns {self.api_url} {self.server_id}"

    # -- HTTP -------------------------------------------------------------------------------

    def _json(self, method: str, path: str, zone: dns.name.Name | None, **kwargs: Any) -> Any:
        response = self._call(method, path, zone, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise BackendError(f"{self._where(zone)}: {method} {path} answered something that is not JSON: "
                               f"{response.text[:MAX_MESSAGE]!r}") from None

    def _call(self, method: str, path: str, zone: dns.name.Name | None, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise BackendError(f"{self._where(zone)}: the PowerDNS API at {self.api_url} did not answer "
                               f"{method} {path}: {exc or type(exc).__name__}") from None
        if response.is_success:
            return response
        if response.status_code in (404, 422) and zone is not None:
            self.found_zones.forget(zone)  # perhaps deleted, or never there: look it up again next time
        message = _server_message(response)
        if response.status_code == 401:
            raise BackendError(f"{self._where(zone)}: the PowerDNS API at {self.api_url} refused the API key "
                               f"(HTTP 401 {message}); check option 'api_key'")
        if response.status_code == 404 and zone is not None:
            raise BackendError(f"{self._where(zone)}: PowerDNS server {self.server_id!r} at {self.api_url} "
                               f"has no such zone (HTTP 404 {message})")
        raise BackendError(f"{self._where(zone)}: PowerDNS refused {method} {path} "
                           f"(HTTP {response.status_code}): {message}")

    def _where(self, zone: dns.name.Name | None) -> str:
        return f"backend {self.name!r}" + ("" if zone is None else f": zone {_text(zone)}")

    def close(self) -> None:
        self.http.close()


def _zone_path(zone: dns.name.Name) -> str:
    return f"/zones/{quote(zone.to_text(), safe='')}"


def _text(zone: dns.name.Name) -> str:
    return zone.to_text(omit_final_dot=True)


def _server_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"][:MAX_MESSAGE]
    return response.text.strip()[:MAX_MESSAGE] or response.reason_phrase


def _zone_records(body: Mapping[str, Any]) -> list[_Record]:
    records = []
    for rrset in body.get("rrsets", ()):
        for item in rrset["records"]:
            record = _record(rrset["name"], rrset["type"], rrset["ttl"], item["content"], item["disabled"])
            if record is not None:
                records.append(record)
    return records


def _record(name: str, rdtype: str, ttl: int, content: str, disabled: bool) -> _Record | None:
    """A record from the API's fields; None for types dnspython cannot represent (ALIAS, LUA,
    the empty type of an empty non-terminal)."""
    try:
        known = dns.rdatatype.from_text(rdtype) if rdtype else None
    except dns.rdatatype.UnknownRdatatype:
        known = None
    if known is None:
        return None
    return _Record(dns.name.from_text(name), known, int(ttl), content, bool(disabled))


def _rrsets(records: Iterable[_Record], where: str) -> list[dns.rrset.RRset]:
    grouped: dict[tuple[dns.name.Name, dns.rdatatype.RdataType], list[_Record]] = defaultdict(list)
    for record in records:
        grouped[record.name, record.rdtype].append(record)
    return [rrset for key in sorted(grouped) if (rrset := _rrset_of(grouped[key], where)) is not None]


def _rrset_of(records: Sequence[_Record], where: str) -> dns.rrset.RRset | None:
    if not records:
        return None
    first = records[0]
    try:
        rdatas = [rdata_from_content(r.rdtype, r.content) for r in records]
    except dns.exception.DNSException as exc:
        raise BackendError(f"{where}: PowerDNS holds {first.name} {dns.rdatatype.to_text(first.rdtype)} "
                           f"content that does not parse: {exc}") from None
    # PowerDNS keeps one TTL per RRset; records written around the API may differ: DNS serves the lowest.
    return make_rrset(first.name, min(r.ttl for r in records), rdatas)


def rdata_from_content(rdtype: dns.rdatatype.RdataType, content: str) -> dns.rdata.Rdata:
    """Parse PowerDNS record content; its names are absolute even without the final dot."""
    if len(content) > CACHED_CONTENT_CHARS:
        return _parse_content(rdtype, content)
    return _remembered_content(rdtype, content)


# Parsed once (an Rdata is immutable): the read and the check under the lock parse the same
# records, and a zone's records come back on every apply to it. Long TXT values, rare, are not kept.
CACHED_CONTENT_CHARS = 512


@functools.lru_cache(maxsize=4096)
def _remembered_content(rdtype: dns.rdatatype.RdataType, content: str) -> dns.rdata.Rdata:
    return _parse_content(rdtype, content)


def _parse_content(rdtype: dns.rdatatype.RdataType, content: str) -> dns.rdata.Rdata:
    try:
        return dns.rdata.from_text(dns.rdataclass.IN, rdtype, content, origin=dns.name.root, relativize=False)
    except dns.exception.SyntaxError:
        if rdtype not in (dns.rdatatype.TXT, dns.rdatatype.SPF):
            raise
        return _long_txt(rdtype, content)


def _long_txt(rdtype: dns.rdatatype.RdataType, content: str) -> dns.rdata.Rdata:
    """TXT content with strings over 255 bytes, which PowerDNS accepts and serves split:
    split them the same way."""
    strings = []
    for token in dns.tokenizer.Tokenizer(content).get_remaining():
        value = token.unescape_to_bytes().value
        strings += [value[start:start + 255] for start in range(0, len(value), 255)] or [b""]
    return dns.rdata.get_rdata_class(dns.rdataclass.IN, rdtype)(dns.rdataclass.IN, rdtype, strings)


def content_of(rdata: dns.rdata.Rdata, zone: dns.name.Name) -> str:
    """PowerDNS record content: presentation format, absolute names (a relative one is taken
    relative to the zone), TXT as quoted strings of at most 255 bytes."""
    return rdata.to_text(origin=zone, relativize=False)


def _is_one_of(record: _Record, rdatas: Sequence[dns.rdata.Rdata]) -> bool:
    try:
        return rdata_from_content(record.rdtype, record.content) in rdatas
    except dns.exception.DNSException:
        return False  # content PowerDNS took but dnspython cannot parse equals nothing we send


def _patch_rrset(zone: dns.name.Name, change: RRsetChange, current: Sequence[_Record]) -> dict[str, Any]:
    """The PATCH entry for one change, keeping the RRset's disabled records and comments."""
    wanted = [] if change.after is None else list(change.after)
    kept = [r for r in current if r.disabled and not _is_one_of(r, wanted)]
    entry: dict[str, Any] = {"name": change.name.to_text(), "type": dns.rdatatype.to_text(change.rdtype)}
    if not wanted and not kept:
        return {**entry, "changetype": "DELETE"}
    ttl = change.after.ttl if change.after is not None else min(r.ttl for r in kept)
    records = [{"content": content_of(rdata, zone), "disabled": False} for rdata in wanted]
    records += [{"content": r.content, "disabled": True} for r in kept]
    # No "comments" key: PowerDNS then keeps the RRset's comments as they are.
    return {**entry, "changetype": "REPLACE", "ttl": ttl, "records": records}


def _search_records(items: Iterable[Mapping[str, Any]], name: dns.name.Name, subtree: bool) -> list[_Record]:
    records = []
    for item in items:
        record = _record(item["name"], item["type"], item["ttl"], item["content"], item["disabled"])
        if record is not None and (record.name.is_subdomain(name) if subtree else record.name == name):
            records.append(record)
    return records


def _alias_in_search(items: Iterable[Mapping[str, Any]], name: dns.name.Name) -> ExtensionRecord | None:
    """The enabled ALIAS at exactly `name` among a search's answers."""
    found = [item for item in items if item.get("type") == ALIAS]
    body = {"rrsets": [{"name": item["name"], "type": ALIAS, "ttl": item["ttl"],
                        "records": [{"content": item["content"], "disabled": item["disabled"]}]} for item in found]}
    return _alias_of(body, name)


def _alias_of(body: Mapping[str, Any], name: dns.name.Name) -> ExtensionRecord | None:
    """The enabled ALIAS at exactly `name` in a zone answer, as the APEXCNAME it stands for."""
    for rrset in body.get("rrsets", ()):
        if rrset.get("type") != ALIAS or dns.name.from_text(rrset["name"]) != name:
            continue
        targets = [item["content"] for item in rrset.get("records", ()) if not item.get("disabled")]
        if targets:
            target = dns.name.from_text(targets[0], origin=dns.name.root)
            return ExtensionRecord.of(APEXCNAME, name, {"pointsTo": target.to_text(), "ttl": int(rrset["ttl"])})
    return None


def _patch_alias(change: ExtensionChange) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": change.name.to_text(), "type": ALIAS}
    if change.after is None:
        return {**entry, "changetype": "DELETE"}
    return {**entry, "changetype": "REPLACE", "ttl": change.after.get("ttl"),
            "records": [{"content": change.after.get("pointsTo"), "disabled": False}]}
