"""The asynchronous flow through the assembled app: consent with the local sign-in, code,
token, and a bearer apply that lands in the zone file."""

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.gateway_app import build_gateway, csrf_of, sign_in

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
        conflict = client.post(f"{SERVICES_FORM}/apply", params=params, headers=bearer)
        assert conflict.status_code == 409
        assert conflict.json()["records"] == [{"type": "A", "host": "www", "data": "192.0.2.2"}]
        assert "192.0.2.80" not in gateway.zone_text()
        applied = client.post(f"{SERVICES_FORM}/apply", params={**params, "force": "1"}, headers=bearer)
    assert applied.status_code == 200, applied.text
    assert "192.0.2.80" in gateway.zone_text()
