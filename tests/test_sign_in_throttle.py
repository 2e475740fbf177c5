"""Password guessing is slowed down per username and per address, counted in the state store
before the password is checked (so parallel guesses are limited too, and replicas share it)."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from gateway.state import StateStore
from gateway.state.models import AttemptCounter
from gateway.web.auth.throttle import SIGN_IN, SignInThrottle
from tests.gateway_app import PASSWORD, build_gateway, csrf_of, sign_in
from tests.state_helpers import clock, database_url, store  # noqa: F401  (fixtures)


def counters(store: StateStore) -> list[AttemptCounter]:
    with store.sessions() as session:
        return list(session.scalars(select(AttemptCounter)))


def test_five_attempts_per_username_then_a_wait_until_the_window_ends(store, clock):
    throttle = SignInThrottle()
    assert [throttle.begin(store, "alice", "192.0.2.1") for _ in range(5)] == [0] * 5
    wait = throttle.begin(store, "Alice", "192.0.2.2")  # usernames are counted case-insensitively
    assert 0 < wait <= 15 * 60
    assert throttle.begin(store, "bob", "192.0.2.1") == 0
    clock.now += timedelta(minutes=15)
    assert throttle.begin(store, "alice", "192.0.2.1") == 0


def test_a_right_password_clears_the_username_and_is_not_charged_to_the_address(store):
    throttle = SignInThrottle()
    for _ in range(5):
        throttle.begin(store, "alice", "192.0.2.1")  # four failures, then the right password
    throttle.succeeded(store, "alice", "192.0.2.1")
    assert [throttle.begin(store, "alice", "192.0.2.1") for _ in range(5)] == [0] * 5
    # alice: the five since; the address: four failures and these five, the success taken back.
    assert sorted(c.attempts for c in counters(store)) == [5, 9]


def test_failures_from_a_shared_address_do_not_lock_out_its_other_users(store):
    throttle = SignInThrottle()
    for _ in range(6):
        throttle.begin(store, "alice", "198.51.100.7")  # one user locks only herself: five counted
    assert throttle.begin(store, "bob", "198.51.100.7") == 0
    for n in range(SIGN_IN.per_address - 6):
        assert throttle.begin(store, f"user{n}", "198.51.100.7") == 0
    assert throttle.begin(store, "carol", "198.51.100.7") > 0  # the address's own, higher limit
    assert throttle.begin(store, "carol", "198.51.100.8") == 0


def test_refused_attempts_and_long_usernames_cost_no_rows(store):
    throttle = SignInThrottle()
    for n in range(SIGN_IN.per_address):
        throttle.begin(store, f"u{n}", "192.0.2.9")
    before = len(counters(store))
    for n in range(200):
        assert throttle.begin(store, f"{'x' * 10_000}{n}", "192.0.2.9") > 0
    rows = counters(store)
    assert len(rows) == before and all(len(row.key_hash) == 64 for row in rows)


def test_parallel_attempts_are_counted_one_by_one(store):
    """30 attempts at once: exactly five are let through to the password check."""
    throttle = SignInThrottle()
    barrier = threading.Barrier(30)
    results: list[int] = []

    def attempt(n: int) -> None:
        barrier.wait()
        results.append(throttle.begin(store, "alice", f"192.0.2.{n}"))

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 30 and results.count(0) == 5


def test_expired_counters_are_purged(store, clock):
    SignInThrottle().begin(store, "alice", "192.0.2.1")
    clock.now += timedelta(minutes=15)
    assert store.purge_expired()["attempts"] == 2
    assert counters(store) == []


def test_guessing_through_the_login_form_is_refused_even_with_the_right_password(tmp_path):
    gateway = build_gateway(tmp_path)
    with gateway.client() as client:
        for _ in range(5):
            assert sign_in(client, password="wrong").status_code == 401
        refused = sign_in(client, password=PASSWORD)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "Too many failed sign-ins" in refused.text
        assert client.get("/").text.count("Sign out") == 0


def _fail_from(client, address_header: dict[str, str], n: int) -> int:
    page = client.get("/login", headers=address_header)
    return client.post("/login", headers=address_header, data={
        "username": f"guess{n}", "password": "wrong", "next": "/", "csrf_token": csrf_of(page.text)}).status_code


def test_without_forwarded_allow_ips_x_forwarded_for_is_not_believed(tmp_path):
    gateway = build_gateway(tmp_path)
    with gateway.client() as client:
        for n in range(SIGN_IN.per_address):
            assert _fail_from(client, {"X-Forwarded-For": f"192.0.2.{n}"}, n) == 401
        # Every attempt came from the one peer, whatever the header claimed.
        assert _fail_from(client, {"X-Forwarded-For": "198.51.100.1"}, 999) == 429


def test_with_forwarded_allow_ips_the_proxy_s_client_address_is_counted(tmp_path):
    gateway = build_gateway(tmp_path, sections='[server]\nforwarded_allow_ips = ["127.0.0.1"]\n')
    with gateway.client(client=("127.0.0.1", 40000)) as client:
        for n in range(SIGN_IN.per_address):
            assert _fail_from(client, {"X-Forwarded-For": "192.0.2.77"}, n) == 401
        assert _fail_from(client, {"X-Forwarded-For": "192.0.2.77"}, 999) == 429
        assert _fail_from(client, {"X-Forwarded-For": "192.0.2.78"}, 999) == 401
        page = client.get("/login", headers={"X-Forwarded-For": "192.0.2.78"})
        signed_in = client.post("/login", headers={"X-Forwarded-For": "192.0.2.78"}, data={
            "username": "alice", "password": PASSWORD, "next": "/", "csrf_token": csrf_of(page.text)})
        assert signed_in.status_code == 303
    # A peer that is not a listed proxy cannot pick its address.
    with gateway.client(client=("203.0.113.5", 40000)) as outsider:
        for n in range(SIGN_IN.per_address):
            _fail_from(outsider, {"X-Forwarded-For": f"192.0.2.{100 + n}"}, n)
        assert _fail_from(outsider, {"X-Forwarded-For": "192.0.2.250"}, 999) == 429


def test_ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4(tmp_path):
    gateway = build_gateway(tmp_path)
    for n in range(SIGN_IN.per_address):
        with gateway.client(client=(f"2001:db8:1:2::{n + 1:x}", 40000)) as client:
            assert _fail_from(client, {}, n) == 401
    with gateway.client(client=("2001:db8:1:2:ffff::1", 40000)) as same_network:
        assert _fail_from(same_network, {}, 999) == 429
    with gateway.client(client=("2001:db8:1:3::1", 40000)) as next_network:
        assert _fail_from(next_network, {}, 999) == 401
    with gateway.client(client=("::ffff:192.0.2.1", 40000)) as mapped:
        for n in range(SIGN_IN.per_address - 1):
            _fail_from(mapped, {}, 2000 + n)
    with gateway.client(client=("192.0.2.1", 40000)) as plain:
        assert _fail_from(plain, {}, 999) == 401  # the fiftieth
        assert _fail_from(plain, {}, 998) == 429
