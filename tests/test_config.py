"""The TOML config and the backend registry: values, errors that name the key, routing."""

from __future__ import annotations

import logging
from pathlib import Path

import dns.name
import pytest

from backends.base import ConfigError as BackendConfigError
from backends.zonefile import ZoneFileBackend
from gateway.engine.render import TtlPolicy
from gateway.infra.config import BackendConfig, ConfigError, default_config_path, installed_drivers, load_config
from gateway.infra.registry import BackendRouter, load_backend

LONG_SECRET = "s3cret-s3cret-s3cret-s3cret-s3cret"
FULL = """
[gateway]
provider_id = "dns.example.net"
provider_name = "Example DNS"
base_url = "https://dc.example.net/"
templates = "templates"
control_panel_url = "https://panel.example.net/%domain%"
session_secret = "env:DCGW_TEST_SECRET"
development = true
brand_color = "#112233"
width = 600

[ttl]
minimum = 300
maximum = 7200
default = 600

[dns]
nameservers = ["127.0.0.1"]
port = 5353

[auth]
driver = "header"
header = "X-Remote-User"
trusted_proxies = ["127.0.0.1"]

[auth.zones]
alice = ["example.com"]

[database]
url = "sqlite:///state/dcgw.sqlite"

[[backends]]
name = "files"
driver = "zonefile"
zones = ["Example.COM.", "example.org"]
directory = "zones"
reload_command = "env:DCGW_TEST_RELOAD"
extra = { token = "env:DCGW_TEST_SECRET", list = ["a", "env:DCGW_TEST_RELOAD"] }
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    return str(caught.value)


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("DCGW_TEST_SECRET", LONG_SECRET)
    monkeypatch.setenv("DCGW_TEST_RELOAD", "rndc reload {zone}")


def test_full_config(tmp_path, env):
    config = load_config(write(tmp_path, FULL))
    gateway = config.gateway
    assert (gateway.provider_id, gateway.provider_name, gateway.provider_display_name) == (
        "dns.example.net", "Example DNS", "Example DNS")
    assert gateway.base_url == "https://dc.example.net"
    assert gateway.templates == tmp_path / "templates"
    # The reference is kept as written and resolved where sessions are signed.
    assert gateway.session_secret == "env:DCGW_TEST_SECRET" and gateway.signing_secret() == LONG_SECRET
    assert gateway.development is True and gateway.brand_color == "#112233"
    assert (gateway.width, gateway.height) == (600, 750)
    assert config.ttl.policy() == TtlPolicy(minimum=300, maximum=7200, default=600)
    assert config.dns.nameservers == ("127.0.0.1",) and config.dns.port == 5353
    assert config.auth.driver == "header"
    assert config.auth.options == {"header": "X-Remote-User", "trusted_proxies": ["127.0.0.1"],
                                   "zones": {"alice": ["example.com"]}}
    assert config.database.url == f"sqlite:///{tmp_path / 'state' / 'dcgw.sqlite'}"
    [backend] = config.backends
    assert (backend.name, backend.driver, backend.zones) == ("files", "zonefile", ("example.com", "example.org"))
    assert backend.options == {"directory": str(tmp_path / "zones"), "reload_command": "rndc reload {zone}",
                               "extra": {"token": LONG_SECRET, "list": ["a", "rndc reload {zone}"]}}
    assert backend.explicit_zones == (dns.name.from_text("example.com"), dns.name.from_text("example.org"))
    assert not backend.claims_any_zone


def test_empty_config_has_defaults(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert config.backends == ()
    assert config.ttl.policy() == TtlPolicy()
    assert config.database.url == f"sqlite:///{tmp_path / 'dcgw.sqlite'}"
    assert config.auth.driver == "local" and config.auth.users == ()


def test_missing_secret_is_generated_once_with_a_warning(tmp_path, caplog):
    settings = load_config(write(tmp_path, "[gateway]\nprovider_id = 'x'\n")).gateway
    with caplog.at_level(logging.WARNING, logger="gateway.infra.config"):
        first = settings.signing_secret()
        second = settings.signing_secret()
    assert first == second and len(first) >= 32
    assert [r.message for r in caplog.records if "session_secret" in r.message]
    other = load_config(write(tmp_path, "", "other.toml")).gateway.signing_secret()
    assert other != first


def test_local_users(tmp_path):
    config = load_config(write(tmp_path, """
