"""Template state semantics through the zonefile backend: replace on re-apply, multiInstance, revert."""

from __future__ import annotations

import dns.name
import dns.rdatatype
import pytest

from backends.base import RRsetChange
from backends.records import make_rrset
from backends.zonefile import ZoneFileBackend
from gateway.apply.instances import apply_instance, revert_instance
from gateway.engine.render import ApplyContext
from gateway.state import StateStore
from tests.engine_helpers import make_template
from tests.state_helpers import SMALL_ZONE, database_url  # noqa: F401  (fixture)

ZONE = dns.name.from_text("example.com")
ZONE_TEXT = SMALL_ZONE
TXT = [{"type": "TXT", "host": "@", "data": "v=%value%", "ttl": 3600, "txtConflictMatchingMode": "None"}]


@pytest.fixture
def backend(tmp_path):
    (tmp_path / "example.com.zone").write_text(ZONE_TEXT)
    return ZoneFileBackend("files", {"directory": str(tmp_path)})


@pytest.fixture
def store(tmp_path):
    opened = StateStore.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    yield opened
    opened.close()


def txt_at(backend, host: str = "") -> set[str]:
    name = dns.name.from_text(host, ZONE) if host else ZONE
    return {rd.to_text() for rrset in backend.read(ZONE, {name}, ()) if rrset.rdtype == dns.rdatatype.TXT
            for rd in rrset}


def apply(store, backend, value: str, instance_id=None, **fields):
    return apply_instance(store, backend, make_template(TXT, **fields),
                          ApplyContext("example.com", "", {"value": value}), instance_id=instance_id, actor="alice")


def test_reapply_replaces_the_previous_instance(store, backend):
    apply(store, backend, "one")
    apply(store, backend, "two")
    assert txt_at(backend) == {'"v=two"'}
    [instance] = store.instances("example.com", "")
    assert instance.params == {"value": "two"}
    assert instance.records == [{"name": "example.com.", "type": "TXT", "ttl": 3600, "data": '"v=two"',
                                 "essential": True}]


def test_multi_instance_keeps_every_instance(store, backend):
    apply(store, backend, "one", instance_id="a", multiInstance=True)
    apply(store, backend, "two", instance_id="b", multiInstance=True)
    assert txt_at(backend) == {'"v=one"', '"v=two"'}
    assert [i.instance_id for i in store.instances("example.com")] == ["a", "b"]
    # The same instanceId is replaced.
    apply(store, backend, "three", instance_id="a", multiInstance=True)
    assert txt_at(backend) == {'"v=two"', '"v=three"'}


def test_revert_removes_what_the_instance_wrote_and_leaves_other_records(store, backend):
    manual = make_rrset(ZONE, 3600, [dns.rdata.from_text("IN", "TXT", '"mine"')])
    backend.apply(ZONE, [RRsetChange(ZONE, dns.rdatatype.TXT, None, manual)])
    result = apply(store, backend, "one")
    changes, changed = revert_instance(store, backend, ZONE, result.instance, "alice")
    assert len(changes) == 1 and changed == []
    assert txt_at(backend) == {'"mine"'}
    assert store.instances("example.com") == []


def test_revert_reports_records_changed_since_and_does_not_clobber(store, backend):
    result = apply(store, backend, "one")
    [current] = [r for r in backend.read(ZONE, {ZONE}, ()) if r.rdtype == dns.rdatatype.TXT]
    edited = make_rrset(ZONE, 600, list(current))
    backend.apply(ZONE, [RRsetChange(ZONE, dns.rdatatype.TXT, current, edited)])
    changes, changed = revert_instance(store, backend, ZONE, result.instance, "alice")
    assert changes == [] and [r.rdata.to_text() for r in changed] == ['"v=one"']
    assert txt_at(backend) == {'"v=one"'}
    assert store.audit_entries()[-1].detail["changed_since"][0]["data"] == '"v=one"'


