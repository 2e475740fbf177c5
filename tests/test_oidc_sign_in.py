"""`[auth] driver = "oidc"`: the authorization code flow with PKCE against a real OpenID Provider
(node-oidc-provider on loopback), and the ID tokens the gateway must refuse, minted by a provider
the test controls (its own key and JWKS)."""

from __future__ import annotations

import base64
import json
import logging
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey

from gateway.infra.config import ConfigError, load_config
from gateway.web.runtime import Runtime
from tests.gateway_app import csrf_of
from tests.oidc_helpers import (
    CLIENT_ID, CLIENT_SECRET, authorization_of, collected, minting_provider, oidc_gateway, sign_in_at_provider,
)
from tests.servers.oidc import openid_provider, web_client

GATEWAY_URL = "https://dc.test"
APPLY = "/v2/domainTemplates/providers/provider.example/services/hosting/apply"
PARAMS = {"domain": "example.com", "ip": "192.0.2.80", "token": "abc123"}


def signed_in_as(client) -> str | None:
    page = client.get("/").text
    marker = "Signed in as <strong>"
    return page.split(marker, 1)[1].split("<", 1)[0] if marker in page else None


# --- the real provider ----------------------------------------------------------------------


@pytest.fixture
def provider(tmp_path):
    accounts = {"alice": {"zones": ["example.com"]}, "bob": {"zones": ["other.com"]},
                "carol": {"zones": "example.com"}}  # not a list: her zones cannot be read
    with openid_provider(tmp_path, clients=[web_client(CLIENT_ID, CLIENT_SECRET, GATEWAY_URL)],
                         accounts=accounts) as issuer:
        yield issuer


def test_sign_in_returns_to_the_consent_page_with_the_zones_the_id_token_claims(tmp_path, provider):
    gateway = oidc_gateway(tmp_path, provider)
    with gateway.client() as client, httpx.Client() as browser:
        started = client.get(APPLY, params=PARAMS)
        assert started.status_code == 303 and started.headers["location"].startswith("/login?next=")
        to_provider = client.get(started.headers["location"])
        assert to_provider.status_code == 302 and to_provider.headers["location"].startswith(f"{provider}/auth?")
        asked = authorization_of(to_provider.headers["location"])
        assert asked.redirect_uri == f"{GATEWAY_URL}/login/callback"
        callback = sign_in_at_provider(browser, to_provider.headers["location"], "alice", GATEWAY_URL)
        back = client.get(callback.removeprefix(GATEWAY_URL))
        assert back.status_code == 303
        assert back.headers["location"] == f"{APPLY}?domain=example.com&ip=192.0.2.80&token=abc123"
        consent = client.get(back.headers["location"])
        assert consent.status_code == 200 and "192.0.2.80" in consent.text
        assert "<strong>example.com</strong>" in client.get("/").text
        # other.com is bob's at the provider: alice is refused it.
        other = client.get(APPLY, params={**PARAMS, "domain": "other.com"})
        assert other.status_code == 403 and "cannot manage" in other.text


def test_a_zones_claim_that_is_not_a_list_lets_nobody_control_anything(tmp_path, provider):
    gateway = oidc_gateway(tmp_path, provider)
    with gateway.client() as client, httpx.Client() as browser, collected("gateway.web.auth.zones") as logs:
        to_provider = client.get("/login", params={"next": "/"})
        client.get(sign_in_at_provider(browser, to_provider.headers["location"], "carol", GATEWAY_URL)
                   .removeprefix(GATEWAY_URL))
        assert signed_in_as(client) == "carol"
        assert "could not be checked" in client.get("/").text
        refused = client.get(APPLY, params=PARAMS)
    assert refused.status_code == 503 and "could not be checked" in refused.text
    assert "192.0.2.80" not in gateway.zone_text()
    assert any("'zones' claim" in message and "list" in message for message in logs.lines)


