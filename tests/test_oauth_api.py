"""The asynchronous flow against a running uvicorn, through httpx: token endpoint, apply, revert, attacks."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import dns.name
import dns.rdatatype
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from backends.base import RRsetChange
from backends.records import make_rrset
from backends.zonefile import ZoneFileBackend
from gateway.infra.config import AuthSettings
from gateway.infra.registry import BackendRouter
from gateway.state import StateStore
from gateway.state.pkce import s256
from gateway.state.store import utcnow
from gateway.web.auth.base import Authenticator, User
from gateway.web.oauth import routes
from tests.engine_helpers import make_template
from tests.log_capture import Collect
from tests.oauth_helpers import RECORDS, ZONE_TEXT
from tests.servers.common import free_port, wait_for_port

PROVIDER, SERVICE, REDIRECT = "provider.example", "service", "https://provider.example/cb"
ZONE = dns.name.from_text("example.com")

GROUPED = [{"type": "TXT", "host": "@", "data": f"group-{g}", "ttl": 3600, "txtConflictMatchingMode": "None",
            "groupId": g} for g in "abcd"]

ADDRESS = [{"type": "A", "host": "home", "pointsTo": "%ip%", "ttl": 600}]


class EveryZone(Authenticator):
    """Whoever consented still controls every zone (losing control is tested in test_app_oauth)."""

    def user_named(self, username: str) -> User:
        return User(username, ("*",))


class Clock:
    offset = timedelta()

    def __call__(self):
        return utcnow() + self.offset


@pytest.fixture
def gateway(tmp_path, caplog):
    (tmp_path / "example.com.zone").write_text(ZONE_TEXT.format(origin="example.com"))
    backend = ZoneFileBackend("files", {"directory": str(tmp_path)})
    clock = Clock()
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.sqlite'}", clock=clock)
    templates = {(PROVIDER, SERVICE): make_template(RECORDS),
                 (PROVIDER, "other"): make_template(RECORDS, serviceId="other"),
                 (PROVIDER, "grouped"): make_template(GROUPED, serviceId="grouped"),
                 (PROVIDER, "address"): make_template(ADDRESS, serviceId="address")}
    app = Starlette(routes=routes(store, BackendRouter([(backend, ["example.com"])]), templates,
                                  authenticator=EveryZone(AuthSettings())))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info"))
    thread = threading.Thread(target=server.run, daemon=True)
    caplog.set_level(logging.DEBUG)
    thread.start()
    wait_for_port(port, timeout=10)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        yield client, store, backend, clock
    server.should_exit = True
    thread.join(timeout=10)
    store.close()


@pytest.fixture
def client_secret(gateway):
    _, store, _, _ = gateway
    return store.add_client(PROVIDER, [REDIRECT])


def consent(store, hosts=("",), services=(SERVICE,), domain="example.com") -> str:
    return store.create_grant(PROVIDER, "alice", domain, list(hosts), list(services), REDIRECT)


def exchange(http, code, secret, redirect_uri=REDIRECT) -> httpx.Response:
    # As the published Python client does: code and grant_type in the query, credentials in JSON.
    return http.post("/v2/oauth/access_token",
                     params={"code": code, "grant_type": "authorization_code", "redirect_uri": redirect_uri},
                     json={"client_id": PROVIDER, "client_secret": secret})


def token(gateway, secret, **grant) -> str:
    http, store, _, _ = gateway
    response = exchange(http, consent(store, **grant), secret)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def apply(http, access, service=SERVICE, **params) -> httpx.Response:
    query = {"domain": "example.com", "host": "", "value": "one", "sub": "mail", **params}
    return http.post(f"/v2/domainTemplates/providers/{PROVIDER}/services/{service}/apply", params=query,
                     headers={"Authorization": f"Bearer {access}"})


def served(backend, host: str, rdtype: str) -> set[str]:
    name = dns.name.from_text(host, ZONE) if host else ZONE
    kind = dns.rdatatype.from_text(rdtype)
    return {rd.to_text() for r in backend.read(ZONE, {name}, ()) if r.rdtype == kind for r2 in [r] for rd in r2}


def test_whole_flow_token_apply_reapply_revert(gateway, client_secret):
    http, store, backend, _ = gateway
    response = exchange(http, consent(store), client_secret)
    body = response.json()
    assert response.status_code == 200 and body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert response.headers["cache-control"] == "no-store"
    applied = apply(http, body["access_token"])
    assert applied.status_code == 200 and applied.json()["changed"]
    assert served(backend, "", "TXT") == {'"v=one"'} and served(backend, "mail", "CNAME") == {"target.example.net."}
    # Re-apply with a new variable replaces the previous instance.
    assert apply(http, body["access_token"], sub="smtp").status_code == 200
    assert served(backend, "mail", "CNAME") == set() and served(backend, "smtp", "CNAME") == {"target.example.net."}
    # A refreshed token keeps working; the old refresh token does not.
    refreshed = http.post("/v2/oauth/access_token", data={"grant_type": "refresh_token", "client_id": PROVIDER,
                                                           "client_secret": client_secret,
                                                           "refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200 and refreshed.json()["refresh_token"] != body["refresh_token"]
    reverted = http.post(f"/v2/domainTemplates/providers/{PROVIDER}/services/{SERVICE}/revert",
                         json={"domain": "example.com", "host": ""},
                         headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"})
    assert reverted.status_code == 204
    assert served(backend, "", "TXT") == set() and served(backend, "smtp", "CNAME") == set()
    again = http.post(f"/v2/domainTemplates/providers/{PROVIDER}/services/{SERVICE}/revert",
                      params={"domain": "example.com"},
                      headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"})
    assert again.status_code == 200 and again.json() == {"warning": "nothing to revert"}


def test_conflict_is_409_with_records_and_nothing_written_unless_forced(gateway, client_secret):
    http, _, backend, _ = gateway
    access = token(gateway, client_secret)
    conflict = apply(http, access, sub="www")
    assert conflict.status_code == 409
    assert conflict.json() == {"code": "conflict", "message": "the template conflicts with existing records",
                               "records": [{"type": "A", "host": "www", "data": "192.0.2.80"}]}
    assert served(backend, "", "TXT") == set() and served(backend, "www", "A") == {"192.0.2.80"}
    assert apply(http, access, sub="www", force="true").status_code == 200
    assert served(backend, "www", "CNAME") == {"target.example.net."} and served(backend, "www", "A") == set()


def test_code_replay_is_refused_and_revokes_the_first_token(gateway, client_secret):
    http, store, _, _ = gateway
    code = consent(store)
    access = exchange(http, code, client_secret).json()["access_token"]
    replay = exchange(http, code, client_secret)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert apply(http, access).status_code == 401


def test_code_used_by_another_client_and_redirect_mismatch(gateway, client_secret):
    http, store, _, _ = gateway
    other_secret = store.add_client("other.example", [REDIRECT])
    code = consent(store)
    stolen = http.post("/v2/oauth/access_token", data={"grant_type": "authorization_code", "code": code,
                                                        "redirect_uri": REDIRECT, "client_id": "other.example",
                                                        "client_secret": other_secret})
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    mismatch = exchange(http, consent(store), client_secret, redirect_uri=REDIRECT + "x")
    assert mismatch.status_code == 400 and "redirect_uri" in mismatch.json()["error_description"]
    wrong_secret = exchange(http, consent(store), client_secret + "x")
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"


@pytest.mark.parametrize("change", [{"domain": "example.net"}, {"host": "www"}, {"service": "other"}])
def test_token_for_another_domain_host_or_service_is_refused(gateway, client_secret, change):
    http, _, backend, _ = gateway
    access = token(gateway, client_secret)
    response = apply(http, access, **change)
    assert response.status_code == 403 and response.json()["code"] == "insufficient_scope"
    assert served(backend, "", "TXT") == set()


def test_expired_and_revoked_tokens_get_401(gateway, client_secret):
    http, store, _, clock = gateway
    access = token(gateway, client_secret)
    clock.offset = timedelta(hours=1, seconds=1)
    assert apply(http, access).status_code == 401
    clock.offset = timedelta()
    access = token(gateway, client_secret)
    for grant in store.grants_of("alice"):
        store.revoke_grant(grant.id, "alice")
    response = apply(http, access)
    assert response.status_code == 401 and "Bearer" in response.headers["www-authenticate"]


def test_a_token_revoked_by_another_gateway_process_writes_nothing_and_sees_no_conflict(gateway, client_secret,
                                                                                        tmp_path):
    http, store, backend, _ = gateway
    access = token(gateway, client_secret)
    assert apply(http, access).status_code == 200  # this process now knows the token as live
    before = (tmp_path / "example.com.zone").read_text()
    # Revoked through another process's store (a replica, `dcgw`): this process is not told.
    elsewhere = StateStore.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    try:
        for grant in elsewhere.grants_of("alice"):
            elsewhere.revoke_grant(grant.id, "alice")
    finally:
        elsewhere.close()
    changing = apply(http, access, value="two")
    assert changing.status_code == 401 and "Bearer" in changing.headers["www-authenticate"]
    conflicting = apply(http, access, sub="www")  # would be a 409 naming the records at www
    assert conflicting.status_code == 401 and "records" not in conflicting.json()
    assert (tmp_path / "example.com.zone").read_text() == before
    [instance] = store.instances("example.com")
    assert instance.params["value"] == "one" and store.intents(status=None) == []


def test_secrets_and_tokens_never_reach_the_logs(gateway, client_secret, caplog):
    http, store, _, _ = gateway
    collected = Collect()
    server_loggers = [logging.getLogger(name) for name in ("uvicorn.access", "uvicorn.error", "gateway")]
    for logger in server_loggers:
        logger.addHandler(collected)
    code = consent(store)
    body = exchange(http, code, client_secret).json()
    apply(http, body["access_token"])
    for logger in server_loggers:
        logger.removeHandler(collected)
    # The server's logs and the gateway's own (the test's HTTP client logs are not the server's).
    server_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join([*collected.lines, *(r.getMessage() for r in server_records)])
    assert "access_token?code=[redacted]" in logged  # the request line is logged...
    for secret in (client_secret, code, body["access_token"], body["refresh_token"]):
        assert secret not in logged  # ...but no secret value is
    audit = repr([(e.action, e.detail) for e in store.audit_entries()])
    for secret in (client_secret, code, body["access_token"], body["refresh_token"]):
        assert secret not in audit


def test_group_ids_comma_separated_or_repeated_in_a_json_body(gateway, client_secret):
    http, store, backend, _ = gateway
    access = token(gateway, client_secret, services=("grouped",))
    response = http.post(f"/v2/domainTemplates/providers/{PROVIDER}/services/grouped/apply",
                         json={"domain": "example.com", "host": "", "groupId": ["a,b", "c"]},
                         headers={"Authorization": f"Bearer {access}"})
    assert response.status_code == 200
    [instance] = store.instances("example.com", "")
    assert sorted(instance.group_ids) == ["a", "b", "c"]
    assert served(backend, "", "TXT") == {'"group-a"', '"group-b"', '"group-c"'}


def test_bad_variable_is_400_naming_it_and_writes_nothing(gateway, client_secret):
    http, _, backend, _ = gateway
    access = token(gateway, client_secret)
    response = apply(http, access, sub="bad host!")
    assert response.status_code == 400 and response.json()["code"] == "invalid_request"
    assert "sub" in response.json()["message"] or "bad host" in response.json()["message"]
    assert served(backend, "", "TXT") == set()


def test_http_basic_client_authentication(gateway, client_secret):
    http, store, _, _ = gateway
    body = {"code": consent(store), "grant_type": "authorization_code", "redirect_uri": REDIRECT}
    accepted = http.post("/v2/oauth/access_token", data=body, auth=(PROVIDER, client_secret))
    assert accepted.status_code == 200, accepted.text
    wrong = http.post("/v2/oauth/access_token", data={**body, "code": consent(store)},
                      auth=(PROVIDER, client_secret + "x"))
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert wrong.headers["www-authenticate"].startswith("Basic")
    both = http.post("/v2/oauth/access_token", data={**body, "code": consent(store), "client_secret": client_secret},
                     auth=(PROVIDER, client_secret))
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"
    garbled = http.post("/v2/oauth/access_token", data=body, headers={"Authorization": "Basic !!!"})
    assert garbled.status_code == 400 and "Authorization" in garbled.json()["error_description"]


def test_pkce_mismatch_is_invalid_grant(gateway, client_secret):
    http, store, _, _ = gateway
    verifier = "correct-verifier-" + "x" * 40
    code = store.create_grant(PROVIDER, "alice", "example.com", [""], [SERVICE], REDIRECT,
                              code_challenge=s256(verifier), code_challenge_method="S256")

    def redeem(**extra):
        return http.post("/v2/oauth/access_token", data={
            "code": code, "grant_type": "authorization_code", "redirect_uri": REDIRECT, "client_id": PROVIDER,
            "client_secret": client_secret, **extra})

    # Someone who intercepted the code but not the verifier gets nothing.
    for attempt in ({}, {"code_verifier": "attacker-guess-" + "y" * 40}, {"code_verifier": s256(verifier)}):
        refused = redeem(**attempt)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant", attempt
        assert refused.json()["error_description"].startswith("code_verifier:")
    assert redeem(code_verifier=verifier).status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_grant(gateway, client_secret):
    http, store, _, _ = gateway
    first = exchange(http, consent(store), client_secret).json()

    def refresh(refresh_token):
        return http.post("/v2/oauth/access_token", data={"grant_type": "refresh_token", "client_id": PROVIDER,
                                                          "client_secret": client_secret,
                                                          "refresh_token": refresh_token})
    second = refresh(first["refresh_token"]).json()
    assert apply(http, second["access_token"]).status_code == 200
    reused = refresh(first["refresh_token"])  # whoever copied the first refresh token
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert apply(http, second["access_token"]).status_code == 401
    assert refresh(second["refresh_token"]).status_code == 400
    assert store.grants_of("alice") == []


def test_records_left_changed_lists_only_what_someone_else_changed(gateway, client_secret):
    http, store, backend, _ = gateway
    access = token(gateway, client_secret, hosts=("",), services=("address",))

    def update(ip, **extra):
        return http.post(f"/v2/domainTemplates/providers/{PROVIDER}/services/address/apply",
                         params={"domain": "example.com", "host": "", "ip": ip, **extra},
                         headers={"Authorization": f"Bearer {access}"})
    assert update("192.0.2.10").status_code == 200
    moved = update("192.0.2.11")  # the apply itself replaces .10: not "left changed"
    assert moved.status_code == 200 and moved.json()["records_left_changed"] == []
    assert served(backend, "home", "A") == {"192.0.2.11"}
    # Someone edits the record by hand; the next apply replaces it only with force, and says so.
    name = dns.name.from_text("home", ZONE)
    [before] = [r for r in backend.read(ZONE, {name}, ()) if r.rdtype == dns.rdatatype.A]
    backend.apply(ZONE, [RRsetChange(name, dns.rdatatype.A, before, make_rrset(
        name, 600, [dns.rdata.from_text("IN", "A", "192.0.2.99")]))])
    assert update("192.0.2.12").status_code == 409
    forced = update("192.0.2.12", force="true")
    assert forced.status_code == 200
    assert [(r["name"], r["data"]) for r in forced.json()["records_left_changed"]] == [
        ("home.example.com.", "192.0.2.11")]
    assert served(backend, "home", "A") == {"192.0.2.12"}


def grant_with_approval(store, approved) -> str:
    return store.create_grant(PROVIDER, "alice", "example.com", [""], [SERVICE], REDIRECT, approved=approved)


def test_a_conflict_shown_at_consent_applies_without_force(gateway, client_secret):
    http, store, backend, _ = gateway
    shown = [{"service": SERVICE, "host": "", "disabled": [],
              "records": [{"name": "www.example.com.", "type": "A", "data": "192.0.2.80"}]}]
    access = exchange(http, grant_with_approval(store, shown), client_secret).json()["access_token"]
    applied = apply(http, access, sub="www")
    assert applied.status_code == 200, applied.text
    assert served(backend, "www", "CNAME") == {"target.example.net."} and served(backend, "www", "A") == set()


def test_approvals_are_per_template_and_host_and_record(gateway, client_secret):
    http, store, backend, _ = gateway
    elsewhere = [{"service": "other", "host": "", "disabled": [],
                  "records": [{"name": "www.example.com.", "type": "A", "data": "192.0.2.80"}]},
                 {"service": SERVICE, "host": "", "disabled": [],
                  "records": [{"name": "www.example.com.", "type": "A", "data": "192.0.2.81"}]}]
    access = exchange(http, grant_with_approval(store, elsewhere), client_secret).json()["access_token"]
    conflict = apply(http, access, sub="www")
    assert conflict.status_code == 409
    assert conflict.json()["records"] == [{"type": "A", "host": "www", "data": "192.0.2.80"}]
    assert served(backend, "www", "A") == {"192.0.2.80"}


def test_provider_and_service_names_are_never_template_variables(gateway, client_secret):
    http, store, _, _ = gateway
    access = token(gateway, client_secret)
    assert apply(http, access, providerName="Evil", serviceName="Evil").status_code == 200
    [instance] = store.instances("example.com", "")
    assert "providerName" not in instance.params and "serviceName" not in instance.params
