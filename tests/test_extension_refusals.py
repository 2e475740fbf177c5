"""An honest answer, early: on a gateway without `[redirects]` (and a zone-file backend that
does not flatten aliases) templates using REDIR301, REDIR302 or APEXCNAME are refused before
anyone signs in, the template query answers 404 for those no backend can apply, and a groupId
selection that avoids the unsupported records works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.gateway_app import build_gateway, consent_form, sign_in

ROOT = Path(__file__).resolve().parents[1]
BACK = "https://provider.example/back"
FORWARD = {
    "providerId": "provider.example", "providerName": "Example Hosting", "serviceId": "forward",
    "serviceName": "Website", "version": 4, "syncRedirectDomain": "provider.example",
    "records": [
        {"type": "REDIR301", "host": "@", "target": "%target%", "groupId": "redirect"},
        {"type": "CNAME", "host": "www", "pointsTo": "sites.provider.example", "ttl": 600, "groupId": "web"},
    ],
}
ONLY_REDIRECT = {**FORWARD, "serviceId": "moved", "records": [
    {"type": "REDIR302", "host": "@", "target": "https://www.example.net/"}]}
APEX = {**FORWARD, "serviceId": "apex", "records": [
    {"type": "APEXCNAME", "host": "@", "pointsTo": "edge.provider.example", "ttl": 600}]}
TEMPLATES = [FORWARD, ONLY_REDIRECT, APEX]
QUERY = "/v2/domainTemplates/providers/provider.example/services/{service}"


@pytest.fixture
def gateway(tmp_path):
    return build_gateway(tmp_path, TEMPLATES)


def returned(response) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    assert location.startswith(BACK), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_template_query_answers_404_when_no_backend_can_apply_it(gateway):
    with gateway.client() as client:
        forward = client.get(QUERY.format(service="forward"))  # its "web" group applies
        moved = client.get(QUERY.format(service="moved"))
        apex = client.get(QUERY.format(service="apex"))
    assert forward.status_code == 200 and forward.json() == {"version": 4}
    assert moved.status_code == 404 and apex.status_code == 404


def test_template_query_answers_200_once_the_gateway_can(tmp_path):
    gateway = build_gateway(tmp_path, TEMPLATES, sections='[redirects]\naddresses = ["203.0.113.80"]\n')
    with gateway.client() as client:
        assert client.get(QUERY.format(service="moved")).status_code == 200
        assert client.get(QUERY.format(service="apex")).status_code == 404  # no backend flattens aliases


def test_sync_apply_refuses_before_sign_in_naming_the_record_type(gateway):
    before = gateway.zone_text()
    with gateway.client() as client:  # nobody signed in
        response = client.get(QUERY.format(service="forward") + "/apply",
                              params={"domain": "example.com", "target": "https://www.example.net/",
                                      "redirect_uri": BACK, "state": "s1"})
    answer = returned(response)
    assert answer["error"] == "invalid_request" and answer["state"] == "s1"
    assert "REDIR301" in answer["error_description"]
    assert "groupId web can be applied" in answer["error_description"]
    assert gateway.zone_text() == before


def test_sync_apply_of_an_apex_alias_names_the_option_that_would_allow_it(gateway):
    with gateway.client() as client:
        response = client.get(QUERY.format(service="apex") + "/apply",
                              params={"domain": "example.com", "redirect_uri": BACK})
    description = returned(response)["error_description"]
    assert "APEXCNAME" in description and "apex_alias" in description


def test_a_group_selection_without_the_redirect_works(gateway):
    apply_url = QUERY.format(service="forward") + "/apply"
    params = {"domain": "example.com", "redirect_uri": BACK, "groupId": "web"}
    with gateway.client() as client:
        assert client.get(apply_url, params=params).headers["location"].startswith("/login")
        sign_in(client)
        page = client.get(apply_url, params=params)
        assert page.status_code == 200, page.text
        done = client.post("/v2/sync/consent", data=consent_form(page.text))
    assert done.status_code in (302, 303) and "error" not in done.headers["location"]
    assert "www 600 IN CNAME sites.provider.example." in gateway.zone_text()


def test_oauth_consent_refuses_before_sign_in_once_redirect_uri_is_verified(gateway):
    store = gateway.app.state.runtime.store
    store.add_client("provider.example", [BACK])
    consent = {"client_id": "provider.example", "redirect_uri": BACK, "response_type": "code",
               "scope": "forward", "domain": "example.com", "state": "s2"}
    with gateway.client() as client:
        refused = client.get("/v2/domainTemplates/providers/provider.example", params=consent)
        grouped = client.get("/v2/domainTemplates/providers/provider.example", params={**consent, "groupId": "web"})
        unverified = client.get("/v2/domainTemplates/providers/provider.example",
                                params={**consent, "redirect_uri": "https://elsewhere.example/"})
    answer = returned(refused)
    assert answer["error"] == "invalid_request" and answer["state"] == "s2" and "REDIR301" in answer["error_description"]
    assert grouped.headers["location"].startswith("/login")  # nothing unsupported left: sign in
    assert unverified.status_code == 400 and "location" not in unverified.headers
    with gateway.client() as client:
        sign_in(client)
        page = client.get("/v2/domainTemplates/providers/provider.example", params={**consent, "groupId": "web"})
    assert page.status_code == 200, page.text
    assert "sites.provider.example" in page.text and "REDIR301" not in page.text


def test_templates_lint_reports_what_each_backend_cannot_apply(gateway):
    result = subprocess.run([sys.executable, "-m", "gateway.cli", "templates", "lint", "--config",
                             str(gateway.config.path)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    forward = [line for line in lines if "provider.example.forward.json" in line]
    assert len(forward) == 1 and "backend 'files' cannot apply it" in forward[0] and "REDIR301" in forward[0]
    assert any("provider.example.moved.json: no configured backend can apply it" in line for line in lines)
    assert any("provider.example.apex.json" in line and "APEXCNAME" in line and "apex_alias" in line
               for line in lines)
    assert lines[-1].startswith("3 templates: 3 valid")
