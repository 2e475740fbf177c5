"""`dcgw serve` as a real process: the sync flow over HTTP, and in headless Chromium."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.gateway_app import METRICS_AUTH, PASSWORD, build_gateway, consent_form, csrf_of, dcgw_serve
from tests.browser import headless_chromium
from tests.servers.common import free_port

APPLY = "/v2/domainTemplates/providers/provider.example/services/hosting/apply"
PARAMS = {"domain": "example.com", "ip": "192.0.2.80", "token": "abc123"}


@pytest.fixture
def served(tmp_path):
    port = free_port()
    gateway = build_gateway(tmp_path, base_url=f"http://127.0.0.1:{port}")
    with dcgw_serve(gateway, port) as (url, log):
        yield gateway, url, log


def test_health_and_metrics(served):
    _, url, _ = served
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    httpx.get(f"{url}/v2/example.com/settings")
    metrics = httpx.get(f"{url}/metrics", headers=METRICS_AUTH).text
    assert 'route="/v2/{domain}/settings"' in metrics


def test_sync_flow_over_http(served):
    gateway, url, log = served
    with httpx.Client(base_url=url, follow_redirects=False) as client:
        login = client.get(APPLY, params=PARAMS)
        assert login.status_code == 303
        form = client.get(login.headers["location"])
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        next_path = re.search(r'name="next" value="([^"]+)"', form.text).group(1).replace("&amp;", "&")
        signed_in = client.post("/login", data={"username": "alice", "password": PASSWORD, "next": next_path,
                                                "csrf_token": token})
        assert signed_in.status_code == 303
        page = client.get(signed_in.headers["location"])
        assert "192.0.2.80" in page.text
        token = csrf_of(page.text)
        done = client.post("/v2/sync/consent", data=consent_form(page.text))
        assert done.status_code == 200
    assert "192.0.2.80" in gateway.zone_text()
    text = log.read_text()
    assert PASSWORD not in text and token not in text


def test_browser_signs_in_reads_the_records_and_confirms(served):
    gateway, url, _ = served
    with headless_chromium() as browser:
        page = browser.new_page()
        page.goto(f"{url}{APPLY}?" + "&".join(f"{k}={v}" for k, v in PARAMS.items()))
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        table = page.get_by_role("table", name="Records to add")
        rows = table.locator("tbody tr").all_inner_texts()
        assert any("www" in row and "192.0.2.80" in row for row in rows)
        assert any("verify=abc123" in row for row in rows)
        assert "192.0.2.2" in page.get_by_role("table", name="Records to remove or replace").inner_text()
        page.get_by_role("button", name="Confirm").click()
        page.get_by_role("heading", name="Done").wait_for()
    assert "192.0.2.80" in gateway.zone_text()