def test_record_present_before_any_instance_is_noted_as_preexisting(store, backend):
    manual = make_rrset(ZONE, 3600, [dns.rdata.from_text("IN", "TXT", '"v=one"')])
    backend.apply(ZONE, [RRsetChange(ZONE, dns.rdatatype.TXT, None, manual)])
    result = apply(store, backend, "one")
    assert result.changes == [] and result.plan.conflicts == []
    [row] = store.instance(result.instance).records
    assert row["data"] == '"v=one"' and row["preexisting"] is True
    # A re-apply with another value does not take the record that was there before.
    apply(store, backend, "two")
    assert txt_at(backend) == {'"v=one"', '"v=two"'}
    [instance] = store.instances("example.com")
    revert_instance(store, backend, ZONE, instance.id, "alice")
    assert txt_at(backend) == {'"v=one"'}


def test_conflicts_write_nothing_without_force(store, backend):
    template = make_template([{"type": "CNAME", "host": "www", "pointsTo": "a.example.net", "ttl": 3600}])
    context = ApplyContext("example.com", "", {})
    www = dns.name.from_text("www", ZONE)
    backend.apply(ZONE, [RRsetChange(www, dns.rdatatype.A, None,
                                     make_rrset(www, 3600, [dns.rdata.from_text("IN", "A", "192.0.2.1")]))])
    result = apply_instance(store, backend, template, context, instance_id=None, actor="alice")
    assert result.plan.conflicts and result.changes == []
    assert {r.rdtype for r in backend.read(ZONE, {www}, ())} == {dns.rdatatype.A}
    assert result.instance is None and store.instances("example.com") == []


def test_conflict_with_essential_records_disables_that_whole_instance(store, backend):
    mail = make_template([{"type": "CNAME", "host": "mail", "pointsTo": "mx.example.net", "ttl": 3600},
                          {"type": "TXT", "host": "@", "data": "mail-verify", "ttl": 3600,
                           "txtConflictMatchingMode": "None"}], serviceId="mail")
    web = make_template([{"type": "A", "host": "mail", "pointsTo": "192.0.2.9", "ttl": 3600}], serviceId="web")
    context = ApplyContext("example.com", "", {})
    apply_instance(store, backend, mail, context, instance_id=None, actor="alice")
    refused = apply_instance(store, backend, web, context, instance_id=None, actor="alice")
    assert refused.instance is None and refused.disabled == ["provider.example/mail"]
    forced = apply_instance(store, backend, web, context, instance_id=None, actor="alice", force=True)
    assert forced.disabled == ["provider.example/mail"]
    # The rest of the disabled template goes too, and its instance is no longer recorded.
    assert txt_at(backend) == set()
    assert [i.service_id for i in store.instances("example.com")] == ["web"]


def test_on_apply_records_may_change_without_dropping_their_template(store, backend):
    mail = make_template([{"type": "CNAME", "host": "mail", "pointsTo": "mx.example.net", "ttl": 3600,
                           "essential": "OnApply"}], serviceId="mail")
    web = make_template([{"type": "A", "host": "mail", "pointsTo": "192.0.2.9", "ttl": 3600}], serviceId="web")
    context = ApplyContext("example.com", "", {})
    apply_instance(store, backend, mail, context, instance_id=None, actor="alice")
    result = apply_instance(store, backend, web, context, instance_id=None, actor="alice", force=True)
    assert result.disabled == []
    assert sorted(i.service_id for i in store.instances("example.com")) == ["mail", "web"]


# --- SPF: revert takes out exactly the terms an instance merged in -------------------------

MAILER = [{"type": "SPFM", "host": "@", "spfRules": "include:spf.mailer.example ip4:192.0.2.25"}]
NEWSLETTER = [{"type": "SPFM", "host": "@", "spfRules": "include:spf.newsletter.example ip4:192.0.2.25"}]


@pytest.fixture
def spf_store(database_url):  # noqa: F811
    opened = StateStore.open(database_url)
    yield opened
    opened.close()


def set_txt(backend, *texts: str) -> None:
    [current] = [r for r in backend.read(ZONE, {ZONE}, ()) if r.rdtype == dns.rdatatype.TXT] or [None]
    wanted = make_rrset(ZONE, 3600, [dns.rdata.from_text("IN", "TXT", f'"{t}"') for t in texts])
    backend.apply(ZONE, [RRsetChange(ZONE, dns.rdatatype.TXT, current, wanted)])


def apply_spf(store, backend, records, service: str, instance_id=None, force=False, **fields):
    template = make_template(records, serviceId=service, **fields)
    return apply_instance(store, backend, template, ApplyContext("example.com", "", {}), instance_id=instance_id,
                          actor="alice", force=force)


