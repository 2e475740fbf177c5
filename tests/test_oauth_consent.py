"""The consent step and the authorizations page against a running uvicorn, through httpx:
consent -> sign-in -> Allow -> code -> token -> apply -> revoke -> 401, and the attacks on each step."""

from __future__ import annotations

import html
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlencode, urlsplit

import dns.name
import dns.rdata
import dns.rdatatype
import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import gateway.web.ui as ui
from backends.base import RRsetChange
from backends.records import make_rrset
from backends.zonefile import ZoneFileBackend
from gateway.apply.extensions import NO_EXTENSIONS
from gateway.apply.instances import apply_instance
from gateway.engine.render import ApplyContext, TtlPolicy
from gateway.infra.config import AuthSettings, AuthUser, Config, GatewaySettings
from gateway.infra.registry import BackendRouter
from gateway.state import StateStore
from gateway.state.pkce import s256
from gateway.web.auth.base import Authenticator, User
from gateway.web.auth.local import LocalAuthenticator
from gateway.web.auth.routes import login_routes
from gateway.web.auth.session import OPEN_PAGE_LIFETIME, sign_in
from gateway.web.oauth import consent, routes
from gateway.web.oauth.consent import consent_page
from gateway.web.oauth.routes import SERVICE
from tests.engine_helpers import make_template
from tests.gateway_app import table_rows
from tests.log_capture import Collect
from tests.oauth_helpers import RECORDS, ZONE_TEXT
from tests.servers.common import free_port, wait_for_port

PROVIDER, REDIRECT = "provider.example", "https://provider.example/cb?from=dc"
OTHER_REDIRECT = "https://other.example/cb"
ZONE = dns.name.from_text("example.com")
USERS = {"alice": ("example.com", "xn--bcher-kva.com"), "bob": ("xn--bcher-kva.com",)}
FLOW = {"client_id": PROVIDER, "redirect_uri": REDIRECT, "response_type": "code", "scope": "service",
        "domain": "example.com", "host": "", "state": "st-123", "value": "one", "sub": "mail"}


class SessionUsers(Authenticator):
    """Users known by name; they sign in through the session (a test route stands in for the login form)."""

    def user_named(self, username: str) -> User | None:
        zones = USERS.get(username)
        return User(username, zones) if zones is not None else None


async def sign_in_for_tests(request: Request) -> PlainTextResponse:
    sign_in(request, User(request.query_params["user"], USERS[request.query_params["user"]]))
    return PlainTextResponse("signed in")


def brand_stylesheet() -> list[Route]:
    # base.html links the brand colours by route name when the UI serves them as a stylesheet.
    handler = getattr(ui, "brand_css", None)
    return [Route("/brand.css", handler, name="brand_css")] if handler is not None else []


@contextmanager
def running_gateway(tmp_path: Path, authenticator: Authenticator) -> Iterator[SimpleNamespace]:
    """The OAuth routes, the sign-in pages and a test sign-in route on uvicorn at 127.0.0.1."""
    for origin in ("example.com", "xn--bcher-kva.com"):
        (tmp_path / f"{origin}.zone").write_text(ZONE_TEXT.format(origin=origin))
    backend = ZoneFileBackend("files", {"directory": str(tmp_path)})
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    templates = {(PROVIDER, "service"): make_template(RECORDS, logoUrl="https://provider.example/logo.png"),
                 (PROVIDER, "other"): make_template(RECORDS, serviceId="other", serviceName="Other"),
                 (PROVIDER, "redirect"): make_template(
                     [{"type": "A", "host": "@", "pointsTo": "%ip%", "ttl": 600}], serviceId="redirect",
                     serviceName="Redirect", warnPhishing=True),
                 (PROVIDER, "mail"): make_template(
                     [{"type": "SPFM", "host": "@", "spfRules": "include:spf.provider.example"}], serviceId="mail",
                     serviceName="Mail"),
                 (PROVIDER, "web"): make_template(
                     [{"type": "A", "host": "www", "pointsTo": "%ip%", "ttl": 600}], serviceId="web",
                     serviceName="Web", description="Points www at the provider (for developers only)"),
                 (PROVIDER, "shared"): make_template(
                     [{"type": "TXT", "host": "@", "data": "shared=%value%", "ttl": 600}], serviceId="shared",
                     serviceName="Shared", sharedProviderName=True, sharedServiceName=True),
                 ("other.example", "evil"): make_template(RECORDS, providerId="other.example", serviceId="evil")}
    router = BackendRouter([(backend, ["example.com", "xn--bcher-kva.com"])])
    app = Starlette(
        routes=[*routes(store, router, templates, authenticator=authenticator), Route(SERVICE, consent_page, methods=["GET"]), *login_routes(),
                Route("/test/sign-in", sign_in_for_tests), *brand_stylesheet(),
                Mount("/static", StaticFiles(directory=ui.STATIC_DIR), name="static")],
        middleware=[Middleware(SessionMiddleware, secret_key="test-secret", same_site="lax", https_only=False)])
    app.state.runtime = SimpleNamespace(
        config=Config(path=tmp_path / "gateway.toml", gateway=GatewaySettings(provider_display_name="Example DNS")),
        authenticator=authenticator, store=store, router=router, templates=templates, ttl_policy=TtlPolicy(),
        extensions=NO_EXTENSIONS)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for_port(port, timeout=10)
        yield SimpleNamespace(base=f"http://127.0.0.1:{port}", store=store, backend=backend,
                              secret=store.add_client(PROVIDER, [REDIRECT]),
                              other_secret=store.add_client("other.example", [OTHER_REDIRECT]))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.close()


