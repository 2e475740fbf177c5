"""Server-side sessions and open consent pages in the state store."""

from __future__ import annotations

from datetime import timedelta

from gateway.infra.config import load_config
from gateway.state.sessions import MAX_PAGES_PER_USER
from gateway.web.runtime import Runtime
from tests.gateway_app import PASSWORD, build_gateway, sign_in
from tests.state_helpers import clock, database_url, store  # noqa: F401  (fixtures)

HOUR = timedelta(hours=1)


def test_a_session_lives_for_its_lifetime_then_is_purged(store, clock):
    session = store.start_session("alice", 8 * HOUR)
    clock.now += 8 * HOUR - timedelta(seconds=1)
    assert store.session_user(session) == "alice"
    clock.now += timedelta(seconds=1)
    assert store.session_user(session) is None
    assert store.purge_expired()["sessions"] == 1


def test_ending_a_session_ends_it_and_its_pages(store):
    session = store.start_session("alice", HOUR)
    nonce = store.remember_page(session, "alice", "sync", {"user": "alice", "at": 0}, HOUR, 3)
    store.end_session(session)
    assert store.session_user(session) is None
    assert store.take_page(session, "sync", nonce) is None


def test_a_page_is_taken_once_and_only_by_its_own_session(store):
    mine, theirs = store.start_session("alice", HOUR), store.start_session("mallory", HOUR)
    nonce = store.remember_page(mine, "alice", "sync", {"user": "alice", "at": 0}, HOUR, 3)
    assert store.take_page(theirs, "sync", nonce) is None  # and the page is still there for its owner
    assert store.take_page(mine, "oauth_consent", nonce) is None
    assert store.take_page(mine, "sync", nonce) == {"user": "alice", "at": 0}
    assert store.take_page(mine, "sync", nonce) is None


def test_open_pages_are_bounded_per_session_and_per_user(store):
    session = store.start_session("alice", HOUR)
    nonces = [store.remember_page(session, "alice", "sync", {"n": n}, HOUR, 3) for n in range(5)]
    assert [store.take_page(session, "sync", nonce) for nonce in nonces] == [None, None, {"n": 2}, {"n": 3}, {"n": 4}]
    sessions = [store.start_session("alice", HOUR) for _ in range(MAX_PAGES_PER_USER + 5)]
    nonces = [store.remember_page(s, "alice", "sync", {"n": n}, HOUR, 3) for n, s in enumerate(sessions)]
    taken = [store.take_page(s, "sync", nonce) for s, nonce in zip(sessions, nonces)]
    assert taken.count(None) == 5 and taken[-1] == {"n": MAX_PAGES_PER_USER + 4}


def test_expired_pages_are_purged(store, clock):
    session = store.start_session("alice", 8 * HOUR)
    store.remember_page(session, "alice", "sync", {}, timedelta(minutes=30), 3)
    clock.now += timedelta(minutes=30)
    assert store.purge_expired() == {"sessions": 0, "pages": 1, "attempts": 0}


def test_removing_a_user_from_the_config_ends_their_sessions_on_every_replica(tmp_path):
    gateway = build_gateway(tmp_path, users={"alice": ["example.com"], "bob": ["other.com"]})
    with gateway.client() as bob:
        assert sign_in(bob, "bob", PASSWORD).status_code == 303
        assert "Sign out" in bob.get("/").text
        # Another replica starts with bob taken out of the config (same database, same files).
        text = gateway.config.path.read_text()
        start = text.index('[[auth.users]]\nusername = "bob"')
        edited = tmp_path / "without-bob.toml"
        edited.write_text(text[:start] + text[text.index("\n[[backends]]", start):])
        other = Runtime.from_config(load_config(edited))
        try:
            other.tidy_store()
        finally:
            other.close()
        # This replica still lists bob, but the session is gone from the shared store.
        assert "Sign out" not in bob.get("/").text