def revert_all(store, backend, service: str) -> None:
    for instance in store.instances("example.com"):
        if instance.service_id == service:
            revert_instance(store, backend, ZONE, instance.id, "alice")


def test_spf_revert_removes_only_the_merged_terms_in_order(spf_store, backend):
    set_txt(backend, "v=spf1 mx include:own.example -all", "site-verification=1")
    apply_spf(spf_store, backend, MAILER, "mailer")
    assert txt_at(backend) == {'"v=spf1 mx include:own.example include:spf.mailer.example ip4:192.0.2.25 -all"',
                               '"site-verification=1"'}
    [instance] = spf_store.instances("example.com")
    assert instance.records == [{"name": "example.com.", "spf": ["include:spf.mailer.example", "ip4:192.0.2.25"],
                                 "created": False}]
    revert_all(spf_store, backend, "mailer")
    assert txt_at(backend) == {'"v=spf1 mx include:own.example -all"', '"site-verification=1"'}
    assert spf_store.audit_entries()[-1].detail["changed_since"] == []


def test_spf_term_the_record_already_had_is_not_claimed(spf_store, backend):
    set_txt(backend, "v=spf1 ip4:192.0.2.25 ~all")
    apply_spf(spf_store, backend, MAILER, "mailer")
    assert spf_store.instances("example.com")[0].records[0]["spf"] == ["include:spf.mailer.example"]
    revert_all(spf_store, backend, "mailer")
    assert txt_at(backend) == {'"v=spf1 ip4:192.0.2.25 ~all"'}


def test_spf_term_another_instance_still_needs_is_kept(spf_store, backend):
    set_txt(backend, "v=spf1 mx ~all")
    apply_spf(spf_store, backend, MAILER, "mailer")
    apply_spf(spf_store, backend, NEWSLETTER, "newsletter")
    assert txt_at(backend) == {'"v=spf1 mx include:spf.mailer.example ip4:192.0.2.25 include:spf.newsletter.example '
                               '~all"'}
    revert_all(spf_store, backend, "mailer")
    assert txt_at(backend) == {'"v=spf1 mx ip4:192.0.2.25 include:spf.newsletter.example ~all"'}
    revert_all(spf_store, backend, "newsletter")
    assert txt_at(backend) == {'"v=spf1 mx ~all"'}


def test_spf_record_an_instance_created_goes_with_its_last_instance(spf_store, backend):
    apply_spf(spf_store, backend, MAILER, "mailer")
    apply_spf(spf_store, backend, NEWSLETTER, "newsletter")
    assert [row["created"] for i in spf_store.instances("example.com") for row in i.records] == [True, True]
    revert_all(spf_store, backend, "mailer")
    assert txt_at(backend) == {'"v=spf1 ip4:192.0.2.25 include:spf.newsletter.example ~all"'}
    revert_all(spf_store, backend, "newsletter")
    assert txt_at(backend) == set()


def test_spf_record_that_existed_before_stays_even_when_emptied(spf_store, backend):
    set_txt(backend, "v=spf1 ~all")
    apply_spf(spf_store, backend, MAILER, "mailer")
    revert_all(spf_store, backend, "mailer")
    assert txt_at(backend) == {'"v=spf1 ~all"'}


def test_spf_edited_by_hand_keeps_the_edits_on_revert(spf_store, backend):
    apply_spf(spf_store, backend, MAILER, "mailer")
    set_txt(backend, "v=spf1 a include:spf.mailer.example ip4:192.0.2.25 include:mine.example -all")
    revert_all(spf_store, backend, "mailer")
    assert txt_at(backend) == {'"v=spf1 a include:mine.example -all"'}


def test_spf_removed_by_hand_is_left_alone(spf_store, backend):
    apply_spf(spf_store, backend, MAILER, "mailer")
    set_txt(backend, "unrelated")
    revert_all(spf_store, backend, "mailer")
    assert txt_at(backend) == {'"unrelated"'} and spf_store.instances("example.com") == []