@pytest.fixture
def gateway(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with running_gateway(tmp_path, SessionUsers(AuthSettings())) as running:
        yield running


@pytest.fixture
def alice(gateway):
    with browser(gateway, "alice") as client:
        yield client


@contextmanager
def browser(gateway, user: str | None) -> Iterator[httpx.Client]:
    """A browser of its own (cookie jar), signed in as `user` unless None."""
    with httpx.Client(base_url=gateway.base, timeout=10) as client:
        if user is not None:
            assert client.get("/test/sign-in", params={"user": user}).status_code == 200
        yield client


def own_csrf_token(client: httpx.Client) -> str:
    """The CSRF token of this browser's session, from a consent page for a domain its user controls."""
    return hidden_fields(client.get(consent_url(domain="xn--bcher-kva.com")).text)["csrf_token"]


def consent_url(path: str = f"/v2/domainTemplates/providers/{PROVIDER}", **changes) -> str:
    query = {**FLOW, **changes}
    return path + "?" + urlencode({k: v for k, v in query.items() if v is not None})


def hidden_fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)}


def answer(client: httpx.Client, page: httpx.Response, decision: str = "allow", **changes) -> httpx.Response:
    assert page.status_code == 200, page.text
    return client.post("/v2/oauth/consent", data={**hidden_fields(page.text), "decision": decision, **changes})


def redirected_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    return {k: v[0] for k, v in parse_qs(location.query, keep_blank_values=True).items()}


def returned_to(response: httpx.Response, redirect_uri: str = REDIRECT) -> dict[str, str]:
    location = response.headers["location"]
    assert location.split("?")[0] == redirect_uri.split("?")[0], location
    return redirected_query(response)


def exchange(gateway, code: str) -> dict:
    response = httpx.post(gateway.base + "/v2/oauth/access_token",
                          data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                "client_id": PROVIDER, "client_secret": gateway.secret})
    assert response.status_code == 200, response.text
    return response.json()


def api_apply(gateway, access: str, **params) -> httpx.Response:
    return httpx.post(gateway.base + f"/v2/domainTemplates/providers/{PROVIDER}/services/service/apply",
                      params={"domain": "example.com", "host": "", "value": "one", "sub": "mail", **params},
                      headers={"Authorization": f"Bearer {access}"})


def served(backend, host: str, rdtype: str) -> set[str]:
    name = dns.name.from_text(host, ZONE) if host else ZONE
    return {rd.to_text() for r in backend.read(ZONE, {name}, ()) if r.rdtype == dns.rdatatype.from_text(rdtype)
            for rd in r}


def allowed_code(gateway, client: httpx.Client, **changes) -> str:
    query = returned_to(answer(client, client.get(consent_url(**changes))))
    return query["code"]


# --- the whole flow ------------------------------------------------------------------------


