"""The state store on SQLite and PostgreSQL: clients, codes, tokens, instances, audit, migrations."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import inspect, text

from gateway.state import InvalidGrant, StateError, StateStore, migrate
from gateway.state.pkce import s256
from gateway.state.secrets import secret_hash
from tests.state_helpers import clock, database_url, store  # noqa: F401  (fixtures)

CLIENT = "provider.example"
REDIRECT = "https://provider.example/callback"


@pytest.fixture
def secret(store) -> str:
    return store.add_client(CLIENT, [REDIRECT])


def grant_code(store, user="alice", domain="example.com") -> str:
    return store.create_grant(CLIENT, user, domain, ["", "www"], ["svc"], REDIRECT)


def test_client_secret_is_stored_only_as_a_hash(store, secret):
    client = store.client(CLIENT)
    assert client.secret_hash == secret_hash(secret) != secret
    with store.engine.connect() as connection:
        dump = repr(connection.execute(text("SELECT * FROM oauth_clients")).all())
    assert secret not in dump
    assert store.authenticate_client(CLIENT, secret)
    assert not store.authenticate_client(CLIENT, secret + "x")
    assert not store.authenticate_client("other.example", secret)


def test_duplicate_client_and_bad_redirect_are_refused_by_field(store, secret):
    with pytest.raises(StateError, match="client_id: 'provider.example' is already registered"):
        store.add_client(CLIENT, [REDIRECT])
    with pytest.raises(StateError, match="redirect_uri: 'javascript:alert' must be"):
        store.add_client("x.example", ["javascript:alert"])
    assert [c.client_id for c in store.clients()] == [CLIENT]


def test_code_exchange_issues_tokens_only_hashes_at_rest(store, secret):
    code = grant_code(store)
    tokens = store.redeem_code(code, CLIENT, REDIRECT)
    grant = store.grant_for_access_token(tokens.access_token)
    assert (grant.domain, grant.hosts, grant.services) == ("example.com", ["", "www"], ["svc"])
    assert tokens.refresh_token and tokens.expires_in == 3600
    with store.engine.connect() as connection:
        dump = repr(connection.execute(text("SELECT * FROM oauth_tokens")).all()) + \
            repr(connection.execute(text("SELECT * FROM oauth_codes")).all())
    for value in (code, tokens.access_token, tokens.refresh_token):
        assert value not in dump


def test_code_replay_is_refused_and_revokes_what_the_code_issued(store, secret):
    code = grant_code(store)
    tokens = store.redeem_code(code, CLIENT, REDIRECT)
    with pytest.raises(InvalidGrant, match="already used"):
        store.redeem_code(code, CLIENT, REDIRECT)
    assert store.grant_for_access_token(tokens.access_token) is None


def test_code_bound_to_client_and_redirect_uri(store, secret):
    store.add_client("other.example", ["https://other.example/cb"])
    code = grant_code(store)
    with pytest.raises(InvalidGrant, match="another client"):
        store.redeem_code(code, "other.example", REDIRECT)
    with pytest.raises(InvalidGrant, match="redirect_uri"):
        store.redeem_code(code, CLIENT, REDIRECT + "/evil")


def test_consent_for_unregistered_redirect_is_refused(store, secret):
    with pytest.raises(StateError, match="redirect_uri: not registered"):
        store.create_grant(CLIENT, "alice", "example.com", [""], ["svc"], "https://evil.example/cb")


def test_code_expires_after_ten_minutes(store, secret, clock):
    code = grant_code(store)
    clock.now += timedelta(minutes=10)
    with pytest.raises(InvalidGrant, match="expired"):
        store.redeem_code(code, CLIENT, REDIRECT)


def test_access_token_expires(store, secret, clock):
    tokens = store.redeem_code(grant_code(store), CLIENT, REDIRECT)
    clock.now += timedelta(seconds=tokens.expires_in - 1)
    assert store.grant_for_access_token(tokens.access_token) is not None
    clock.now += timedelta(seconds=1)
    assert store.grant_for_access_token(tokens.access_token) is None


def test_refresh_rotates(store, secret):
    first = store.redeem_code(grant_code(store), CLIENT, REDIRECT)
    second = store.refresh(first.refresh_token, CLIENT)
    assert store.grant_for_access_token(second.access_token) is not None
    with pytest.raises(InvalidGrant, match="refresh_token"):
        store.refresh(first.refresh_token, CLIENT)
    with pytest.raises(InvalidGrant, match="another client"):
        store.add_client("other.example", ["https://other.example/cb"])
        store.refresh(second.refresh_token, "other.example")
    with pytest.raises(InvalidGrant):
        store.refresh(second.access_token, CLIENT)


def test_reusing_a_rotated_refresh_token_revokes_the_whole_grant(store, secret):
    first = store.redeem_code(grant_code(store), CLIENT, REDIRECT)
    second = store.refresh(first.refresh_token, CLIENT)  # the client rotates; the old one leaked
    with pytest.raises(InvalidGrant, match="already used.*authorization is revoked"):
        store.refresh(first.refresh_token, CLIENT)  # the thief (or the client) presents the old one
    # Both holders are cut off: the newest pair too, not just the reused token.
    assert store.grant_for_access_token(second.access_token) is None
    with pytest.raises(InvalidGrant, match="authorization revoked"):
        store.refresh(second.refresh_token, CLIENT)
    assert store.grants_of("alice") == []
    assert store.audit_entries()[-1].detail["reason"] == "refresh token reuse"


def test_a_code_with_a_pkce_challenge_needs_its_verifier(store, secret):
    verifier = "v" * 43 + "-._~"
    challenge = s256(verifier)
    code = store.create_grant(CLIENT, "alice", "example.com", [""], ["svc"], REDIRECT,
                              code_challenge=challenge, code_challenge_method="S256")
    with pytest.raises(InvalidGrant, match="code_verifier: required"):
        store.redeem_code(code, CLIENT, REDIRECT)
    with pytest.raises(InvalidGrant, match="code_verifier: does not match"):
        store.redeem_code(code, CLIENT, REDIRECT, "w" * 43)
    with pytest.raises(InvalidGrant, match="code_verifier: does not match"):
        store.redeem_code(code, CLIENT, REDIRECT, challenge)  # the challenge itself is no verifier
    # Refusals leave the code unused for the client that holds the verifier.
    assert store.redeem_code(code, CLIENT, REDIRECT, verifier).access_token
    plain = store.create_grant(CLIENT, "alice", "example.com", [""], ["svc"], REDIRECT,
                               code_challenge=verifier, code_challenge_method="plain")
    assert store.redeem_code(plain, CLIENT, REDIRECT, verifier).access_token


def test_a_verifier_without_a_challenge_is_a_downgrade_and_refused(store, secret):
    code = grant_code(store)
    with pytest.raises(InvalidGrant, match="had no code_challenge"):
        store.redeem_code(code, CLIENT, REDIRECT, "v" * 43)


def test_a_chosen_client_secret_authenticates(store):
    assert store.add_client(CLIENT, [REDIRECT], "inconceivable") == "inconceivable"
    stored = store.client(CLIENT).secret_hash
    assert stored.startswith("$argon2id$") and secret_hash("inconceivable") != stored
    assert store.authenticate_client(CLIENT, "inconceivable")
    assert not store.authenticate_client(CLIENT, "Inconceivable")
    with pytest.raises(StateError, match="secret: must not be empty"):
        store.add_client("other.example", [REDIRECT], "")


def test_revoked_grant_stops_its_tokens_and_only_its_owner_revokes(store, secret):
    tokens = store.redeem_code(grant_code(store), CLIENT, REDIRECT)
    [grant] = store.grants_of("alice")
    with pytest.raises(StateError, match="not found"):
        store.revoke_grant(grant.id, "mallory")
    store.revoke_grant(grant.id, "alice")
    assert store.grant_for_access_token(tokens.access_token) is None
    with pytest.raises(InvalidGrant):
        store.refresh(tokens.refresh_token, CLIENT)
    assert store.grants_of("alice") == []


def test_removing_a_client_removes_its_authorizations(store, secret):
    tokens = store.redeem_code(grant_code(store), CLIENT, REDIRECT)
    store.remove_client(CLIENT)
    assert store.grant_for_access_token(tokens.access_token) is None
    with pytest.raises(StateError, match="not registered"):
        store.remove_client(CLIENT)


def test_instances_replace_and_remove(store):
    records = [{"name": "www.example.com.", "type": "CNAME", "ttl": 3600, "data": "target.example."}]
    first = store.record_instance(provider_id=CLIENT, service_id="svc", domain="example.com", host="www",
                                  instance_id=None, group_ids=["a"], params={"v": "1"}, records=records,
                                  applied_by="alice")
    second = store.record_instance(provider_id=CLIENT, service_id="svc", domain="example.com", host="www",
                                   instance_id="i2", group_ids=[], params={}, records=records,
                                   applied_by="client:" + CLIENT, replaces=[first])
    [kept] = store.instances("example.com", "www")
    assert (kept.id, kept.instance_id, kept.records) == (second, "i2", records)
    assert store.instances("example.com", "other") == []
    store.remove_instance(second, "alice")
    assert store.instances("example.com") == []
    actions = [entry.action for entry in store.audit_entries()]
    assert actions == ["apply", "apply", "revert"]


def test_audit_log_records_consent_and_refusals(store, secret):
    grant_code(store)
    store.audit("refuse", "client:" + CLIENT, "example.com", {"reason": "conflict"})
    entries = store.audit_entries()
    assert [(e.action, e.actor) for e in entries] == [
        ("client_add", "operator"), ("consent", "user:alice"), ("refuse", "client:" + CLIENT)]
    assert entries[2].detail == {"reason": "conflict"}


def test_migrations_run_from_the_package_and_downgrade_cleanly(database_url):  # noqa: F811
    store = StateStore.open(database_url)
    store.add_client(CLIENT, [REDIRECT])
    # Opening again is a no-op on an up-to-date database and keeps the data.
    store.close()
    store = StateStore.open(database_url)
    assert [c.client_id for c in store.clients()] == [CLIENT]
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == migrate.head()
    migrate.downgrade(store.engine, "base")
    assert set(inspect(store.engine).get_table_names()) == {"alembic_version"}
    store.close()


def _race(calls: int, attempt) -> list[object]:
    """Run `attempt` in `calls` threads released at once; each result or the exception raised."""
    barrier = threading.Barrier(calls)

    def run():
        barrier.wait()
        try:
            return attempt()
        except InvalidGrant as exc:
            return exc

    with ThreadPoolExecutor(calls) as pool:
        return list(pool.map(lambda _: run(), range(calls)))


def test_concurrent_redemptions_of_one_code_issue_tokens_once(store, secret):
    for _ in range(5):
        code = store.create_grant(CLIENT, "alice", "example.com", [""], ["svc"], REDIRECT)
        results = _race(8, lambda: store.redeem_code(code, CLIENT, REDIRECT))
        assert sum(not isinstance(r, InvalidGrant) for r in results) == 1


def test_concurrent_refreshes_of_one_token_rotate_it_once(store, secret):
    code = store.create_grant(CLIENT, "alice", "example.com", [""], ["svc"], REDIRECT)
    refresh_token = store.redeem_code(code, CLIENT, REDIRECT).refresh_token
    results = _race(8, lambda: store.refresh(refresh_token, CLIENT))
    assert sum(not isinstance(r, InvalidGrant) for r in results) == 1
    # The losers presented a token already rotated: to the store that is a reuse.
    assert store.grants_of("alice") == []


def test_processes_opening_a_new_sqlite_database_at_once_migrate_it_once(tmp_path):
    import subprocess
    import sys

    for attempt in range(3):
        url = f"sqlite:///{tmp_path / f'race{attempt}.sqlite'}"
        opener = f"from gateway.state import StateStore; StateStore.open({url!r}).close()"
        processes = [subprocess.Popen([sys.executable, "-c", opener], stderr=subprocess.PIPE, text=True)
                     for _ in range(4)]
        failures = [p.stderr.read() for p in processes if p.wait(timeout=120) != 0]
        assert failures == []
