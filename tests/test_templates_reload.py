"""Templates without a restart: SIGHUP reloads the directory (a template that fails lint keeps
its previous version), and `dcgw templates sync` brings templates in from a Templates checkout."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import time
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from tests.gateway_app import HOSTING, METRICS_AUTH, build_gateway, dcgw_serve
from tests.servers.common import free_port
from tests.test_operator_config import run_dcgw

VERSION_PATH = "/v2/domainTemplates/providers/{}/services/{}"
MAIL = {**HOSTING, "serviceId": "mail", "serviceName": "Mail", "version": 1,
        "records": [{"type": "MX", "host": "@", "pointsTo": "mx.provider.example", "priority": 10, "ttl": 600}]}


def template_file(directory: Path, template: dict) -> Path:
    return directory / f"{template['providerId']}.{template['serviceId']}.json"


def write_template(directory: Path, template: dict) -> Path:
    path = template_file(directory, template)
    path.write_text(json.dumps(template))
    return path


def version_of(client, template: dict) -> int | None:
    response = client.get(VERSION_PATH.format(template["providerId"], template["serviceId"]))
    return response.json()["version"] if response.status_code == 200 else None


def test_reload_adds_changes_removes_and_keeps_a_broken_template(tmp_path, caplog):
    gateway = build_gateway(tmp_path, [HOSTING, MAIL])
    templates = tmp_path / "templates"
    runtime = gateway.app.state.runtime
    with TestClient(gateway.app) as client:
        assert version_of(client, HOSTING) == 3 and version_of(client, MAIL) == 1
        # A typo in a new version of HOSTING: it fails lint, so version 3 stays.
        broken = {**HOSTING, "version": 4, "syncPubKeyDomian": "keys.provider.example"}
        write_template(templates, broken)
        template_file(templates, MAIL).unlink()
        added = {**MAIL, "serviceId": "dmarc", "version": 7}
        write_template(templates, added)
        with caplog.at_level(logging.INFO):
            report = runtime.reload_templates()
        assert version_of(client, HOSTING) == 3
        assert version_of(client, MAIL) is None
        assert version_of(client, added) == 7
        assert report.kept == [str(template_file(templates, HOSTING))]
        assert report.added == ["provider.example/dmarc"] and report.removed == ["provider.example/mail"]
        assert any("template kept at its previous version" in r.getMessage() and "syncPubKeyDomian" in r.getMessage()
                   for r in caplog.records)
        assert any(r.getMessage().startswith(f"templates reloaded from {templates}: 2 loaded")
                   for r in caplog.records)
        # Fixed: the new version loads.
        write_template(templates, {**HOSTING, "version": 4})
        assert runtime.reload_templates().changed == ["provider.example/hosting"]
        assert version_of(client, HOSTING) == 4
        metrics = client.get("/metrics", headers=METRICS_AUTH).text
        assert "dcgw_templates_loaded 2.0" in metrics
        assert "dcgw_templates_last_reload_timestamp_seconds" in metrics


def test_a_template_that_fails_lint_is_left_out_at_start(tmp_path):
    gateway = build_gateway(tmp_path, [HOSTING, {**MAIL, "records": [{**MAIL["records"][0], "tl": 5}]}])
    with TestClient(gateway.app) as client:
        assert version_of(client, HOSTING) == 3
        assert version_of(client, MAIL) is None


def started_pid(log: Path) -> int:
    """The server's process id, from uvicorn's start-up line."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = re.search(r"Started server process \[(\d+)\]", log.read_text())
        if found:
            return int(found.group(1))
        time.sleep(0.05)
    raise AssertionError(f"no start-up line in {log}")


