"""What an operator meets first: the example configs, secrets from files, the database URL,
risky settings, and commands that need no session secret."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.infra.config import ConfigError, load_config
from gateway.infra.registry import load_backend
from gateway.state.database import open_state_store
from gateway.web.auth import load_authenticator
from tests.servers.common import free_port

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIGS = sorted(p for p in (ROOT / "config").glob("*.toml"))
PRODUCTION_EXAMPLES = [ROOT / "config" / f"{name}.toml" for name in ("zonefile", "powerdns", "route53", "rfc2136")]
DEMO_HASH_SALT = "12EvdmimXezrtrdQSOFj8g"
ENVIRONMENT = {"DCGW_SESSION_SECRET": "x" * 40, "PDNS_API_KEY": "k", "TSIG_SECRET": "x", "DCGW_TSIG_SECRET": "x"}


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# -- item 2: no example config signs anybody in with a known password ---------------------------


@pytest.mark.parametrize("example", PRODUCTION_EXAMPLES, ids=lambda p: p.name)
def test_production_examples_hold_a_placeholder_that_refuses_to_load(example, monkeypatch):
    for variable, value in ENVIRONMENT.items():
        monkeypatch.setenv(variable, value)
    assert DEMO_HASH_SALT not in example.read_text()
    config = load_config(example)
    with pytest.raises(ConfigError) as caught:
        load_authenticator(config.auth)
    assert str(caught.value) == ("auth.users[0].password_hash: replace the placeholder with the output of "
                                 "`dcgw users hash-password`")


def test_serve_with_a_copied_example_stops_on_the_placeholder(tmp_path):
    config = write(tmp_path, (ROOT / "config" / "zonefile.toml").read_text()
                   .replace('"/etc/dcgw/templates"', f'"{tmp_path}"')
                   .replace('"/var/lib/bind/zones"', f'"{tmp_path}"'))
    result = run_dcgw("serve", "--config", str(config), "--port", str(free_port()),
                      env={"DCGW_SESSION_SECRET": "y" * 40}, timeout=60)
    assert result.returncode == 2
    assert "auth.users[0].password_hash: replace the placeholder" in result.stderr
    assert "Traceback" not in result.stderr


# -- item 3: database URLs --------------------------------------------------------------------


def test_a_relative_sqlite_path_gets_its_directory(tmp_path):
    config = load_config(write(tmp_path, '[database]\nurl = "sqlite:///state/deeper/dcgw.sqlite"\n'))
    store = open_state_store(config.database)
    store.close()
    assert (tmp_path / "state" / "deeper" / "dcgw.sqlite").is_file()


@pytest.mark.parametrize(("url", "expected"), [
    ("mysql://dcgw:hunter2@127.0.0.1/dcgw", "database.url: mysql://dcgw:***@127.0.0.1/dcgw: the database driver "
                                            "is not installed"),
    ("nosuchdb://127.0.0.1/x", "database.url: cannot open nosuchdb://127.0.0.1/x: Can't load plugin"),
    ("sqlite:////proc/dcgw/state.sqlite", "database.url: sqlite:////proc/dcgw/state.sqlite: cannot create"),
])
def test_other_database_problems_are_one_line_naming_the_key(tmp_path, url, expected):
    config = load_config(write(tmp_path, f'[database]\nurl = "{url}"\n'))
    with pytest.raises(ConfigError) as caught:
        open_state_store(config.database)
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value) and "hunter2" not in str(caught.value)


def test_clients_command_with_a_mysql_url_is_one_line_and_exit_2(tmp_path):
    config = write(tmp_path, '[database]\nurl = "mysql://dcgw@127.0.0.1/dcgw"\n')
    result = run_dcgw("clients", "list", "--config", str(config))
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("dcgw clients: database.url: mysql://dcgw@127.0.0.1/dcgw: the database driver")


# -- item 4: the session secret is resolved only where sessions are signed ----------------------


def test_apply_with_the_powerdns_example_needs_no_session_secret(tmp_path):
    port = free_port()  # nothing listens there: the apply gets as far as the backend
    config = write(tmp_path, (ROOT / "config" / "powerdns.toml").read_text()
                   .replace("http://127.0.0.1:8081", f"http://127.0.0.1:{port}"))
    result = run_dcgw("apply", "--config", str(config), "--domain", "example.com",
                      "--template", str(ROOT / "gateway" / "examples" / "example.com.hosting.json"),
                      "--param", "var1=192.0.2.1", "--param", "var2=192.0.2.2", "--param", "var3=mail.example.net",
                      "--param", "var4=x", "--yes", env={"PDNS_API_KEY": "k"}, unset=("DCGW_SESSION_SECRET",))
    assert "SESSION_SECRET" not in result.stderr and "session_secret" not in result.stderr
    assert result.returncode == 4, result.stderr
    assert "backend 'pdns'" in result.stderr or "cannot find the zone" in result.stderr


def test_the_session_secret_is_required_where_sessions_are_signed(tmp_path, monkeypatch):
    monkeypatch.delenv("DCGW_TEST_UNSET", raising=False)
    settings = load_config(write(tmp_path, '[gateway]\nsession_secret = "env:DCGW_TEST_UNSET"\n')).gateway
    with pytest.raises(ConfigError, match="gateway.session_secret: environment variable DCGW_TEST_UNSET is not set"):
        settings.signing_secret()


@pytest.mark.parametrize(("text", "message"), [
    ('[[backends]]\nname = "a"\ndriver = "zonefile"\ntoken = "env:DCGW_TEST_UNSET"\n',
     "backends[0].token: environment variable DCGW_TEST_UNSET is not set"),
    ('[[backends]]\nname = "a"\ndriver = "zonefile"\nkeys = ["env:DCGW_TEST_UNSET"]\n',
     "backends[0].keys[0]: environment variable DCGW_TEST_UNSET is not set"),
])
def test_a_backend_secret_is_needed_only_where_the_backend_is_loaded(tmp_path, monkeypatch, text, message):
    monkeypatch.delenv("DCGW_TEST_UNSET", raising=False)
    config = load_config(write(tmp_path, text))  # commands that never load the backend work
    with pytest.raises(ConfigError) as caught:
        load_backend(config.backends[0])
    assert message in str(caught.value)


def test_an_auth_secret_is_needed_only_where_sign_in_is_loaded(tmp_path):
    config = load_config(write(tmp_path, '[auth]\ndriver = "header"\nsecret = "env:"\n'))
    with pytest.raises(ConfigError, match="auth.secret: 'env:' needs a variable name"):
        load_authenticator(config.auth)


def test_clients_list_needs_no_backend_secret(tmp_path):
    config = write(tmp_path, (ROOT / "config" / "powerdns.toml").read_text())
    result = run_dcgw("clients", "list", "--config", str(config), unset=("PDNS_API_KEY", "DCGW_SESSION_SECRET"))
    assert result.returncode == 0, result.stderr
    applied = run_dcgw("apply", "--config", str(config), "--domain", "example.com", "--template",
                       str(ROOT / "gateway" / "examples" / "example.com.hosting.json"), "--yes",
                       unset=("PDNS_API_KEY",))
    assert applied.returncode == 2
    assert "backends[0].api_key: environment variable PDNS_API_KEY is not set" in applied.stderr


# -- item 6: risky settings ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ('[gateway]\nbrand_color = "0b5fff"\n',
     "gateway.brand_color: '0b5fff' is not a CSS color such as '#0b5fff' (did you mean '#0b5fff'?)"),
    ('[gateway]\naccent_color = "#12345"\n', "gateway.accent_color: '#12345' is not a CSS color"),
    ('[gateway]\nbrand_color = "red;}body{display:none"\n', "gateway.brand_color: 'red;}body{display:none'"),
    ('[gateway]\nsession_secret = "short"\n', "gateway.session_secret: must be at least 32 characters (it is 5)"),
])
def test_risky_settings_are_errors_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert message in str(caught.value)


def test_a_short_secret_from_the_environment_is_refused_when_used(tmp_path, monkeypatch):
    monkeypatch.setenv("DCGW_TEST_SHORT", "0123456789")
    settings = load_config(write(tmp_path, '[gateway]\nsession_secret = "env:DCGW_TEST_SHORT"\n')).gateway
    with pytest.raises(ConfigError, match="gateway.session_secret: must be at least 32 characters"):
        settings.signing_secret()


@pytest.mark.parametrize("color", ["#0b5fff", "#abc", "#0b5fff80", "rgb(11, 95, 255)", "hsl(220 100% 52%)", "navy"])
def test_css_colors_are_accepted(tmp_path, color):
    assert load_config(write(tmp_path, f'[gateway]\nbrand_color = "{color}"\n')).gateway.brand_color == color


@pytest.mark.parametrize("network", ["0.0.0.0/0", "::/0", "10.0.0.0/4"])
def test_trusting_every_address_to_name_the_user_is_a_warning(tmp_path, caplog, network):
    config = load_config(write(tmp_path, f'[auth]\ndriver = "header"\ntrusted_proxies = ["127.0.0.1", "{network}"]\n'))
    with caplog.at_level(logging.WARNING):
        load_authenticator(config.auth)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(f"auth.trusted_proxies[1]: {network} trusts ")


def test_narrow_proxies_are_no_warning(tmp_path, caplog):
    config = load_config(write(tmp_path, '[auth]\ndriver = "header"\ntrusted_proxies = ["10.0.0.0/8", "::1"]\n'))
    with caplog.at_level(logging.WARNING):
        load_authenticator(config.auth)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_local_auth_without_users_is_a_warning(tmp_path, caplog):
    config = load_config(write(tmp_path, '[auth]\ndriver = "local"\n'))
    with caplog.at_level(logging.WARNING):
        load_authenticator(config.auth)
    assert any(r.getMessage().startswith("auth.users: the local driver has no users") for r in caplog.records)


# -- item 10: secrets from files ----------------------------------------------------------------


def test_file_secrets_work_wherever_env_secrets_do(tmp_path):
    secret = tmp_path / "pdns_api_key"
    secret.write_text("key-from-a-file\n")
    session = tmp_path / "session_secret"
    session.write_text("s" * 40 + "\r\n")
    database = tmp_path / "database_url"
    database.write_text(f"sqlite:///{tmp_path / 'state.sqlite'}")
    config = load_config(write(tmp_path, f"""
