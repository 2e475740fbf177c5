"""Logs, metrics, /healthz and /metrics: a small Starlette app in process, and a real uvicorn
process for the access log."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.testclient import TestClient

from gateway.infra.observability import (
    Metrics, Readiness, RequestMetricsMiddleware, audit_log, configure_logging, observability_routes, redact,
)
from gateway.web.ui import STATIC_DIR
from tests.servers.common import free_port, stop, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
SECRETS = ("abc", "xyz", "s3cr3t", "hunter2", "tok-123", "rt-456")


def settings(request):
    return JSONResponse({"providerId": "example.net", "domain": request.path_params["domain"]})


def template(request):
    return PlainTextResponse(request.path_params["serviceId"])


def broken(request):
    raise RuntimeError("handler failed")


def make_app(metrics: Metrics, checks=None) -> Starlette:
    routes = [
        Route("/v2/{domain}/settings", settings),
        Mount("/v2/domainTemplates/providers/{providerId}", routes=[
            Route("/services/{serviceId}", template),
        ]),
        Route("/broken", broken),
        *observability_routes(metrics, checks or {}),
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(RequestMetricsMiddleware, metrics=metrics)])


def duration_count(metrics: Metrics, route: str, method: str = "GET", status: str = "200") -> float:
    value = metrics.registry.get_sample_value(
        "dcgw_request_duration_seconds_count", {"route": route, "method": method, "status": status})
    return value or 0.0


def route_labels(metrics: Metrics) -> set[str]:
    return {sample.labels["route"] for family in metrics.registry.collect()
            if family.name == "dcgw_request_duration_seconds" for sample in family.samples}


@pytest.fixture
def restore_logging():
    """configure_logging changes process-wide loggers; put them back for the other tests."""
    names = ["", "gateway", "backends", "dcgw.audit", "uvicorn", "uvicorn.error", "uvicorn.access"]
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level, logging.getLogger(n).propagate,
                 logging.getLogger(n).filters[:]) for n in names}
    yield
    for name, (handlers, level, propagate, filters) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
        logger.filters[:] = filters


# -- metrics -----------------------------------------------------------------------------------


def test_request_histogram_counts_each_request_under_its_route_template():
    metrics = Metrics()
    client = TestClient(make_app(metrics))
    for domain in ("example.com", "example.org", "xn--bcher-kva.example"):
        assert client.get(f"/v2/{domain}/settings").status_code == 200
    assert duration_count(metrics, "/v2/{domain}/settings") == 3
    assert metrics.registry.get_sample_value(
        "dcgw_request_duration_seconds_sum",
        {"route": "/v2/{domain}/settings", "method": "GET", "status": "200"}) > 0


def test_route_label_is_the_template_never_the_raw_path():
    metrics = Metrics()
    client = TestClient(make_app(metrics))
    client.get("/v2/secret-customer.example/settings")
    client.get("/v2/domainTemplates/providers/example.org/services/hosting")
    labels = route_labels(metrics)
    assert "/v2/{domain}/settings" in labels
    # A route inside a Mount: the mount's template and the route's, joined.
    assert "/v2/domainTemplates/providers/{providerId}/services/{serviceId}" in labels
    exposition = metrics.exposition().decode()
    assert "secret-customer" not in exposition and "example.org" not in exposition and "hosting" not in exposition


def test_a_mounted_app_is_labelled_with_the_mount_template():
    metrics = Metrics()
    client = TestClient(make_app(metrics))
    assert client.get("/static/gateway.css").status_code == 200
    assert client.get("/static/missing.css").status_code == 404
    assert duration_count(metrics, "/static/{path}") == 1
    assert duration_count(metrics, "/static/{path}", status="404") == 1


def test_unknown_paths_share_one_label():
    metrics = Metrics()
    client = TestClient(make_app(metrics))
    for path in ("/nothing/here", "/wp-admin.php", "/v2/a/b/c/d"):
        assert client.get(path).status_code == 404
    assert duration_count(metrics, "<unmatched>", status="404") == 3
    assert route_labels(metrics) == {"<unmatched>"}


def test_status_and_method_labels():
    metrics = Metrics()
    client = TestClient(make_app(metrics), raise_server_exceptions=False)
    assert client.post("/v2/example.com/settings").status_code == 405
    assert client.get("/broken").status_code == 500
    assert duration_count(metrics, "/v2/{domain}/settings", method="POST", status="405") == 1
    assert duration_count(metrics, "/broken", status="500") == 1


def test_apply_and_signature_failure_counters():
    metrics = Metrics()
    metrics.apply("zones", "applied", "sync")
    metrics.apply("zones", "applied", "sync")
    metrics.apply("pdns", "conflict", "api")
    metrics.signature_failure("bad_signature")
    value = metrics.registry.get_sample_value
    assert value("dcgw_applies_total", {"backend": "zones", "outcome": "applied", "flow": "sync"}) == 2
    assert value("dcgw_applies_total", {"backend": "pdns", "outcome": "conflict", "flow": "api"}) == 1
    assert value("dcgw_signature_failures_total", {"reason": "bad_signature"}) == 1


def test_apply_refuses_an_unknown_outcome():
    with pytest.raises(ValueError, match="outcome 'done' is not one of applied, conflict, error, nothing"):
        Metrics().apply("zones", "done", "sync")


def test_apply_refuses_an_unknown_flow():
    with pytest.raises(ValueError, match="flow 'web' is not one of api, cli, sync"):
        Metrics().apply("zones", "applied", "web")


def test_two_metrics_objects_do_not_share_counters():
    first, second = Metrics(), Metrics()
    first.signature_failure("expired")
    assert first.registry.get_sample_value("dcgw_signature_failures_total", {"reason": "expired"}) == 1
    assert second.registry.get_sample_value("dcgw_signature_failures_total", {"reason": "expired"}) is None


def test_metrics_endpoint_serves_the_text_exposition_format():
    metrics = Metrics()
    metrics.apply("zones", "zone_changed", "cli")
    client = TestClient(make_app(metrics))
    client.get("/v2/example.com/settings")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert {"dcgw_applies", "dcgw_signature_failures", "dcgw_request_duration_seconds"} <= families.keys()
    applies = [s for s in families["dcgw_applies"].samples if s.name == "dcgw_applies_total"]
    assert [(s.labels, s.value) for s in applies] == [
        ({"backend": "zones", "outcome": "zone_changed", "flow": "cli"}, 1.0)]
    counts = {s.labels["route"]: s.value for s in families["dcgw_request_duration_seconds"].samples
              if s.name == "dcgw_request_duration_seconds_count"}
    assert counts["/v2/{domain}/settings"] == 1


# -- /healthz and /readyz ----------------------------------------------------------------------


def test_healthz_is_liveness_and_runs_no_check():
    calls = []
    checks = {"database": lambda: calls.append("database") or 1 / 0}
    response = TestClient(make_app(Metrics(), checks)).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"
    assert calls == []


def test_readyz_ok_when_every_check_passes():
    calls = []

    def database():
        calls.append("database")

    async def backends():
        await asyncio.sleep(0)
        calls.append("backends")

    response = TestClient(make_app(Metrics(), {"database": database, "backends": backends})).get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert sorted(calls) == ["backends", "database"]


def test_readyz_names_a_failing_sync_check(caplog):
    def database():
        raise ConnectionError("postgresql://dcgw:hunter2@db/dcgw unreachable")

    checks = {"database": database, "pdns": lambda: None}
    response = TestClient(make_app(Metrics(), checks)).get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failing": {"database": "failed (ConnectionError)"}}
    # The details go to the log, never to the (often public) response.
    assert "hunter2" not in response.text
    assert "health check database failed: ConnectionError" in caplog.text


def test_readyz_names_a_failing_async_check():
    async def pdns():
        raise OSError("pdns down")

    response = TestClient(make_app(Metrics(), {"pdns": pdns, "database": lambda: True})).get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failing": {"pdns": "failed (OSError)"}}


def test_readyz_fails_a_check_that_hangs_and_runs_checks_in_parallel():
    async def stuck():
        await asyncio.sleep(30)

    def slow():
        time.sleep(0.6)

    app = Starlette(routes=observability_routes(Metrics(), {"dns": stuck, "a": slow, "b": slow, "c": slow},
                                                timeout=1.0))
    started = time.monotonic()
    response = TestClient(app).get("/readyz")
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failing": {"dns": "timed out after 1 s"}}
    assert elapsed < 1.6  # one timeout, not three slow checks one after another plus it


def test_readyz_cannot_be_used_to_load_the_backends():
    calls = []

    def backend():
        calls.append(1)
        raise OSError("down")

    client = TestClient(Starlette(routes=observability_routes(Metrics(), {"pdns": backend}, cache_seconds=60)))
    answers = {client.get("/readyz").status_code for _ in range(50)}
    assert answers == {503} and len(calls) == 1


def test_readyz_asks_again_after_the_cache_period():
    now = [0.0]
    state = {"up": False}

    def backend():
        if not state["up"]:
            raise OSError("down")

    readiness = Readiness({"pdns": backend}, timeout=1, cache_seconds=2, clock=lambda: now[0])
    assert asyncio.run(readiness.failing()) == {"pdns": "failed (OSError)"}
    state["up"] = True
    now[0] = 1.0
    assert asyncio.run(readiness.failing()) == {"pdns": "failed (OSError)"}  # still cached
    now[0] = 2.5
    assert asyncio.run(readiness.failing()) == {}


def test_readyz_is_timed_like_any_route():
    metrics = Metrics()
    client = TestClient(make_app(metrics, {"database": lambda: 1 / 0}))
    client.get("/readyz")
    assert duration_count(metrics, "/readyz", status="503") == 1


# -- logs --------------------------------------------------------------------------------------


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def access_line(path: str) -> None:
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:50000", "GET", path, "1.1", 200)


def test_access_log_lines_are_json_without_secrets(restore_logging):
    stream = io.StringIO()
    configure_logging("INFO", stream)
    access_line("/v2/domainTemplates/providers/p/services/s/apply?code=abc&sig=xyz&client_secret=s3cr3t"
                "&key=_dck1&state=st1")
    [line] = json_lines(stream)
    assert line["logger"] == "uvicorn.access" and line["level"] == "INFO"
    assert line["status"] == 200 and line["method"] == "GET" and line["client"] == "127.0.0.1:50000"
    assert "code=[redacted]" in line["path"] and "sig=[redacted]" in line["path"]
    assert "client_secret=[redacted]" in line["path"]
    # The key's DNS name and the state are not secret: they help to trace a request.
    assert "key=_dck1" in line["path"] and "state=st1" in line["path"]
    assert not any(secret in stream.getvalue() for secret in SECRETS)


@pytest.mark.parametrize("query", [
    "access_token=tok-123", "refresh_token=rt-456", "password=hunter2", "SIG=xyz", "token=tok-123",
    "redirect_uri=https%3A%2F%2Fsp.example%2Fcb%3Fcode%3Dabc",
])
def test_each_secret_parameter_is_redacted(restore_logging, query):
    stream = io.StringIO()
    configure_logging("INFO", stream)
    access_line(f"/callback?{query}")
    [line] = json_lines(stream)
    assert "[redacted]" in line["message"]
    assert not any(secret in stream.getvalue() for secret in SECRETS)


def test_gateway_messages_are_redacted_and_stay_valid_json(restore_logging):
    stream = io.StringIO()
    configure_logging("INFO", stream)
    log = logging.getLogger("gateway.web.oauth")
    log.warning('token request refused: body "grant_type=refresh_token&refresh_token=rt-456"')
    log.info("quoted %s", '{"password": "hunter2", "user": "demo"}')
    log.info("header Authorization: Bearer tok-123")
    first, second, third = json_lines(stream)
    assert first["level"] == "WARNING" and first["logger"] == "gateway.web.oauth"
    assert first["message"] == 'token request refused: body "grant_type=refresh_token&refresh_token=[redacted]"'
    assert second["message"] == 'quoted {"password": "[redacted]", "user": "demo"}'
    assert third["message"] == "header Authorization: Bearer [redacted]"
    assert not any(secret in stream.getvalue() for secret in SECRETS)


def test_exceptions_are_logged_as_one_json_line(restore_logging):
    stream = io.StringIO()
    configure_logging("INFO", stream)
    try:
        raise ValueError("client_secret=s3cr3t rejected")
    except ValueError:
        logging.getLogger("backends.powerdns").exception("apply failed")
    [line] = json_lines(stream)
    assert line["message"] == "apply failed"
    assert "ValueError: client_secret=[redacted] rejected" in line["exception"]
    assert "s3cr3t" not in stream.getvalue()


def test_audit_lines_hold_time_action_and_fields(restore_logging):
    stream = io.StringIO()
    configure_logging("WARNING", stream)  # audit lines are written whatever the level
    audit_log("template.apply", domain="example.com", backend="zones", records=["www A 192.0.2.1"],
              zone=Path("/var/lib/dcgw/zones"), client_secret="s3cr3t", access_token="tok-123")
    [line] = json_lines(stream)
    assert line["logger"] == "dcgw.audit" and line["action"] == "template.apply"
    assert line["time"].endswith("+00:00")
    assert line["domain"] == "example.com" and line["records"] == ["www A 192.0.2.1"]
    assert line["zone"] == "/var/lib/dcgw/zones"
    assert line["client_secret"] == "[redacted]" and line["access_token"] == "[redacted]"
    assert "message" not in line


def test_audit_log_refuses_a_field_that_would_overwrite_the_line():
    with pytest.raises(ValueError, match="field 'time' is reserved"):
        audit_log("client.create", time="yesterday")


def test_log_level_applies_to_the_gateway_and_hides_noisy_libraries(restore_logging):
    stream = io.StringIO()
    configure_logging("WARNING", stream)
    logging.getLogger("gateway.web.runtime").info("not shown")
    logging.getLogger("httpx").info("HTTP Request: GET http://127.0.0.1/ \"HTTP/1.1 200 OK\"")
    logging.getLogger("gateway.web.runtime").warning("shown")
    assert [line["message"] for line in json_lines(stream)] == ["shown"]


def test_configure_logging_refuses_an_unknown_level():
    with pytest.raises(ValueError, match="log level 'LOUD' is not one of"):
        configure_logging("LOUD")


def test_redact_keeps_ordinary_text():
    text = "GET /v2/example.com/settings?domain=example.com&key=_dck1&groupId=a,b"
    assert redact(text) == text
    assert redact("grant_type=authorization_code&code=abc") == "grant_type=authorization_code&code=[redacted]"


# -- a real uvicorn process ----------------------------------------------------------------------

SERVER_SCRIPT = textwrap.dedent("""\
    import sys
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from gateway.infra.observability import configure_logging

    def callback(request):
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/callback", callback)])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=configure_logging("INFO"))
""")


def test_uvicorn_writes_json_access_lines_without_secrets(tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(SERVER_SCRIPT)
    port = free_port()
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        process = subprocess.Popen([sys.executable, str(script), str(port)], cwd=ROOT, stderr=stderr,
                                   stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, log=log)
        response = httpx.get(f"http://127.0.0.1:{port}/callback?code=abc&sig=xyz&client_secret=s3cr3t&key=k1")
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while "uvicorn.access" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop(process)
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # every line, start-up included, is JSON
    [access] = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert access["path"] == "/callback?code=[redacted]&sig=[redacted]&client_secret=[redacted]&key=k1"
    assert access["status"] == 200
    assert any(line["logger"] == "uvicorn.error" and "Uvicorn running" in line["message"] for line in lines)
    assert not any(secret in text for secret in SECRETS)
