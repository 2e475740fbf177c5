"""Password guessing is slowed down per username and per address."""

from gateway.auth.throttle import SignInThrottle
from tests.gateway_app import PASSWORD, build_gateway, sign_in


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_lock_the_key_for_the_window():
    clock = Clock()
    throttle = SignInThrottle(max_failures=5, window=900, clock=clock)
    for _ in range(4):
        throttle.failed("user:alice")
    assert throttle.retry_after("user:alice") == 0
    throttle.failed("user:alice")
    assert 0 < throttle.retry_after("user:alice") <= 901
    assert throttle.retry_after("user:bob") == 0
    clock.now += 901
    assert throttle.retry_after("user:alice") == 0


def test_success_clears_the_count():
    throttle = SignInThrottle(max_failures=2)
    throttle.failed("user:alice")
    throttle.succeeded("user:alice")
    throttle.failed("user:alice")
    assert throttle.retry_after("user:alice") == 0


def test_guessing_through_the_login_form_is_refused_even_with_the_right_password(tmp_path):
    gateway = build_gateway(tmp_path)
    with gateway.client() as client:
        for _ in range(5):
            assert sign_in(client, password="wrong").status_code == 401
        refused = sign_in(client, password=PASSWORD)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert "Too many failed sign-ins" in refused.text
        assert client.get("/").text.count("Sign out") == 0


def test_refused_attempts_and_long_usernames_cost_no_memory():
    throttle = SignInThrottle(max_failures=1, max_keys=100)
    throttle.failed("address:192.0.2.1")
    for n in range(1000):
        throttle.retry_after(f"user:{'x' * 100_000}{n}", "address:192.0.2.1")
    for n in range(1000):
        throttle.failed(f"user:{n}")
    assert len(throttle._failures) <= 100
    assert all(len(key) == 16 for key in throttle._failures)
