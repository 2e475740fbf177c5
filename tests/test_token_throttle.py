"""The token endpoint limits failed client authentications per address and per client_id,
and strangers' refused requests do not grow the audit table."""

from __future__ import annotations

import pytest

from gateway.web.auth.throttle import CLIENT_AUTHENTICATION
from tests.gateway_app import build_gateway

TOKEN = "/v2/oauth/access_token"
CLIENT = "provider.example"


@pytest.fixture
def gateway(tmp_path):
    built = build_gateway(tmp_path)
    store = built.app.state.runtime.store
    built.secret = store.add_client(CLIENT, ["https://provider.example/cb"])
    return built


def token_request(gateway, peer: str, secret: str, client_id: str = CLIENT):
    with gateway.client(client=(peer, 40000)) as client:
        return client.post(TOKEN, data={"grant_type": "authorization_code", "code": "no-such-code",
                                        "redirect_uri": "https://provider.example/cb",
                                        "client_id": client_id, "client_secret": secret})


def audit_rows(gateway) -> int:
    """Audit rows about client authentication (an authenticated client's refused code is audited apart)."""
    return len([e for e in gateway.app.state.runtime.store.audit_entries()
                if str(e.detail.get("reason", "")).startswith("client authentication")])


def test_failures_from_one_address_are_limited_with_retry_after(gateway):
    before = audit_rows(gateway)
    for _ in range(CLIENT_AUTHENTICATION.per_address):
        assert token_request(gateway, "203.0.113.1", "wrong").status_code == 401
    refused = token_request(gateway, "203.0.113.1", gateway.secret)  # even the right secret, from there
    assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 15 * 60
    assert refused.json()["error"] == "temporarily_unavailable"
    # The client itself, from its own address, is not locked out by a stranger's guesses.
    assert token_request(gateway, "198.51.100.20", gateway.secret).json()["error"] == "invalid_grant"
    # One audit row for the lockout, not one per refused request.
    assert audit_rows(gateway) - before == 1


def test_failures_for_one_client_id_are_limited_over_every_address(gateway):
    failures = 0
    for peer in range(10):
        for _ in range(CLIENT_AUTHENTICATION.per_address - 1):
            if failures == CLIENT_AUTHENTICATION.per_name:
                break
            assert token_request(gateway, f"203.0.113.{peer + 10}", "wrong").status_code == 401
            failures += 1
    assert token_request(gateway, "198.51.100.30", gateway.secret).status_code == 429
    assert token_request(gateway, "198.51.100.30", "x", client_id="another.example").status_code == 401


def test_unknown_client_ids_do_not_grow_the_audit_table(gateway):
    before = audit_rows(gateway)
    for n in range(CLIENT_AUTHENTICATION.per_address - 1):
        assert token_request(gateway, "203.0.113.99", "guess", client_id=f"made-up-{n}").status_code == 401
    assert audit_rows(gateway) == before
