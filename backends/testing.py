"""The backend conformance kit: the tests every backend plugin must pass.

Subclass `BackendConformance` in a pytest test class and give it one fixture:

    import pytest
    from backends.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        @pytest.fixture
        def backend_under_test(self):
            backend = MyBackend("mine", {...})
            zone = create_empty_zone(...)     # SOA and NS only; a fresh zone per test
            yield backend, zone               # zone: dns.name.Name (or text)
            delete_zone(...)

The kit puts records in the zone through `backend.apply`, so a backend needs nothing
beyond an empty zone. Hooks (methods of the subclass) make the proof stronger:

`served(backend, zone, name, rdtype)`
    What the server answers for (name, rdtype), as an RRset or None, by its own means
    (a DNS query, an API call). Default: not available, only `backend.read` is checked.
`mutate_behind_back(backend, zone, rrset)`
    Replace the RRset (rrset.name, rrset.rdtype) the way another client of the server
    would (its API, a DNS UPDATE). Default: `backend.apply`.
`break_next_apply(backend, zone)`
    Make the next apply fail on the server's side partway (a record the server rejects,
    an injected I/O error); the one after must work again. Default: the test is skipped.
`round_trips(backend)`
    A counter of the backend's requests to its server (API calls, DNS messages, file
    reads) that only grows. Default: the cost test is skipped.
`bulk_load(backend, zone, rrsets)`
    Create many RRsets fast (10,000 for the cost test). Default: `backend.apply` in
    batches of `bulk_batch` RRsets.
`extension_sample(rtype)`
    For a backend that declares extensions (`supported_extensions`): a template record of
    that type to apply at the apex. Default: one for APEXCNAME; any other declared type
    fails the extension tests until the subclass gives one.
`served_extension(backend, zone, name, rtype)`
    What the server holds for an extension record, by its own means. Default: only
    `backend.read_extensions` is checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from backends.base import Backend, BackendError, ExtensionChange, ExtensionRecord, RRsetChange, ZoneChanged
from backends.records import make_rrset, same_rrset
from gateway.apply.pipeline import PreparedApply, execute_apply, prepare_apply, write_changes
from gateway.engine.plan import UnsupportedRecordType
from gateway.engine.render import ApplyContext
from gateway.engine.template import EXTENSION_TYPES, Template, parse_template

# (name, type, the RRset that must be there or None for absent)
ExpectedRRset = tuple[dns.name.Name, dns.rdatatype.RdataType, dns.rrset.RRset | None]

__all__ = ["BackendConformance", "LONG_TXT", "conformance_template", "rrset_from_text"]

# More than 255 bytes, so it spans several character-strings, with the characters a
# presentation format must escape.
LONG_TXT = ('v=test1; note="quoted \\"words\\" and a backslash \\\\ here"; p='
            + "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" * 6)

_RECORDS: list[dict[str, Any]] = [
    {"type": "A", "host": "@", "pointsTo": "192.0.2.1", "ttl": 3600},
    {"type": "AAAA", "host": "@", "pointsTo": "2001:db8::1", "ttl": 3600},
    {"type": "A", "host": "web", "pointsTo": "192.0.2.2", "ttl": 600},
    {"type": "CNAME", "host": "www", "pointsTo": "target.example.net", "ttl": 3600},
    {"type": "MX", "host": "@", "pointsTo": "mx1.example.net", "priority": 10, "ttl": 3600},
    {"type": "TXT", "host": "sel._domainkey", "data": "v=DKIM1; k=rsa; p=NEWKEY", "ttl": 3600,
     "txtConflictMatchingMode": "Prefix", "txtConflictMatchingPrefix": "v=DKIM1"},
    {"type": "TXT", "host": "long", "data": LONG_TXT, "ttl": 3600},
    {"type": "SRV", "service": "_sip", "protocol": "_tcp", "name": "@", "priority": 10, "weight": 20,
     "port": 5060, "target": "sip.example.net", "ttl": 3600},
    {"type": "CAA", "host": "@", "data": '0 issue "letsencrypt.org"', "ttl": 3600},
    {"type": "SPFM", "host": "@", "spfRules": "include:spf.conformance.example"},
]

# Present before the apply: what the template must merge into, replace, remove, or leave alone.
_SEED = [
    ("@", 3600, "TXT", ['"v=spf1 a -all"']),
    ("@", 3600, "A", ["198.51.100.7"]),
    ("@", 3600, "MX", ["20 old-mx.example.net."]),
    ("sel._domainkey", 3600, "TXT", ['"v=DKIM1; k=rsa; p=OLDKEY"', '"unrelated=keep"']),
    ("web", 600, "AAAA", ["2001:db8::99"]),
    ("keep", 300, "A", ["192.0.2.99"]),
    ("keep", 300, "TXT", ['"left alone"']),
]


def conformance_template(records: Sequence[dict[str, Any]] = _RECORDS, service_id: str = "everything") -> Template:
    return parse_template({
        "providerId": "conformance.example", "providerName": "Conformance", "serviceId": service_id,
        "serviceName": "Conformance kit", "version": 1, "records": list(records),
    }, source=f"conformance:{service_id}")


def rrset_from_text(zone: dns.name.Name, host: str, ttl: int, rdtype: str, values: Iterable[str]) -> dns.rrset.RRset:
    """An RRset from presentation-format values, `host` relative to `zone` ("@" = apex)."""
    name = zone if host == "@" else dns.name.from_text(host, zone)
    rdatas = [dns.rdata.from_text(dns.rdataclass.IN, rdtype, value, origin=zone) for value in values]
    rrset = make_rrset(name, ttl, rdatas)
    assert rrset is not None
    return rrset


class BackendConformance:
    """Mixin of conformance tests; see the module docstring for the fixture and the hooks."""

    #: Most round trips one small apply (prepare + execute) may take.
    max_round_trips = 10
    #: Size of the large zone in the cost test.
    large_zone_records = 10_000
    #: RRsets per `backend.apply` in the default `bulk_load`.
    bulk_batch = 1000

    # -- hooks ----------------------------------------------------------------------------

    def served(self, backend: Backend, zone: dns.name.Name, name: dns.name.Name,
               rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset | None:
        return NotImplemented  # type: ignore[return-value]

    def mutate_behind_back(self, backend: Backend, zone: dns.name.Name, rrset: dns.rrset.RRset) -> None:
        current = _rrset_at(backend, zone, rrset.name, rrset.rdtype)
        backend.apply(zone, [RRsetChange(rrset.name, rrset.rdtype, current, rrset)])

    def break_next_apply(self, backend: Backend, zone: dns.name.Name) -> None:
        pytest.skip(f"{type(self).__name__} provides no break_next_apply hook")

    def round_trips(self, backend: Backend) -> int:
        pytest.skip(f"{type(self).__name__} provides no round_trips hook")

    def bulk_load(self, backend: Backend, zone: dns.name.Name, rrsets: Sequence[dns.rrset.RRset]) -> None:
        for start in range(0, len(rrsets), self.bulk_batch):
            batch = rrsets[start:start + self.bulk_batch]
            backend.apply(zone, [RRsetChange(r.name, r.rdtype, None, r) for r in batch])

    def extension_sample(self, rtype: str) -> dict[str, Any]:
        if rtype == "APEXCNAME":
            return {"type": "APEXCNAME", "host": "@", "pointsTo": "alias.conformance.example", "ttl": 600}
        pytest.fail(f"{type(self).__name__}: the backend declares extension {rtype}; give the kit a template "
                    "record of that type with an extension_sample hook")

    def served_extension(self, backend: Backend, zone: dns.name.Name, name: dns.name.Name,
                         rtype: str) -> ExtensionRecord | None:
        return NotImplemented  # type: ignore[return-value]

    # -- helpers --------------------------------------------------------------------------

    def _target(self, backend_under_test) -> tuple[Backend, dns.name.Name]:
        backend, zone = backend_under_test
        return backend, zone if isinstance(zone, dns.name.Name) else dns.name.from_text(zone)

    def _seed(self, backend: Backend, zone: dns.name.Name) -> list[dns.rrset.RRset]:
        rrsets = [rrset_from_text(zone, *row) for row in _SEED]
        backend.apply(zone, [RRsetChange(r.name, r.rdtype, None, r) for r in rrsets])
        return rrsets

    def _prepare(self, backend: Backend, zone: dns.name.Name, template: Template | None = None) -> PreparedApply:
        context = ApplyContext(domain=zone.to_text(omit_final_dot=True))
        return prepare_apply(backend, template or conformance_template(), context)

    def _assert_state(self, backend: Backend, zone: dns.name.Name, expected: Iterable[ExpectedRRset]) -> None:
        for name, rdtype, wanted in expected:
            got = _rrset_at(backend, zone, name, rdtype)
            assert same_rrset(got, wanted), (f"{backend.name}: {name} {dns.rdatatype.to_text(rdtype)}: "
                                             f"read {_show(got)}, expected {_show(wanted)}")
            served = self.served(backend, zone, name, rdtype)
            if served is not NotImplemented:
                assert same_rrset(served, wanted), (f"{backend.name}: {name} {dns.rdatatype.to_text(rdtype)}: "
                                                    f"served {_show(served)}, expected {_show(wanted)}")

    # -- the tests ------------------------------------------------------------------------

    def test_apply_makes_the_zone_match_the_plan(self, backend_under_test) -> None:
        backend, zone = self._target(backend_under_test)
        seeded = self._seed(backend, zone)
        prepared = self._prepare(backend, zone)
        touched = {(c.name, c.rdtype) for c in prepared.plan.changes}
        expected_types = {"A", "AAAA", "CNAME", "MX", "TXT", "SRV", "CAA"}
        assert {dns.rdatatype.to_text(t) for _, t in touched} == expected_types

        assert execute_apply(prepared) is True
        self._assert_state(backend, zone, [(c.name, c.rdtype, c.after) for c in prepared.plan.changes])
        # Records the template does not touch are exactly as they were.
        self._assert_state(backend, zone, [(r.name, r.rdtype, r) for r in seeded
                                           if (r.name, r.rdtype) not in touched])

        # The planner's intent, checked independently of the plan itself.
        apex_txt = _rrset_at(backend, zone, zone, dns.rdatatype.TXT)
        assert apex_txt is not None and {_txt(r) for r in apex_txt} == {
            "v=spf1 a include:spf.conformance.example -all"}
        dkim = _rrset_at(backend, zone, dns.name.from_text("sel._domainkey", zone), dns.rdatatype.TXT)
        assert dkim is not None and {_txt(r) for r in dkim} == {"v=DKIM1; k=rsa; p=NEWKEY", "unrelated=keep"}
        long_txt = _rrset_at(backend, zone, dns.name.from_text("long", zone), dns.rdatatype.TXT)
        assert long_txt is not None and [_txt(r) for r in long_txt] == [LONG_TXT]
        assert _rrset_at(backend, zone, dns.name.from_text("web", zone), dns.rdatatype.AAAA) is None

    def test_reapplying_changes_nothing(self, backend_under_test) -> None:
        backend, zone = self._target(backend_under_test)
        self._seed(backend, zone)
        assert execute_apply(self._prepare(backend, zone)) is True
        again = self._prepare(backend, zone)
        assert again.plan.changes == [], f"second plan is not empty: {again.plan.changes}"
        assert execute_apply(again) is False

    def test_change_to_a_read_rrset_is_refused(self, backend_under_test) -> None:
        backend, zone = self._target(backend_under_test)
        self._seed(backend, zone)
        prepared = self._prepare(backend, zone)
        moved = rrset_from_text(zone, "@", 3600, "TXT", ['"v=spf1 mx -all"'])
        self.mutate_behind_back(backend, zone, moved)
        self._assert_refused(backend, zone, prepared, moved)

    def test_creation_of_a_planned_rrset_is_refused(self, backend_under_test) -> None:
        backend, zone = self._target(backend_under_test)
        self._seed(backend, zone)
        prepared = self._prepare(backend, zone)
        moved = rrset_from_text(zone, "www", 300, "CNAME", ["elsewhere.example.org."])
        assert any(c.name == moved.name and c.before is None for c in prepared.plan.changes)
        self.mutate_behind_back(backend, zone, moved)
        self._assert_refused(backend, zone, prepared, moved)

    def _assert_refused(self, backend: Backend, zone: dns.name.Name, prepared: PreparedApply,
                        moved: dns.rrset.RRset) -> None:
        with pytest.raises(ZoneChanged):
            execute_apply(prepared)
        self._assert_state(backend, zone, [
            (c.name, c.rdtype, moved if (c.name, c.rdtype) == (moved.name, moved.rdtype) else c.before)
            for c in prepared.plan.changes])

    def test_server_error_mid_apply_leaves_the_zone_as_it_was(self, backend_under_test) -> None:
        backend, zone = self._target(backend_under_test)
        self._seed(backend, zone)
        prepared = self._prepare(backend, zone)
        self.break_next_apply(backend, zone)
        with pytest.raises(BackendError) as failure:
            execute_apply(prepared)
        assert not isinstance(failure.value, ZoneChanged), f"a broken apply is not a concurrent change: {failure.value}"
        self._assert_state(backend, zone, [(c.name, c.rdtype, c.before) for c in prepared.plan.changes])
        # The failure was one-off: the backend is usable again and nothing is stuck (locks, sessions).
        retry = self._prepare(backend, zone)
        assert execute_apply(retry) is True
        self._assert_state(backend, zone, [(c.name, c.rdtype, c.after) for c in retry.plan.changes])

    # -- extensions (only for a backend that declares some) ---------------------------------

    def _extension_template(self, backend: Backend, rtype: str) -> Template:
        return conformance_template([self.extension_sample(rtype),
                                     {"type": "TXT", "host": "@", "data": "extension-probe", "ttl": 600}],
                                    service_id=f"extension-{rtype.lower()}")

    def _assert_extension(self, backend: Backend, zone: dns.name.Name, rtype: str,
                          wanted: ExtensionRecord | None) -> None:
        got = [e for e in backend.read_extensions(zone, [zone]) if e.type == rtype]
        assert got == ([wanted] if wanted is not None else []), f"{backend.name}: {rtype} at the apex: read {got}"
        served = self.served_extension(backend, zone, zone, rtype)
        if served is not NotImplemented:
            assert served == wanted, f"{backend.name}: {rtype} at the apex: served {served}, expected {wanted}"

    def test_extensions_are_written_with_the_rrset_changes_or_not_at_all(self, backend_under_test) -> None:
        backend, zone = self._target(backend_under_test)
        self._seed(backend, zone)
        # An extension it does not declare never reaches it: refused before anything is read.
        undeclared = sorted(EXTENSION_TYPES - backend.supported_extensions - {"REDIR301", "REDIR302"})[0]
        reads_before = [0]
        original_read = backend.read

        def counting_read(*args, **kwargs):
            reads_before[0] += 1
            return original_read(*args, **kwargs)

        backend.read = counting_read  # type: ignore[method-assign]
        try:
            with pytest.raises(UnsupportedRecordType, match=undeclared):
                self._prepare(backend, zone, conformance_template(
                    [{"type": undeclared, "host": "@", "pointsTo": "ns.conformance.example", "ttl": 600}],
                    service_id="undeclared"))
        finally:
            del backend.read
        assert reads_before[0] == 0, f"{backend.name}: read the zone for a template it cannot apply"
        for rtype in sorted(backend.supported_extensions):
            self._check_declared_extension(backend, zone, rtype)

    def _check_declared_extension(self, backend: Backend, zone: dns.name.Name, rtype: str) -> None:
        template = self._extension_template(backend, rtype)
        # A change behind the back, to the extension record itself, refuses the whole apply.
        prepared = self._prepare(backend, zone, template)
        (change,) = prepared.plan.extension_changes
        assert change.type == rtype and change.before is None and change.after is not None
        other = ExtensionRecord.of(rtype, zone, {**dict(change.after.fields), "ttl": 300})
        write_changes(backend, zone, [], [ExtensionChange(rtype, zone, None, other)])
        with pytest.raises(ZoneChanged):
            execute_apply(prepared)
        self._assert_extension(backend, zone, rtype, other)
        self._assert_state(backend, zone, [(c.name, c.rdtype, c.before) for c in prepared.plan.changes])
        write_changes(backend, zone, [], [ExtensionChange(rtype, zone, other, None)])
        # A failure on the server's side writes neither the extension nor the RRsets.
        prepared = self._prepare(backend, zone, template)
        try:
            self.break_next_apply(backend, zone)
        except pytest.skip.Exception:
            pass  # no way to break it: the rest still runs
        else:
            with pytest.raises(BackendError):
                execute_apply(prepared)
            self._assert_extension(backend, zone, rtype, None)
            self._assert_state(backend, zone, [(c.name, c.rdtype, c.before) for c in prepared.plan.changes])
            prepared = self._prepare(backend, zone, template)
        # Applied: the extension and the RRset changes are there, together; re-applying changes nothing.
        assert execute_apply(prepared) is True
        self._assert_extension(backend, zone, rtype, prepared.plan.extension_changes[0].after)
        self._assert_state(backend, zone, [(c.name, c.rdtype, c.after) for c in prepared.plan.changes])
        again = self._prepare(backend, zone, template)
        assert again.plan.is_empty, f"second plan is not empty: {again.plan.extension_changes} {again.plan.changes}"
        write_changes(backend, zone, [], [ExtensionChange(rtype, zone, prepared.plan.extension_changes[0].after,
                                                          None)])
        self._assert_extension(backend, zone, rtype, None)

    def test_apply_cost_follows_the_template_not_the_zone(self, backend_under_test) -> None:
        backend, zone = self._target(backend_under_test)
        self.round_trips(backend)  # skips early when the backend cannot count
        self.bulk_load(backend, zone, list(_bulk_rrsets(zone, "small", 10)))
        small = self._count_one_apply(backend, zone, "probe-small")
        self.bulk_load(backend, zone, list(_bulk_rrsets(zone, "large", self.large_zone_records)))
        large = self._count_one_apply(backend, zone, "probe-large")
        assert 0 < small <= self.max_round_trips, f"one small apply took {small} round trips"
        assert large <= small, f"round trips grew with the zone: {small} with 10 records, {large} with " \
                               f"{self.large_zone_records}"

    def _count_one_apply(self, backend: Backend, zone: dns.name.Name, host: str) -> int:
        template = conformance_template([{"type": "A", "host": host, "pointsTo": "192.0.2.7", "ttl": 600},
                                         {"type": "TXT", "host": host, "data": "probe", "ttl": 600}],
                                        service_id=host)
        before = self.round_trips(backend)
        prepared = self._prepare(backend, zone, template)
        assert execute_apply(prepared) is True
        return self.round_trips(backend) - before


def _bulk_rrsets(zone: dns.name.Name, prefix: str, count: int) -> Iterator[dns.rrset.RRset]:
    for index in range(count):
        yield rrset_from_text(zone, f"{prefix}-{index:05d}", 300, "A",
                              [f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}"])


def _rrset_at(backend: Backend, zone: dns.name.Name, name: dns.name.Name,
              rdtype: dns.rdatatype.RdataType) -> dns.rrset.RRset | None:
    return next((r for r in backend.read(zone, [name]) if r.name == name and r.rdtype == rdtype), None)


def _txt(rdata: dns.rdata.Rdata) -> str:
    return b"".join(rdata.strings).decode()  # type: ignore[attr-defined]


def _show(rrset: dns.rrset.RRset | None) -> str:
    return "nothing" if rrset is None else f"TTL {rrset.ttl} " + " | ".join(sorted(r.to_text() for r in rrset))