def test_whole_flow_consent_sign_in_allow_token_apply_revoke(gateway):
    with browser(gateway, None) as client:
        first = client.get(consent_url())
        assert first.status_code == 303
        login = urlsplit(first.headers["location"])
        assert login.path == "/login" and parse_qs(login.query)["next"] == [consent_url()]
        assert client.get("/test/sign-in", params={"user": "alice"}).status_code == 200
        page = client.get(consent_url())
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        assert "Allow Provider" in page.text and "example.com" in page.text
        assert '<img src="https://provider.example/logo.png"' in page.text
        assert "<caption>Records Service would add</caption>" in page.text
        rows = table_rows(page.text, "Records Service would add")
        assert ["@ (the domain itself)", "TXT", "3600", '"v=one"'] in rows
        assert ["mail", "CNAME", "3600", "target.example.net."] in rows
        assert "remove or change" not in page.text and not re.search(r"<script(?![^>]*\bsrc=)", page.text)

        allowed = answer(client, page)
        query = returned_to(allowed)
        assert query["state"] == "st-123" and query["from"] == "dc" and len(query["code"]) > 20
        tokens = exchange(gateway, query["code"])
        assert api_apply(gateway, tokens["access_token"]).status_code == 200
        assert served(gateway.backend, "", "TXT") == {'"v=one"'}
        assert served(gateway.backend, "mail", "CNAME") == {"target.example.net."}

        [grant] = gateway.store.grants_of("alice")
        assert (grant.client_id, grant.domain, grant.hosts, grant.services) == (PROVIDER, "example.com", [""],
                                                                                 ["service"])
        listing = client.get("/authorizations")
        assert listing.status_code == 200 and "<td>Provider" in listing.text
        assert "<td>example.com</td>" in listing.text and "<td>(the domain itself)</td>" in listing.text
        assert "<td>Service</td>" in listing.text
        revoked = client.post(f"/authorizations/{grant.id}/revoke", data=hidden_fields(listing.text))
        assert revoked.status_code == 303
        assert urlsplit(revoked.headers["location"]).path == "/authorizations"
        after = client.get(revoked.headers["location"])
        assert f"Authorization {grant.id} was revoked" in after.text and "No service provider" in after.text

    refused = api_apply(gateway, tokens["access_token"])
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"
    refresh = httpx.post(gateway.base + "/v2/oauth/access_token",
                         data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
                               "client_id": PROVIDER, "client_secret": gateway.secret})
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    assert api_apply(gateway, tokens["refresh_token"]).status_code == 401


def test_whole_flow_through_the_real_login_form(tmp_path):
    password = "correct horse battery staple"
    hashed = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(password)
    users = AuthSettings(driver="local", users=(AuthUser(username="carol", password_hash=hashed, zones=("example.com",)),))
    with running_gateway(tmp_path, LocalAuthenticator(users)) as gateway, browser(gateway, None) as client:
        to_login = client.get(consent_url())
        assert to_login.status_code == 303
        form = client.get(to_login.headers["location"])
        assert form.status_code == 200
        signed_in = client.post("/login", data={**hidden_fields(form.text), "username": "carol",
                                                 "password": password})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == consent_url()
        page = client.get(signed_in.headers["location"])
        assert "Signed in as carol" in page.text
        tokens = exchange(gateway, returned_to(answer(client, page))["code"])
        assert api_apply(gateway, tokens["access_token"]).status_code == 200
        assert served(gateway.backend, "mail", "CNAME") == {"target.example.net."}
        assert [g.user for g in gateway.store.grants_of("carol")] == ["carol"]


