"""The `route53` backend: Amazon Route 53 public hosted zones, through boto3.

    [[backends]]
    name = "aws"
    driver = "route53"
    zones = ["*"]
    region = "us-east-1"      # optional; Route 53 is global, this picks the signing region
    # profile = "dns"         # optional; else the standard AWS credential chain
    # endpoint_url = "..."    # optional; a Route 53 compatible endpoint

A hosted zone is found by name with ListHostedZonesByName; private zones are never
used, and two public zones of one name is an error naming both ids. Reads list the
record sets from each touched name (ListResourceRecordSets with StartRecordName),
never the whole zone. Each apply is one ChangeResourceRecordSets: DELETE with exactly
the values read, then CREATE. Route 53 applies a batch all or nothing and fails a
DELETE whose values are not current, so a concurrent change refuses the apply; UPSERT
would silently overwrite it.

Alias and routing-policy record sets (weighted, latency, failover, geolocation, ...)
are not plain RRsets: reads leave them out, and an apply that would change the RRset
at their name and type, or put a CNAME beside them, is refused rather than clobbering
them. Record sets the plan does not change are never sent.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from backends.base import Backend, BackendError, ConfigError, RRsetChange, ZoneChanged
from backends.records import UNTOUCHABLE, make_rrset

T = dns.rdatatype.RdataType

#: Options of a `[[backends]]` table with driver = "route53".
OPTIONS = frozenset({"region", "profile", "endpoint_url"})
#: Record types Route 53 hosts.
SUPPORTED_TYPES = frozenset({T.A, T.AAAA, T.CAA, T.CNAME, T.DS, T.HTTPS, T.MX, T.NAPTR, T.NS, T.PTR, T.SOA,
                             T.SPF, T.SRV, T.SSHFP, T.SVCB, T.TLSA, T.TXT})
# Keys that make a record set something other than a plain RRset.
_NOT_PLAIN = ("AliasTarget", "SetIdentifier", "Weight", "Region", "Failover", "GeoLocation", "GeoProximityLocation",
              "CidrRoutingConfig", "MultiValueAnswer", "TrafficPolicyInstanceId")
_RETRYABLE = frozenset({"PriorRequestNotComplete", "Throttling", "ThrottlingException", "RequestLimitExceeded"})
_CONCURRENT_CHANGE = re.compile(r"but it was not found|but it already exists")
_ESCAPE = re.compile(r"\\(\d{3}|.)", re.S)
_PLAIN_LABEL_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-_")
NAME_PAGE = "20"      # record sets per page when reading one name
SUBTREE_PAGE = "300"  # the most Route 53 returns per page


class Route53Backend(Backend):
    """Route 53 through boto3: per-name listings, one DELETE+CREATE batch per apply."""
    known_options = OPTIONS

    #: Attempts of one API call answered PriorRequestNotComplete or throttled.
    max_attempts = 5
    #: First wait between attempts, in seconds; doubles each time.
    backoff = 0.5
    #: Seconds a hosted zone id (or its absence) found by name is reused.
    zone_cache_seconds = 60.0

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.region = self.option("region", "us-east-1", str)
        self.profile = self.option("profile", None, str)
        self.endpoint_url = self.option("endpoint_url", None, str)
        if self.endpoint_url is not None and not re.match(r"https?://[^/\s]+", self.endpoint_url):
            raise ConfigError(f"backend {name!r}: option 'endpoint_url' must be an http(s) URL, "
                              f"not {self.endpoint_url!r}")
        #: API requests sent, retries included; for tests and benchmarks.
        self.api_calls = 0
        self.sleep: Callable[[float], None] = time.sleep
        self._client: Any = None
        self._lock = threading.Lock()
        self._zone_ids: dict[dns.name.Name, tuple[float, str | None]] = {}
        # (zone, name) -> {type: description} of the alias and routing-policy record sets
        # the last read of that name found.
        self._not_plain: dict[tuple[dns.name.Name, dns.name.Name], dict[T, str]] = {}

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
                    # Retries are ours: bounded, and only for answers that say nothing was done.
                    config = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1},
                                                    connect_timeout=10, read_timeout=60)
                    self._client = session.client("route53", endpoint_url=self.endpoint_url, config=config)
                except botocore.exceptions.BotoCoreError as exc:
                    raise BackendError(f"backend {self.name!r}: cannot set up the Route 53 client: {exc}") from None
            return self._client

    # -- zones ----------------------------------------------------------------------------

    def zones(self) -> list[dns.name.Name]:
        found: set[dns.name.Name] = set()
        params: dict[str, str] = {}
        while True:
            page = self._call("list_hosted_zones", None, **params)
            found |= {route53_name(z["Name"]) for z in page["HostedZones"] if not z["Config"].get("PrivateZone")}
            if not page.get("IsTruncated"):
                return sorted(found)
            params = {"Marker": page["NextMarker"]}

    def check_ready(self) -> None:
        self._call("get_hosted_zone_count", None)

    def find_zone(self, domain: dns.name.Name) -> dns.name.Name | None:
        name = domain
        while len(name) > 1:
            if self._zone_id(name) is not None:
                return name
            name = name.parent()
        return None

    def _zone_id(self, zone: dns.name.Name) -> str | None:
        """The id of the public hosted zone named `zone`, or None; cached briefly."""
        cached = self._zone_ids.get(zone)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        matches: list[str] = []
        params = {"DNSName": route53_text(zone), "MaxItems": "10"}
        while True:
            page = self._call("list_hosted_zones_by_name", zone, **params)
            same = [z for z in page["HostedZones"] if route53_name(z["Name"]) == zone]
            matches += [z["Id"].rsplit("/", 1)[-1] for z in same if not z["Config"].get("PrivateZone")]
            # The listing is in name order: more zones of this name only if the page ended on one.
            if not (page.get("IsTruncated") and same and same[-1] is page["HostedZones"][-1]):
                break
            params = {"DNSName": page["NextDNSName"], "HostedZoneId": page["NextHostedZoneId"], "MaxItems": "10"}
        if len(matches) > 1:
            raise BackendError(f"backend {self.name!r}: zone {zone}: {len(matches)} public hosted zones have this "
                               f"name ({', '.join(matches)}); delete the unused ones or configure another backend")
        zone_id = matches[0] if matches else None
        self._zone_ids[zone] = (time.monotonic() + self.zone_cache_seconds, zone_id)
        return zone_id

    def _hosted_zone(self, zone: dns.name.Name) -> str:
        zone_id = self._zone_id(zone)
        if zone_id is None:
            raise BackendError(f"backend {self.name!r}: zone {zone}: no public hosted zone of this name")
        return zone_id

    # -- read -----------------------------------------------------------------------------

    def read(self, zone: dns.name.Name, names: Collection[dns.name.Name],
             subtrees: Collection[dns.name.Name] = ()) -> list[dns.rrset.RRset]:
        zone_id = self._hosted_zone(zone)
        found: dict[tuple[dns.name.Name, T], dns.rrset.RRset] = {}
        not_plain: dict[dns.name.Name, dict[T, str]] = {}
        for name in sorted(n for n in set(names) if n.is_subdomain(zone)):
            not_plain.setdefault(name, {})
            for record_set in self._list(zone, zone_id, name, subtree=False):
                self._collect(record_set, found, not_plain)
        for top in sorted(t for t in set(subtrees) if t.is_subdomain(zone)):
            for record_set in self._list(zone, zone_id, top, subtree=True):
                self._collect(record_set, found, not_plain)
        with self._lock:
            for name, kinds in not_plain.items():
                if kinds:
                    self._not_plain[(zone, name)] = kinds
                else:
                    self._not_plain.pop((zone, name), None)  # only names that have them are remembered
        return list(found.values())

    def _list(self, zone: dns.name.Name, zone_id: str, start: dns.name.Name, subtree: bool) -> Iterator[dict]:
        """Record sets at `start` (and below it when `subtree`), listing from `start` on and
        stopping where Route 53's order (labels reversed) leaves the name or subtree."""
        end = _sort_key(start)
        params = {"HostedZoneId": zone_id, "StartRecordName": route53_text(start),
                  "MaxItems": SUBTREE_PAGE if subtree else NAME_PAGE}
        while True:
            page = self._call("list_resource_record_sets", zone, **params)
            for record_set in page["ResourceRecordSets"]:
                name = route53_name(record_set["Name"])
                if name == start or (subtree and name.is_subdomain(start)):
                    yield record_set
                elif not subtree or _sort_key(name) > end:
                    return
            if not page.get("IsTruncated"):
                return
            params.update(StartRecordName=page["NextRecordName"], StartRecordType=page["NextRecordType"])
            if "NextRecordIdentifier" in page:
                params["StartRecordIdentifier"] = page["NextRecordIdentifier"]
            else:
                params.pop("StartRecordIdentifier", None)

    def _collect(self, record_set: dict, found: dict, not_plain: dict) -> None:
        name, rdtype = route53_name(record_set["Name"]), T.make(record_set["Type"])
        if rdtype in UNTOUCHABLE:
            return  # the zone's SOA: no plan reads or writes it
        special = [key for key in _NOT_PLAIN if key in record_set]
        if special:
            not_plain.setdefault(name, {})[rdtype] = _describe_not_plain(record_set, special)
            return
        rdatas = [from_route53(rdtype, record["Value"], name) for record in record_set.get("ResourceRecords", [])]
        rrset = make_rrset(name, int(record_set["TTL"]), rdatas)
        if rrset is not None:
            found[(name, rdtype)] = rrset

    # -- apply ----------------------------------------------------------------------------

    def apply(self, zone: dns.name.Name, changes: Sequence[RRsetChange]) -> None:
        if not changes:
            return
        self._refuse_what_cannot_be_written(zone, changes)
        zone_id = self._hosted_zone(zone)
        batch = [{"Action": "DELETE", "ResourceRecordSet": to_route53(c.before)} for c in changes if c.before]
        batch += [{"Action": "CREATE", "ResourceRecordSet": to_route53(c.after)} for c in changes if c.after]
        try:
            self._call("change_resource_record_sets", zone, raw_errors=True, HostedZoneId=zone_id,
                       ChangeBatch={"Comment": "Domain Connect", "Changes": batch})
        except botocore.exceptions.ClientError as exc:
            code, message = _error(exc)
            if code == "InvalidChangeBatch" and _CONCURRENT_CHANGE.search(message):
                raise ZoneChanged(f"backend {self.name!r}: zone {zone}: the records read for the plan changed "
                                  f"since ({message}); nothing was written") from None
            if code == "NoSuchHostedZone":
                self._zone_ids.pop(zone, None)
            raise self._failure(zone, code, message) from None

    def _refuse_what_cannot_be_written(self, zone: dns.name.Name, changes: Sequence[RRsetChange]) -> None:
        for change in changes:
            kind = dns.rdatatype.to_text(change.rdtype)
            if change.rdtype not in SUPPORTED_TYPES:
                raise BackendError(f"backend {self.name!r}: zone {zone}: Route 53 does not host {kind} records "
                                   f"({change.name})")
            with self._lock:
                here = dict(self._not_plain.get((zone, change.name), {}))
            clash = here.get(change.rdtype)
            if clash is None and change.after is not None and (change.rdtype == T.CNAME or T.CNAME in here):
                clash = next(iter(here.values()), None)
            if clash is not None:
                raise BackendError(f"backend {self.name!r}: zone {zone}: {change.name} has {clash}; the gateway does "
                                   f"not change alias or routing-policy records, so the {kind} change is refused "
                                   "and nothing was written")

    # -- calls ----------------------------------------------------------------------------

    def _call(self, operation: str, zone: dns.name.Name | None, raw_errors: bool = False, **params: Any) -> dict:
        """One API call; retried with backoff while Route 53 says an earlier change is still
        in progress or the account is throttled (neither did anything)."""
        method = getattr(self.client, operation)
        for attempt in range(1, self.max_attempts + 1):
            with self._lock:
                self.api_calls += 1
            try:
                return method(**params)
            except botocore.exceptions.ClientError as exc:
                code, message = _error(exc)
                if code in _RETRYABLE and attempt < self.max_attempts:
                    delay = self.backoff * 2 ** (attempt - 1)
                    self.sleep(delay / 2 + random.uniform(0, delay / 2))
                    continue
                if raw_errors and code not in _RETRYABLE:
                    raise
                if code in _RETRYABLE:
                    message = f"{message} (still after {self.max_attempts} attempts)"
                raise self._failure(zone, code, message) from None
            except botocore.exceptions.BotoCoreError as exc:
                raise self._failure(zone, type(exc).__name__, str(exc)) from None
        raise AssertionError("unreachable")

    def _failure(self, zone: dns.name.Name | None, code: str, message: str) -> BackendError:
        where = f" zone {zone}:" if zone is not None else ""
        return BackendError(f"backend {self.name!r}:{where} Route 53 answered {code}: {message}")


