"""`[auth.zones] source = "url"`: zone ownership from the DNS host's control panel (a loopback HTTP
server the test controls), cached for `cache_seconds`; every failure leaves nobody in control."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import unquote

import pytest
from starlette.testclient import TestClient

from gateway.web.auth import zones
from gateway.web.auth.base import User
from tests.gateway_app import build_gateway, consent_form, sign_in
from tests.loopback_http import JsonHandler, serving
from tests.oidc_helpers import collected
from tests.test_app_oauth import REDIRECT, bearer_for

APPLY = "/v2/domainTemplates/providers/provider.example/services/hosting/apply"
SERVICES = "/v2/domainTemplates/providers/provider.example/services/hosting"
PARAMS = {"domain": "example.com", "ip": "192.0.2.80", "token": "abc123"}
API_PARAMS = {"domain": "example.com", "host": "", "ip": "192.0.2.80", "token": "abc", "force": "1"}
PANEL_TOKEN = "panel-token-123"


@dataclass
class Panel:
    """The control panel: `answers[user]` is the JSON it returns (or raw bytes), `delay` slows it down."""

    url: str
    answers: dict[str, object] = field(default_factory=dict)
    status: int = 200
    delay: float = 0.0
    requests: list[tuple[str, str]] = field(default_factory=list)  # (user, Authorization header)


class PanelHandler(JsonHandler):
    def do_GET(self) -> None:
        panel: Panel = self.server.state  # type: ignore[attr-defined]
        prefix = "/api/users/"
        user = unquote(self.path[len(prefix):-len("/zones")]) if self.path.startswith(prefix) else ""
        panel.requests.append((user, self.headers.get("authorization", "")))
        time.sleep(panel.delay)
        self.answer(panel.status, panel.answers.get(user, []))


@pytest.fixture
def panel():
    running = Panel("", answers={"alice": ["example.com"], "bob": ["other.com"]})
    with serving(PanelHandler, running) as port:
        running.url = f"http://127.0.0.1:{port}/api/users/{{user}}/zones"
        yield running


def url_gateway(tmp_path, panel: Panel, monkeypatch, *, cache_seconds: float = 60, timeout: float = 2,
                driver: str = "", users=None):
    monkeypatch.setenv("TEST_PANEL_TOKEN", PANEL_TOKEN)
    # [[auth.users]] give local users their passwords; their zones there are ignored (the panel says).
    users = users if users is not None else {"alice": ["other.com"], "bob": []}
    return build_gateway(tmp_path, users=users, sections=f"""
[auth]
{driver}
[auth.zones]
source = "url"
url = "{panel.url}"
token = "env:TEST_PANEL_TOKEN"
cache_seconds = {cache_seconds}
timeout = {timeout}
""")


def bearer(gateway, client) -> tuple[dict[str, str], int]:
    """alice's grant on example.com, as consent would have made it: its access token and id."""
    headers = bearer_for(gateway, client)
    return headers, gateway.app.state.runtime.store.grants_of("alice")[0].id


def test_the_panel_decides_which_zones_a_user_controls(tmp_path, panel, monkeypatch):
    gateway = url_gateway(tmp_path, panel, monkeypatch)
    with gateway.client() as client:
        sign_in(client, "alice")
        page = client.get(APPLY, params=PARAMS)
        assert page.status_code == 200 and "192.0.2.80" in page.text
        # The config lists other.com for alice; the panel does not, and the panel is what counts.
        assert client.get(APPLY, params={**PARAMS, "domain": "other.com"}).status_code == 403
        assert client.post("/v2/sync/consent", data=consent_form(page.text)).status_code == 200
    assert "192.0.2.80" in gateway.zone_text()
    assert {request for request in panel.requests} == {("alice", f"Bearer {PANEL_TOKEN}")}
    assert len(panel.requests) == 1  # cached: one question for every check in the minute


def test_a_zone_taken_away_mid_grant_is_refused_at_the_next_apply_and_the_grant_revoked(tmp_path, panel, monkeypatch):
    gateway = url_gateway(tmp_path, panel, monkeypatch, cache_seconds=1)
    store = gateway.app.state.runtime.store
    with gateway.client() as client:
        headers, _ = bearer(gateway, client)
        assert client.post(f"{SERVICES}/apply", params=API_PARAMS, headers=headers).status_code == 200
        panel.answers["alice"] = []  # the DNS host moves example.com to another account
        # Within cache_seconds the answer already given may stand; after it, it may not.
        time.sleep(1.2)
        refused = client.post(f"{SERVICES}/apply", params=API_PARAMS, headers=headers)
        assert refused.status_code == 403 and refused.json()["code"] == "access_denied"
        assert store.grants_of("alice") == []
        panel.answers["alice"] = ["example.com"]  # given back: the revoked grant stays revoked
        time.sleep(1.2)
        again = client.post(f"{SERVICES}/apply", params=API_PARAMS, headers=headers)
    assert again.status_code == 401


def test_the_authorizations_page_shows_a_grant_whose_zone_was_taken_away(tmp_path, panel, monkeypatch):
    gateway = url_gateway(tmp_path, panel, monkeypatch, cache_seconds=0)
    with gateway.client() as client:
        bearer(gateway, client)
        sign_in(client, "alice")
        assert "no longer controls" not in client.get("/authorizations").text
        panel.answers["alice"] = ["other.com"]
        assert "no longer controls this domain" in client.get("/authorizations").text
        panel.status = 503
        assert "could not be checked" in client.get("/authorizations").text


