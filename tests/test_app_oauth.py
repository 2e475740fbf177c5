"""The asynchronous flow through the assembled app: consent with the local sign-in, code,
token, and a bearer apply that lands in the zone file."""

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.gateway_app import METRICS_AUTH, build_gateway, csrf_of, sign_in

SERVICES_FORM = "/v2/domainTemplates/providers/provider.example/services/hosting"
REDIRECT = "https://app.provider.example/oauth"
FLOW = {"client_id": "provider.example", "redirect_uri": REDIRECT, "response_type": "code",
        "domain": "example.com", "host": "", "state": "st", "ip": "192.0.2.80", "token": "abc"}


@pytest.fixture
def gateway(tmp_path):
    return build_gateway(tmp_path)


def test_template_query_and_consent_share_a_path(gateway):
    with gateway.client() as client:
        assert client.get(SERVICES_FORM).json() == {"version": 3}
        consent = client.get(SERVICES_FORM, params=FLOW)
    # Not registered yet: an error page, never the template's JSON nor a redirect.
    assert consent.status_code == 400 and "location" not in consent.headers


def test_consent_token_and_bearer_apply(gateway):
    secret = gateway.app.state.runtime.store.add_client("provider.example", [REDIRECT])
    with gateway.client() as client:
        assert client.get(SERVICES_FORM, params=FLOW).headers["location"].startswith("/login?next=")
        sign_in(client)
        page = client.get(SERVICES_FORM, params=FLOW)
        assert page.status_code == 200 and "192.0.2.80" in page.text
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
        action = unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))
        allowed = client.post(action, data={**{k: unescape(v) for k, v in fields.items()}, "decision": "allow",
                                            "csrf_token": csrf_of(page.text)})
        assert allowed.status_code == 303, allowed.text
        returned = parse_qs(urlsplit(allowed.headers["location"]).query)
        assert returned["state"] == ["st"]
        tokens = client.post("/v2/oauth/access_token", data={
            "grant_type": "authorization_code", "code": returned["code"][0], "redirect_uri": REDIRECT,
            "client_id": "provider.example", "client_secret": secret}).json()
        params = {"domain": "example.com", "host": "", "ip": "192.0.2.80", "token": "abc"}
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        # The page said the new A record replaces www's A 192.0.2.2 and the user allowed it.
        assert "192.0.2.2" in page.text
        # Someone adds a record after the consent: that conflict was never shown, so it is a 409.
        zone_file = gateway.zones / "example.com.zone"
        zone_file.write_text(zone_file.read_text() + "www IN AAAA 2001:db8::2\n")
        conflict = client.post(f"{SERVICES_FORM}/apply", params=params, headers=bearer)
        assert conflict.status_code == 409
        assert conflict.json()["records"] == [{"type": "AAAA", "host": "www", "data": "2001:db8::2"}]
        assert "192.0.2.80" not in gateway.zone_text()
        zone_file.write_text(zone_file.read_text().replace("www IN AAAA 2001:db8::2\n", ""))
        # Without it, what remains is what the user allowed: applied without force.
        applied = client.post(f"{SERVICES_FORM}/apply", params=params, headers=bearer)
    assert applied.status_code == 200, applied.text
    assert "192.0.2.80" in gateway.zone_text() and "192.0.2.2" not in gateway.zone_text()


def bearer_for(gateway, client) -> dict[str, str]:
    store = gateway.app.state.runtime.store
    secret = store.add_client("provider.example", [REDIRECT])
    code = store.create_grant("provider.example", "alice", "example.com", [""], ["hosting"], REDIRECT)
    tokens = client.post("/v2/oauth/access_token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": "provider.example", "client_secret": secret}).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


APPLY_PARAMS = {"domain": "example.com", "host": "", "ip": "192.0.2.80", "token": "abc", "force": "1"}