# -- Route 53's text forms ---------------------------------------------------------------------
# Route 53 writes characters outside a-z, 0-9, '-' and '_' as \DDD in OCTAL, where DNS
# presentation format (RFC 1035, dnspython) uses decimal; quotes and backslashes inside
# TXT strings are \" and \\ in both.

def route53_text(name: dns.name.Name, wildcard: str = "*") -> str:
    """A name as Route 53 takes it: lower case, other bytes as octal escapes."""
    labels = []
    for label in name.labels[:-1]:
        if label == b"*":
            labels.append(wildcard)
        else:
            labels.append("".join(chr(b) if b in _PLAIN_LABEL_BYTES else f"\\{b:03o}" for b in label.lower()))
    return ".".join(labels) + "."


def route53_name(text: str) -> dns.name.Name:
    """A name as Route 53 returns it ("\\052.example.com.")."""
    return dns.name.from_text(_octal_to_decimal(text))


def to_route53(rrset: dns.rrset.RRset) -> dict[str, Any]:
    return {"Name": route53_text(rrset.name), "Type": dns.rdatatype.to_text(rrset.rdtype), "TTL": rrset.ttl,
            "ResourceRecords": [{"Value": route53_value(rdata)} for rdata in rrset]}


def route53_value(rdata: dns.rdata.Rdata) -> str:
    """Route 53's text of one record: '10 mx.example.net.', '"v=spf1 -all"', '"a" "b"'."""
    return _ESCAPE.sub(lambda m: f"\\{int(m[1]):03o}" if m[1].isdigit() else m[0], rdata.to_text(relativize=False))


