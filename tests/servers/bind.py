"""BIND 9 `named` on 127.0.0.1, a primary for a pool of empty zones that a TSIG key may update.

named cannot create zones without rndc, so one server per test session starts with
`ZONE_POOL` empty zones and hands a fresh one to each test (`bind_zone`). It never
recurses, sends NOTIFY or validates DNSSEC, so it sends nothing off the machine.

    def test_something(bind_server, bind_zone):
        bind_server.update(bind_zone, "www", 300, "A", "192.0.2.1")
        assert bind_server.rrset(f"www.{bind_zone}", "A") is not None

Run as root without `-u`, which keeps the temporary directory usable by named.
"""

from __future__ import annotations

import base64
import itertools
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.update
import pytest

from tests.servers.common import free_port, require_program, stop, wait_for_port

ZONE_POOL = 48
KEY_NAME = "dcgw-update."
KEY_ALGORITHM = "hmac-sha256"
# Updates to this name are refused by policy: a server-side rejection tests can provoke.
FORBIDDEN_LABEL = "forbidden"

NAMED_CONF = """\
key "{key_name}" {{ algorithm {algorithm}; secret "{secret}"; }};
controls {{ }};
options {{
    directory "{work}";
    pid-file "{work}/named.pid";
    session-keyfile "{work}/session.key";
    managed-keys-directory "{work}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    notify no;
    dnssec-validation no;
    allow-query {{ 127.0.0.1; }};
    allow-transfer {{ key "{key_name}"; }};
    minimal-responses no;
}};
"""
ZONE_CONF = """\
zone "{zone}" {{
    type primary;
    file "{work}/{zone}.zone";
    update-policy {{
        deny "{key_name}" name {forbidden}.{zone}. ANY;
        grant "{key_name}" zonesub ANY;
    }};
}};
"""
ZONE_FILE = """\
$TTL 3600
@ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 300
@ IN NS ns1.{zone}.
ns1 IN A 192.0.2.53
"""


@dataclass
class BindServer:
    """A running named: where it listens, its update key, and zones not yet handed out."""

    host: str
    port: int
    key_name: str
    key_secret: str
    key_algorithm: str
    work: Path
    zones: list[dns.name.Name]
    _next: Iterator[int] = field(default_factory=itertools.count, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return dns.tsigkeyring.from_text({self.key_name: (self.key_algorithm, self.key_secret)})

    def backend_options(self, **overrides) -> dict:
        """Options of an `rfc2136` backend that updates this server."""
        return {"server": self.host, "port": self.port, "tsig_key_name": self.key_name,
                "tsig_secret": self.key_secret, "tsig_algorithm": self.key_algorithm, "timeout": 10,
                **overrides}

    def fresh_zone(self) -> dns.name.Name:
        with self._lock:
            index = next(self._next)
        if index >= len(self.zones):
            pytest.fail(f"all {len(self.zones)} BIND test zones are used; raise ZONE_POOL in tests/servers/bind.py")
        return self.zones[index]

    def query(self, name: dns.name.Name | str, rdtype: str | dns.rdatatype.RdataType) -> dns.message.Message:
        """Ask named over TCP, unsigned, as any resolver would."""
        query = dns.message.make_query(name, rdtype)
        return dns.query.tcp(query, self.host, port=self.port, timeout=10)

    def rrset(self, name: dns.name.Name | str, rdtype: str | dns.rdatatype.RdataType) -> dns.rrset.RRset | None:
        """What named serves at exactly (name, rdtype), or None."""
        name = dns.name.from_text(name) if isinstance(name, str) else name
        rdtype = dns.rdatatype.RdataType.make(rdtype)
        response = self.query(name, rdtype)
        rcode = response.rcode()
        assert rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN), f"named answered {dns.rcode.to_text(rcode)}"
        return response.get_rrset(response.answer, name, dns.rdataclass.IN, rdtype)

    def update_message(self, zone: dns.name.Name) -> dns.update.UpdateMessage:
        return dns.update.UpdateMessage(zone, keyring=self.keyring, keyname=self.key_name,
                                        keyalgorithm=self.key_algorithm)

    def update(self, zone: dns.name.Name, host: str, ttl: int, rdtype: str, *values: str) -> None:
        """Replace the RRset at `host` (relative to `zone`; none: delete it) as another client would."""
        message = self.update_message(zone)
        if values:
            message.replace(host, ttl, rdtype, *values)
        else:
            message.delete(host, rdtype)
        self.send(message)

    def put(self, zone: dns.name.Name, rrset: dns.rrset.RRset) -> None:
        """Replace the RRset at (rrset.name, rrset.rdtype) with `rrset`."""
        message = self.update_message(zone)
        message.replace(rrset.name, rrset)
        self.send(message)

    def send(self, message: dns.update.UpdateMessage) -> None:
        response = dns.query.tcp(message, self.host, port=self.port, timeout=60)
        assert response.rcode() == dns.rcode.NOERROR, f"named refused the update: {dns.rcode.to_text(response.rcode())}"


def start_bind(directory: Path, zone_count: int = ZONE_POOL) -> tuple[BindServer, subprocess.Popen]:
    named = require_program("named", "bind9", "bind9-utils")
    port = free_port()
    secret = base64.b64encode(os.urandom(32)).decode()
    zones = [dns.name.from_text(f"zone{index:02d}.dcgw.test") for index in range(zone_count)]
    settings = {"key_name": KEY_NAME, "algorithm": KEY_ALGORITHM, "secret": secret, "work": directory,
                "port": port, "forbidden": FORBIDDEN_LABEL}
    config = NAMED_CONF.format(**settings)
    for zone in zones:
        text = zone.to_text(omit_final_dot=True)
        config += ZONE_CONF.format(zone=text, **settings)
        (directory / f"{text}.zone").write_text(ZONE_FILE.format(zone=text))
    (directory / "named.conf").write_text(config)
    log = directory / "named.log"
    with log.open("w") as output:
        # -g: foreground, log to stderr, no setuid; -n 1: one worker thread is plenty here.
        process = subprocess.Popen([named, "-g", "-n", "1", "-c", str(directory / "named.conf")],
                                   stdout=output, stderr=subprocess.STDOUT)
    server = BindServer("127.0.0.1", port, KEY_NAME, secret, KEY_ALGORITHM, directory, zones)
    try:
        wait_for_port(port, process, timeout=60, log=log)
        _wait_for_zones(server, process, log)
    except BaseException:
        stop(process)
        raise
    return server, process


def _wait_for_zones(server: BindServer, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """named listens before it has loaded every zone; wait for the last one."""
    deadline = time.monotonic() + timeout
    while server.query(server.zones[-1], "SOA").rcode() != dns.rcode.NOERROR:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"named did not load its zones\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.1)


@contextmanager
def bind_running(zone_count: int = ZONE_POOL) -> Iterator[BindServer]:
    """A named in a temporary directory, stopped and removed on exit."""
    directory = Path(tempfile.mkdtemp(prefix="dcgw-named-"))
    try:
        server, process = start_bind(directory, zone_count)
        try:
            yield server
        finally:
            stop(process)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def bind_server() -> Iterator[BindServer]:
    with bind_running() as server:
        yield server


@pytest.fixture
def bind_zone(bind_server: BindServer) -> dns.name.Name:
    """A zone of `bind_server` no other test has used: SOA, NS and ns1's A only."""
    return bind_server.fresh_zone()
