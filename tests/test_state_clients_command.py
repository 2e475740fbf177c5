"""`dcgw clients` through a real process: the JSON contract, the secret shown once, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gateway.state import StateStore


def dcgw(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "clients", *args],
                          capture_output=True, text=True, timeout=60, input=stdin)


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
    assert bad_uri.returncode == 2 and "redirect_uri scheme 'ftp' is not allowed: use https (in 'ftp://q')" \
        in bad_uri.stderr
    missing = dcgw("remove", "--config", str(config), "--client-id", "nobody.example")
    assert missing.returncode == 2 and "client_id: 'nobody.example' is not registered" in missing.stderr
    assert dcgw("remove", "--config", str(config), "--client-id", "p.example").returncode == 0
    assert json.loads(dcgw("list", "--config", str(config), "--json").stdout) == []


def test_a_chosen_secret_is_read_from_stdin_and_a_short_one_is_warned_about(config, tmp_path):
    added = dcgw("add", "--config", str(config), "--client-id", "domainconnect.org",
                 "--redirect-uri", "https://dynamicdns.domainconnect.org/ddnscode", "--secret", "-", "--json",
                 stdin="inconceivable\n")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {"client_id": "domainconnect.org", "client_secret": "inconceivable"}
    assert "warning: the secret is shorter than 16 characters" in added.stderr
    long_secret = "s3cret-that-is-long-enough"
    given = dcgw("add", "--config", str(config), "--client-id", "p.example", "--redirect-uri",
                 "https://p.example/cb", "--secret", long_secret)
    assert given.returncode == 0 and "warning" not in given.stderr
    empty = dcgw("add", "--config", str(config), "--client-id", "q.example", "--redirect-uri",
                 "https://q.example/cb", "--secret", "-", stdin="")
    assert empty.returncode == 2 and "secret: empty" in empty.stderr
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.sqlite'}")
    assert store.authenticate_client("domainconnect.org", "inconceivable")
    assert not store.authenticate_client("domainconnect.org", "inconceivable ")
    assert store.authenticate_client("p.example", long_secret)
    assert [c.client_id for c in store.clients()] == ["domainconnect.org", "p.example"]
    store.close()


@pytest.mark.parametrize("uri, reason", [
    ("https://p.example/cb#fragment", "must not have a fragment"),
    ("https://p.example/cb#", "must not have a fragment"),
    ("http://p.example/cb", "must use https"),
    ("http://127.0.0.1:9000/cb", "must use https"),  # loopback http needs gateway.development
    ("https://user@p.example/cb", "user name or password"),
    ("/relative/cb", "absolute https URL"),
])
def test_a_redirect_uri_a_browser_must_not_be_sent_to_is_refused(config, uri, reason):
    refused = dcgw("add", "--config", str(config), "--client-id", "p.example", "--redirect-uri", uri)
    assert refused.returncode == 2 and reason in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert json.loads(dcgw("list", "--config", str(config), "--json").stdout) == []


def test_loopback_http_redirect_is_for_development(tmp_path):
    path = tmp_path / "gateway.toml"
    path.write_text('[gateway]\ndevelopment = true\n[database]\nurl = "sqlite:///state.sqlite"\n')
    assert dcgw("add", "--config", str(path), "--client-id", "p.example",
                "--redirect-uri", "http://127.0.0.1:9000/cb").returncode == 0
    remote = dcgw("add", "--config", str(path), "--client-id", "q.example",
                  "--redirect-uri", "http://q.example/cb")
    assert remote.returncode == 2 and "only for a loopback host" in remote.stderr
