"""Error pages in plain words, "Back to {provider}" when the return address is verified, and
the developer's detail in the log."""

from __future__ import annotations

import logging

from tests.gateway_app import build_gateway, consent_form, sign_in

APPLY = "/v2/domainTemplates/providers/provider.example/services/hosting/apply"
REQUEST = {"domain": "example.com", "ip": "192.0.2.80", "token": "abc", "redirect_uri": "https://provider.example/done",
           "state": "s-1"}


def test_a_stale_consent_form_offers_the_way_back_to_the_provider(tmp_path):
    gateway = build_gateway(tmp_path)
    with gateway.client() as client:
        sign_in(client)
        page = client.get(APPLY, params=REQUEST)
        form = {**consent_form(page.text), "provider": "provider.example", "service": "hosting"}
        first = client.post("/v2/sync/consent", data=form)
        assert first.status_code == 303 and first.headers["location"].startswith("https://provider.example/done")
        again = client.post("/v2/sync/consent", data=form)  # the page was used already
    assert again.status_code == 400
    assert "This page has expired" in again.text and "Nothing was changed" in again.text
    assert ('href="https://provider.example/done?error=access_denied&amp;error_description=expired&amp;state=s-1"'
            in again.text)
    assert "Back to Example Hosting" in again.text


def test_without_a_verified_address_there_is_no_way_back_offered(tmp_path):
    gateway = build_gateway(tmp_path)
    with gateway.client() as client:
        sign_in(client)
        page = client.get(APPLY, params=REQUEST)
        form = {**consent_form(page.text), "provider": "provider.example", "service": "hosting"}
        form["query"] = form["query"].replace("provider.example%2Fdone", "evil.example%2Fdone")
        again = client.post("/v2/sync/consent", data=form)
    assert again.status_code == 400 and "This page has expired" in again.text
    assert "Back to" not in again.text and "evil.example" not in again.text


def test_refusals_speak_plainly_and_log_the_detail(tmp_path, caplog):
    gateway = build_gateway(tmp_path)
    with gateway.client() as client, caplog.at_level(logging.INFO):
        unknown = client.get("/v2/domainTemplates/providers/provider.example/services/nope/apply",
                             params={"domain": "example.com"})
    assert unknown.status_code == 404
    assert "This DNS host does not offer the service this link asks for. Nothing was changed." in unknown.text
    assert any("provider.example/nope" in r.getMessage() for r in caplog.records)