FAILURES = [
    pytest.param({"status": 500}, "HTTP 500", id="server-error"),
    pytest.param({"status": 404}, "HTTP 404", id="not-found"),
    pytest.param({"delay": 1.5}, "ReadTimeout", id="timeout"),
    pytest.param({"answer": {"zones": ["example.com"]}}, "not a list", id="an-object"),
    pytest.param({"answer": b"example.com"}, "not a list", id="not-json"),
    pytest.param({"answer": ["example.com", 7]}, "item 1", id="not-a-name"),
    pytest.param({"answer": ["*"]}, "item 0", id="every-zone"),
    pytest.param({"answer": ["example.com", "bad name.com"]}, "item 1", id="invalid-name"),
    pytest.param({"answer": b"[" + b'"example.com",' * 100_000 + b'"x.com"]'}, "bytes", id="oversized"),
]


def fail(panel: Panel, failure: dict) -> None:
    panel.status = failure.get("status", 200)
    panel.delay = failure.get("delay", 0.0)
    if "answer" in failure:
        panel.answers["alice"] = failure["answer"]


@pytest.mark.parametrize("failure, reason", FAILURES)
def test_a_failing_panel_lets_nobody_control_anything(tmp_path, panel, monkeypatch, failure, reason):
    gateway = url_gateway(tmp_path, panel, monkeypatch, timeout=0.5)
    with gateway.client() as client, collected("gateway.web.auth.zones") as logs:
        sign_in(client, "alice")
        fail(panel, failure)
        page = client.get(APPLY, params=PARAMS)
        assert page.status_code == 503 and "could not be checked" in page.text
        assert "could not be checked" in client.get("/").text
    assert "192.0.2.80" not in gateway.zone_text()
    assert any(reason in line for line in logs.lines), logs.lines
    assert not any(PANEL_TOKEN in line for line in logs.lines)


def test_a_failing_panel_refuses_the_api_but_keeps_the_grant(tmp_path, panel, monkeypatch):
    gateway = url_gateway(tmp_path, panel, monkeypatch, cache_seconds=0, timeout=0.5)
    with gateway.client() as client:
        headers, grant_id = bearer(gateway, client)
        panel.status = 502
        answer = client.post(f"{SERVICES}/apply", params=API_PARAMS, headers=headers)
        assert answer.status_code == 503 and answer.json()["code"] == "temporarily_unavailable"
        assert [g.id for g in gateway.app.state.runtime.store.grants_of("alice")] == [grant_id]
        panel.status = 200
        assert client.post(f"{SERVICES}/apply", params=API_PARAMS, headers=headers).status_code == 200


def test_a_failing_panel_refuses_oauth_consent(tmp_path, panel, monkeypatch):
    gateway = url_gateway(tmp_path, panel, monkeypatch, cache_seconds=0)
    gateway.app.state.runtime.store.add_client("provider.example", [REDIRECT])
    flow = {"client_id": "provider.example", "redirect_uri": REDIRECT, "response_type": "code",
            "domain": "example.com", "host": "", "state": "st", "ip": "192.0.2.80", "token": "abc"}
    with gateway.client() as client:
        sign_in(client, "alice")
        assert client.get(SERVICES, params=flow).status_code == 200
        panel.status = 500
        answer = client.get(SERVICES, params=flow)
    assert answer.status_code == 303 and "error=temporarily_unavailable" in answer.headers["location"]
    assert gateway.app.state.runtime.store.grants_of("alice") == []


def test_user_names_are_escaped_in_the_url(panel):
    source = zones.UrlZones(panel.url, None, cache_seconds=0, timeout=2)
    panel.answers["../admin/x?y"] = ["example.com"]
    try:
        assert source.zones_of(User("../admin/x?y")) == {"example.com"}
    finally:
        source.close()
    assert panel.requests == [("../admin/x?y", "")]


def test_the_header_driver_needs_only_the_user_from_the_proxy(tmp_path, panel, monkeypatch):
    gateway = url_gateway(tmp_path, panel, monkeypatch, users={},
                          driver='driver = "header"\ntrusted_proxies = ["127.0.0.1"]')
    with TestClient(gateway.app, base_url="https://dc.test", follow_redirects=False,
                    client=("127.0.0.1", 50000)) as proxy:
        page = proxy.get(APPLY, params=PARAMS, headers={"X-Forwarded-User": "alice"})
        assert page.status_code == 200 and "192.0.2.80" in page.text
        # A zones header, even a trusted one, adds nothing when the panel answers.
        other = proxy.get(APPLY, params={**PARAMS, "domain": "other.com"},
                          headers={"X-Forwarded-User": "alice", "X-Forwarded-Zones": "other.com"})
        assert other.status_code == 403
    assert all(user == "alice" for user, _ in panel.requests)


def test_the_header_driver_with_the_claim_source_believes_the_zones_header_alone(tmp_path):
    gateway = build_gateway(tmp_path, users={"alice": ["other.com"]}, sections="""
[auth]
driver = "header"
trusted_proxies = ["127.0.0.1"]
[auth.zones]
source = "claim"
""")
    with TestClient(gateway.app, base_url="https://dc.test", follow_redirects=False,
                    client=("127.0.0.1", 50000)) as proxy:
        headers = {"X-Forwarded-User": "alice", "X-Forwarded-Zones": "example.com"}
        assert proxy.get(APPLY, params=PARAMS, headers=headers).status_code == 200
        # The config's list for alice is not added: the proxy's assertion is the whole answer.
        assert proxy.get(APPLY, params={**PARAMS, "domain": "other.com"}, headers=headers).status_code == 403