[gateway]
session_secret = "file:{session}"
[database]
url = "file:{database}"
[[backends]]
name = "pdns"
driver = "powerdns"
api_url = "http://127.0.0.1:8081"
api_key = "file:{secret}"
headers = ["file:{secret}"]
"""))
    [backend] = config.backends
    assert backend.options["api_key"] == "key-from-a-file"  # the trailing newline is stripped
    assert backend.options["headers"] == ["key-from-a-file"]
    assert config.gateway.signing_secret() == "s" * 40
    assert config.database.url == f"sqlite:///{tmp_path / 'state.sqlite'}"


def test_only_one_trailing_newline_is_stripped(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("  padded value \n\n")
    config = load_config(write(tmp_path, f'[[backends]]\nname = "a"\ndriver = "zonefile"\ntoken = "file:{secret}"\n'))
    assert config.backends[0].options["token"] == "  padded value \n"


@pytest.mark.parametrize(("reference", "message"), [
    ("file:/nonexistent/dcgw/secret", "backends[0].token: cannot read secret file /nonexistent/dcgw/secret: "
                                      "No such file or directory"),
    ("file:", "backends[0].token: 'file:' needs a path"),
])
def test_file_secret_errors_name_the_key(tmp_path, reference, message):
    config = load_config(write(tmp_path, f'[[backends]]\nname = "a"\ndriver = "zonefile"\ntoken = "{reference}"\n'))
    with pytest.raises(ConfigError) as caught:
        load_backend(config.backends[0])
    assert message in str(caught.value)
    with pytest.raises(ConfigError, match="gateway.session_secret: cannot read secret file"):
        load_config(write(tmp_path, '[gateway]\nsession_secret = "file:/nonexistent/dcgw/s"\n')).gateway.signing_secret()


# -- helpers ------------------------------------------------------------------------------------


def run_dcgw(*args: str, env: dict[str, str] | None = None, unset: tuple[str, ...] = (),
             timeout: float = 60, cwd: Path | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    for variable in unset:
        environment.pop(variable, None)
    environment["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True,
                          env=environment, timeout=timeout, cwd=cwd or ROOT)
