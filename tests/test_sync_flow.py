"""The synchronous flow through the app: validation, sign-in, consent, apply, and each refusal."""

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.gateway_app import HOSTING, METRICS_AUTH, build_gateway, consent_form, csrf_of, sign_in

APPLY = "/v2/domainTemplates/providers/provider.example/services/hosting/apply"
GOOD = {"domain": "example.com", "ip": "192.0.2.80", "token": "abc123"}


@pytest.fixture
def gateway(tmp_path):
    return build_gateway(tmp_path)


@pytest.fixture
def alice(gateway):
    with gateway.client() as client:
        assert sign_in(client).status_code == 303
        yield client


def query(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


def consent(client, **params):
    page = client.get(APPLY, params={**GOOD, **params})
    assert page.status_code == 200, page.text
    return page


def shown(page) -> str:
    """What the consent page shows, without its form (which carries the request back)."""
    return page.text.split("<form")[0]


def confirm(client, page, decision="confirm"):
    return client.post("/v2/sync/consent", data=consent_form(page.text, decision))


# --- before sign-in -------------------------------------------------------------------------

def test_not_signed_in_goes_to_the_login_page_and_back(gateway):
    with gateway.client() as client:
        response = client.get(APPLY, params=GOOD)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
        next_path = query(response.headers["location"])["next"][0]
        assert next_path.startswith(APPLY) and "ip=192.0.2.80" in next_path
        back = sign_in(client, next_path=next_path)
        assert back.headers["location"] == next_path
        assert "192.0.2.80" in client.get(next_path).text


def test_unknown_template_is_an_error_page(gateway):
    with gateway.client() as client:
        response = client.get("/v2/domainTemplates/providers/provider.example/services/nope/apply", params=GOOD)
    assert response.status_code == 404 and "provider.example/nope" in response.text


def test_sync_block_is_refused_before_sign_in(tmp_path):
    gateway = build_gateway(tmp_path, [{**HOSTING, "syncBlock": True}])
    with gateway.client() as client:
        response = client.get(APPLY, params=GOOD)
    assert response.status_code == 403 and "syncBlock" in response.text


def test_missing_variable_names_it_on_the_error_page(gateway):
    with gateway.client() as client:
        response = client.get(APPLY, params={"domain": "example.com", "token": "abc"})
    assert response.status_code == 400 and "ip" in response.text


def test_invalid_variable_goes_back_to_an_allowed_redirect_uri(gateway):
    with gateway.client() as client:
        response = client.get(APPLY, params={**GOOD, "ip": "not-an-ip", "state": "s1",
                                             "redirect_uri": "https://app.provider.example/done"})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("https://app.provider.example/done?")
    assert query(location)["error"] == ["invalid_request"] and query(location)["state"] == ["s1"]


@pytest.mark.parametrize("domain", ["", "exa mple.com", "-bad.com"])
def test_invalid_domain_is_refused(gateway, domain):
    with gateway.client() as client:
        response = client.get(APPLY, params={**GOOD, "domain": domain})
    assert response.status_code == 400 and "domain" in response.text


@pytest.mark.parametrize("redirect_uri", [
    "https://evil.example/", "https://provider.example.evil.example/", "https://provider.example@evil.example/",
    "http://provider.example/", "javascript:alert(1)", "//evil.example/",
])
def test_redirect_uri_outside_sync_redirect_domain_is_never_followed(gateway, redirect_uri):
    with gateway.client() as client:
        response = client.get(APPLY, params={**GOOD, "redirect_uri": redirect_uri})
    assert response.status_code == 400 and "location" not in response.headers
    assert "redirect_uri" in response.text


# --- after sign-in --------------------------------------------------------------------------

def test_consent_page_shows_the_records_and_confirm_applies_them(gateway, alice):
    page = consent(alice, state="xyz", redirect_uri="https://partner.example/back?x=1")
    assert "Website" in page.text and "Example Hosting" in page.text
    assert "192.0.2.80" in page.text and "verify=abc123" in page.text
    assert "192.0.2.2" in page.text  # the A record it replaces
    assert "include:spf.provider.example" in page.text
    assert 'src="https://provider.example/logo.png"' in page.text
    assert "192.0.2.80" not in gateway.zone_text()
    done = confirm(alice, page)
    assert done.status_code == 303
    assert done.headers["location"].startswith("https://partner.example/back?")
    assert query(done.headers["location"]) == {"x": ["1"], "state": ["xyz"]}
    zone = gateway.zone_text()
    assert "192.0.2.80" in zone and "verify=abc123" in zone and "include:spf.provider.example" in zone
    assert "192.0.2.2" not in zone
    instances = gateway.app.state.runtime.store.instances("example.com")
    assert [(i.provider_id, i.service_id, i.applied_by) for i in instances] == [
        ("provider.example", "hosting", "user:alice")]


def test_without_redirect_uri_the_window_closes(gateway, alice):
    done = confirm(alice, consent(alice))
    assert done.status_code == 200 and "close.js" in done.text and "192.0.2.80" in gateway.zone_text()


def test_cancel_changes_nothing_and_says_user_cancel(gateway, alice):
    before = gateway.zone_text()
    done = confirm(alice, consent(alice, state="st", redirect_uri="https://provider.example/cb"), "cancel")
    assert query(done.headers["location"]) == {"error": ["access_denied"], "error_description": ["user_cancel"],
                                               "state": ["st"]}
    assert gateway.zone_text() == before


def test_group_ids_repeated_or_comma_separated(gateway, alice):
    only_verify = consent(alice, groupId="verify")
    assert "verify=abc123" in shown(only_verify) and "192.0.2.80" not in shown(only_verify)
    both = alice.get(APPLY, params=[*GOOD.items(), ("groupId", "verify"), ("groupId", "web")])
    comma = consent(alice, groupId="verify,web")
    assert "192.0.2.80" in both.text and "192.0.2.80" in comma.text


def test_unicode_domain_is_applied_to_its_punycode_zone(tmp_path):
    gateway = build_gateway(tmp_path, zones=("xn--bcher-kva.example",),
                            users={"alice": ["xn--bcher-kva.example"]})
    with gateway.client() as client:
        sign_in(client)
        page = consent(client, domain="Bücher.example")
        assert confirm(client, page).status_code == 200
    assert "192.0.2.80" in gateway.zone_text("xn--bcher-kva.example")


def test_a_user_who_does_not_control_the_zone_gets_access_denied(gateway):
    with gateway.client() as client:
        sign_in(client, "bob")
        response = client.get(APPLY, params={**GOOD, "state": "s", "redirect_uri": "https://provider.example/cb"})
    assert query(response.headers["location"])["error"] == ["access_denied"]


def test_domain_not_hosted_is_refused(gateway, alice):
    response = alice.get(APPLY, params={**GOOD, "domain": "elsewhere.example"})
    assert response.status_code == 404 and "elsewhere.example" in response.text


def test_confirm_without_csrf_token_is_refused(gateway, alice):
    page = consent(alice)
    before = gateway.zone_text()
    for token in ("", "forged"):
        response = alice.post("/v2/sync/consent", data={**consent_form(page.text), "csrf_token": token,
                                                        "decision": "confirm"})
        assert response.status_code == 403
    assert gateway.zone_text() == before


def test_a_consent_page_confirms_once(gateway, alice):
    page = consent(alice)
    assert confirm(alice, page).status_code == 200
    again = confirm(alice, page)
    assert again.status_code == 400 and "expired" in again.text


def test_another_user_cannot_confirm_a_page_shown_to_alice(gateway, alice):
    page = consent(alice)
    sign_in(alice, "bob")
    before = gateway.zone_text()
    assert confirm(alice, page).status_code in (400, 403)
    assert gateway.zone_text() == before


def test_a_zone_changed_after_the_page_was_shown_is_shown_again(gateway, alice):
    page = consent(alice)
    zone_file = gateway.zones / "example.com.zone"
    zone_file.write_text(zone_file.read_text().replace("192.0.2.2", "192.0.2.3"))
    again = confirm(alice, page)
    assert again.status_code == 200 and "changed since the page was shown" in again.text
    assert "192.0.2.3" in again.text and "192.0.2.80" not in gateway.zone_text()
    assert confirm(alice, again).status_code == 200
    assert "192.0.2.80" in gateway.zone_text() and "192.0.2.3" not in gateway.zone_text()


def test_reapplying_changes_nothing(gateway, alice):
    confirm(alice, consent(alice))
    once = gateway.zone_text()
    page = consent(alice)
    assert "already in place" in page.text
    confirm(alice, page)
    assert gateway.zone_text() == once


def test_unsigned_variables_get_a_warning(gateway, alice):
    assert "not signed" in consent(alice).text


def test_warn_phishing_gets_a_warning(tmp_path):
    plain = {**HOSTING, "warnPhishing": True,
             "records": [{"type": "TXT", "host": "@", "data": "fixed", "ttl": 600}]}
    gateway = build_gateway(tmp_path, [plain])
    with gateway.client() as client:
        sign_in(client)
        page = client.get(APPLY, params={"domain": "example.com"})
    assert "point your domain at their servers" in page.text


def test_caller_names_only_added_when_the_template_shares_them(tmp_path):
    shared = {**HOSTING, "sharedServiceName": True}
    gateway = build_gateway(tmp_path, [shared])
    with gateway.client() as client:
        sign_in(client)
        page = consent(client, serviceName="Blog of Alice", providerName="Totally Legit Bank")
    assert "Website (Blog of Alice)" in page.text and "Totally Legit Bank" not in shown(page)


def test_provider_name_injection_on_a_template_that_shares_nothing_is_not_shown(gateway, alice):
    page = consent(alice, providerName="Your Bank", serviceName="Security Update")
    assert "Your Bank" not in shown(page) and "Security Update" not in shown(page)


def test_the_template_description_is_for_developers_and_never_shown(tmp_path):
    gateway = build_gateway(tmp_path, [{**HOSTING, "description": "Internal: points www at pool 7"}])
    with gateway.client() as client:
        sign_in(client)
        page = consent(client)
    assert "pool 7" not in page.text


def test_pages_are_not_framed_and_escape_what_callers_send(gateway, alice):
    page = consent(alice, token="<script>alert(1)</script>")
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_session_cookie_is_httponly_and_samesite(gateway):
    with gateway.client() as client:
        response = sign_in(client)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie


def test_home_page_after_sign_in_names_the_users_zones(gateway, alice):
    page = alice.get("/")
    assert page.status_code == 200 and "example.com" in page.text and "Sign out" in page.text


def test_host_places_the_records_below_it(gateway, alice):
    page = consent(alice, host="Shop")
    assert "www.shop" in page.text
    confirm(alice, page)
    assert "www.shop" in gateway.zone_text() and "192.0.2.2" in gateway.zone_text()


def test_applies_are_counted_by_backend_outcome_and_flow(gateway, alice):
    confirm(alice, consent(alice))
    metrics = alice.get("/metrics", headers=METRICS_AUTH).text
    assert 'dcgw_applies_total{backend="files",flow="sync",outcome="applied"} 1.0' in metrics


def test_reapplying_with_new_values_shows_and_removes_the_old_ones(gateway, alice):
    confirm(alice, consent(alice))
    page = consent(alice, ip="192.0.2.81", token="new")
    removed = page.text.split("Records to remove or replace")[1]
    assert "192.0.2.80" in removed and "verify=abc123" in removed
    confirm(alice, page)
    zone = gateway.zone_text()
    assert "192.0.2.81" in zone and "verify=new" in zone and "192.0.2.80" not in zone and "abc123" not in zone


def test_a_template_that_breaks_another_ones_essential_record_says_which(tmp_path):
    mail = {"providerId": "mail.example", "providerName": "Mail", "serviceId": "mx", "serviceName": "Mail",
            "version": 1, "records": [{"type": "CNAME", "host": "www", "pointsTo": "web.mail.example", "ttl": 600}]}
    gateway = build_gateway(tmp_path, [HOSTING, mail])
    with gateway.client() as client:
        sign_in(client)
        confirm(client, consent(client))
        page = client.get("/v2/domainTemplates/providers/mail.example/services/mx/apply",
                          params={"domain": "example.com"})
        assert "provider.example/hosting" in page.text and "stop working" in page.text
        confirm(client, page)
    assert [i.service_id for i in gateway.app.state.runtime.store.instances("example.com")] == ["mx"]
    assert "192.0.2.80" not in gateway.zone_text() and "web.mail.example" in gateway.zone_text()


def test_every_apply_is_an_audit_line(gateway, alice, caplog):
    caplog.set_level("INFO", logger="dcgw.audit")
    confirm(alice, consent(alice))
    audit = [r for r in caplog.records if r.name == "dcgw.audit"]
    assert [r.getMessage() for r in audit] == ["apply"]
    assert audit[0].dcgw_audit["actor"] == "user:alice" and audit[0].dcgw_audit["domain"] == "example.com"


def test_backend_failures_are_not_told_to_callers(gateway, alice, monkeypatch):
    from backends.base import BackendError

    backend = gateway.app.state.runtime.router.backends[0]

    def failing(*args, **kwargs):
        raise BackendError("the PowerDNS API at http://10.1.2.3:8081 refused the API key")

    monkeypatch.setattr(backend, "read", failing)
    page = alice.get(APPLY, params={**GOOD, "state": "s", "redirect_uri": "https://provider.example/cb"})
    settings = alice.get("/v2/example.com/settings")
    assert query(page.headers["location"])["error"] == ["temporarily_unavailable"]
    assert "10.1.2.3" not in page.headers["location"]
    assert settings.status_code == 503 and "10.1.2.3" not in settings.text


def test_a_file_upload_as_csrf_token_is_refused(gateway, alice):
    page = consent(alice)
    form = {k: v for k, v in consent_form(page.text).items() if k != "csrf_token"}
    response = alice.post("/v2/sync/consent", data=form,
                          files={"csrf_token": ("token.txt", csrf_of(page.text).encode())})
    # Multipart is refused before it is parsed (or spooled to disk), so before the CSRF check too.
    assert response.status_code == 415 and "192.0.2.80" not in gateway.zone_text()


def test_the_session_cookie_stays_small_with_long_requests(gateway, alice):
    long_token = "k" * 3000
    for _ in range(3):
        page = consent(alice, token=long_token)
    assert len(alice.cookies.get("dcgw_session")) < 2000
    assert confirm(alice, page).status_code == 200 and "verify=kkkk" in gateway.zone_text()


def test_a_changed_query_in_the_form_is_refused(gateway, alice):
    form = consent_form(consent(alice).text)
    form["query"] = form["query"].replace("192.0.2.80", "203.0.113.66")
    assert alice.post("/v2/sync/consent", data=form).status_code == 400
    assert "203.0.113.66" not in gateway.zone_text() and "192.0.2.80" not in gateway.zone_text()


def test_oversized_requests_and_state_are_refused(gateway, alice):
    assert alice.get(APPLY, params={**GOOD, "pad": "x" * 9000}).status_code == 400
    assert "state" in alice.get(APPLY, params={**GOOD, "state": "s" * 401}).text


def test_a_consent_page_left_open_too_long_expires(gateway, alice, monkeypatch):
    import time

    from gateway.web.auth.session import OPEN_PAGE_LIFETIME

    page = consent(alice)
    later = time.time() + OPEN_PAGE_LIFETIME + 1
    monkeypatch.setattr(time, "time", lambda: later)
    assert confirm(alice, page).status_code == 400 and "192.0.2.80" not in gateway.zone_text()


def test_each_sync_apply_of_a_multi_instance_template_adds_an_instance(tmp_path):
    template = {**HOSTING, "multiInstance": True,
                "records": [{"type": "TXT", "host": "@", "data": "link=%token%", "ttl": 600}]}
    gateway = build_gateway(tmp_path, templates=[template])
    with gateway.client() as client:
        assert sign_in(client).status_code == 303
        for token in ("one", "two"):
            page = consent(client, token=token)
            assert confirm(client, page).status_code == 200
    assert '"link=one"' in gateway.zone_text() and '"link=two"' in gateway.zone_text()
    instances = gateway.app.state.runtime.store.instances("example.com")
    assert len(instances) == 2 and len({i.instance_id for i in instances}) == 2