def test_sighup_reloads_a_running_gateway(tmp_path):
    port = free_port()
    gateway = build_gateway(tmp_path, [HOSTING], base_url=f"http://127.0.0.1:{port}")
    with dcgw_serve(gateway, port) as (base, log):
        pid = started_pid(log)
        assert httpx.get(base + VERSION_PATH.format("provider.example", "mail")).status_code == 404
        write_template(tmp_path / "templates", MAIL)
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "templates reloaded" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "templates reloaded" in log.read_text()
        assert httpx.get(base + VERSION_PATH.format("provider.example", "mail")).json() == {"version": 1}
        os.kill(pid, 0)  # SIGHUP did not stop it


# -- dcgw templates sync --------------------------------------------------------------------------


@pytest.fixture
def sync_setup(tmp_path):
    source, target = tmp_path / "Templates", tmp_path / "onboarded"
    source.mkdir()
    target.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'[gateway]\ntemplates = "{target}"\n')
    return source, target, config


def test_sync_shows_then_writes_only_with_yes(sync_setup, tmp_path):
    source, target, config = sync_setup
    write_template(source, HOSTING)
    write_template(source, {**MAIL, "version": 2})
    write_template(source, {**HOSTING, "providerId": "other.example"})  # not allowed
    write_template(target, MAIL)  # changes
    write_template(target, {**MAIL, "serviceId": "gone"})  # provider in scope, gone from the source: removed
    write_template(target, {**HOSTING, "providerId": "mine.example"})  # another provider: left alone
    allow = tmp_path / "allow.txt"
    allow.write_text("# providers we onboard\nProvider.Example\n")
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    shown = run_dcgw("templates", "sync", str(source), "--config", str(config), "--allow", str(allow))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert f"+ provider.example/hosting  ({template_file(source, HOSTING)})" in lines
    assert f"~ provider.example/mail  ({template_file(source, MAIL)})" in lines
    assert f"- provider.example/gone  ({target / 'provider.example.gone.json'})" in lines
    assert "1 to add, 1 to change, 1 to remove, 0 unchanged, 0 invalid" in lines
    assert not any("other.example" in line or "mine.example" in line for line in lines)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # nothing written

    written = run_dcgw("templates", "sync", str(source), "--config", str(config), "--allow", str(allow), "--yes")
    assert written.returncode == 0, written.stderr
    assert sorted(p.name for p in target.iterdir()) == [
        "mine.example.hosting.json", "provider.example.hosting.json", "provider.example.mail.json"]
    assert json.loads((target / "provider.example.mail.json").read_text())["version"] == 2
    again = run_dcgw("templates", "sync", str(source), "--config", str(config), "--allow", str(allow))
    assert "0 to add, 0 to change, 0 to remove, 2 unchanged, 0 invalid" in again.stdout


def test_sync_never_copies_an_invalid_template(sync_setup):
    source, target, config = sync_setup
    write_template(source, {**HOSTING, "syncRedirectDomian": "provider.example"})
    result = run_dcgw("templates", "sync", str(source), "--config", str(config), "--yes")
    assert result.returncode == 1
    assert "invalid, not copied:" in result.stdout and "did you mean 'syncRedirectDomain'" in result.stdout
    assert list(target.iterdir()) == []


def test_sync_refuses_ids_that_would_leave_the_directory(sync_setup, tmp_path):
    source, target, config = sync_setup
    evil = {**HOSTING, "providerId": "../../escape", "serviceId": "x"}
    (source / "evil.json").write_text(json.dumps(evil))
    result = run_dcgw("templates", "sync", str(source), "--config", str(config), "--yes")
    assert result.returncode == 1
    assert list(target.iterdir()) == [] and not (tmp_path / "escape.x.json").exists()


def test_sync_errors_are_one_line(sync_setup, tmp_path):
    source, _, config = sync_setup
    missing = run_dcgw("templates", "sync", str(tmp_path / "nope"), "--config", str(config))
    assert missing.returncode == 2 and missing.stderr.startswith("dcgw templates sync: SOURCE_DIR:")
    bare = tmp_path / "bare.toml"
    bare.write_text("")
    unset = run_dcgw("templates", "sync", str(source), "--config", str(bare))
    assert unset.returncode == 2 and "gateway.templates: not set" in unset.stderr
