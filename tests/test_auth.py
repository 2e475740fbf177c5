"""Sign-in: the local and header authenticators, the login and logout pages, the session cookie."""

from __future__ import annotations

import base64
import json
import re
import socket
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import httpx
import itsdangerous
import pytest
import uvicorn
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient

import gateway.web.ui
from gateway.infra.config import Config, ConfigError, load_config
from gateway.state import StateStore
from gateway.web.auth import load_authenticator
from gateway.web.auth.header import HeaderAuthenticator
from gateway.web.auth.local import LocalAuthenticator
from gateway.web.auth.routes import WRONG_CREDENTIALS, login_redirect, login_routes, safe_next
from gateway.web.auth.session import SessionLoader, current_user

# Cheap parameters keep the tests fast; the production default is the library's.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
ALICE_PASSWORD = "correct horse battery staple"
BOB_PASSWORD = "hunter2-but-longer"
SECRET = "test-session-secret-0123456789abcdef"
TRUSTED_PROXY = ("127.0.0.1", 50000)
OUTSIDER = ("203.0.113.9", 50000)


# -- the app under test ---------------------------------------------------------------------------

def write_config(tmp_path: Path, auth: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(f"""\
        [gateway]
        provider_name = "Example DNS"
        session_secret = "{SECRET}"
        control_panel_url = "https://portal.example.net/"
        """) + textwrap.dedent(auth))
    return load_config(path)


def local_auth(alice_zones: str = '["example.com"]') -> str:
    return f"""
        [auth]
        driver = "local"

        [[auth.users]]
        username = "alice"
        password_hash = "{FAST_HASHER.hash(ALICE_PASSWORD)}"
        zones = {alice_zones}

        [[auth.users]]
        username = "bob"
        password_hash = "{FAST_HASHER.hash(BOB_PASSWORD)}"
        zones = ["*"]
        """


HEADER_AUTH = """
    [auth]
    driver = "header"
    trusted_proxies = ["127.0.0.1", "10.1.0.0/16"]

    [[auth.users]]
    username = "carol"
    password_hash = "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcA"
    zones = ["config.example"]
    """


async def whoami(request: Request) -> Response:
    """A page that needs a signed-in user, as the consent pages do."""
    user = current_user(request)
    if user is None:
        return login_redirect(request)
    return PlainTextResponse(f"{user.username} {','.join(user.zones)}")


def build_app(config: Config) -> Starlette:
    routes = [*login_routes(), Route("/whoami", whoami),
              Mount("/static", StaticFiles(directory=gateway.web.ui.STATIC_DIR), name="static")]
    if hasattr(gateway.web.ui, "brand_css"):  # the layout links the brand colours when the app serves them
        routes.append(Route("/brand.css", gateway.web.ui.brand_css, name="brand_css"))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SessionMiddleware, secret_key=config.gateway.signing_secret(),
                               https_only=False, same_site="lax"), Middleware(SessionLoader)],
    )
    # Sessions and the sign-in throttle live in the state store (SQLite beside the config).
    app.state.runtime = SimpleNamespace(config=config, authenticator=load_authenticator(config.auth),
                                        store=StateStore.open(config.database.url))
    return app


def client_for(app: Starlette, peer: tuple[str, int] = ("127.0.0.1", 40000)) -> TestClient:
    return TestClient(app, follow_redirects=False, client=peer)


@pytest.fixture
def local_app(tmp_path: Path) -> Starlette:
    return build_app(write_config(tmp_path, local_auth()))


@pytest.fixture
def client(local_app: Starlette) -> TestClient:
    return client_for(local_app)


@pytest.fixture
def header_app(tmp_path: Path) -> Starlette:
    return build_app(write_config(tmp_path, HEADER_AUTH))


def form_token(page_html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page_html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def hidden_next(page_html: str) -> str:
    match = re.search(r'name="next" value="([^"]*)"', page_html)
    assert match, "the page has no next field"
    return match.group(1)


def log_in(client: TestClient, username: str, password: str, next_path: str = "/whoami") -> Response:
    token = form_token(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token,
                                       "next": next_path})


def signed_in_as(client: TestClient) -> str | None:
    response = client.get("/whoami")
    return response.text if response.status_code == 200 else None


# -- the login form -------------------------------------------------------------------------------