def test_sign_out_ends_the_session_and_the_providers(tmp_path, provider):
    gateway = oidc_gateway(tmp_path, provider)
    with gateway.client() as client, httpx.Client() as browser:
        to_provider = client.get("/login", params={"next": "/"})
        client.get(sign_in_at_provider(browser, to_provider.headers["location"], "alice", GATEWAY_URL)
                   .removeprefix(GATEWAY_URL))
        assert signed_in_as(client) == "alice"
        out = client.post("/logout", data={"csrf_token": csrf_of(client.get("/").text)})
        assert signed_in_as(client) is None
    assert out.status_code == 303
    logout = urlsplit(out.headers["location"])
    assert f"{logout.scheme}://{logout.netloc}" == provider and logout.path == "/session/end"
    query = parse_qs(logout.query)
    assert query["client_id"] == [CLIENT_ID] and query["post_logout_redirect_uri"] == [f"{GATEWAY_URL}/"]
    # The provider accepts that logout request: it asks the user to confirm, rather than an error.
    confirm = browser_get(out.headers["location"])
    assert confirm.status_code == 200 and "logout" in confirm.text.lower()


def browser_get(url: str) -> httpx.Response:
    with httpx.Client() as browser:
        return browser.get(url)


# --- ID tokens the gateway refuses ----------------------------------------------------------


@pytest.fixture
def minting():
    with minting_provider() as provider:
        yield provider


def start_sign_in(client, provider, next_path: str = "/"):
    """/login sends the browser to the provider; the provider will accept a code for that request."""
    location = client.get("/login", params={"next": next_path}).headers["location"]
    assert location.startswith(f"{provider.issuer}/authorize?")
    asked = authorization_of(location)
    provider.code_challenges[f"code-{asked.state}"] = asked.code_challenge
    return asked


def finish_sign_in(client, asked, **extra):
    return client.get("/login/callback", params={"code": f"code-{asked.state}", "state": asked.state,
                                                 **extra})


def test_a_well_formed_id_token_signs_in_over_pkce_and_client_authentication(tmp_path, minting):
    gateway = oidc_gateway(tmp_path, minting.issuer)
    with gateway.client() as client:
        asked = start_sign_in(client, minting, "/authorizations")
        minting.id_token = minting.mint(nonce=asked.nonce, zones=["example.com"])
        answer = finish_sign_in(client, asked)
        assert answer.status_code == 303 and answer.headers["location"] == "/authorizations"
        assert signed_in_as(client) == "alice"
    request = minting.token_requests[-1]
    assert request["grant_type"] == "authorization_code" and request["redirect_uri"] == f"{GATEWAY_URL}/login/callback"
    assert request["code_verifier"]  # and the provider checked it against the S256 challenge


def test_the_username_can_come_from_another_claim(tmp_path, minting):
    gateway = oidc_gateway(tmp_path, minting.issuer, auth='username_claim = "preferred_username"')
    with gateway.client() as client, collected("gateway.web.auth.oidc") as logs:
        asked = start_sign_in(client, minting)
        minting.id_token = minting.mint(nonce=asked.nonce, preferred_username="alice@example.com")
        assert finish_sign_in(client, asked).status_code == 303
        assert signed_in_as(client) == "alice@example.com"
        client.post("/logout", data={"csrf_token": csrf_of(client.get("/").text)})
        asked = start_sign_in(client, minting)
        minting.id_token = minting.mint(nonce=asked.nonce)  # names nobody in that claim
        refused(client, finish_sign_in(client, asked), logs, "preferred_username")


def test_signing_in_again_revokes_grants_on_zones_the_claim_no_longer_lists(tmp_path, minting):
    gateway = oidc_gateway(tmp_path, minting.issuer, zones=("example.com", "other.com", "third.com"))
    store = gateway.app.state.runtime.store
    store.add_client("provider.example", ["https://app.provider.example/cb"])
    for domain in ("example.com", "other.com"):
        store.create_grant("provider.example", "alice", domain, [""], ["hosting"], "https://app.provider.example/cb")
    with gateway.client() as client:
        asked = start_sign_in(client, minting)
        minting.id_token = minting.mint(nonce=asked.nonce, zones=["other.com", "third.com"])
        assert finish_sign_in(client, asked).status_code == 303
    assert [grant.domain for grant in store.grants_of("alice")] == ["other.com"]