def test_spf_reapply_drops_the_terms_the_new_rules_no_longer_have(spf_store, backend):
    set_txt(backend, "v=spf1 mx ~all")
    apply_spf(spf_store, backend, MAILER, "mailer")
    changed_rules = [{"type": "SPFM", "host": "@", "spfRules": "include:spf.mailer.example a:out.mailer.example"}]
    apply_spf(spf_store, backend, changed_rules, "mailer")
    assert txt_at(backend) == {'"v=spf1 mx include:spf.mailer.example a:out.mailer.example ~all"'}
    [instance] = spf_store.instances("example.com")
    assert instance.records[0]["spf"] == ["include:spf.mailer.example", "a:out.mailer.example"]
    revert_all(spf_store, backend, "mailer")
    assert txt_at(backend) == {'"v=spf1 mx ~all"'}


def test_spf_multi_instance_keeps_shared_terms_until_the_last_instance(spf_store, backend):
    rules = [{"type": "SPFM", "host": "@", "spfRules": "include:%zone%.mailer.example"}]
    template = make_template(rules, serviceId="mailer", multiInstance=True)
    for instance_id, zone in (("a", "eu"), ("b", "us"), ("c", "eu")):
        apply_instance(spf_store, backend, template, ApplyContext("example.com", "", {"zone": zone}),
                       instance_id=instance_id, actor="alice")
    assert txt_at(backend) == {'"v=spf1 include:eu.mailer.example include:us.mailer.example ~all"'}
    first, second, third = spf_store.instances("example.com")
    revert_instance(spf_store, backend, ZONE, first.id, "alice")
    assert txt_at(backend) == {'"v=spf1 include:eu.mailer.example include:us.mailer.example ~all"'}
    revert_instance(spf_store, backend, ZONE, third.id, "alice")
    assert txt_at(backend) == {'"v=spf1 include:us.mailer.example ~all"'}
    revert_instance(spf_store, backend, ZONE, second.id, "alice")
    assert txt_at(backend) == set()


def test_spf_replacing_an_unmergeable_record_counts_as_creating_it(spf_store, backend):
    set_txt(backend, "v=spf1 redirect=_spf.other.example")
    refused = apply_spf(spf_store, backend, MAILER, "mailer")
    assert refused.instance is None and refused.plan.conflicts
    apply_spf(spf_store, backend, MAILER, "mailer", force=True)
    assert spf_store.instances("example.com")[0].records[0]["created"] is True
    revert_all(spf_store, backend, "mailer")
    assert txt_at(backend) == set()


def test_spf_rows_do_not_disturb_essential_conflicts(spf_store, backend):
    mail = make_template([*MAILER, {"type": "CNAME", "host": "mail", "pointsTo": "mx.example.net", "ttl": 3600}],
                         serviceId="mail")
    web = make_template([{"type": "A", "host": "mail", "pointsTo": "192.0.2.9", "ttl": 3600}], serviceId="web")
    context = ApplyContext("example.com", "", {})
    apply_instance(spf_store, backend, mail, context, instance_id=None, actor="alice")
    forced = apply_instance(spf_store, backend, web, context, instance_id=None, actor="alice", force=True)
    assert forced.disabled == ["provider.example/mail"]
    # The disabled template's merged SPF terms go with it; the record it created goes too.
    assert txt_at(backend) == set()


def test_reapply_with_new_values_is_no_conflict_with_its_own_records(store, backend):
    template = make_template([{"type": "A", "host": "@", "pointsTo": "%ip%", "ttl": 600}])
    www = dns.name.from_text("www", ZONE)
    for ip in ("192.0.2.1", "192.0.2.2"):
        result = apply_instance(store, backend, template, ApplyContext("example.com", "www", {"ip": ip}),
                                instance_id=None, actor="alice")
        assert result.plan.conflicts == [] and result.instance is not None
    assert {rd.to_text() for r in backend.read(ZONE, {www}, ()) for rd in r} == {"192.0.2.2"}
    # A record the instance did not write is still a conflict.
    manual = make_rrset(www, 600, [dns.rdata.from_text("IN", "A", "192.0.2.99")])
    [current] = backend.read(ZONE, {www}, ())
    backend.apply(ZONE, [RRsetChange(www, dns.rdatatype.A, current, manual)])
    refused = apply_instance(store, backend, template, ApplyContext("example.com", "www", {"ip": "192.0.2.3"}),
                             instance_id=None, actor="alice")
    assert [c.record.rdata.to_text() for c in refused.plan.conflicts] == ["192.0.2.99"] and refused.instance is None
