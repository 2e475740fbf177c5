"""`dcgw discovery-record`: the `_domainconnect` TXT record that points service providers here.

    dcgw discovery-record DOMAIN [--config FILE] [--write] [--json]

Service providers find the gateway by looking up TXT `_domainconnect.DOMAIN` and then
calling `https://{value}/v2/DOMAIN/settings` (spec, "DNS Provider Discovery"), so the
value is `[gateway] base_url` without its scheme and trailing slash. Discovery is looked
up at a zone's apex only: DOMAIN is the zone, not a name inside it.

Prints the record in master-file form (`--json`: one object with "name", "type", "ttl",
"data" and "value"). With `--write`, also writes it through the backend hosting DOMAIN:
a different value there is replaced, the same value is left alone. Unicode domains are
accepted and printed in their IDNA (punycode) form. Without `--config` the embedded
default config is used.

Exit status: 0 printed (and written or already there), 2 invalid domain or config, or the
record cannot be written as asked (DOMAIN is not a hosted zone's apex, a CNAME holds the
name), 4 the backend failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from gateway.commands.common import add_command, add_config_option, load_config_from

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_BACKEND_FAILED = 4

DISCOVERY_LABEL = "_domainconnect"
DISCOVERY_TTL = 3600
MAX_TXT_STRING = 255  # one character-string of a TXT record (RFC 1035 3.3)


class InvalidInput(Exception):
    """Something the user must fix; exit status 2."""


class BackendFailed(Exception):
    """The backend could not be asked or written; exit status 4."""


@dataclass(frozen=True)
class DiscoveryRecord:
    zone: dns.name.Name
    value: str

    @property
    def name(self) -> dns.name.Name:
        return dns.name.Name((DISCOVERY_LABEL.encode(),)).concatenate(self.zone)

    @property
    def rdata(self) -> dns.rdata.Rdata:
        return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.TXT, _quoted(self.value))

    def rrset(self) -> dns.rrset.RRset:
        return dns.rrset.from_rdata(self.name, DISCOVERY_TTL, self.rdata)

    def to_text(self) -> str:
        return f"{self.name.to_text()} {DISCOVERY_TTL} IN TXT {self.rdata.to_text()}"

    def to_json(self) -> dict[str, object]:
        return {"name": self.name.to_text(), "type": "TXT", "ttl": DISCOVERY_TTL, "data": self.rdata.to_text(),
                "value": self.value}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "discovery-record", __doc__,
                         help="print (or write) the _domainconnect TXT record of a zone")
    parser.add_argument("domain", metavar="DOMAIN", help="the zone service providers will discover (Unicode or IDNA)")
    add_config_option(parser)
    parser.add_argument("--write", action="store_true", help="write the record through the backend hosting DOMAIN")
    parser.add_argument("--json", action="store_true", help="print the record as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway.infra.config import ConfigError

    try:
        zone = zone_name(args.domain)
        config = load_config_from(args)
        record = DiscoveryRecord(zone, discovery_value(config.gateway.base_url))
        if urllib.parse.urlsplit(config.gateway.base_url).scheme != "https":
            print(f"dcgw discovery-record: warning: gateway.base_url {config.gateway.base_url!r} is not https; "
                  f"service providers will call https://{record.value}/v2/...", file=sys.stderr)
        document = record.to_json()
        if args.write:
            document.update(write_record(config, record))
    except (InvalidInput, ConfigError) as exc:
        return _fail(str(exc), EXIT_INVALID)
    except BackendFailed as exc:
        return _fail(str(exc), EXIT_BACKEND_FAILED)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(record.to_text())
    return EXIT_OK


def zone_name(text: str) -> dns.name.Name:
    """DOMAIN as an absolute IDNA name; `InvalidInput` naming what is wrong."""
    from gateway.engine.domains import DomainError, domain_labels

    try:
        labels = domain_labels(text, underscores=True)  # some zones sit below service labels
    except DomainError as exc:
        if exc.problem == "required":
            raise InvalidInput("DOMAIN: required, such as example.com") from None
        raise InvalidInput(str(exc.of("DOMAIN", text, separator=" "))) from None
    if labels[0] == DISCOVERY_LABEL:
        raise InvalidInput(f"DOMAIN {text!r}: give the zone ({'.'.join(labels[1:])}), not the record name")
    return dns.name.from_text(".".join(labels))


def discovery_value(base_url: str) -> str:
    """The TXT value for `base_url`: host (and port and path) without scheme or trailing slash."""
    parts = urllib.parse.urlsplit(base_url)
    problem = None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problem = "must be an absolute http(s) URL such as 'https://dc.example.net'"
    elif parts.username is not None or parts.query or parts.fragment:
        problem = "must not hold a user name, query or fragment: service providers append /v2/... to it"
    elif not (parts.netloc + parts.path).isascii():
        problem = "must be ASCII (write an internationalized host name in its xn-- form)"
    if problem:
        raise InvalidInput(f"gateway.base_url {base_url!r} {problem}")
    value = (parts.netloc + parts.path).rstrip("/")
    if len(value) > MAX_TXT_STRING:
        raise InvalidInput(f"gateway.base_url: {value!r} is longer than the {MAX_TXT_STRING} characters "
                           "of one TXT string")
    return value


def write_record(config, record: DiscoveryRecord) -> dict[str, object]:
    """Publish `record` through the backend hosting its zone; what happened, for --json."""
    from backends.base import BackendError
    from gateway.infra.registry import BackendRouter

    try:
        router = BackendRouter.from_config(config)
    except BackendError as exc:
        raise BackendFailed(f"cannot start the backends: {exc}") from None
    try:
        return _write_through(router, record)
    finally:
        router.close()


def _write_through(router, record: DiscoveryRecord) -> dict[str, object]:
    from backends.base import BackendError, ZoneChanged
    from backends.records import RRsetChange

    zone_text = record.zone.to_text(omit_final_dot=True)
    try:
        route = router.backend_for(record.name)
    except BackendError as exc:
        raise BackendFailed(f"cannot find the zone of {zone_text}: {exc}") from None
    if route is None:
        raise InvalidInput(f"no configured backend hosts a zone for {zone_text}")
    backend, hosting_zone = route
    where = f"backend {backend.name!r}"
    if hosting_zone != record.zone:
        raise InvalidInput(f"{zone_text} is inside zone {hosting_zone.to_text(omit_final_dot=True)} on {where}; "
                           "service providers look discovery up at a zone's apex only")
    try:
        current = backend.read(record.zone, {record.name}, set())
    except BackendError as exc:
        raise BackendFailed(f"{where}: zone {zone_text}: {exc}") from None
    at_name = [rrset for rrset in current if rrset.name == record.name]
    cname = next((r for r in at_name if r.rdtype == dns.rdatatype.CNAME), None)
    if cname is not None:
        raise InvalidInput(f"{record.name.to_text()} is a CNAME to {cname[0].target.to_text()} on {where}; "
                           "publish the TXT record at the target, or remove the CNAME first")
    before = next((r for r in at_name if r.rdtype == dns.rdatatype.TXT), None)
    summary = {"written": False, "backend": backend.name, "zone": zone_text}
    # The same value with another TTL is still the same answer: nothing to write.
    if before is not None and set(before) == {record.rdata}:
        print(f"{record.name.to_text()} already holds {record.rdata.to_text()} on {where}", file=sys.stderr)
        return summary
    try:
        backend.apply(record.zone, [RRsetChange(record.name, dns.rdatatype.TXT, before, record.rrset())])
    except ZoneChanged as exc:
        raise BackendFailed(f"{where}: zone {zone_text}: {exc}; run the command again") from None
    except BackendError as exc:
        raise BackendFailed(f"{where}: zone {zone_text}: {exc}") from None
    replaced = f" (replaced {', '.join(r.to_text() for r in before)})" if before is not None else ""
    print(f"wrote {record.name.to_text()} TXT to zone {zone_text} on {where}{replaced}", file=sys.stderr)
    return {**summary, "written": True}


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fail(message: str, status: int) -> int:
    print(f"dcgw discovery-record: {message}", file=sys.stderr)
    return status