def test_zones_listed_in_the_config_for_users_of_the_provider(tmp_path, minting):
    gateway = oidc_gateway(tmp_path, minting.issuer, zone_source='source = "config"', scopes=("openid",),
                           auth='[[auth.users]]\nusername = "alice"\nzones = ["example.com"]\n')
    with gateway.client() as client:
        asked = start_sign_in(client, minting)
        minting.id_token = minting.mint(nonce=asked.nonce, zones=["other.com"])  # not the source: ignored
        assert finish_sign_in(client, asked).status_code == 303
        assert client.get(APPLY, params=PARAMS).status_code == 200
        assert client.get(APPLY, params={**PARAMS, "domain": "other.com"}).status_code == 403


def sign_in_and_out(client, minting):
    """A whole sign-in with a good ID token, then sign-out: what an attacker may have captured."""
    asked = start_sign_in(client, minting)
    minting.id_token = minting.mint(nonce=asked.nonce)
    assert finish_sign_in(client, asked).status_code == 303
    client.post("/logout", data={"csrf_token": csrf_of(client.get("/").text)})
    return asked


def refused(client, answer, logs, reason: str) -> None:
    assert answer.status_code in (400, 401), answer.text
    assert "Sign-in failed" in answer.text and "location" not in answer.headers
    assert signed_in_as(client) is None
    assert any(reason in message for message in logs.lines), logs.lines


def tampered(minting, nonce: str) -> str:
    """alice's token with its claims rewritten to mallory's, the signature kept."""
    header, payload, signature = minting.mint(nonce=nonce, zones=["example.com"]).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(sub="mallory", zones=["other.com"])
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def unsigned(minting, nonce: str) -> str:
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    return f"{none_header}.{minting.mint(nonce=nonce).split('.')[1]}."


def expired(minting, nonce: str) -> str:
    now = int(time.time())
    return minting.mint(nonce=nonce, iat=now - 1200, exp=now - 600)


REFUSED_TOKENS = [
    pytest.param(tampered, "BadSignatureError", id="tampered"),
    pytest.param(lambda minting, nonce: minting.mint(key=RSAKey.generate_key(2048, {"kid": "test-key"}), nonce=nonce),
                 "BadSignatureError", id="signed-by-a-key-not-in-the-jwks"),
    pytest.param(unsigned, "ID token refused", id="unsigned"),
    pytest.param(lambda minting, nonce: minting.mint(nonce=nonce, aud="another-client"), "aud", id="wrong-audience"),
    pytest.param(lambda minting, nonce: minting.mint(nonce=nonce, iss="https://id.attacker.example"), "iss",
                 id="another-issuer"),
    pytest.param(lambda minting, nonce: minting.mint(), "nonce", id="no-nonce"),
    pytest.param(expired, "ExpiredTokenError", id="expired"),
]


@pytest.mark.parametrize("make_token, reason", REFUSED_TOKENS)
def test_an_id_token_that_fails_a_check_signs_nobody_in(tmp_path, minting, make_token, reason):
    gateway = oidc_gateway(tmp_path, minting.issuer)
    with gateway.client() as client, collected("gateway.web.auth.oidc") as logs:
        asked = start_sign_in(client, minting)
        minting.id_token = make_token(minting, asked.nonce)
        refused(client, finish_sign_in(client, asked), logs, reason)


def test_a_replayed_nonce_is_refused(tmp_path, minting):
    """An ID token captured from an earlier sign-in, presented to answer a new one."""
    gateway = oidc_gateway(tmp_path, minting.issuer)
    with gateway.client() as client, collected("gateway.web.auth.oidc") as logs:
        first = sign_in_and_out(client, minting)
        captured = minting.id_token
        second = start_sign_in(client, minting)
        assert second.nonce != first.nonce
        minting.id_token = captured
        refused(client, finish_sign_in(client, second), logs, "nonce")