def test_spf_change_is_shown_applied_and_reverted_through_the_api(gateway, alice):
    apex_txt = make_rrset(ZONE, 3600, [dns.rdata.from_text("IN", "TXT", '"v=spf1 mx -all"')])
    gateway.backend.apply(ZONE, [RRsetChange(ZONE, dns.rdatatype.TXT, None, apex_txt)])
    page = alice.get(consent_url(scope="mail"))
    # An SPF merge shows the terms it adds, not one whole record swapped for another.
    assert table_rows(page.text, "Changes to your SPF record (which servers may send your mail)") == [
        ["@ (the domain itself)", "include:spf.provider.example", "none"]]
    shown_values = re.findall(r'<code class="value">(.*?)</code>', page.text, re.S)
    assert not any("v=spf1" in value for value in shown_values)  # no whole SPF record swapped
    tokens = exchange(gateway, returned_to(answer(alice, page))["code"])
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    applied = httpx.post(gateway.base + f"/v2/domainTemplates/providers/{PROVIDER}/services/mail/apply",
                         params={"domain": "example.com"}, headers=bearer)
    assert applied.status_code == 200, applied.text
    assert served(gateway.backend, "", "TXT") == {'"v=spf1 mx include:spf.provider.example -all"'}
    reverted = httpx.post(gateway.base + f"/v2/domainTemplates/providers/{PROVIDER}/services/mail/revert",
                          params={"domain": "example.com"}, headers=bearer)
    assert reverted.status_code == 204, reverted.text
    assert served(gateway.backend, "", "TXT") == {'"v=spf1 mx -all"'}


def test_services_form_scope_lists_and_several_hosts(gateway, alice):
    url = consent_url(f"/v2/domainTemplates/providers/{PROVIDER}/services/service", scope="other+service",
                      host="www,")
    page = alice.get(url)
    assert page.status_code == 200
    for heading in ("Other on www.example.com", "Other on example.com", "Service on www.example.com",
                    "Service on example.com"):
        assert heading in re.sub(r"\s+", " ", page.text)
    assert hidden_fields(page.text)["scope"] == "other service" and hidden_fields(page.text)["host"] == "www,"
    code = returned_to(answer(alice, page))["code"]
    tokens = exchange(gateway, code)
    [grant] = gateway.store.grants_of("alice")
    assert grant.hosts == ["www", ""] and grant.services == ["other", "service"]
    assert api_apply(gateway, tokens["access_token"], host="www").status_code == 200
    assert served(gateway.backend, "www", "TXT") == {'"v=one"'}


def test_space_separated_scope_is_accepted(gateway, alice):
    page = alice.get(consent_url(scope="service other"))
    assert hidden_fields(page.text)["scope"] == "service other"


def test_unicode_domain_is_normalised_to_idna(gateway, alice):
    page = alice.get(consent_url(domain="BÜCHER.com"))
    assert page.status_code == 200 and hidden_fields(page.text)["domain"] == "xn--bcher-kva.com"
    returned_to(answer(alice, page))
    assert gateway.store.grants_of("alice")[0].domain == "xn--bcher-kva.com"


def test_existing_records_that_would_change_are_shown(gateway, alice):
    page = alice.get(consent_url(sub="www"))
    assert "<caption>Existing records it would remove or change</caption>" in page.text
    assert ["www", "A", "3600", "192.0.2.80"] in table_rows(page.text, "Existing records it would remove or change")
    assert "the new CNAME at www conflicts" in page.text


def test_templates_that_would_be_disabled_are_named(gateway, alice):
    mail = make_template([{"type": "A", "host": "mail", "pointsTo": "192.0.2.25", "ttl": 3600}],
                         serviceId="mailhost")
    apply_instance(gateway.store, gateway.backend, mail, ApplyContext("example.com"), instance_id=None, actor="alice")
    page = alice.get(consent_url())
    assert "turn off services set up earlier" in page.text and "<li>provider.example/mailhost</li>" in page.text


def test_warn_phishing_template_shows_a_prominent_warning(gateway, alice):
    page = alice.get(consent_url(scope="redirect", ip="192.0.2.7"))
    assert '<div class="warning" role="alert">' in page.text and "Check that you started this yourself" in page.text
    assert "Check that you started" not in alice.get(consent_url()).text


def test_deny_returns_access_denied_with_state(gateway, alice):
    query = returned_to(answer(alice, alice.get(consent_url()), decision="deny"))
    assert query == {"from": "dc", "error": "access_denied", "error_description": "user_cancel", "state": "st-123"}
    assert gateway.store.grants_of("alice") == []
    last = gateway.store.audit_entries()[-1]
    assert (last.action, last.actor, last.domain, last.detail["client_id"]) == ("consent_deny", "user:alice",
                                                                                "example.com", PROVIDER)


