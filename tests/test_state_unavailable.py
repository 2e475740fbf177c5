"""When the state store cannot record an apply's intent, nothing is written to DNS, the API
answers 503 `temporarily_unavailable` and the sync flow shows a page that leads back to the
service provider; no path ends in a bare 500."""

from __future__ import annotations

import contextlib
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import create_engine, text
from starlette.testclient import TestClient

from gateway.infra.config import load_config
from gateway.web.app import create_app
from tests.gateway_app import build_gateway, consent_form, sign_in

APPLY = "/v2/domainTemplates/providers/provider.example/services/hosting/apply"
REDIRECT = "https://provider.example/done"
GOOD = {"domain": "example.com", "ip": "192.0.2.80", "token": "abc123"}


def gateway_with_short_timeout(tmp_path):
    gateway = build_gateway(tmp_path)
    path = gateway.config.path
    path.write_text(path.read_text().replace('url = "sqlite:///state.sqlite"',
                                             'url = "sqlite:///state.sqlite"\ntimeout = 0.5'))
    config = load_config(path)
    return gateway, create_app(config), tmp_path / "state.sqlite"


@contextlib.contextmanager
def database_held(path):
    """Another writer holds the SQLite database (readers still read)."""
    engine = create_engine(f"sqlite:///{path}", isolation_level=None)
    with engine.connect() as connection:
        connection.execute(text("BEGIN IMMEDIATE"))
        try:
            yield
        finally:
            connection.execute(text("ROLLBACK"))
    engine.dispose()


def test_api_apply_answers_503_json_and_writes_nothing(tmp_path):
    gateway, app, database = gateway_with_short_timeout(tmp_path)
    runtime = app.state.runtime
    runtime.store.add_client("provider.example", [REDIRECT])
    code = runtime.store.create_grant("provider.example", "alice", "example.com", [""], ["hosting"], REDIRECT)
    token = runtime.store.redeem_code(code, "provider.example", REDIRECT).access_token
    before = gateway.zone_text()
    with TestClient(app, base_url="https://dc.test") as client, database_held(database):
        answer = client.post(f"{APPLY}?domain=example.com&ip=192.0.2.80&token=abc",
                             headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 503
    assert answer.json()["code"] == "temporarily_unavailable" and "nothing was changed" in answer.json()["message"]
    assert gateway.zone_text() == before
    assert runtime.store.intents(status=None) == [] and runtime.store.instances() == []


def test_sync_confirm_shows_a_page_back_to_the_service_and_writes_nothing(tmp_path):
    gateway, app, database = gateway_with_short_timeout(tmp_path)
    before = gateway.zone_text()
    with TestClient(app, base_url="https://dc.test", follow_redirects=False) as client:
        assert sign_in(client).status_code == 303
        page = client.get(APPLY, params={**GOOD, "redirect_uri": "https://provider.example/back", "state": "s1"})
        assert page.status_code == 200, page.text
        with database_held(database):
            answer = client.post("/v2/sync/consent", data=consent_form(page.text), headers={"Accept": "text/html"})
    assert answer.status_code == 503
    assert "Try again in a moment" in answer.text and "nothing was changed" in answer.text
    link = answer.text.split('class="button" href="')[1].split('"')[0].replace("&amp;", "&")
    assert link.startswith("https://provider.example/back?")
    assert parse_qs(urlsplit(link).query)["error"] == ["temporarily_unavailable"]
    assert parse_qs(urlsplit(link).query)["state"] == ["s1"]
    assert gateway.zone_text() == before


def test_a_database_failure_anywhere_is_a_clear_503_not_a_bare_500(tmp_path):
    gateway, app, database = gateway_with_short_timeout(tmp_path)
    engine = create_engine(f"sqlite:///{database}", isolation_level=None)
    with TestClient(app, base_url="https://dc.test", raise_server_exceptions=False,
                    follow_redirects=False) as client:
        assert sign_in(client).status_code == 303
        # Another process takes the database for itself (the write-ahead log lets readers past
        # a mere writer, not past an exclusive locking mode), once the gateway's connections
        # are closed, as after a restart: nobody reads either.
        for opened in (gateway.app, app):
            opened.state.runtime.store.engine.dispose()
        with engine.connect() as connection:
            connection.execute(text("PRAGMA locking_mode=EXCLUSIVE"))
            connection.execute(text("BEGIN EXCLUSIVE"))
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            token = client.post("/v2/oauth/access_token", data={
                "grant_type": "authorization_code", "code": "x", "client_id": "provider.example",
                "client_secret": "y", "redirect_uri": REDIRECT})
            page = client.get("/authorizations", headers={"Accept": "text/html"})
            connection.execute(text("ROLLBACK"))
    engine.dispose()
    assert token.status_code == 503 and token.json()["code"] == "temporarily_unavailable"
    assert page.status_code == 503 and "Try again in a moment" in page.text
