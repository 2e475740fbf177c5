"""Headless Chromium through `dcgw serve` and a real OpenID Provider (node-oidc-provider), both on
127.0.0.1: the whole synchronous flow, and the OAuth consent, with the customer signing in at
the DNS host's provider and the zones coming from the ID token."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from gateway.state import StateStore
from tests.browser import headless_chromium
from tests.oidc_helpers import CLIENT_ID, CLIENT_SECRET, oidc_gateway
from tests.servers.common import free_port, stop, wait_for_port
from tests.servers.oidc import openid_provider, web_client

SERVICE = "/v2/domainTemplates/providers/provider.example/services/hosting"
PARAMS = {"domain": "example.com", "ip": "192.0.2.80", "token": "abc123"}
REDIRECT = "https://app.provider.example/oauth"
ACCOUNTS = {"alice": {"zones": ["example.com"]}}


@pytest.fixture
def served(tmp_path):
    """The gateway served by `dcgw serve`, signing customers in at a running provider."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with openid_provider(tmp_path, clients=[web_client(CLIENT_ID, CLIENT_SECRET, url)], accounts=ACCOUNTS) as issuer:
        gateway = oidc_gateway(tmp_path, issuer, base_url=url)
        log = tmp_path / "serve.log"
        with log.open("w") as output:
            process = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--config",
                                        str(gateway.config.path), "--port", str(port)],
                                       stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, process, timeout=30, log=log)
            yield gateway, url, issuer
        finally:
            stop(process)


@pytest.fixture
def browser():
    with headless_chromium() as launched:
        yield launched


def loopback_page(browser, returned: list[str]):
    """A page that reaches only 127.0.0.1 (the provider's pages would fetch web fonts); the
    service provider's redirect_uri is answered here and remembered in `returned`."""
    page = browser.new_page()

    def route(request_route):
        url = request_route.request.url
        if url.startswith(REDIRECT):
            returned.append(url)
            request_route.fulfill(status=200, content_type="text/html", body="<h1>Back at the service</h1>")
        elif urlsplit(url).hostname == "127.0.0.1":
            request_route.continue_()
        else:
            request_route.abort()

    page.route("**/*", route)
    return page


def sign_in_at_provider(page, login: str) -> None:
    """node-oidc-provider's development pages: a login form, then a consent page."""
    page.get_by_placeholder("Enter any login").fill(login)
    page.get_by_placeholder("and password").fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()


def test_the_sync_flow_signing_in_at_the_dns_hosts_provider(served, browser):
    gateway, url, issuer = served
    page = loopback_page(browser, [])
    page.goto(f"{url}{SERVICE}/apply?{urlencode(PARAMS)}")
    assert page.url.startswith(issuer)  # sent to the provider to sign in
    sign_in_at_provider(page, "alice")
    # Back on the consent page the customer started from, signed in, with the changes listed.
    page.get_by_role("button", name="Confirm").wait_for()
    assert page.url.startswith(f"{url}{SERVICE}/apply?")
    assert "Signed in as alice" in page.locator("header").inner_text()
    assert "192.0.2.80" in page.get_by_role("table", name="Records to add").inner_text()
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="Done").wait_for()
    assert "192.0.2.80" in gateway.zone_text()
    # A zone the provider does not list for alice is refused.
    page.goto(f"{url}{SERVICE}/apply?{urlencode({**PARAMS, 'domain': 'other.com'})}")
    assert "cannot manage" in page.content()
    assert "192.0.2.80" not in gateway.zone_text("other.com")


def test_oauth_consent_signing_in_at_the_dns_hosts_provider(served, browser):
    gateway, url, issuer = served
    store = StateStore.open(gateway.config.database.url)
    try:
        secret = store.add_client("provider.example", [REDIRECT])
    finally:
        store.close()
    returned: list[str] = []
    page = loopback_page(browser, returned)
    consent = {"client_id": "provider.example", "redirect_uri": REDIRECT, "response_type": "code",
               "domain": "example.com", "host": "", "state": "st-1", "ip": "192.0.2.80", "token": "abc"}
    page.goto(f"{url}{SERVICE}?{urlencode(consent)}")
    assert page.url.startswith(issuer)
    sign_in_at_provider(page, "alice")
    page.get_by_role("button", name="Allow").click()
    page.get_by_role("heading", name="Back at the service").wait_for()
    answer = parse_qs(urlsplit(returned[-1]).query)
    assert answer["state"] == ["st-1"]
    with httpx.Client(base_url=url) as service:
        tokens = service.post("/v2/oauth/access_token", data={
            "grant_type": "authorization_code", "code": answer["code"][0], "redirect_uri": REDIRECT,
            "client_id": "provider.example", "client_secret": secret}).json()
        applied = service.post(f"{SERVICE}/apply", params={"domain": "example.com", "host": "", "ip": "192.0.2.80",
                                                           "token": "abc", "force": "1"},
                               headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert applied.status_code == 200, applied.text
    assert "192.0.2.80" in gateway.zone_text()
    # Signing out ends the gateway's session and, at the provider, its own.
    page.goto(url + "/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{issuer}/**")
    page.goto(url + "/")
    assert "Signed in as" not in page.content()