def test_page_is_accessible_and_needs_no_javascript(gateway, alice):
    page = alice.get(consent_url()).text
    assert '<html lang="en">' in page and "<h1>" in page and "<h2" in page and "<caption>" in page
    assert '<th scope="col">' in page and not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert '<button type="submit" name="decision" value="allow"' in page


# --- refusals before anything is redirected -------------------------------------------------


def test_redirect_uri_not_registered_is_an_error_page_never_a_redirect(gateway, alice):
    response = alice.get(consent_url(redirect_uri="https://evil.example/cb"))
    assert response.status_code == 400 and "location" not in response.headers
    assert "redirect_uri: not one registered" in response.text and "evil.example" not in response.text


def test_redirect_uri_differing_only_in_query_is_refused(gateway, alice):
    response = alice.get(consent_url(redirect_uri="https://provider.example/cb?from=x"))
    assert response.status_code == 400 and "location" not in response.headers


def test_unknown_client_is_an_error_page(gateway, alice):
    response = alice.get(consent_url(client_id="nobody.example"))
    assert response.status_code == 400 and "location" not in response.headers
    assert "client_id: &#39;nobody.example&#39; is not registered" in response.text


def test_missing_redirect_uri_is_an_error_page(gateway, alice):
    response = alice.get(consent_url(redirect_uri=None))
    assert response.status_code == 400 and "redirect_uri: required" in response.text


def test_refusals_come_before_sign_in(gateway):
    with browser(gateway, None) as anonymous:
        assert anonymous.get(consent_url(redirect_uri="https://evil.example/cb")).status_code == 400
        assert returned_to(anonymous.get(consent_url(scope="nope")))["error"] == "invalid_scope"


# --- refusals sent back to the client -----------------------------------------------------


def test_client_that_is_not_the_provider_is_unauthorized(gateway, alice):
    response = alice.get(consent_url(client_id="other.example", redirect_uri=OTHER_REDIRECT))
    query = returned_to(response, OTHER_REDIRECT)
    assert query["error"] == "unauthorized_client" and "client_id" in query["error_description"]
    assert query["state"] == "st-123"


def test_scope_naming_another_providers_template_is_invalid_scope(gateway, alice):
    query = returned_to(alice.get(consent_url(scope="service evil")))
    assert query["error"] == "invalid_scope" and "evil is not a template of provider.example" in \
        query["error_description"]


def test_another_provider_cannot_use_its_own_client_for_these_templates(gateway, alice):
    query = returned_to(alice.get(consent_url("/v2/domainTemplates/providers/other.example", scope="service",
                                              client_id=PROVIDER)))
    assert query["error"] == "unauthorized_client"


def test_empty_scope_is_invalid_scope(gateway, alice):
    assert returned_to(alice.get(consent_url(scope="")))["error"] == "invalid_scope"


def test_wrong_response_type_is_refused(gateway, alice):
    query = returned_to(alice.get(consent_url(response_type="token")))
    assert query["error"] == "unsupported_response_type" and "response_type" in query["error_description"]


def test_response_type_may_be_left_out(gateway, alice):
    # The spec makes it optional: "If included it must be the string 'code'".
    page = alice.get(consent_url(response_type=None))
    assert page.status_code == 200 and "code" in returned_to(answer(alice, page))


def test_domain_not_hosted_is_invalid_request(gateway, alice):
    query = returned_to(alice.get(consent_url(domain="example.org")))
    assert query["error"] == "invalid_request"
    assert query["error_description"] == "domain: example.org is not a zone hosted here"


def test_a_name_inside_a_zone_is_not_a_domain_to_grant(gateway, alice):
    # A grant is for a zone; otherwise it would follow the name if it became someone else's zone.
    query = returned_to(alice.get(consent_url(domain="shop.example.com")))
    assert query["error"] == "invalid_request" and "not a zone" in query["error_description"]


def test_bad_domain_is_invalid_request(gateway, alice):
    query = returned_to(alice.get(consent_url(domain="exa mple..com")))
    assert query["error"] == "invalid_request" and query["error_description"].startswith("domain:")


def test_overlong_state_is_refused_before_it_reaches_the_session_cookie(gateway, alice):
    response = alice.get(consent_url(state="s" * 401))
    query = returned_to(response)
    assert query["error"] == "invalid_request" and query["error_description"] == "state: longer than 400 characters"
    assert "set-cookie" not in response.headers