def test_login_form_has_labelled_fields_and_a_csrf_token(client: TestClient) -> None:
    response = client.get("/login", params={"next": "/whoami"})
    assert response.status_code == 200
    html = response.text
    assert '<label for="username">' in html and 'id="username"' in html
    assert '<label for="password">' in html and 'id="password"' in html and 'type="password"' in html
    assert form_token(html)
    assert hidden_next(html) == "/whoami"
    assert '<form method="post" action="/login"' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # no inline script; the page works without JavaScript
    assert response.headers["cache-control"] == "no-store"


def test_login_success_sets_an_httponly_samesite_session_cookie(client: TestClient) -> None:
    response = log_in(client, "alice", ALICE_PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/whoami"
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith("session=")
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert signed_in_as(client) == "alice example.com"


def test_the_session_cookie_carries_only_a_session_id(client: TestClient) -> None:
    log_in(client, "alice", ALICE_PASSWORD)
    payload = client.cookies["session"].split(".")[0]
    session = json.loads(base64.b64decode(payload))
    assert set(session) == {"sid"} and len(session["sid"]) >= 40
    assert "alice" not in json.dumps(session) and ALICE_PASSWORD not in json.dumps(session)


def test_wrong_password_is_refused_with_401(client: TestClient) -> None:
    response = log_in(client, "alice", "not the password")
    assert response.status_code == 401
    assert WRONG_CREDENTIALS in response.text
    assert 'value="alice"' in response.text  # the username is kept, the password is not
    assert "not the password" not in response.text
    assert signed_in_as(client) is None


def test_unknown_user_is_refused_with_the_same_message(client: TestClient, local_app: Starlette) -> None:
    unknown = log_in(client, "mallory", ALICE_PASSWORD)
    wrong_password = log_in(client_for(local_app), "alice", "nope")
    assert unknown.status_code == wrong_password.status_code == 401

    def message(html: str) -> str:
        return re.search(r'role="alert"[^>]*>([^<]*)<', html).group(1)

    assert message(unknown.text) == message(wrong_password.text) == WRONG_CREDENTIALS
    assert signed_in_as(client) is None


class CountingHasher:
    """The real hasher, remembering which hashes it verified."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher
        self.verified: list[str] = []

    def verify(self, stored_hash: str, password: str) -> bool:
        self.verified.append(stored_hash)
        return self.hasher.verify(stored_hash, password)


def test_unknown_user_costs_one_password_verification(local_app: Starlette) -> None:
    authenticator = local_app.state.runtime.authenticator
    authenticator.hasher = counting = CountingHasher(authenticator.hasher)
    assert authenticator.authenticate("mallory", "whatever") is None
    assert counting.verified == [authenticator.dummy_hash]
    # the dummy costs what a configured hash costs: same algorithm, version and parameters
    alice_hash = authenticator.users["alice"].password_hash
    assert authenticator.dummy_hash.split("$")[:4] == alice_hash.split("$")[:4]


def test_empty_password_is_refused(client: TestClient) -> None:
    response = log_in(client, "alice", "")
    assert response.status_code == 401
    assert signed_in_as(client) is None


def test_username_is_escaped_when_the_form_is_shown_again(client: TestClient) -> None:
    response = log_in(client, '"><script>alert(1)</script>', "x")
    assert response.status_code == 401
    assert "<script>alert(1)" not in response.text
    assert "&#34;&gt;&lt;script&gt;" in response.text or "&quot;&gt;&lt;script&gt;" in response.text


# -- CSRF -----------------------------------------------------------------------------------------

def test_login_without_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "alice", "password": ALICE_PASSWORD, "next": "/whoami"})
    assert response.status_code == 403
    assert "expired" in response.text
    assert "set-cookie" not in response.headers or "user" not in response.headers["set-cookie"]
    assert signed_in_as(client) is None


def test_login_with_a_wrong_csrf_token_is_refused(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "alice", "password": ALICE_PASSWORD,
                                           "csrf_token": "forged-token", "next": "/whoami"})
    assert response.status_code == 403
    assert signed_in_as(client) is None


def test_login_with_a_token_from_another_session_is_refused(local_app: Starlette) -> None:
    attacker, victim = client_for(local_app), client_for(local_app)
    attackers_token = form_token(attacker.get("/login").text)
    victim.get("/login")
    response = victim.post("/login", data={"username": "alice", "password": ALICE_PASSWORD,
                                           "csrf_token": attackers_token})
    assert response.status_code == 403
    assert signed_in_as(victim) is None


def test_login_without_any_session_is_refused(client: TestClient) -> None:
    # a cross-site form post arrives without the victim ever having loaded the form
    response = client.post("/login", data={"username": "alice", "password": ALICE_PASSWORD, "csrf_token": ""})
    assert response.status_code == 403
    assert signed_in_as(client) is None


def test_sign_in_replaces_the_csrf_token(client: TestClient) -> None:
    token_before = form_token(client.get("/login").text)
    log_in(client, "alice", ALICE_PASSWORD)
    response = client.post("/logout", data={"csrf_token": token_before})
    assert response.status_code == 403
    assert signed_in_as(client) == "alice example.com"


# -- logout ---------------------------------------------------------------------------------------

def test_logout_signs_out(client: TestClient) -> None:
    log_in(client, "alice", ALICE_PASSWORD)
    token = form_token(client.get("/login").text)
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert signed_in_as(client) is None


def test_logout_without_csrf_token_is_refused(client: TestClient) -> None:
    log_in(client, "alice", ALICE_PASSWORD)
    response = client.post("/logout", data={})
    assert response.status_code == 403
    assert signed_in_as(client) == "alice example.com"


def test_logout_by_get_is_not_allowed(client: TestClient) -> None:
    log_in(client, "alice", ALICE_PASSWORD)
    assert client.get("/logout").status_code == 405
    assert signed_in_as(client) == "alice example.com"


# -- where the login goes next --------------------------------------------------------------------

OPEN_REDIRECTS = [
    "//evil.com",
    "/\\evil.com",
    "https://evil.com",
    "http:/evil.com",
    "javascript:alert(1)",
    "/\t/evil.com",
    "/\n/evil.com",
    "\\\\evil.com",
    "evil.com",
    "///evil.com",
    " //evil.com",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_open_redirect_in_next_lands_on_root(client: TestClient, target: str) -> None:
    response = log_in(client, "alice", ALICE_PASSWORD, next_path=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_percent_encoded_slashes_in_the_query_are_decoded_and_refused(client: TestClient) -> None:
    # /login?next=/%2F%2Fevil.com arrives as "///evil.com"
    page = client.get("/login?next=/%2F%2Fevil.com").text
    assert hidden_next(page) == "/"
    response = log_in(client, "alice", ALICE_PASSWORD, next_path=hidden_next(page))
    assert response.headers["location"] == "/"


@pytest.mark.parametrize("target", ["//evil.com", "/\\evil.com", "https://evil.com"])
def test_open_redirect_in_the_login_link_is_not_put_in_the_form(client: TestClient, target: str) -> None:
    page = client.get("/login", params={"next": target}).text
    assert hidden_next(page) == "/"


@pytest.mark.parametrize("target", ["/", "/whoami", "/v2/domainTemplates/providers/x/services/y/apply?domain=a.com&k=v",
                                    "/%2F%2Fevil.com"])
def test_local_paths_are_kept(target: str) -> None:
    # "/%2F%2Fevil.com" as a literal path is a page of this site: browsers do not decode it into a host
    assert safe_next(target) == target


def test_non_ascii_next_lands_on_root() -> None:
    assert safe_next("/caf\u00e9") == "/"


def test_login_redirect_keeps_the_query_string(client: TestClient) -> None:
    response = client.get("/whoami?domain=example.com&redirect_uri=https%3A%2F%2Fsp.example%2Fback&state=a%20b")
    assert response.status_code == 303
    location = response.headers["location"]
    wanted = "/whoami?domain=example.com&redirect_uri=https%3A%2F%2Fsp.example%2Fback&state=a%20b"
    assert location == "/login?next=" + quote(wanted, safe="")
    page = client.get(location).text
    assert hidden_next(page) == wanted.replace("&", "&amp;")
    token = form_token(page)
    done = client.post("/login", data={"username": "alice", "password": ALICE_PASSWORD, "csrf_token": token,
                                       "next": wanted})
    assert done.headers["location"] == wanted


# -- the session cookie ---------------------------------------------------------------------------

def test_tampered_session_cookie_is_not_accepted(client: TestClient) -> None:
    log_in(client, "alice", ALICE_PASSWORD)
    payload, timestamp, signature = client.cookies["session"].split(".")
    session = json.loads(base64.b64decode(payload))
    session["user"] = "bob"  # bob controls every zone
    forged = base64.b64encode(json.dumps(session).encode()).decode()
    client.cookies.set("session", f"{forged}.{timestamp}.{signature}")
    assert signed_in_as(client) is None


def test_session_cookie_signed_with_another_secret_is_not_accepted(client: TestClient) -> None:
    data = base64.b64encode(json.dumps({"user": "bob", "csrf": "x"}).encode())
    forged = itsdangerous.TimestampSigner("guessed-secret").sign(data).decode()
    client.cookies.set("session", forged)
    assert signed_in_as(client) is None


def test_session_cookie_with_a_flipped_signature_byte_is_not_accepted(client: TestClient) -> None:
    log_in(client, "alice", ALICE_PASSWORD)
    cookie = client.cookies["session"]
    client.cookies.set("session", cookie[:-1] + ("A" if cookie[-1] != "A" else "B"))
    assert signed_in_as(client) is None


# -- the local authenticator ----------------------------------------------------------------------

def test_user_named_reflects_the_config(tmp_path: Path) -> None:
    authenticator = load_authenticator(write_config(tmp_path, local_auth('["Example.COM.", "example.net"]')).auth)
    assert isinstance(authenticator, LocalAuthenticator)
    alice = authenticator.user_named("alice")
    assert alice.zones == ("example.com", "example.net")
    assert alice.controls("example.net") and not alice.controls("example.org")
    assert authenticator.user_named("bob").controls("anything.example")
    assert authenticator.user_named("mallory") is None


def test_a_signed_in_user_sees_zones_changed_in_the_config(tmp_path: Path, local_app: Starlette) -> None:
    client = client_for(local_app)
    log_in(client, "alice", ALICE_PASSWORD)
    reloaded = write_config(tmp_path, local_auth('["example.org"]'))
    local_app.state.runtime.authenticator = load_authenticator(reloaded.auth)
    assert signed_in_as(client) == "alice example.org"


def test_a_user_removed_from_the_config_is_signed_out(tmp_path: Path, local_app: Starlette) -> None:
    client = client_for(local_app)
    log_in(client, "alice", ALICE_PASSWORD)
    without_alice = write_config(tmp_path, f"""
        [[auth.users]]
        username = "bob"
        password_hash = "{FAST_HASHER.hash(BOB_PASSWORD)}"
        """)
    local_app.state.runtime.authenticator = load_authenticator(without_alice.auth)
    assert signed_in_as(client) is None


def test_authenticate_returns_the_users_zones(local_app: Starlette) -> None:
    authenticator = local_app.state.runtime.authenticator
    assert authenticator.authenticate("alice", ALICE_PASSWORD).zones == ("example.com",)
    assert authenticator.authenticate("alice", ALICE_PASSWORD.upper()) is None
    assert authenticator.authenticate("Alice", ALICE_PASSWORD) is None  # usernames are exact


NOT_ARGON2 = [
    "plaintext-password",
    "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  # bcrypt
    "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$",  # no hash part
    "$argon2id$v=19$m=65536,t=3,p=4$!!!!!!!!!!!!$@@@@@@@@@@@@@@@@@@@@@@",  # not base64
]


@pytest.mark.parametrize("bad_hash", NOT_ARGON2)
def test_a_password_hash_that_is_not_argon2_is_a_config_error(tmp_path: Path, bad_hash: str) -> None:
    config = write_config(tmp_path, f"""
        [[auth.users]]
        username = "alice"
        password_hash = "{FAST_HASHER.hash(ALICE_PASSWORD)}"

        [[auth.users]]
        username = "bob"
        password_hash = '{bad_hash}'
        """)
    with pytest.raises(ConfigError, match=r"auth\.users\[1\]\.password_hash: not an argon2 PHC string"):
        LocalAuthenticator(config.auth)


def test_local_driver_refuses_unknown_auth_keys(tmp_path: Path) -> None:
    config = write_config(tmp_path, """
        [auth]
        driver = "local"
        trusted_proxies = ["127.0.0.1"]
        """)
    with pytest.raises(ConfigError, match=r"auth\.trusted_proxies: unknown key for the local driver"):
        load_authenticator(config.auth)


def test_local_driver_with_no_users_refuses_everyone(tmp_path: Path) -> None:
    authenticator = load_authenticator(write_config(tmp_path, "[auth]\ndriver = \"local\"\n").auth)
    assert authenticator.authenticate("alice", ALICE_PASSWORD) is None


# -- the header authenticator ---------------------------------------------------------------------

def test_header_from_a_trusted_proxy_signs_the_user_in(header_app: Starlette) -> None:
    client = client_for(header_app, TRUSTED_PROXY)
    response = client.get("/whoami", headers={"X-Forwarded-User": "dave",
                                               "X-Forwarded-Zones": "Example.com, example.net."})
    assert response.status_code == 200
    assert response.text == "dave example.com,example.net"


def test_header_from_a_trusted_network_signs_the_user_in(header_app: Starlette) -> None:
    client = client_for(header_app, ("10.1.200.3", 443))
    assert client.get("/whoami", headers={"X-Forwarded-User": "dave"}).text == "dave "


def test_header_from_an_ipv4_mapped_ipv6_peer_is_trusted(header_app: Starlette) -> None:
    client = client_for(header_app, ("::ffff:127.0.0.1", 50000))
    assert client.get("/whoami", headers={"X-Forwarded-User": "dave"}).status_code == 200


def test_header_from_an_untrusted_address_is_ignored(header_app: Starlette) -> None:
    # the spoofing attack: a client talks to the gateway directly and names itself
    client = client_for(header_app, OUTSIDER)
    response = client.get("/whoami", headers={"X-Forwarded-User": "carol", "X-Forwarded-Zones": "victim.example"})
    assert response.status_code == 401
    assert "portal" in response.text
    assert "https://portal.example.net/" in response.text


def test_forwarded_for_does_not_make_an_untrusted_peer_trusted(header_app: Starlette) -> None:
    client = client_for(header_app, OUTSIDER)
    response = client.get("/whoami", headers={"X-Forwarded-User": "carol", "X-Forwarded-For": "127.0.0.1",
                                              "X-Real-IP": "127.0.0.1", "Forwarded": "for=127.0.0.1"})
    assert response.status_code == 401


def test_header_from_a_peer_that_is_not_an_ip_address_is_ignored(header_app: Starlette) -> None:
    client = client_for(header_app, ("testclient", 50000))
    assert client.get("/whoami", headers={"X-Forwarded-User": "carol"}).status_code == 401


def test_configured_zones_are_added_to_the_header_zones(header_app: Starlette) -> None:
    client = client_for(header_app, TRUSTED_PROXY)
    response = client.get("/whoami", headers={"X-Forwarded-User": "carol", "X-Forwarded-Zones": "example.com"})
    assert response.text == "carol example.com,config.example"


def test_every_zone_cannot_be_granted_by_a_header(header_app: Starlette) -> None:
    client = client_for(header_app, TRUSTED_PROXY)
    response = client.get("/whoami", headers={"X-Forwarded-User": "dave",
                                               "X-Forwarded-Zones": "*, *.example, ok.example"})
    assert response.text == "dave ok.example"


def test_a_repeated_user_header_is_ignored(header_app: Starlette) -> None:
    client = client_for(header_app, TRUSTED_PROXY)
    response = client.get("/whoami", headers=[("X-Forwarded-User", "dave"), ("X-Forwarded-User", "carol")])
    assert response.status_code == 401


def test_an_empty_user_header_is_ignored(header_app: Starlette) -> None:
    client = client_for(header_app, TRUSTED_PROXY)
    assert client.get("/whoami", headers={"X-Forwarded-User": "  "}).status_code == 401


def test_a_session_cookie_does_not_sign_in_under_header_auth(header_app: Starlette) -> None:
    client = client_for(header_app, OUTSIDER)
    data = base64.b64encode(json.dumps({"user": "carol", "csrf": "x"}).encode())
    client.cookies.set("session", itsdangerous.TimestampSigner(SECRET).sign(data).decode())
    assert client.get("/whoami").status_code == 401


def test_login_form_is_not_offered_under_header_auth(header_app: Starlette) -> None:
    client = client_for(header_app, TRUSTED_PROXY)
    assert client.get("/login").status_code == 401
    response = client.post("/login", data={"username": "carol", "password": "x"})
    assert response.status_code == 401
    assert "portal" in response.text


def test_header_user_named_reflects_the_config(header_app: Starlette) -> None:
    authenticator = header_app.state.runtime.authenticator
    assert isinstance(authenticator, HeaderAuthenticator)
    assert authenticator.user_named("carol").zones == ("config.example",)
    assert authenticator.user_named("dave") is None


def test_custom_header_names(tmp_path: Path) -> None:
    app = build_app(write_config(tmp_path, """
        [auth]
        driver = "header"
        trusted_proxies = ["127.0.0.1"]
        user_header = "Remote-User"
        zones_header = "Remote-Zones"
        """))
    client = client_for(app, TRUSTED_PROXY)
    response = client.get("/whoami", headers={"Remote-User": "erin", "Remote-Zones": "a.example"})
    assert response.text == "erin a.example"
    assert client.get("/whoami", headers={"X-Forwarded-User": "erin"}).status_code == 401


def test_header_driver_needs_trusted_proxies(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[auth]\ndriver = "header"\n')
    with pytest.raises(ConfigError, match=r"auth\.trusted_proxies: is required"):
        load_authenticator(config.auth)


@pytest.mark.parametrize("value, key", [('["not-an-ip"]', r"auth\.trusted_proxies\[0\]"),
                                        ('["127.0.0.1", "10.0.0.0/33"]', r"auth\.trusted_proxies\[1\]"),
                                        ('"127.0.0.1"', r"auth\.trusted_proxies"),
                                        ("[]", r"auth\.trusted_proxies"),
                                        ("[127]", r"auth\.trusted_proxies\[0\]")])
def test_invalid_trusted_proxies_are_a_config_error(tmp_path: Path, value: str, key: str) -> None:
    config = write_config(tmp_path, f'[auth]\ndriver = "header"\ntrusted_proxies = {value}\n')
    with pytest.raises(ConfigError, match=key + ":"):
        load_authenticator(config.auth)


def test_header_driver_refuses_unknown_keys(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[auth]\ndriver = "header"\ntrusted_proxies = ["127.0.0.1"]\nuser_heder = "X"\n')
    with pytest.raises(ConfigError, match=r"auth\.user_heder: unknown key for the header driver"):
        load_authenticator(config.auth)


def test_header_driver_refuses_an_invalid_header_name(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[auth]\ndriver = "header"\ntrusted_proxies = ["127.0.0.1"]\n'
                                    'user_header = "X User"\n')
    with pytest.raises(ConfigError, match=r"auth\.user_header: must be an HTTP header name"):
        load_authenticator(config.auth)


# -- header auth over real sockets ----------------------------------------------------------------

@pytest.fixture
def header_server(tmp_path: Path):
    """The header-auth app under uvicorn on 127.0.0.1, trusting only the peer 127.0.0.1, run as
    `dcgw serve` runs it (no rewriting of the peer address from X-Forwarded-For)."""
    app = build_app(write_config(tmp_path, '[auth]\ndriver = "header"\ntrusted_proxies = ["127.0.0.1/32"]\n'))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", proxy_headers=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)
    listener.close()


def get_from(source_address: str, url: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source_address)
    with httpx.Client(transport=transport, timeout=10) as http:
        return http.get(url, headers=headers)


def test_real_socket_from_the_trusted_proxy_address_signs_in(header_server: str) -> None:
    response = get_from("127.0.0.1", header_server + "/whoami",
                        {"X-Forwarded-User": "dave", "X-Forwarded-Zones": "example.com"})
    assert response.status_code == 200
    assert response.text == "dave example.com"


def test_real_socket_from_another_address_cannot_spoof_the_user(header_server: str) -> None:
    # 127.0.0.2 plays a client that reaches the gateway around the proxy
    response = get_from("127.0.0.2", header_server + "/whoami",
                        {"X-Forwarded-User": "dave", "X-Forwarded-Zones": "example.com",
                         "X-Forwarded-For": "127.0.0.1", "Forwarded": "for=127.0.0.1"})
    assert response.status_code == 401
    assert "portal" in response.text


def test_a_repeated_zones_header_signs_nobody_in(header_app: Starlette) -> None:
    # A proxy that appends its header after the client's would otherwise grant the client's zones.
    client = client_for(header_app, TRUSTED_PROXY)
    response = client.get("/whoami", headers=[("X-Forwarded-User", "mallory"),
                                              ("X-Forwarded-Zones", "victim.example"),
                                              ("X-Forwarded-Zones", "mallory.example")])
    assert response.status_code == 401