[[auth.users]]
username = "alice"
password_hash = "$argon2id$v=19$m=65536,t=3,p=4$abc$def"
zones = ["Example.com."]
"""))
    [user] = config.auth.users
    assert (user.username, user.zones) == ("alice", ("example.com",))


def test_postgresql_url_is_kept_and_may_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DCGW_TEST_DB", "postgresql://dcgw:pw@127.0.0.1:5432/dcgw")
    config = load_config(write(tmp_path, '[database]\nurl = "env:DCGW_TEST_DB"\n'))
    assert config.database.url == "postgresql://dcgw:pw@127.0.0.1:5432/dcgw"


def test_default_config_is_valid():
    config = load_config(default_config_path())
    assert [b.driver for b in config.backends] == ["zonefile"]
    assert config.gateway.templates is not None and config.gateway.templates.is_dir()


@pytest.mark.parametrize(("text", "message"), [
    ('[[backends]]\nname = "a"\ndriver = "zonefile"\n[[backends]]\nname = "b"\ndriver = "pdsn"\n',
     "config.toml: backends[1].driver: no backend driver 'pdsn' (installed: "),
    ('[[backends]]\ndriver = "zonefile"\n', "backends[0].name: is required"),
    ('[[backends]]\nname = "a"\n', "backends[0].driver: is required"),
    ('[[backends]]\nname = "a"\ndriver = "zonefile"\n[[backends]]\nname = "a"\ndriver = "zonefile"\n',
     "backends[1].name: another backend is already named 'a'"),
    ('[[backends]]\nname = "a"\ndriver = "zonefile"\nzones = []\n', "backends[0].zones: must list at least one"),
    ('[[backends]]\nname = "a"\ndriver = "zonefile"\nzones = ["bad..name"]\n',
     "backends[0].zones: 'bad..name' is not a valid zone name"),
    ('[[backends]]\nname = "a"\ndriver = "zonefile"\nzones = [1]\n', "backends[0].zones[0]: must be a string"),
    ('backends = "x"\n', "backends: must be an array of tables"),
    ('backends = ["x"]\n', "backends[0]: must be a table ([[backends]]), not a string"),
    ('[auth]\nusers = [1]\n', "auth.users[0]: must be a table ([[auth.users]]), not an integer"),
    ('gateway = 1\n', "gateway: must be a table"),
    ('[gatway]\n', "gatway: unknown section"),
    ('[gateway]\nprovider = "x"\n', "gateway.provider: unknown key"),
    ('[gateway]\nbase_url = "dc.example.net"\n', "gateway.base_url: must be an http(s) URL"),
    ('[gateway]\nwidth = "wide"\n', "gateway.width: must be an integer, not a string"),
    ('[gateway]\nwidth = 0\n', "gateway.width: must be a positive number"),
    ('[gateway]\ndevelopment = "yes"\n', "gateway.development: must be a boolean"),
    ('[ttl]\nminimum = true\n', "ttl.minimum: must be an integer, not a boolean"),
    ('[ttl]\nminimum = -1\n', "ttl.minimum: must be between 0 and 2147483647"),
    ('[ttl]\nminimum = 600\nmaximum = 60\n', "ttl.minimum: 600 is greater than ttl.maximum 60"),
    ('[ttl]\ndefault = 10\n', "ttl.default: 10 is outside ttl.minimum..ttl.maximum (60..86400)"),
    ('[dns]\nport = 70000\n', "dns.port: must be a port number"),
    ('[dns]\nnameservers = "127.0.0.1"\n', "dns.nameservers: must be an array"),
    ('[database]\nurl = "dcgw.sqlite"\n', "database.url: must be a database URL"),
    ('[[auth.users]]\nusername = "a"\n', "auth.users[0].password_hash: is required"),
    ('[[auth.users]]\nusername = "a"\npassword_hash = "h"\n[[auth.users]]\nusername = "a"\npassword_hash = "h"\n',
     "auth.users: user 'a' is defined more than once"),
    ('[gateway\n', "config.toml: not valid TOML"),
])
def test_errors_name_the_file_and_key(tmp_path, monkeypatch, text, message):
    monkeypatch.delenv("DCGW_TEST_UNSET", raising=False)
    assert message in error_of(tmp_path, text)


def test_unknown_driver_lists_the_installed_ones(tmp_path):
    message = error_of(tmp_path, '[[backends]]\nname = "a"\ndriver = "pdsn"\n')
    installed = installed_drivers()
    assert {"zonefile", "powerdns", "route53", "rfc2136"} <= set(installed)
    assert message.endswith(f"(installed: {', '.join(installed)})")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml: cannot read config file"):
        load_config(tmp_path / "nope.toml")


def test_config_error_is_a_backend_config_error():
    # Backends raise backends.base.ConfigError; callers catch one type for both.
    assert issubclass(ConfigError, BackendConfigError)


# -- registry --------------------------------------------------------------------------------

def zone_dir(tmp_path: Path, name: str, *zones: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    for zone in zones:
        add_zone(directory, zone)
    return directory


def add_zone(directory: Path, zone: str) -> None:
    (directory / f"{zone}.zone").write_text(
        f"$ORIGIN {zone}.\n@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ 3600 IN NS ns1\n")


def files_backend(name: str, directory: Path, zones=("*",)) -> BackendConfig:
    return BackendConfig(name=name, driver="zonefile", zones=tuple(zones), options={"directory": str(directory)})


def test_load_backend_through_the_entry_point(tmp_path):
    backend = load_backend(files_backend("files", zone_dir(tmp_path, "z", "example.com")))
    assert isinstance(backend, ZoneFileBackend) and backend.name == "files"
    assert backend.zones() == [dns.name.from_text("example.com")]


def test_load_backend_unknown_driver():
    with pytest.raises(ConfigError, match=r"backend 'x': no backend driver 'nope' \(installed: .*zonefile"):
        load_backend(BackendConfig(name="x", driver="nope"))


def test_load_backend_reports_option_errors_with_the_backend_name(tmp_path):
    with pytest.raises(ConfigError, match="backend 'files': option 'directory' is required"):
        load_backend(BackendConfig(name="files", driver="zonefile"))
    with pytest.raises(ConfigError, match="backend 'files': option 'directory': .* is not a directory"):
        load_backend(files_backend("files", tmp_path / "missing"))


def router_of(*configs: BackendConfig) -> BackendRouter:
    return BackendRouter((load_backend(c), c.zones) for c in configs)


def route(router: BackendRouter, domain: str) -> tuple[str, str] | None:
    found = router.backend_for(dns.name.from_text(domain))
    return None if found is None else (found[0].name, found[1].to_text(omit_final_dot=True))


def test_explicit_zone_wins_over_any_zone(tmp_path):
    everything = files_backend("everything", zone_dir(tmp_path, "a", "example.com", "example.org"))
    explicit = files_backend("explicit", zone_dir(tmp_path, "b", "example.com"), zones=["example.com"])
    router = router_of(everything, explicit)
    assert route(router, "www.example.com") == ("explicit", "example.com")
    assert route(router, "example.org") == ("everything", "example.org")
    assert route(router, "example.net") is None


def test_most_specific_zone_wins(tmp_path):
    parent = files_backend("parent", zone_dir(tmp_path, "a", "example.com"), zones=["example.com"])
    child = files_backend("child", zone_dir(tmp_path, "b", "shop.example.com"))
    router = router_of(parent, child)
    assert route(router, "www.shop.example.com") == ("child", "shop.example.com")
    assert route(router, "www.example.com") == ("parent", "example.com")


def test_first_any_zone_backend_wins_a_tie(tmp_path):
    first = files_backend("first", zone_dir(tmp_path, "a", "example.com"))
    second = files_backend("second", zone_dir(tmp_path, "b", "example.com"))
    assert route(router_of(first, second), "example.com") == ("first", "example.com")


def test_two_backends_claiming_one_zone_is_an_error(tmp_path):
    one = files_backend("one", zone_dir(tmp_path, "a"), zones=["example.com"])
    two = files_backend("two", zone_dir(tmp_path, "b"), zones=["example.org", "example.com"])
    with pytest.raises(ConfigError, match="zone example.com is claimed by two backends: 'one' and 'two'"):
        router_of(one, two)


def test_any_zone_routing_sees_new_zones_at_once(tmp_path):
    directory = zone_dir(tmp_path, "a")
    router = router_of(files_backend("files", directory))
    assert route(router, "example.com") is None
    add_zone(directory, "example.com")
    assert route(router, "www.example.com") == ("files", "example.com")


def test_router_from_config(tmp_path):
    zone_dir(tmp_path, "zones", "example.com")
    config = load_config(write(tmp_path, '[[backends]]\nname = "files"\ndriver = "zonefile"\ndirectory = "zones"\n'))
    router = BackendRouter.from_config(config)
    assert route(router, "example.com") == ("files", "example.com")
    assert router.backend_named("files") is router.backends[0]


def test_commented_zonefile_example_is_valid(monkeypatch):
    monkeypatch.setenv("DCGW_SESSION_SECRET", "from-the-environment-from-the-environment")
    config = load_config(Path(__file__).resolve().parents[1] / "config" / "zonefile.toml")
    [backend] = config.backends
    assert (backend.driver, backend.options["reload_command"]) == ("zonefile", "rndc reload {zone}")
    assert config.gateway.signing_secret() == "from-the-environment-from-the-environment"
    assert config.ttl.policy() == TtlPolicy(minimum=300, maximum=86400, default=3600)


@pytest.mark.parametrize("example", sorted((Path(__file__).resolve().parents[1] / "config").glob("*.toml")),
                         ids=lambda path: path.name)
def test_every_example_config_loads(example, monkeypatch):
    for variable in ("DCGW_SESSION_SECRET", "PDNS_API_KEY", "TSIG_SECRET", "DCGW_TSIG_SECRET"):
        monkeypatch.setenv(variable, "x")
    config = load_config(example)
    assert config.backends and config.gateway.provider_id
