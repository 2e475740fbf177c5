"""`/healthz` is liveness, `/readyz` readiness: the gateway's own app with real backends, one of
them down."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.gateway_app import build_gateway
from tests.servers.common import free_port


def test_readyz_names_the_backend_that_is_down_while_healthz_stays_green(tmp_path):
    dead = free_port()  # nothing listens here
    gateway = build_gateway(tmp_path, sections=f"""
[[backends]]
name = "pdns"
driver = "powerdns"
zones = ["example.org"]
api_url = "http://127.0.0.1:{dead}"
api_key = "k"
timeout = 1
""")
    with TestClient(gateway.app) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failing": {"pdns": "failed (BackendError)"}}


def test_readyz_is_green_when_the_database_and_every_backend_answer(tmp_path, pdns):
    gateway = build_gateway(tmp_path, sections=f"""
[[backends]]
name = "pdns"
driver = "powerdns"
zones = ["example.org"]
api_url = "{pdns.api_url}"
api_key = "{pdns.api_key}"
""")
    with TestClient(gateway.app) as client:
        response = client.get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_names_a_zone_directory_that_went_away(tmp_path):
    gateway = build_gateway(tmp_path)
    gateway.zones.rename(tmp_path / "moved")
    with TestClient(gateway.app) as client:
        response = client.get("/readyz")
        assert client.get("/healthz").status_code == 200
    assert response.json() == {"status": "unavailable", "failing": {"files": "failed (BackendError)"}}
