"""The `rfc2136` backend: a primary that takes DNS UPDATE (RFC 2136), such as BIND or Knot.

    [[backends]]
    name = "bind"
    driver = "rfc2136"
    zones = ["*"]
    server = "192.0.2.53"            # the primary's address
    tsig_key_name = "dcgw-update."
    tsig_secret = "env:DCGW_TSIG_SECRET"
    apex_alias = "flatten"           # optional; APEXCNAME as the A/AAAA its target resolves to

Reads ask the primary over TCP for the RRsets at each touched name, one query per
(name, type), all pipelined on one connection: one round trip per read, and no ANY
query, which RFC 8482 lets servers answer partially. A read for a plan asks only for the
types the planner can act on at each name (those written, A beside AAAA, TXT for SPF,
CNAME and NS), and for every type dnspython knows where a new CNAME or NS conflicts
with anything; other reads ask for every type. Only a template with NS records reads a subtree (everything below the new
delegation), and that takes a zone transfer (AXFR), so the key must be allowed to
transfer the zone.

Zones found by `find_zone` are remembered until a query or UPDATE for one fails, so an
apply to a zone looked up before is two round trips: the read and the UPDATE.

Each apply is one UPDATE message. Its prerequisites pin every RRset the plan read
("exists with exactly these values" or "does not exist"), and the absence of the
CNAME or other data that RFC 2136 servers would otherwise silently refuse to add
beside; the server checks them and applies the update all or nothing.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import random
import selectors
import socket
import struct
import threading
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.rrset
import dns.tsig
import dns.tsigkeyring
import dns.update
import dns.wire
import dns.xfr
import dns.zone

from backends.base import Backend, BackendError, ConfigError, RememberedZones, RRsetChange, ZoneChanged
from backends.records import UNTOUCHABLE, ReadScope
from backends.zonedata import rrsets_in_scope

T = dns.rdatatype.RdataType

#: Options of a `[[backends]]` table with driver = "rfc2136".
OPTIONS = frozenset({"server", "port", "tsig_key_name", "tsig_secret", "tsig_algorithm", "timeout", "apex_alias"})
TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5")
# Obsolete types no template writes and no server should hold beside new data.
_OBSOLETE = frozenset({T.NONE, T.MD, T.MF, T.SIG, T.NXT})
#: Every type a read asks for at each name: all data types dnspython can parse, so a
#: record of any type a template can write is seen, minus SOA and DNSSEC material.
READ_TYPES: tuple[T, ...] = tuple(t for t in T if not dns.rdatatype.is_metatype(t)
                                  and t not in UNTOUCHABLE and t not in _OBSOLETE)
_READ_TYPE_SET = frozenset(READ_TYPES)
# Types allowed beside a CNAME (RFC 2181 10.1, RFC 4035): DNSSEC material only.
_CNAME_COMPANIONS = frozenset(UNTOUCHABLE - {T.SOA}) | {T.CNAME}
# Errors a server may send without repeating the question (RFC 1035 4.1.1).
_QUESTIONLESS_RCODES = frozenset({dns.rcode.FORMERR, dns.rcode.SERVFAIL, dns.rcode.NOTIMP, dns.rcode.REFUSED})
TSIG_FUDGE = 300  # seconds of clock difference a signature allows (RFC 8945 10)
_ZONE_CHANGED_RCODES = frozenset({dns.rcode.NXRRSET, dns.rcode.YXRRSET, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN})
_RCODE_HINTS = {
    dns.rcode.REFUSED: "the server does not allow this update (check its update-policy or allow-update for the key)",
    dns.rcode.NOTAUTH: "the server is not authoritative for the zone or does not accept the TSIG key",
    dns.rcode.NOTZONE: "a name in the update is outside the zone",
    dns.rcode.SERVFAIL: "the server failed to apply the update",
}


class RFC2136Backend(Backend):
    """Reads with pipelined TCP queries, writes with one prerequisite-guarded UPDATE."""
    known_options = OPTIONS

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.apex_alias_option()
        self.server = self._address(self.option("server", kind=str))
        self.port = self.option("port", 53, int)
        if isinstance(self.port, bool) or not 0 < self.port < 65536:
            raise ConfigError(f"backend {name!r}: option 'port' must be a port number (1-65535), not {self.port!r}")
        self.timeout = self.option("timeout", 10, (int, float))
        if isinstance(self.timeout, bool) or self.timeout <= 0:
            raise ConfigError(f"backend {name!r}: option 'timeout' must be a positive number of seconds, "
                              f"not {self.timeout!r}")
        self.key_name, self.keyring, self.key_algorithm = self._tsig()
        self._key = self.keyring[self.key_name] if self.keyring is not None else None
        self._key_owner = self.key_name.to_wire() if self.key_name is not None else b""
        #: Waits for the server (pipelined queries count once); for tests and benchmarks.
        self.round_trips = 0
        #: DNS messages sent.
        self.messages = 0
        self.found_zones = RememberedZones()
        self._counter_lock = threading.Lock()

    # -- options --------------------------------------------------------------------------

    def _address(self, server: str) -> str:
        try:
            return str(ipaddress.ip_address(server.strip()))
        except ValueError:
            raise ConfigError(f"backend {self.name!r}: option 'server' must be the primary's IP address, "
                              f"not {server!r}") from None

    def _tsig(self) -> tuple[dns.name.Name | None, dict[dns.name.Name, dns.tsig.Key] | None, str]:
        key_name = self.option("tsig_key_name", None, str)
        secret = self.option("tsig_secret", None, str)
        algorithm = self.option("tsig_algorithm", "hmac-sha256", str).lower()
        if algorithm not in TSIG_ALGORITHMS:
            raise ConfigError(f"backend {self.name!r}: option 'tsig_algorithm' must be one of "
                              f"{', '.join(TSIG_ALGORITHMS)}, not {algorithm!r}")
        if (key_name is None) != (secret is None):
            missing = "tsig_secret" if secret is None else "tsig_key_name"
            raise ConfigError(f"backend {self.name!r}: option {missing!r} is required with "
                              f"{'tsig_key_name' if missing == 'tsig_secret' else 'tsig_secret'}")
        if key_name is None:
            return None, None, algorithm
        try:
            name = dns.name.from_text(key_name)
        except dns.exception.DNSException as exc:
            raise ConfigError(f"backend {self.name!r}: option 'tsig_key_name' is not a key name: {exc}") from None
        try:
            base64.b64decode(secret, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"backend {self.name!r}: option 'tsig_secret' must be base64 "
                              "(as in the server's key statement)") from None
        return name, {name: dns.tsig.Key(name, secret, algorithm)}, algorithm

    # -- zones ----------------------------------------------------------------------------

    def zones(self) -> list[dns.name.Name]:
        """An RFC 2136 server cannot list its zones: `find_zone` asks the server instead."""
        return []

    def check_ready(self) -> None:
        """Any answer to one SOA query for the root (usually REFUSED) shows the server is up."""
        self._exchange([(dns.name.root, T.SOA)], zone=None)

    def find_zone(self, domain: dns.name.Name) -> dns.name.Name | None:
        """The zone the server is authoritative for that holds `domain`, from one SOA query:
        the SOA comes back in the answer at a zone apex, else in the authority section.
        A zone found is remembered: asked for again (a domain that is a zone itself, as in
        every Domain Connect apply), it costs no query until the server fails one for it."""
        if domain in self.found_zones:
            return domain
        response = self._exchange([(domain, T.SOA)], zone=None)[0]
        rcode = response.rcode()
        if rcode == dns.rcode.REFUSED or not response.flags & dns.flags.AA:
            return None  # not served here, or delegated to servers elsewhere
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise self._error(None, f"the SOA query for {domain} failed with {dns.rcode.to_text(rcode)}")
        for record in (*response.answer, *response.authority):
            if record.rdtype == T.SOA and record.rdclass == dns.rdataclass.IN and domain.is_subdomain(record.owner):
                self.found_zones.remember(record.owner)
                return record.owner
        return None

    # -- read -----------------------------------------------------------------------------

    def read(self, zone: dns.name.Name, names: Collection[dns.name.Name],
             subtrees: Collection[dns.name.Name] = ()) -> list[dns.rrset.RRset]:
        return self._read(zone, names, subtrees, {})

    def read_for_plan(self, zone: dns.name.Name, scope: ReadScope) -> list[dns.rrset.RRset]:
        # Each type is one query: ask only for those the planner can act on at each name
        # (every type where a new CNAME or NS conflicts with anything).
        return self._read(zone, scope.names, scope.subtrees, scope.types)

    def _read(self, zone: dns.name.Name, names: Collection[dns.name.Name], subtrees: Collection[dns.name.Name],
              types: Mapping[dns.name.Name, frozenset[T]]) -> list[dns.rrset.RRset]:
        wanted = sorted(n for n in set(names) if n.is_subdomain(zone))
        queries = [(name, rdtype) for name in wanted
                   for rdtype in (READ_TYPES if name not in types else sorted(types[name] & _READ_TYPE_SET))]
        found: dict[tuple[dns.name.Name, T], dns.rrset.RRset] = {}
        for query, response in zip(queries, self._exchange(queries, zone) if queries else []):
            rrset = self._answer(zone, query, response)
            if rrset is not None:
                found[(rrset.name, rrset.rdtype)] = rrset
        if subtrees:
            for rrset in rrsets_in_scope(self._transfer(zone), (), subtrees):
                if rrset.rdtype != T.SOA:
                    found.setdefault((rrset.name, rrset.rdtype), rrset)
        return list(found.values())

    def _answer(self, zone: dns.name.Name, question: tuple[dns.name.Name, T],
                response: _Answer) -> dns.rrset.RRset | None:
        """The RRset at exactly the question's (name, type): the authoritative answer, or
        the NS of a delegation, which the parent serves as a referral."""
        name, rdtype = question
        rcode = response.rcode()
        if rcode == dns.rcode.NXDOMAIN:
            return None
        if rcode != dns.rcode.NOERROR:
            raise self._error(zone, f"the query for {name} {dns.rdatatype.to_text(rdtype)} "
                                    f"failed with {dns.rcode.to_text(rcode)}")
        if response.flags & dns.flags.AA:
            section = response.answer
        elif rdtype == T.NS:
            section = response.authority
        else:
            return None
        return response.rrset(section, name, rdtype)

    def _transfer(self, zone: dns.name.Name) -> dns.zone.Zone:
        self._count(1)
        try:
            transferred = dns.zone.from_xfr(dns.query.xfr(
                self.server, zone, port=self.port, keyring=self.keyring, keyname=self.key_name,
                keyalgorithm=self.key_algorithm, timeout=self.timeout, lifetime=self.timeout * 6,
                relativize=False), relativize=False)
        except dns.xfr.TransferError as exc:
            raise self._error(zone, f"the zone transfer (AXFR) was refused ({exc}); reading below a delegation "
                                    "needs the key to be allowed to transfer the zone") from None
        except (dns.exception.DNSException, OSError, EOFError) as exc:
            raise self._error(zone, f"the zone transfer (AXFR) failed: {_describe(exc)}") from None
        return transferred

    # -- apply ----------------------------------------------------------------------------

    def apply(self, zone: dns.name.Name, changes: Sequence[RRsetChange]) -> None:
        if not changes:
            return
        update = self._update_message(zone, changes)
        self._count(1)
        try:
            response = dns.query.tcp(update, self.server, port=self.port, timeout=self.timeout)
        except dns.exception.TooBig:
            raise self._error(zone, f"{len(changes)} RRset changes do not fit in one UPDATE message") from None
        except (dns.exception.DNSException, OSError, EOFError) as exc:
            raise self._error(zone, f"the UPDATE failed: {_describe(exc)}; the server may or may not have "
                                    "applied it") from None
        rcode = response.rcode()
        if rcode == dns.rcode.NOERROR:
            return
        if rcode in _ZONE_CHANGED_RCODES:
            raise ZoneChanged(f"backend {self.name!r}: zone {zone}: the records read for the plan changed since "
                              f"(the server answered {dns.rcode.to_text(rcode)}); nothing was written")
        hint = _RCODE_HINTS.get(rcode, "the update was not applied")
        raise self._error(zone, f"the server answered the UPDATE with {dns.rcode.to_text(rcode)}: {hint}")

    def _update_message(self, zone: dns.name.Name, changes: Sequence[RRsetChange]) -> dns.update.UpdateMessage:
        update = dns.update.UpdateMessage(zone, keyring=self.keyring, keyname=self.key_name,
                                          keyalgorithm=self.key_algorithm)
        by_name: dict[dns.name.Name, list[RRsetChange]] = defaultdict(list)
        for change in changes:
            if not change.name.is_subdomain(zone):
                raise self._error(zone, f"{change.name} is outside the zone")
            by_name[change.name].append(change)
            if change.before is None:
                update.absent(change.name, change.rdtype)
            else:
                # Value dependent: the RRs must be exactly these (TTL 0, which the RFC requires here).
                update.present(change.name, *change.before)
        for name, here in by_name.items():
            if name == zone:
                continue  # the apex holds SOA and NS, so it can never hold a CNAME
            for rdtype in _absences_relied_on(here):
                update.absent(name, rdtype)

        apex_ns = [c for c in changes if c.name == zone and c.rdtype == T.NS]
        # Deletions first: a server ignores a CNAME added beside data it has not yet deleted.
        for change in changes:
            if change.before is not None and change not in apex_ns:
                update.delete(change.name, change.rdtype)
        for change in changes:
            if change.after is not None:
                update.add(change.name, change.after.ttl, *change.after)
        # A server ignores deleting the apex NS RRset; delete its old values one by one instead,
        # after the new ones are in, so the zone never has none.
        for change in apex_ns:
            if change.before is not None:
                kept = set(change.after) if change.after is not None else set()
                stale = [rdata for rdata in change.before if rdata not in kept]
                if stale:
                    update.delete(change.name, *stale)
        return update

    # -- the wire -------------------------------------------------------------------------

    def _exchange(self, questions: Sequence[tuple[dns.name.Name, T]],
                  zone: dns.name.Name | None) -> list[_Answer]:
        """Ask every (name, type) on one TCP connection before waiting for answers (RFC 7766
        pipelining), so a read costs one round trip however many names and types it asks."""
        if len(questions) > 65536:
            raise self._error(zone, f"{len(questions)} queries do not fit in one exchange of 65536 message ids")
        queries = [self._query(name, rdtype, query_id)
                   for (name, rdtype), query_id in zip(questions, random.sample(range(65536), len(questions)))]
        pending = {query.id: query for query in queries}
        answers: dict[int, _Answer] = {}
        self._count(len(queries))
        try:
            for wire in _pipeline(self.server, self.port, b"".join(q.wire for q in queries), len(queries),
                                  self.timeout):
                (query_id,) = struct.unpack("!H", wire[:2])
                query = pending.pop(query_id, None)
                if query is None:
                    raise self._error(zone, f"the server sent an answer to no pending query (id {query_id})")
                answer = _Answer.read(wire, self._key, query.mac)
                if not query.answered_by(answer):
                    raise self._error(zone, f"the server answered another question than {query}")
                answers[query_id] = answer
        except BackendError:
            raise
        except (dns.exception.DNSException, OSError, EOFError) as exc:
            raise self._error(zone, f"querying {self.server} port {self.port} failed: {_describe(exc)}") from None
        return [answers[q.id] for q in queries]

    def _query(self, name: dns.name.Name, rdtype: T, query_id: int) -> _Query:
        """A query without recursion desired and without EDNS, TSIG-signed when a key is set,
        written straight to the wire: a read sends one per (name, type)."""
        question = name.to_wire() + struct.pack("!HH", rdtype, dns.rdataclass.IN)
        unsigned = struct.pack("!6H", query_id, 0, 1, 0, 0, 0) + question
        key = self._key
        if key is None:
            return _Query(name, rdtype, query_id, len(unsigned).to_bytes(2, "big") + unsigned, b"")
        template = dns.rdtypes.ANY.TSIG.TSIG(dns.rdataclass.ANY, T.TSIG, key.algorithm, 0, TSIG_FUDGE, b"",
                                             query_id, 0, b"")
        signed, _ = dns.tsig.sign(unsigned, key, template, int(time.time()))
        tsig = signed.to_wire()
        wire = b"".join([struct.pack("!6H", query_id, 0, 1, 0, 0, 1), question, self._key_owner,
                         struct.pack("!HHIH", T.TSIG, dns.rdataclass.ANY, 0, len(tsig)), tsig])
        return _Query(name, rdtype, query_id, len(wire).to_bytes(2, "big") + wire, signed.mac)

    def _count(self, messages: int) -> None:
        with self._counter_lock:
            self.round_trips += 1
            self.messages += messages

    def _error(self, zone: dns.name.Name | None, message: str) -> BackendError:
        if zone is not None:
            self.found_zones.forget(zone)  # perhaps no longer served here: look it up again next time
        where = f" zone {zone}:" if zone is not None else ""
        return BackendError(f"backend {self.name!r} ({self.server} port {self.port}):{where} {message}")


@dataclass(frozen=True)
class _Record:
    owner: dns.name.Name
    rdtype: int
    rdclass: int
    ttl: int
    offset: int  # of the rdata in the message
    length: int


@dataclass(frozen=True)
class _Answer:
    """A response as a read needs it: header, question, and where each answer and authority
    record lies, its rdata parsed only for the RRsets asked for (dnspython parses, hashes and
    sorts every record of every section, the SOA of each negative answer included)."""
    wire: bytes
    id: int
    flags: int
    rcode_value: int
    question: list[tuple[dns.name.Name, int, int]]
    answer: list[_Record]
    authority: list[_Record]

    def rcode(self) -> int:
        return self.rcode_value

    def rrset(self, section: list[_Record], name: dns.name.Name, rdtype: int) -> dns.rrset.RRset | None:
        """The IN RRset (`name`, `rdtype`) of `section`, as `dns.message.Message.get_rrset` finds it."""
        rrset = None
        for record in section:
            if record.rdtype != rdtype or record.rdclass != dns.rdataclass.IN or record.owner != name:
                continue
            parser = dns.wire.Parser(self.wire)
            parser.seek(record.offset)
            with parser.restrict_to(record.length):
                rdata = dns.rdata.from_wire_parser(record.rdclass, record.rdtype, parser)
            if rrset is None:
                rrset = dns.rrset.RRset(name, dns.rdataclass.IN, rdtype)
            rrset.add(rdata, 0 if record.ttl > 0x7FFFFFFF else record.ttl)
        return rrset

    @classmethod
    def read(cls, wire: bytes, key: dns.tsig.Key | None, request_mac: bytes) -> _Answer:
        """Parse `wire`, checking its TSIG against `key` (required when there is one) as
        `dns.message.from_wire` would: last record of the message, signing this answer to
        the request whose MAC is `request_mac`, within the time it allows."""
        parser = dns.wire.Parser(wire)
        if parser.remaining() < 12:
            raise dns.message.ShortHeader
        query_id, flags, qdcount, ancount, nscount, arcount = parser.get_struct("!6H")
        question = [(parser.get_name(decompress=True), *parser.get_struct("!HH")) for _ in range(qdcount)]
        answer, authority = _records(parser, ancount), _records(parser, nscount)
        rcode, signed = flags & 0x000F, False
        for index in range(arcount):
            start = parser.current
            owner = parser.get_name(decompress=True)
            rdtype, rdclass, ttl, length = parser.get_struct("!HHIH")
            if rdtype == T.OPT:
                rcode |= (ttl >> 20) & 0x0FF0  # the extended rcode's upper bits (RFC 6891 6.1.3)
            if rdtype != T.TSIG:
                parser.seek(parser.current + length)
                continue
            if index != arcount - 1 or rdclass != dns.rdataclass.ANY or ttl != 0:
                raise dns.exception.FormError("a TSIG record must be the last one, of class ANY and TTL 0")
            if key is None:
                raise dns.message.UnknownTSIGKey("got signed message without keyring")
            with parser.restrict_to(length):
                tsig = dns.rdata.from_wire_parser(rdclass, rdtype, parser)
            dns.tsig.validate(wire, key, owner, tsig, int(time.time()), request_mac, start)
            signed = True
        if parser.remaining():
            raise dns.message.TrailingJunk
        if key is not None and not signed:
            raise dns.exception.FormError("response requires a TSIG but does not have one")
        return cls(wire, query_id, flags, rcode, question, answer, authority)


def _records(parser: dns.wire.Parser, count: int) -> list[_Record]:
    records = []
    for _ in range(count):
        owner = parser.get_name(decompress=True)
        rdtype, rdclass, ttl, length = parser.get_struct("!HHIH")
        records.append(_Record(owner, rdtype, rdclass, ttl, parser.current, length))
        parser.seek(parser.current + length)
    return records


@dataclass(frozen=True)
class _Query:
    """One query of an exchange, as sent: `mac` is its TSIG MAC, which signs the answer."""
    name: dns.name.Name
    rdtype: T
    id: int
    wire: bytes  # length-prefixed, as TCP carries it
    mac: bytes

    def __str__(self) -> str:
        return f"{self.name} {dns.rdatatype.to_text(self.rdtype)}"

    def answered_by(self, answer: _Answer) -> bool:
        """Whether `answer` is the response to this query (as `dns.message.Message.is_response`)."""
        if not answer.flags & dns.flags.QR or answer.id != self.id or dns.opcode.from_flags(answer.flags) != 0:
            return False
        if not answer.question and answer.rcode() in _QUESTIONLESS_RCODES:
            return True
        return answer.question == [(self.name, self.rdtype, dns.rdataclass.IN)]


def _absences_relied_on(changes: Sequence[RRsetChange]) -> list[T]:
    """Types that must stay absent at one name for the plan's additions to take effect: a
    server silently ignores adding a CNAME beside other data, and other data beside a CNAME."""
    changed = {c.rdtype for c in changes}
    written = {c.rdtype for c in changes if c.after is not None}
    if T.CNAME in written:
        return [t for t in READ_TYPES if t not in changed and t not in _CNAME_COMPANIONS]
    if written - _CNAME_COMPANIONS and T.CNAME not in changed:
        return [T.CNAME]
    return []


def _pipeline(server: str, port: int, outgoing: bytes, expected: int, timeout: float) -> Iterable[bytes]:
    """Write `outgoing` while reading length-prefixed messages; yields `expected` messages.
    Reading while writing keeps a long pipeline from deadlocking on full socket buffers."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((server, port), timeout=timeout) as sock, selectors.DefaultSelector() as selector:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        sent, buffer, received = 0, b"", 0
        while received < expected:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise dns.exception.Timeout(timeout=timeout)
            for _, events in selector.select(remaining):
                if events & selectors.EVENT_WRITE and sent < len(outgoing):
                    try:
                        sent += sock.send(outgoing[sent:sent + 65536])
                    except BlockingIOError:
                        continue
                    if sent == len(outgoing):
                        selector.modify(sock, selectors.EVENT_READ)
                if events & selectors.EVENT_READ:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise EOFError("the server closed the connection")
                    buffer += chunk
                    while len(buffer) >= 2 and len(buffer) >= 2 + struct.unpack("!H", buffer[:2])[0]:
                        length = struct.unpack("!H", buffer[:2])[0]
                        yield buffer[2:2 + length]
                        buffer = buffer[2 + length:]
                        received += 1


def _describe(exc: BaseException) -> str:
    if isinstance(exc, dns.exception.Timeout):
        return "no answer in time"
    return str(exc) or type(exc).__name__