def test_a_variable_left_for_the_apply_is_no_refusal(gateway, alice):
    page = alice.get(consent_url(sub=None, value=None))
    assert page.status_code == 200, page.headers.get("location")
    text = html.unescape(page.text)
    # The TXT value waits for %value%: shown as written, set by the provider when applied.
    assert "v=%value%" in text and "set by Provider when applied" in text
    # The CNAME's host is %sub%: it cannot be placed, and its conflicts wait for the apply.
    assert "%sub%" in text and "cannot be placed yet; conflicts for it are checked at apply time" in text


def test_a_given_value_that_is_invalid_is_still_refused(gateway, alice):
    query = returned_to(alice.get(consent_url(sub="bad name!", value=None)))
    assert query["error"] == "invalid_request" and "%sub%" in query["error_description"]
    query = returned_to(alice.get(consent_url(sub=None, value="line\nbreak")))
    assert query["error"] == "invalid_request" and "%value%" in query["error_description"]


def test_user_who_does_not_control_the_zone_is_denied(gateway):
    with browser(gateway, "bob") as bob:
        query = returned_to(bob.get(consent_url()))
    assert query["error"] == "access_denied" and "does not control example.com" in query["error_description"]
    assert gateway.store.grants_of("bob") == []
    last = gateway.store.audit_entries()[-1]
    assert (last.action, last.actor, last.detail["reason"]) == ("refuse", "user:bob", "zone not controlled")


# --- attacks on the answer ----------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_answer_without_this_sessions_csrf_token_is_refused(gateway, alice, token):
    page = alice.get(consent_url())
    fields = {**hidden_fields(page.text), "decision": "allow"}
    if token is None:
        del fields["csrf_token"]
    else:
        fields["csrf_token"] = token
    response = alice.post("/v2/oauth/consent", data=fields)
    assert response.status_code == 403 and "location" not in response.headers and "csrf_token" in response.text
    assert gateway.store.grants_of("alice") == []


def test_csrf_token_of_another_session_is_refused(gateway, alice):
    page = alice.get(consent_url())
    with browser(gateway, "alice") as other_session:
        other_page = other_session.get(consent_url())
        fields = {**hidden_fields(page.text), "csrf_token": hidden_fields(other_page.text)["csrf_token"]}
    response = alice.post("/v2/oauth/consent", data={**fields, "decision": "allow"})
    assert response.status_code == 403 and gateway.store.grants_of("alice") == []


@pytest.mark.parametrize("field, value", [("host", "www"), ("host", ",www"), ("scope", "service other"),
                                          ("scope", "other"), ("domain", "xn--bcher-kva.com")])
def test_hidden_fields_changed_in_the_answer_are_refused(gateway, alice, field, value):
    response = answer(alice, alice.get(consent_url()), **{field: value})
    assert response.status_code == 400 and "location" not in response.headers
    assert f"{field}: differs from what was shown" in response.text
    assert gateway.store.grants_of("alice") == []


def test_consent_shown_to_one_user_cannot_be_answered_by_another(gateway, alice):
    page = alice.get(consent_url())
    with browser(gateway, "bob") as bob:
        csrf = own_csrf_token(bob)
        response = bob.post("/v2/oauth/consent", data={**hidden_fields(page.text), "csrf_token": csrf,
                                                        "decision": "allow"})
    assert response.status_code == 400 and gateway.store.grants_of("bob") == []


def test_a_consent_page_is_answered_once(gateway, alice):
    page = alice.get(consent_url())
    assert answer(alice, page).status_code == 303
    again = answer(alice, page)
    assert again.status_code == 400 and "already answered" in again.text
    assert len(gateway.store.grants_of("alice")) == 1


def test_only_the_latest_consent_pages_of_a_session_can_be_answered(gateway, alice):
    pages = [alice.get(consent_url(state=f"st-{n}")) for n in range(4)]
    oldest = answer(alice, pages[0])
    assert oldest.status_code == 400 and "unknown, expired or already answered" in oldest.text
    assert returned_to(answer(alice, pages[3]))["state"] == "st-3"