def test_a_callback_cannot_be_replayed_nor_forged(tmp_path, minting):
    gateway = oidc_gateway(tmp_path, minting.issuer)
    with gateway.client() as client, collected("gateway.web.auth.oidc") as logs:
        asked = sign_in_and_out(client, minting)
        refused(client, finish_sign_in(client, asked), logs, "mismatching_state")
    with gateway.client() as stranger, collected("gateway.web.auth.oidc") as logs:  # a session that never started it
        refused(stranger, finish_sign_in(stranger, asked), logs, "mismatching_state")


def test_an_answer_naming_another_issuer_is_refused_before_the_code_is_used(tmp_path, minting):
    gateway = oidc_gateway(tmp_path, minting.issuer)
    with gateway.client() as client, collected("gateway.web.auth.oidc") as logs:
        asked = start_sign_in(client, minting)
        minting.id_token = minting.mint(nonce=asked.nonce)
        refused(client, finish_sign_in(client, asked, iss="https://id.attacker.example"), logs, "issuer")
    assert minting.token_requests == []


def test_a_discovery_document_for_another_issuer_is_refused(tmp_path, minting, monkeypatch):
    gateway = oidc_gateway(tmp_path, minting.issuer)
    monkeypatch.setattr(minting, "discovery", lambda: {"issuer": "https://id.attacker.example"})
    with gateway.client() as client, collected("gateway.web.auth.oidc") as logs:
        page = client.get("/login", params={"next": "/"})
    assert page.status_code == 502 and "location" not in page.headers
    assert any("id.attacker.example" in message for message in logs.lines)


def test_a_discovery_document_with_plain_http_endpoints_is_refused(tmp_path, minting, monkeypatch):
    gateway = oidc_gateway(tmp_path, minting.issuer)
    document = minting.discovery()
    monkeypatch.setattr(minting, "discovery", lambda: {**document, "token_endpoint": "http://id.example.net/token"})
    with gateway.client() as client, collected("gateway.web.auth.oidc") as logs:
        page = client.get("/login", params={"next": "/"})
    assert page.status_code == 502 and "location" not in page.headers
    assert any("token_endpoint" in message and "https" in message for message in logs.lines)


def test_an_unreachable_provider_is_a_clear_page(tmp_path):
    gateway = oidc_gateway(tmp_path, "http://127.0.0.1:9")  # discard port: nothing listens
    with gateway.client() as client:
        page = client.get("/login", params={"next": "/"})
    assert page.status_code == 503 and "cannot be reached" in page.text


def test_the_provider_refusing_the_sign_in_signs_nobody_in(tmp_path, minting):
    gateway = oidc_gateway(tmp_path, minting.issuer)
    with gateway.client() as client:
        start_sign_in(client, minting)
        page = client.get("/login/callback", params={"error": "access_denied", "state": "x"})
        assert page.status_code == 401 and signed_in_as(client) is None


# --- configuration --------------------------------------------------------------------------


def config_error(tmp_path, issuer: str, **kwargs) -> str:
    with pytest.raises(ConfigError) as raised:
        gateway_config = oidc_gateway_config(tmp_path, issuer, **kwargs)
        Runtime.from_config(gateway_config).close()
    return str(raised.value)


def oidc_gateway_config(tmp_path, issuer: str, *, extra: str = "", auth: str = "", zones: str = 'source = "claim"'):
    path = tmp_path / "oidc.toml"
    path.write_text(f"""
[gateway]
base_url = "https://dc.test"
{extra}
[database]
url = "sqlite:///state.sqlite"
[auth]
driver = "oidc"
issuer = "{issuer}"
client_id = "dcgw"
{auth}
[auth.zones]
{zones}
""")
    return load_config(path)


def test_an_http_issuer_needs_loopback_or_development_mode(tmp_path):
    secret = 'client_secret = "s"'
    message = config_error(tmp_path, "http://id.example.net", auth=secret)
    assert "auth.issuer" in message and "https" in message
    for issuer, extra in (("http://id.example.net", "development = true"), ("http://127.0.0.1:8443", ""),
                          ("https://id.example.net", "")):
        Runtime.from_config(oidc_gateway_config(tmp_path, issuer, extra=extra, auth=secret)).close()


