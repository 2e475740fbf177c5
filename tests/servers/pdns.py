"""A throwaway PowerDNS Authoritative server (Debian pdns-server 4.7, gsqlite3 backend) on
127.0.0.1 ports, with its HTTP API on.

`pdns_server()` is a plain context manager (the benchmarks use it without pytest); the
session fixture `pdns` shares one server across the test run. Every zone a test creates
should have a name of its own (`PdnsServer.new_zone`), so tests never see each other's
records.

The server never talks to anything but loopback: `security-poll-suffix=` turns off the
start-up version query, no zone is a primary or secondary, and `resolver` is unset (ALIAS
records are not expanded). A test that needs ALIAS served starts a server of its own with
`pdns_server({"resolver": "127.0.0.1:PORT", "expand-alias": "yes"})`, PORT a loopback DNS
server the test controls.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.message
import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import httpx
import pytest

from tests.servers.common import free_port, require_program, stop, wait_for_port

SCHEMA_PATHS = (
    Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql"),
    Path("/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql"),
)

PDNS_CONF = """\
launch=gsqlite3
gsqlite3-database={database}
api=yes
api-key={api_key}
webserver=yes
webserver-address=127.0.0.1
webserver-port={api_port}
webserver-allow-from=127.0.0.0/8
local-address=127.0.0.1
local-port={dns_port}
socket-dir={directory}
security-poll-suffix=
guardian=no
daemon=no
disable-syslog=yes
# Answers must show each API write at once: no caches between the database and DNS.
cache-ttl=0
negquery-cache-ttl=0
query-cache-ttl=0
"""


@dataclass
class PdnsServer:
    api_url: str
    api_key: str
    dns_port: int
    server_id: str = "localhost"
    _zone_numbers: Iterator[int] = field(default_factory=itertools.count)
    command: list[str] = field(default_factory=list)  # how it was started: `restart` runs it again
    directory: Path | None = None
    process: subprocess.Popen | None = None

    def kill(self) -> None:
        """kill -9: no chance to flush or answer anything more."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        """Start it again on the same ports and database."""
        self.kill()
        log = self.directory / "pdns.log"
        with log.open("ab") as output:
            self.process = subprocess.Popen(self.command, stdout=output, stderr=subprocess.STDOUT, cwd=self.directory)
        port = int(self.api_url.rsplit(":", 1)[1])
        wait_for_port(port, self.process, timeout=30, log=log)
        wait_for_port(self.dns_port, self.process, timeout=30, log=log)

    def backend_options(self, **extra: Any) -> dict[str, Any]:
        """Options of a `powerdns` backend talking to this server."""
        return {"api_url": self.api_url, "api_key": self.api_key, **extra}

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to the API, as another client of the server (not through a backend)."""
        url = f"{self.api_url}/api/v1/servers/{self.server_id}{path}"
        response = httpx.request(method, url, headers={"X-API-Key": self.api_key}, timeout=60, **kwargs)
        if not response.is_success:
            raise AssertionError(f"PowerDNS API {method} {path}: HTTP {response.status_code} {response.text}")
        return response

    def new_zone(self, prefix: str = "zone") -> dns.name.Name:
        """A fresh zone (SOA and NS only) with a name no other test uses."""
        zone = dns.name.from_text(f"{prefix}-{os.getpid()}-{next(self._zone_numbers)}.test")
        self.create_zone(zone)
        return zone

    def create_zone(self, zone: dns.name.Name | str, rrsets: Iterable[dict[str, Any]] = ()) -> None:
        name = str(zone) if isinstance(zone, dns.name.Name) else dns.name.from_text(zone).to_text()
        self.api("POST", "/zones", json={"name": name, "kind": "Native", "nameservers": [f"ns1.{name}"],
                                         "rrsets": list(rrsets)})

    def delete_zone(self, zone: dns.name.Name) -> None:
        self.api("DELETE", f"/zones/{zone}")

    def patch(self, zone: dns.name.Name, rrsets: list[dict[str, Any]]) -> None:
        self.api("PATCH", f"/zones/{zone}", json={"rrsets": rrsets})

    def replace(self, rrset: dns.rrset.RRset, zone: dns.name.Name) -> None:
        """Set an RRset through the API as another client would."""
        self.patch(zone, [replace_entry(rrset, zone)])

    def rrsets(self, zone: dns.name.Name) -> list[dict[str, Any]]:
        """The whole zone as the API lists it (with comments and disabled records)."""
        return self.api("GET", f"/zones/{zone}").json()["rrsets"]

    def query(self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset | None:
        """What the server answers over DNS (TCP) for (name, rdtype)."""
        response = dns.query.tcp(dns.message.make_query(name, rdtype), "127.0.0.1", port=self.dns_port, timeout=10)
        return response.get_rrset(response.answer, name, dns.rdataclass.IN, rdtype)


def replace_entry(rrset: dns.rrset.RRset, zone: dns.name.Name) -> dict[str, Any]:
    """The API's REPLACE of `rrset` (relative names in its rdata are relative to `zone`)."""
    return {"name": rrset.name.to_text(), "type": dns.rdatatype.to_text(rrset.rdtype), "ttl": rrset.ttl,
            "changetype": "REPLACE",
            "records": [{"content": r.to_text(origin=zone, relativize=False), "disabled": False} for r in rrset]}


def _schema() -> str:
    for path in SCHEMA_PATHS:
        if path.exists():
            return path.read_text()
    raise RuntimeError(f"no gsqlite3 schema at {' or '.join(map(str, SCHEMA_PATHS))} (Debian: pdns-backend-sqlite3)")


@contextmanager
def pdns_server(settings: Mapping[str, str] | None = None) -> Iterator[PdnsServer]:
    """Start pdns_server on free 127.0.0.1 ports, with extra pdns.conf `settings`; stops it
    and removes its files on exit."""
    for key, value in (settings or {}).items():
        if key == "resolver" and not value.startswith("127."):
            raise ValueError(f"resolver {value!r}: tests use loopback servers only")
    program = require_program("pdns_server", "pdns-server", "pdns-backend-sqlite3", "sqlite3")
    directory = Path(tempfile.mkdtemp(prefix="dcgw-pdns-"))
    server = None
    try:
        database = directory / "pdns.sqlite3"
        with sqlite3.connect(database) as connection:
            connection.executescript(_schema())
        connection.close()
        api_key = os.urandom(16).hex()
        api_port, dns_port = free_port(), free_port()
        (directory / "pdns.conf").write_text(PDNS_CONF.format(database=database, api_key=api_key, api_port=api_port,
                                                              dns_port=dns_port, directory=directory)
                                              + "".join(f"{k}={v}\n" for k, v in (settings or {}).items()))
        server = PdnsServer(api_url=f"http://127.0.0.1:{api_port}", api_key=api_key, dns_port=dns_port,
                            command=[program, f"--config-dir={directory}"], directory=directory)
        server.restart()
        yield server
    finally:
        if server is not None and server.process is not None:
            stop(server.process)
        shutil.rmtree(directory, ignore_errors=True)


class CountingTransport(httpx.HTTPTransport):
    """An httpx transport that counts requests and can replace the next PATCH's body.

    `tamper_next_patch(edit)`: `edit(body)` sees, and may rewrite, the JSON of the next
    PATCH before it is sent, as if the backend had sent that (one-off: used to make the
    server refuse, or to look at what was sent).
    """

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.URL] = []
        self.methods: list[str] = []
        self._tamper: Callable[[dict[str, Any]], object] | None = None

    def tamper_next_patch(self, edit: Callable[[dict[str, Any]], object]) -> None:
        self._tamper = edit

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request.url)
        self.methods.append(request.method)
        if request.method == "PATCH" and self._tamper is not None:
            edit, self._tamper = self._tamper, None
            body = json.loads(request.read())
            edit(body)
            request = httpx.Request(request.method, request.url, headers={
                k: v for k, v in request.headers.items() if k.lower() != "content-length"}, json=body)
        return super().handle_request(request)


@pytest.fixture(scope="session")
def pdns() -> Iterator[PdnsServer]:
    with pdns_server() as server:
        yield server