def test_consent_page_answered_too_late_is_refused(gateway, alice, monkeypatch):
    page = alice.get(consent_url())
    later = time.time() + OPEN_PAGE_LIFETIME + 1
    monkeypatch.setattr(consent, "now", lambda: later)
    response = answer(alice, page)
    assert response.status_code == 400 and "expired" in response.text and gateway.store.grants_of("alice") == []


def test_zone_taken_away_before_allow_is_access_denied(gateway, alice, monkeypatch):
    page = alice.get(consent_url())
    monkeypatch.setitem(USERS, "alice", ("xn--bcher-kva.com",))
    query = returned_to(answer(alice, page))
    assert query["error"] == "access_denied" and "does not control example.com" in query["error_description"]
    assert gateway.store.grants_of("alice") == []


def test_answer_without_a_decision_is_refused(gateway, alice):
    response = answer(alice, alice.get(consent_url()), decision="maybe")
    assert response.status_code == 400 and "decision: must be allow or deny" in response.text


def test_answer_after_signing_out_is_refused(gateway, alice):
    page = alice.get(consent_url())
    alice.cookies.clear()
    response = alice.post("/v2/oauth/consent", data={**hidden_fields(page.text), "decision": "allow"})
    assert response.status_code in (401, 403) and gateway.store.grants_of("alice") == []


# --- authorizations page ------------------------------------------------------------------


def test_revoking_someone_elses_grant_is_refused(gateway, alice):
    returned_to(answer(alice, alice.get(consent_url())))
    [grant] = gateway.store.grants_of("alice")
    with browser(gateway, "bob") as bob:
        assert "No service provider" in bob.get("/authorizations").text
        response = bob.post(f"/authorizations/{grant.id}/revoke", data={"csrf_token": own_csrf_token(bob)})
    assert response.status_code == 404 and f"authorization {grant.id}: not found" in response.text
    assert [g.id for g in gateway.store.grants_of("alice")] == [grant.id]


def test_revoke_without_csrf_is_refused(gateway, alice):
    code = allowed_code(gateway, alice)
    tokens = exchange(gateway, code)
    [grant] = gateway.store.grants_of("alice")
    response = alice.post(f"/authorizations/{grant.id}/revoke", data={"csrf_token": "forged"})
    assert response.status_code == 403
    assert api_apply(gateway, tokens["access_token"]).status_code == 200


def test_authorizations_page_needs_sign_in(gateway):
    with browser(gateway, None) as anonymous:
        response = anonymous.get("/authorizations")
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
        assert anonymous.post("/authorizations/1/revoke", data={}).status_code == 403


# --- logs ------------------------------------------------------------------------------------


