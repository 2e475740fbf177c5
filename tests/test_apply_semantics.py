"""The spec's instance semantics through the zone-file backend: staged groups, multiInstance,
records already present, one live instance per key, and the command line on the same path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import dns.name
import dns.rdatatype
import pytest

from backends.base import RRsetChange
from backends.records import make_rrset
from backends.zonefile import ZoneFileBackend
from gateway.apply.instances import apply_instance, instance_differences, revert_instance
from gateway.engine.render import ApplyContext
from gateway.state import InstanceTaken, StateStore
from tests.engine_helpers import make_template
from tests.state_helpers import SMALL_ZONE, database_url  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
ZONE = dns.name.from_text("example.com")
ZONE_TEXT = SMALL_ZONE
# The spec's motivating case for groups: verify the domain first, set up mail later.
MAIL = [{"type": "TXT", "host": "@", "data": "mail-verify=%code%", "ttl": 3600, "groupId": "verify"},
        {"type": "MX", "host": "@", "pointsTo": "mx1.mail.example", "priority": 10, "ttl": 3600, "groupId": "mx"},
        {"type": "MX", "host": "@", "pointsTo": "mx2.mail.example", "priority": 20, "ttl": 3600, "groupId": "mx"}]
LINK = [{"type": "TXT", "host": "@", "data": "link=%id%", "ttl": 3600, "txtConflictMatchingMode": "None"}]


@pytest.fixture
def zone_dir(tmp_path):
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "example.com.zone").write_text(ZONE_TEXT)
    return tmp_path / "zones"


@pytest.fixture
def backend(zone_dir):
    return ZoneFileBackend("files", {"directory": str(zone_dir)})


@pytest.fixture
def store(database_url):  # noqa: F811
    opened = StateStore.open(database_url)
    yield opened
    opened.close()


def served(backend, rdtype: str, host: str = "") -> set[str]:
    name = dns.name.from_text(host, ZONE) if host else ZONE
    return {rd.to_text() for rrset in backend.read(ZONE, {name}, ())
            if rrset.rdtype == dns.rdatatype.from_text(rdtype) for rd in rrset}


def apply(store, backend, records, params, groups=None, instance_id=None, **fields):
    context = ApplyContext("example.com", "", params, frozenset(groups) if groups else None)
    return apply_instance(store, backend, make_template(records, **fields), context, instance_id=instance_id,
                          actor="client:provider.example")


def test_staged_groups_add_up_and_revert_removes_every_group(store, backend):
    apply(store, backend, MAIL, {"code": "abc"}, groups=["verify"])
    result = apply(store, backend, MAIL, {"code": "abc"}, groups=["mx"])
    assert result.plan.conflicts == []
    assert served(backend, "TXT") == {'"mail-verify=abc"'}, "the mx stage removed the verify record"
    assert served(backend, "MX") == {"10 mx1.mail.example.", "20 mx2.mail.example."}
    [instance] = store.instances("example.com")
    assert instance.group_ids == ["mx", "verify"]
    assert {row["group"] for row in instance.records} == {"verify", "mx"}
    # Re-applying one group replaces only that group's records.
    apply(store, backend, MAIL, {"code": "xyz"}, groups=["verify"])
    assert served(backend, "TXT") == {'"mail-verify=xyz"'}
    assert served(backend, "MX") == {"10 mx1.mail.example.", "20 mx2.mail.example."}
    [instance] = store.instances("example.com")
    revert_instance(store, backend, ZONE, instance.id, "alice")
    assert served(backend, "TXT") == set() and served(backend, "MX") == set()
    assert store.instances("example.com") == []


def test_multi_instance_without_instance_id_adds_an_instance_each_time(store, backend):
    first = apply(store, backend, LINK, {"id": "one"}, multiInstance=True)
    second = apply(store, backend, LINK, {"id": "two"}, multiInstance=True)
    assert first.instance_id and second.instance_id and first.instance_id != second.instance_id
    assert served(backend, "TXT") == {'"link=one"', '"link=two"'}
    assert len(store.instances("example.com")) == 2
    # With an instanceId, that instance only is replaced.
    apply(store, backend, LINK, {"id": "three"}, instance_id=first.instance_id, multiInstance=True)
    assert served(backend, "TXT") == {'"link=two"', '"link=three"'}
    assert sorted(i.params["id"] for i in store.instances("example.com")) == ["three", "two"]


def test_a_record_already_present_is_neither_a_conflict_nor_an_addition(store, backend):
    existing = make_rrset(ZONE, 3600, [dns.rdata.from_text("IN", "MX", "10 mx1.mail.example.")])
    backend.apply(ZONE, [RRsetChange(ZONE, dns.rdatatype.MX, None, existing)])
    result = apply(store, backend, MAIL, {"code": "abc"})
    assert result.plan.conflicts == []
    added = {(r.rdtype, r.rdata.to_text()) for r in result.plan.add}
    assert (dns.rdatatype.MX, "10 mx1.mail.example.") not in added
    [instance] = store.instances("example.com")
    flags = {row["data"]: row.get("preexisting", False) for row in instance.records}
    assert flags == {'"mail-verify=abc"': False, "10 mx1.mail.example.": True, "20 mx2.mail.example.": False}
    assert instance_differences(instance, backend, ZONE) == []
    revert_instance(store, backend, ZONE, instance.id, "alice")
    assert served(backend, "MX") == {"10 mx1.mail.example."}, "revert removed a record that was there before"


def test_the_database_refuses_a_second_live_instance(store):
    fields = dict(provider_id="p", service_id="s", domain="example.com", host="", instance_id=None, group_ids=[],
                  params={}, records=[], applied_by="alice")
    store.record_instance(**fields)
    with pytest.raises(InstanceTaken):
        store.record_instance(**fields)
    # multiInstance rows are keyed by their instanceId.
    store.record_instance(**{**fields, "instance_id": "a"}, multi_instance=True)
    store.record_instance(**{**fields, "instance_id": "b"}, multi_instance=True)
    with pytest.raises(InstanceTaken):
        store.record_instance(**{**fields, "instance_id": "a"}, multi_instance=True)
    assert len(store.instances("example.com")) == 3


def dcgw(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *argv], cwd=ROOT, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60)


def test_command_line_records_lists_verifies_and_reverts(tmp_path, zone_dir, backend):
    config = tmp_path / "dcgw.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "state.sqlite"}"\n\n'
                      f'[[backends]]\nname = "files"\ndriver = "zonefile"\ndirectory = "{zone_dir}"\n')
    template = tmp_path / "mail.json"
    template.write_text(json.dumps({"providerId": "provider.example", "providerName": "Provider",
                                    "serviceId": "service", "serviceName": "Service", "records": MAIL}))
    applied = dcgw("apply", "--config", str(config), "--domain", "example.com", "--template", str(template),
                   "--param", "code=abc", "--yes")
    assert applied.returncode == 0, applied.stderr
    listed = json.loads(dcgw("instances", "list", "--config", str(config), "--json").stdout)
    assert [(i["provider"], i["service"], i["host"]) for i in listed] == [("provider.example", "service", "")]
    assert listed[0]["applied_by"].startswith("cli:")

    # A later API apply of the same template replaces what the command line wrote: no 409.
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    try:
        result = apply(store, backend, MAIL, {"code": "def"})
        assert result.plan.conflicts == [] and result.instance is not None
    finally:
        store.close()
    assert served(backend, "TXT") == {'"mail-verify=def"'}
    assert dcgw("instances", "verify", "--config", str(config)).returncode == 0

    # Someone edits DNS by hand: verify names the difference and exits 1.
    backend.apply(ZONE, [RRsetChange(ZONE, dns.rdatatype.MX, _rrset(backend, "MX"), None)])
    verified = dcgw("instances", "verify", "--config", str(config), "--json")
    assert verified.returncode == 1
    problems = json.loads(verified.stdout)["differences"]
    assert {p["record"]["data"] for p in problems} == {"10 mx1.mail.example.", "20 mx2.mail.example."}

    refused = dcgw("revert", "--config", str(config), "--domain", "example.com", "--provider", "provider.example",
                   "--service", "service")
    assert refused.returncode == 1 and "pass --yes" in refused.stderr
    reverted = dcgw("revert", "--config", str(config), "--domain", "example.com", "--provider", "provider.example",
                    "--service", "service", "--yes", "--json")
    assert reverted.returncode == 0, reverted.stderr
    assert len(json.loads(reverted.stdout)["reverted"]) == 1
    assert served(backend, "TXT") == set()
    assert json.loads(dcgw("instances", "list", "--config", str(config), "--json").stdout) == []
    missing = dcgw("revert", "--config", str(config), "--domain", "example.com", "--provider", "provider.example",
                   "--service", "service", "--yes")
    assert missing.returncode == 2 and "no instance of provider.example/service" in missing.stderr


def _rrset(backend, rdtype: str):
    return next(r for r in backend.read(ZONE, {ZONE}, ()) if r.rdtype == dns.rdatatype.from_text(rdtype))


def test_max_deletes_counts_the_records_of_a_replaced_instance(store, backend):
    from gateway.engine.plan import PlanError
    from gateway.engine.safety import SafetyPolicy

    records = [{"type": "TXT", "host": f"t{i}", "data": "v=%v%", "ttl": 3600} for i in range(3)]
    template = make_template(records)

    def context(value: str) -> ApplyContext:
        return ApplyContext("example.com", "", {"v": value}, safety=SafetyPolicy(max_deletes=2))

    apply_instance(store, backend, template, context("one"), instance_id=None, actor="alice")
    with pytest.raises(PlanError, match="delete 3 records"):
        apply_instance(store, backend, template, context("two"), instance_id=None, actor="alice", force=True)
    assert served(backend, "TXT", "t0") == {'"v=one"'}
