"""The customer's pages in headless Chromium at a phone's width (375 px) and a desktop's
(1280 px): consent values wrap between words only, an SPF merge shows the terms it adds,
`@` is explained, a broken logo gives way to the provider's name, and Connected services
lists and disconnects what was applied."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.browser import headless_chromium
from tests.gateway_app import PASSWORD, build_gateway, dcgw_serve
from tests.servers.common import free_port

LONG_TOKEN = "k" * 180
TEMPLATE = {
    "providerId": "provider.example", "providerName": "Example Hosting", "serviceId": "mailer",
    "serviceName": "Mail and web", "version": 1, "logoUrl": "https://127.0.0.1:{dead}/logo.png",
    "records": [
        {"type": "A", "host": "www", "pointsTo": "%ip%", "ttl": 600},
        {"type": "TXT", "host": "@", "ttl": 600, "txtConflictMatchingMode": "Prefix",
         "txtConflictMatchingPrefix": "site-verification=",
         "data": "site-verification=%token% reference-number-000123456789 issued-by-example-hosting-company "
                 "for-the-customer-account-named-alice-and-nobody-else " + LONG_TOKEN},
        {"type": "SPFM", "host": "@", "spfRules": "include:spf.provider.example"},
    ],
}
WORDS_STAY_WHOLE = """() => {
  // Each word of a value is one token box, and no token box is split over two lines.
  const broken = [];
  for (const box of document.querySelectorAll("code.value")) {
    const tokens = [...box.querySelectorAll(".token")];
    const words = box.textContent.split(/\\s+/).filter(Boolean);
    if (tokens.map(t => t.textContent).filter(Boolean).join(" ") !== words.join(" ")) broken.push(box.textContent);
    for (const token of tokens) {
      if (token.textContent && token.getClientRects().length !== 1) broken.push(token.textContent);
    }
  }
  return broken;
}"""


@pytest.fixture(scope="module")
def browser():
    with headless_chromium() as launched:
        yield launched


@pytest.fixture
def served(tmp_path):
    port = free_port()
    template = {**TEMPLATE, "logoUrl": TEMPLATE["logoUrl"].format(dead=free_port())}
    gateway = build_gateway(tmp_path, [template], base_url=f"http://127.0.0.1:{port}")
    with dcgw_serve(gateway, port) as (url, _log):
        yield gateway, url


def apply_url(base: str) -> str:
    query = urlencode({"domain": "example.com", "ip": "192.0.2.80", "token": "abc123"})
    return f"{base}/v2/domainTemplates/providers/provider.example/services/mailer/apply?{query}"


def sign_in(page) -> None:
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def fits_the_screen(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("width", [375, 1280])
def test_consent_page_reads_on_a_phone_and_a_desktop(browser, served, width):
    gateway, base = served
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.goto(apply_url(base))
        sign_in(page)
        page.get_by_role("button", name="Confirm").wait_for()
        assert fits_the_screen(page)
        # A broken logo gives way to the provider's name.
        page.locator(".logo-fallback").wait_for()
        assert page.locator(".logo-fallback").inner_text() == "Example Hosting"
        assert page.locator(".service img").count() == 0
        # The SPF merge is the term it adds, not a whole record swapped.
        spf = page.get_by_role("table", name="Changes to your SPF record (which servers may send your mail)")
        assert "include:spf.provider.example" in spf.inner_text()
        added = page.get_by_role("table", name="Records to add").inner_text()
        assert "v=spf1" not in added
        assert "(the domain itself)" in added
        # Every value wraps between words; the long token scrolls inside its own box.
        assert page.evaluate(WORDS_STAY_WHOLE) == []
        long_token = page.locator(".token", has_text="k" * 100).first
        assert long_token.evaluate("token => token.closest('code').getBoundingClientRect().right"
                                   " <= window.innerWidth")
        page.get_by_role("button", name="Confirm").click()
        page.get_by_role("heading", name="Done").wait_for()
    finally:
        page.close()
    assert "include:spf.provider.example" in gateway.zone_text()


@pytest.mark.parametrize("width", [375, 1280])
def test_connected_services_lists_and_disconnects(browser, served, width):
    gateway, base = served
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.goto(apply_url(base))
        sign_in(page)
        page.get_by_role("button", name="Confirm").click()
        page.get_by_role("heading", name="Done").wait_for()
        page.goto(f"{base}/authorizations")
        page.get_by_role("link", name="Connected services").click()
        page.get_by_role("heading", name="Connected services").wait_for()
        assert "Mail and web" in page.inner_text("main") and "192.0.2.80" in page.inner_text("main")
        assert fits_the_screen(page)
        assert page.evaluate(WORDS_STAY_WHOLE) == []
        page.get_by_role("link", name="Disconnect Mail and web from example.com").click()
        removed = page.get_by_role("table", name="Records to remove").inner_text()
        assert "192.0.2.80" in removed and "site-verification=abc123" in removed
        assert fits_the_screen(page)
        page.get_by_role("button", name="Disconnect").click()
        page.get_by_text("Mail and web was disconnected").wait_for()
    finally:
        page.close()
    zone = gateway.zone_text()
    assert "192.0.2.80" not in zone and "site-verification" not in zone and "spf.provider.example" not in zone


@pytest.mark.parametrize("width", [375, 1280])
def test_error_pages_speak_plainly(browser, served, width):
    _, base = served
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.goto(f"{base}/v2/domainTemplates/providers/provider.example/services/nope/apply?domain=example.com")
        page.get_by_role("heading", name="This change cannot be made").wait_for()
        assert "does not offer the service this link asks for" in page.inner_text("main")
        assert fits_the_screen(page)
    finally:
        page.close()
