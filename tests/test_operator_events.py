"""What happened, for the operator: `dcgw audit`, and the Prometheus metrics of backend calls,
sign-ins, tokens, template reloads and the build."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

from prometheus_client.parser import text_string_to_metric_families

from gateway.state import StateStore
from tests.gateway_app import METRICS_AUTH, build_gateway, sign_in
from tests.test_operator_config import run_dcgw

REDIRECT = "https://app.provider.example/oauth"
SERVICES = "/v2/domainTemplates/providers/provider.example/services/hosting"
START = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


# -- dcgw audit -------------------------------------------------------------------------------------


def test_audit_filters_by_domain_and_time_and_prints_json(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "state.sqlite"}"\n')
    moments = iter([START, START + timedelta(hours=1), START + timedelta(hours=2), START + timedelta(hours=3)])
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.sqlite'}", clock=lambda: next(moments))
    store.audit("apply", "user:alice", "example.com", {"template": "provider.example/hosting"})
    store.audit("apply", "client:provider.example", "shop.example.com", {"template": "provider.example/hosting"})
    store.audit("revert", "user:bob", "example.org", {})
    store.audit("refuse", "client:x", "notexample.com", {"reason": "scope"})
    store.close()

    result = run_dcgw("audit", "--config", str(config), "--domain", "Example.COM", "--since",
                      "2026-11-30T12:30:00Z", "--json")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert [(e["action"], e["actor"], e["domain"]) for e in entries] == [
        ("apply", "client:provider.example", "shop.example.com")]
    assert entries[0]["at"] == "2026-11-30T13:00:00+00:00"
    assert entries[0]["detail"] == {"template": "provider.example/hosting"}

    table = run_dcgw("audit", "--config", str(config)).stdout.splitlines()
    assert len(table) == 4 and table[0].startswith("2026-11-30T12:00:00+00:00  apply")
    naive = run_dcgw("audit", "--config", str(config), "--since", "2026-11-30T14:00:00", "--json")
    assert [e["action"] for e in json.loads(naive.stdout)] == ["revert", "refuse"]


def test_audit_input_errors_are_one_line(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "state.sqlite"}"\n')
    bad_time = run_dcgw("audit", "--config", str(config), "--since", "yesterday")
    assert bad_time.returncode == 2 and "is not an ISO 8601 time" in bad_time.stderr
    bad_domain = run_dcgw("audit", "--config", str(config), "--domain", "bad..name")
    assert bad_domain.returncode == 2 and bad_domain.stderr.startswith("dcgw audit: --domain:")


# -- metrics ---------------------------------------------------------------------------------------


def test_metrics_count_backend_calls_sign_ins_and_tokens(tmp_path):
    gateway = build_gateway(tmp_path)
    store = gateway.app.state.runtime.store
    with gateway.client() as client:
        for _ in range(5):
            assert sign_in(client, password="wrong").status_code == 401
        assert sign_in(client).status_code == 429  # locked out, even with the right password
        secret = store.add_client("provider.example", [REDIRECT])
        code = store.create_grant("provider.example", "alice", "example.com", [""], ["hosting"], REDIRECT)
        tokens = client.post("/v2/oauth/access_token", data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": "provider.example", "client_secret": secret}).json()
        client.post("/v2/oauth/access_token", data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": "provider.example", "client_secret": secret})
        applied = client.post(f"{SERVICES}/apply", headers={"Authorization": f"Bearer {tokens['access_token']}"},
                              params={"domain": "example.com", "host": "", "ip": "192.0.2.80", "token": "abc",
                                      "force": "1"})
        assert applied.status_code == 200, applied.text
        exposition = client.get("/metrics", headers=METRICS_AUTH).text
    found = samples(exposition)
    assert value(found, "dcgw_sign_in_failures_total", reason="credentials") == 5
    assert value(found, "dcgw_sign_in_failures_total", reason="locked") == 1
    assert value(found, "dcgw_sign_in_lockouts_total") >= 1
    assert value(found, "dcgw_tokens_total", event="issued") == 1
    assert value(found, "dcgw_tokens_total", event="refreshed") == 1
    assert value(found, "dcgw_backend_call_duration_seconds_count", backend="files", operation="apply") == 1
    assert value(found, "dcgw_backend_call_duration_seconds_count", backend="files", operation="read") >= 1
    assert value(found, "dcgw_templates_loaded") == 1
    assert value(found, "dcgw_templates_last_reload_timestamp_seconds") > 0
    [build] = [labels for (name, labels), v in found.items() if name == "dcgw_build_info" and v == 1]
    assert dict(build)["version"] and re.fullmatch(r"\d+\.\d+\.\d+", dict(build)["python"])


def test_backend_errors_are_counted_by_operation(tmp_path):
    gateway = build_gateway(tmp_path)
    runtime = gateway.app.state.runtime
    backend = runtime.router.backends[0]
    gateway.zones.rename(tmp_path / "moved")
    try:
        backend.check_ready()
    except Exception:
        pass
    found = samples(runtime.metrics.exposition().decode())
    assert value(found, "dcgw_backend_errors_total", backend="files", operation="check_ready", kind="error") == 1


def test_revoking_an_authorization_is_counted(tmp_path):
    gateway = build_gateway(tmp_path)
    store = gateway.app.state.runtime.store
    store.add_client("provider.example", [REDIRECT])
    store.create_grant("provider.example", "alice", "example.com", [""], ["hosting"], REDIRECT)
    with gateway.client() as client:
        sign_in(client)
        page = client.get("/authorizations")
        action = re.search(r'action="([^"]*revoke[^"]*)"', page.text).group(1)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        assert client.post(action, data={"csrf_token": csrf}).status_code in (200, 303)
        found = samples(client.get("/metrics", headers=METRICS_AUTH).text)
    assert value(found, "dcgw_tokens_total", event="revoked") == 1