def test_api_apply_replans_when_the_zone_moves_between_read_and_write(gateway, monkeypatch):
    backend = gateway.app.state.runtime.router.backends[0]
    original = backend.apply
    zone_file = gateway.zones / "example.com.zone"

    calls = []

    def apply_after_someone_else(zone, changes):
        calls.append(changes)
        if len(calls) == 1:  # the first write loses the race
            zone_file.write_text(zone_file.read_text().replace("192.0.2.2", "192.0.2.3"))
        return original(zone, changes)

    monkeypatch.setattr(backend, "apply", apply_after_someone_else)
    with gateway.client() as client:
        response = client.post(f"{SERVICES_FORM}/apply", params=APPLY_PARAMS, headers=bearer_for(gateway, client))
        metrics = client.get("/metrics", headers=METRICS_AUTH).text
    assert response.status_code == 200, response.text
    assert len(calls) == 2  # refused with nothing written, then planned again from the new zone
    assert [r.to_text() for c in calls[1] if c.before is not None and c.before.rdtype == 1
            for r in [c.before]] == ["www.example.com. 3600 IN A 192.0.2.3"]
    assert "192.0.2.80" in gateway.zone_text() and "192.0.2.3" not in gateway.zone_text()
    assert 'dcgw_applies_total{backend="files",flow="api",outcome="applied"} 1.0' in metrics


def test_api_apply_backend_failure_is_a_502_and_counted(gateway, monkeypatch):
    from backends.base import BackendError

    backend = gateway.app.state.runtime.router.backends[0]

    def broken(zone, changes):
        raise BackendError("disk full")

    monkeypatch.setattr(backend, "apply", broken)
    before = gateway.zone_text()
    with gateway.client() as client:
        response = client.post(f"{SERVICES_FORM}/apply", params=APPLY_PARAMS, headers=bearer_for(gateway, client))
        metrics = client.get("/metrics", headers=METRICS_AUTH).text
    assert response.status_code == 502 and response.json()["code"] == "backend_error"
    assert "disk full" not in response.text and gateway.zone_text() == before
    assert 'dcgw_applies_total{backend="files",flow="api",outcome="error"} 1.0' in metrics
    assert gateway.app.state.runtime.store.instances("example.com") == []


def test_a_token_ends_when_its_user_no_longer_controls_the_zone(gateway, monkeypatch):
    from gateway.web.auth.base import User

    runtime = gateway.app.state.runtime
    with gateway.client() as client:
        bearer = bearer_for(gateway, client)
        # The operator moves example.com to another account; alice keeps only other.com.
        monkeypatch.setattr(runtime.authenticator, "user_named", lambda name: User(name, ("other.com",)))
        response = client.post(f"{SERVICES_FORM}/apply", params=APPLY_PARAMS, headers=bearer)
        assert response.status_code == 403 and response.json()["code"] == "access_denied"
        assert runtime.store.grants_of("alice") == []  # revoked, so restoring the zone does not revive it
        monkeypatch.undo()
        again = client.post(f"{SERVICES_FORM}/apply", params=APPLY_PARAMS, headers=bearer)
    assert again.status_code == 401
    assert "192.0.2.80" not in gateway.zone_text()


def test_a_token_does_not_follow_a_name_that_became_another_zone(gateway):
    store = gateway.app.state.runtime.store
    secret = store.add_client("provider.example", [REDIRECT])
    # Granted (before this was refused at consent) on a name inside example.com...
    code = store.create_grant("provider.example", "alice", "shop.example.com", [""], ["hosting"], REDIRECT)
    (gateway.zones / "shop.example.com.zone").write_text(gateway.zone_text().replace("example.com", "shop.example.com"))
    with gateway.client() as client:
        tokens = client.post("/v2/oauth/access_token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": "provider.example", "client_secret": secret}).json()
        response = client.post(f"{SERVICES_FORM}/apply", params={**APPLY_PARAMS, "domain": "shop.example.com"},
                               headers={"Authorization": f"Bearer {tokens['access_token']}"})
    # ...it now is a zone alice was never given: refused, nothing written.
    assert response.status_code == 403
    assert "192.0.2.80" not in (gateway.zones / "shop.example.com.zone").read_text()


def test_api_bodies_are_not_read_before_the_token_is_checked(gateway):
    with gateway.client() as client:
        response = client.post(f"{SERVICES_FORM}/apply", content=b"{" * 100, headers={
            "Content-Type": "application/json", "Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_oversized_bodies_are_refused_before_they_are_read(gateway):
    with gateway.client() as client:
        bearer = bearer_for(gateway, client)
        huge = client.post(f"{SERVICES_FORM}/apply", content=b"x" * (65 * 1024),
                           headers={**bearer, "Content-Type": "application/x-www-form-urlencoded"})
        token = client.post("/v2/oauth/access_token", content=b"{" + b" " * (65 * 1024) + b"}",
                            headers={"Content-Type": "application/json"})
    assert huge.status_code == 400 and "body" in huge.json()["message"]
    assert token.status_code == 400 and token.json()["error"] == "invalid_request"