def test_codes_tokens_and_secrets_never_reach_the_logs(gateway, alice, caplog):
    collected = Collect()
    loggers = [logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error", "gateway")]
    for logger in loggers:
        logger.addHandler(collected)
    code = allowed_code(gateway, alice)
    tokens = exchange(gateway, code)
    api_apply(gateway, tokens["access_token"])
    for logger in loggers:
        logger.removeHandler(collected)
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join([*collected.lines, *(r.getMessage() for r in server_records)])
    assert "POST /v2/oauth/consent" in logged and "GET /v2/domainTemplates/providers/" in logged
    for secret in (gateway.secret, code, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in logged
    audit = repr([(e.action, e.detail) for e in gateway.store.audit_entries()])
    for secret in (gateway.secret, code, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in audit



# --- variables given at apply time, and conflicts approved at consent ----------------------


def test_conflicts_of_a_record_whose_value_comes_later_are_shown_and_need_no_force(gateway, alice):
    page = alice.get(consent_url(scope="web", ip=None, value=None, sub=None))
    assert page.status_code == 200, page.headers.get("location")
    text = html.unescape(page.text)
    assert "%ip%" in text and "set by Provider when applied" in text
    assert "the new A record replaces the A and AAAA records at www" in text
    assert ["www", "A", "3600", "192.0.2.80"] in table_rows(page.text, "Existing records it would remove or change")
    tokens = exchange(gateway, returned_to(answer(alice, page))["code"])
    [grant] = gateway.store.grants_of("alice")
    assert grant.approved == [{"service": "web", "host": "", "disabled": [],
                               "records": [{"name": "www.example.com.", "type": "A", "data": "192.0.2.80"}]}]

    def apply_web(ip, **extra):
        return httpx.post(gateway.base + f"/v2/domainTemplates/providers/{PROVIDER}/services/web/apply",
                          params={"domain": "example.com", "host": "", "ip": ip, **extra},
                          headers={"Authorization": f"Bearer {tokens['access_token']}"})
    # The user allowed replacing www's address: the first apply needs no force.
    assert apply_web("192.0.2.7").status_code == 200
    assert served(gateway.backend, "www", "A") == {"192.0.2.7"}
    # A record added after the consent was never shown: that one is a 409.
    name = dns.name.from_text("www", ZONE)
    gateway.backend.apply(ZONE, [RRsetChange(name, dns.rdatatype.AAAA, None, make_rrset(
        name, 600, [dns.rdata.from_text("IN", "AAAA", "2001:db8::7")]))])
    conflict = apply_web("192.0.2.8")
    assert conflict.status_code == 409
    assert conflict.json()["records"] == [{"type": "AAAA", "host": "www", "data": "2001:db8::7"}]
    assert served(gateway.backend, "www", "A") == {"192.0.2.7"}
    assert apply_web("192.0.2.8", force="true").status_code == 200


def test_what_the_page_approved_cannot_be_widened_in_the_form(gateway, alice):
    page = alice.get(consent_url(scope="web", ip=None, value=None, sub=None))
    widened = '[{"service":"web","host":"","disabled":[],"records":[{"name":"ns1.example.com.","type":"A",' \
              '"data":"192.0.2.53"}]}]'
    refused = answer(alice, page, approved=widened)
    assert refused.status_code == 400 and "approved: differs from what was shown" in html.unescape(refused.text)
    assert gateway.store.grants_of("alice") == []


def test_template_description_is_never_shown(gateway, alice):
    page = alice.get(consent_url(scope="web", ip="192.0.2.7"))
    assert page.status_code == 200 and "for developers only" not in page.text


def test_provider_name_injection_on_a_template_that_does_not_share_it_is_not_shown(gateway, alice):
    page = alice.get(consent_url(providerName="Your Bank", serviceName="Security Update"))
    assert page.status_code == 200
    assert "Your Bank" not in page.text and "Security Update" not in page.text


def test_shared_names_augment_the_templates_names_never_replace_them(gateway, alice):
    page = alice.get(consent_url(scope="shared", providerName="Acme Reseller", serviceName="Acme Site"))
    text = html.unescape(page.text)
    assert "Allow Provider (Acme Reseller)" in " ".join(text.split())
    assert "Shared</strong> (Acme Site)" in text
    # Beside a template that does not share its name, the provider's note is left out.
    both = html.unescape(alice.get(consent_url(scope="shared service", providerName="Acme Reseller")).text)
    assert "Acme Reseller" not in both


# --- PKCE at consent -----------------------------------------------------------------------


def test_pkce_challenge_travels_with_the_code(gateway, alice):
    verifier = "a-verifier-of-forty-three-characters-or-more"
    code = allowed_code(gateway, alice, code_challenge=s256(verifier), code_challenge_method="S256")
    base = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": PROVIDER,
            "client_secret": gateway.secret}
    stolen = httpx.post(gateway.base + "/v2/oauth/access_token", data=base)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    wrong = httpx.post(gateway.base + "/v2/oauth/access_token", data={**base, "code_verifier": "b" * 43})
    assert wrong.status_code == 400 and "does not match" in wrong.json()["error_description"]
    right = httpx.post(gateway.base + "/v2/oauth/access_token", data={**base, "code_verifier": verifier})
    assert right.status_code == 200, right.text


@pytest.mark.parametrize("changes, message", [
    ({"code_challenge": "c" * 43, "code_challenge_method": "S512"}, "code_challenge_method: 'S512' is not supported"),
    ({"code_challenge": "short"}, "code_challenge: must be 43 to 128"),
    ({"code_challenge_method": "S256"}, "code_challenge: required"),
])
def test_bad_pkce_parameters_are_invalid_request_at_consent(gateway, alice, changes, message):
    query = returned_to(alice.get(consent_url(**changes)))
    assert query["error"] == "invalid_request" and message in query["error_description"]
