"""The customer's "Connected services" page: every template instance on the user's zones,
and disconnecting one after a confirmation showing exactly what will be removed."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import dns.name
import pytest

from gateway.apply.instances import apply_instance
from gateway.engine.render import ApplyContext
from tests.gateway_app import build_gateway, csrf_of, hidden, sign_in, table_rows

ZONE = dns.name.from_text("example.com")


def connect(gateway, domain: str = "example.com", actor: str = "user:alice") -> int:
    runtime = gateway.app.state.runtime
    backend, _ = runtime.router.backend_for(dns.name.from_text(domain))
    template = runtime.templates[("provider.example", "hosting")]
    context = ApplyContext(domain=domain, params={"ip": "192.0.2.80", "token": "abc"})
    result = apply_instance(runtime.store, backend, template, context, instance_id=None, actor=actor, force=True)
    return result.instance


@pytest.fixture
def gateway(tmp_path):
    return build_gateway(tmp_path)


def test_the_list_shows_service_host_flow_time_and_records(gateway):
    connect(gateway, actor="client:provider.example")
    with gateway.client() as client:
        assert client.get("/connections").headers["location"].startswith("/login")
        sign_in(client)
        page = client.get("/connections").text
    assert "<h2>Website <span class=\"muted\">by Example Hosting</span></h2>" in page
    assert "connected through the service&#39;s API" in page or "connected through the service's API" in page
    assert re.search(r"<time>\d{4}-\d\d-\d\d \d\d:\d\d UTC</time>", page)
    assert "192.0.2.80" in page and "verify=abc" in page
    assert 'href="/authorizations"' in page or "/authorizations" in page


def test_the_authorizations_page_links_to_it(gateway):
    with gateway.client() as client:
        sign_in(client)
        assert 'href="/connections"' in client.get("/authorizations").text


def test_disconnect_confirms_then_removes_exactly_what_it_showed(gateway):
    instance = connect(gateway)
    assert "192.0.2.80" in gateway.zone_text()
    with gateway.client() as client:
        sign_in(client)
        confirm = client.get(f"/connections/{instance}/disconnect")
        assert confirm.status_code == 200
        removed = table_rows(confirm.text, "Records to remove")
        assert ["www", "A", "600", "192.0.2.80"] in removed and ["@ (the domain itself)", "TXT", "600",
                                                                  '"verify=abc"'] in removed
        # The SPF record loses only the service's term: shown as the record put in its place.
        assert [row[3] for row in table_rows(confirm.text, "Records put in their place")] == ['"v=spf1 a ~all"']
        done = client.post(f"/connections/{instance}/disconnect",
                           data={"csrf_token": csrf_of(confirm.text), "digest": hidden(confirm.text, "digest")})
        assert done.status_code == 303
        listing = client.get(done.headers["location"]).text
    assert "Website was disconnected" in listing and "No service is connected" in listing
    zone = gateway.zone_text()
    assert "192.0.2.80" not in zone and "verify=abc" not in zone and "spf.provider.example" not in zone
    audit = gateway.app.state.runtime.store.audit_entries()
    assert [(e.action, e.actor, e.domain) for e in audit][-1] == ("revert", "user:alice", "example.com")


def test_disconnect_without_the_csrf_token_is_refused(gateway):
    instance = connect(gateway)
    with gateway.client() as client:
        sign_in(client)
        confirm = client.get(f"/connections/{instance}/disconnect")
        attack = client.post(f"/connections/{instance}/disconnect", data={"digest": hidden(confirm.text, "digest")})
    assert attack.status_code in (400, 403)
    assert "192.0.2.80" in gateway.zone_text()
    assert gateway.app.state.runtime.store.instance(instance) is not None


def test_another_users_connection_is_answered_like_a_missing_one(gateway):
    instance = connect(gateway, domain="other.com")  # bob's zone
    with gateway.client() as client:
        sign_in(client)  # alice
        page = client.get(f"/connections/{instance}/disconnect")
        csrf = csrf_of(client.get("/").text)
        posted = client.post(f"/connections/{instance}/disconnect", data={"csrf_token": csrf, "digest": "x"})
        missing = client.get("/connections/99999/disconnect")
        listing = client.get("/connections").text
    assert page.status_code == 404 == posted.status_code == missing.status_code
    assert "192.0.2.80" in gateway.zone_text("other.com")
    assert "Website" not in listing


def test_a_zone_that_moved_since_the_confirmation_is_shown_again(gateway):
    instance = connect(gateway)
    with gateway.client() as client:
        sign_in(client)
        confirm = client.get(f"/connections/{instance}/disconnect")
        path = gateway.zones / "example.com.zone"
        path.write_text(path.read_text().replace("192.0.2.80", "192.0.2.81"))  # someone edited the A record
        again = client.post(f"/connections/{instance}/disconnect",
                            data={"csrf_token": csrf_of(confirm.text), "digest": hidden(confirm.text, "digest")})
    assert again.status_code == 200
    assert "changed since the page was shown" in again.text
    assert "verify=abc" in gateway.zone_text()  # nothing removed unseen


def test_a_disconnect_form_past_its_bounds_is_refused_before_parsing(gateway):
    instance = connect(gateway)
    with gateway.client() as client:
        sign_in(client)
        confirm = client.get(f"/connections/{instance}/disconnect")
        # A valid token and digest come first: only the body's shape can be why nothing happens.
        form = {"csrf_token": csrf_of(confirm.text), "digest": hidden(confirm.text, "digest")}
        url = f"/connections/{instance}/disconnect"
        urlencoded = {"content-type": "application/x-www-form-urlencoded"}
        large = client.post(url, content=urlencode(form) + "&pad=" + "x" * (70 * 1024), headers=urlencoded)
        many = client.post(url, content=urlencode(form) + "&a=1&b=2&c=3", headers=urlencoded)
        upload = client.post(url, data=form, files={"file": ("big.bin", b"\0" * 1000)})
    assert (large.status_code, many.status_code, upload.status_code) == (413, 413, 415)
    assert "192.0.2.80" in gateway.zone_text()
    assert gateway.app.state.runtime.store.instance(instance) is not None