def test_the_client_secret_comes_from_the_environment_or_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_OIDC_SECRET", "from-the-environment")
    runtime = Runtime.from_config(oidc_gateway_config(tmp_path, "https://id.example.net",
                                                      auth='client_secret = "env:TEST_OIDC_SECRET"'))
    assert runtime.authenticator.client.client_secret == "from-the-environment"
    runtime.close()
    (tmp_path / "secret").write_text("from-a-file\n")
    runtime = Runtime.from_config(oidc_gateway_config(tmp_path, "https://id.example.net",
                                                      auth=f'client_secret = "file:{tmp_path / "secret"}"'))
    assert runtime.authenticator.client.client_secret == "from-a-file"
    runtime.close()
    assert "auth.client_secret" in config_error(tmp_path, "https://id.example.net",
                                                auth=f'client_secret = "file:{tmp_path / "missing"}"')
    assert "auth.client_secret" in config_error(tmp_path, "https://id.example.net")


@pytest.mark.parametrize("auth, zones, key", [
    ('client_secret = "s"\nscopes = ["profile"]', 'source = "claim"', "auth.scopes"),
    ('client_secret = "s"\nusername_claim = 7', 'source = "claim"', "auth.username_claim"),
    ('client_secret = "s"\ntimeout = 0', 'source = "claim"', "auth.timeout"),
    ('client_secret = "s"\nsecret = "typo"', 'source = "claim"', "auth.secret"),
    ('client_secret = "s"', 'source = "panel"', "auth.zones.source"),
    ('client_secret = "s"', 'source = "url"', "auth.zones.url"),
    ('client_secret = "s"', 'source = "url"\nurl = "https://panel.internal/zones"', "auth.zones.url"),
    ('client_secret = "s"', 'source = "url"\nurl = "http://panel.internal/{user}"', "auth.zones.url"),
    ('client_secret = "s"', 'source = "url"\nurl = "https://p/{user}"\ncache_seconds = -1', "auth.zones.cache_seconds"),
    ('client_secret = "s"', 'source = "claim"\nurl = "https://p/{user}"', "auth.zones.url"),
])
def test_configuration_mistakes_name_the_key(tmp_path, auth, zones, key):
    assert key in config_error(tmp_path, "https://id.example.net", auth=auth, zones=zones)


def test_the_local_driver_cannot_take_zones_from_a_claim(tmp_path):
    path = tmp_path / "local.toml"
    path.write_text('[auth]\ndriver = "local"\n[auth.zones]\nsource = "claim"\n')
    with pytest.raises(ConfigError, match="auth.zones.source"):
        Runtime.from_config(load_config(path))


def test_sign_in_failures_are_logged_without_tokens(tmp_path, minting, caplog):
    gateway = oidc_gateway(tmp_path, minting.issuer)
    with caplog.at_level(logging.INFO), gateway.client() as client:
        asked = start_sign_in(client, minting)
        minting.id_token = minting.mint(nonce=asked.nonce, aud="another-client")
        finish_sign_in(client, asked)
    assert minting.id_token not in caplog.text and CLIENT_SECRET not in caplog.text


def test_a_claim_listing_more_zones_than_a_session_keeps_lets_nobody_control_anything(tmp_path, minting):
    gateway = oidc_gateway(tmp_path, minting.issuer)
    with gateway.client() as client:
        asked = start_sign_in(client, minting)
        many = ["example.com", *(f"zone{n}.example" for n in range(150))]
        minting.id_token = minting.mint(nonce=asked.nonce, zones=many)
        assert finish_sign_in(client, asked).status_code == 303
        assert signed_in_as(client) == "alice"
        assert client.get(APPLY, params=PARAMS).status_code == 503
        assert len(client.cookies.get("dcgw_session", "")) < 4096
