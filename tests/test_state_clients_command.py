"""`dcgw clients` through a real process: the JSON contract, the secret shown once, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gateway.state import StateStore


def dcgw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "clients", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text('[database]\nurl = "sqlite:///state.sqlite"\n')
    return path


def test_add_prints_the_secret_once_and_list_never_shows_it(config, tmp_path):
    added = dcgw("add", "--config", str(config), "--client-id", "provider.example",
                 "--redirect-uri", "https://provider.example/a", "--redirect-uri", "https://provider.example/b",
                 "--json")
    assert added.returncode == 0, added.stderr
    body = json.loads(added.stdout)
    assert set(body) == {"client_id", "client_secret"} and body["client_id"] == "provider.example"
    listed = dcgw("list", "--config", str(config), "--json")
    assert json.loads(listed.stdout) == [{"client_id": "provider.example",
                                          "redirect_uris": ["https://provider.example/a",
                                                            "https://provider.example/b"]}]
    assert body["client_secret"] not in listed.stdout
    # The relative SQLite URL is resolved next to the config file.
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    assert store.authenticate_client("provider.example", body["client_secret"])
    assert body["client_secret"] not in (tmp_path / "state.sqlite").read_bytes().decode("latin-1")
    store.close()


def test_duplicate_bad_uri_and_unknown_removal_exit_2_naming_the_field(config):
    assert dcgw("add", "--config", str(config), "--client-id", "p.example",
                "--redirect-uri", "https://p.example/cb").returncode == 0
    duplicate = dcgw("add", "--config", str(config), "--client-id", "p.example",
                     "--redirect-uri", "https://p.example/cb")
    assert duplicate.returncode == 2 and "client_id: 'p.example' is already registered" in duplicate.stderr
    bad_uri = dcgw("add", "--config", str(config), "--client-id", "q.example", "--redirect-uri", "ftp://q")
    assert bad_uri.returncode == 2 and "redirect_uri: 'ftp://q'" in bad_uri.stderr
    missing = dcgw("remove", "--config", str(config), "--client-id", "nobody.example")
    assert missing.returncode == 2 and "client_id: 'nobody.example' is not registered" in missing.stderr
    assert dcgw("remove", "--config", str(config), "--client-id", "p.example").returncode == 0
    assert json.loads(dcgw("list", "--config", str(config), "--json").stdout) == []