def from_route53(rdtype: T, value: str, owner: dns.name.Name) -> dns.rdata.Rdata:
    try:
        return dns.rdata.from_text(dns.rdataclass.IN, rdtype, _octal_to_decimal(value), origin=dns.name.root,
                                   relativize=False)
    except dns.exception.DNSException as exc:
        raise BackendError(f"Route 53 returned a {dns.rdatatype.to_text(rdtype)} value at {owner} that is not "
                           f"valid: {value!r} ({exc})") from None


def _octal_to_decimal(text: str) -> str:
    return _ESCAPE.sub(lambda m: f"\\{int(m[1], 8):03d}" if m[1].isdigit() else m[0], text)


def _sort_key(name: dns.name.Name) -> str:
    """Route 53's listing order: labels reversed, as its stored (escaped) text."""
    labels = route53_text(name, wildcard="\\052").rstrip(".").split(".")
    return ".".join(reversed(labels)) + "."


def _describe_not_plain(record_set: dict, keys: list[str]) -> str:
    kind = dns.rdatatype.to_text(T.make(record_set["Type"]))
    if "AliasTarget" in keys:
        return f"an alias {kind} record (to {record_set['AliasTarget'].get('DNSName', '?')})"
    identifier = record_set.get("SetIdentifier")
    policy = next((k for k in keys if k not in ("SetIdentifier",)), "SetIdentifier")
    return f"{kind} records with a routing policy ({policy}{f', set {identifier!r}' if identifier else ''})"


def _error(exc: botocore.exceptions.ClientError) -> tuple[str, str]:
    error = exc.response.get("Error", {})
    return str(error.get("Code", "Unknown")), str(error.get("Message", exc))
