"""The gateway's TOML configuration, loaded once and passed around as frozen values.

    dcgw COMMAND --config FILE

Every section is optional; each command checks what it needs. A string `"env:NAME"`
anywhere under `[[backends]]` and `[auth]`, and in `gateway.session_secret`,
`database.url` and `metrics.token`, is read from the environment variable NAME, and
`"file:/PATH"` from the file PATH (one trailing newline stripped: Docker and Kubernetes
secrets), so secrets stay out of the file. Each is resolved where it is used: the session
secret by the commands that sign sessions (`dcgw serve`), a backend's by the commands that
load it, so `dcgw apply` never needs the session secret. Relative paths resolve against the config file's directory: `gateway.templates`,
a relative SQLite `database.url`, and backend options named `directory` or ending in
`_dir`, `_file` or `_path`.

Errors are `ConfigError`s that name the file and the key:
`config.toml: backends[1].driver: no backend driver 'pdsn' (installed: powerdns, ...)`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Any

import dns.exception
import dns.name

from backends.base import ENTRY_POINT_GROUP
from backends.base import ConfigError as BackendConfigError
from gateway.engine.domains import DomainError, zone_text
from gateway.engine.render import RenderLimits, TtlPolicy
from gateway.engine.safety import SafetyPolicy

__all__ = [
    "AuthSettings", "AuthUser", "BackendConfig", "Config", "ConfigError", "DatabaseSettings", "DnsSettings",
    "GatewaySettings", "MetricsSettings", "RedirectSettings", "ServerSettings", "TtlSettings", "data_directory",
    "default_config_path", "embedded_default_config", "installed_drivers", "load_config", "resolve_secret",
]

log = logging.getLogger(__name__)

ENV_PREFIX = "env:"
FILE_PREFIX = "file:"
MAX_SECRET_FILE_BYTES = 64 * 1024
MIN_SESSION_SECRET_LENGTH = 32
ANY_ZONE = "*"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # gateway/, which holds defaults/ and examples/
DATA_DIRECTORY_NAME = "dcgw-data"
# Hex colours and the functional notations; a bare "0b5fff" would be silently ignored by browsers.
CSS_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})"
                       r"|(?:rgb|rgba|hsl|hsla)\(\s*[0-9.%,\s/+-]+\)|[a-zA-Z]{3,20}")


class ConfigError(BackendConfigError):
    """The config file is missing, unreadable or wrong; the message names the file and key."""


@dataclass(frozen=True)
class GatewaySettings:
    """`[gateway]`: who we are to service providers and where we are served."""

    provider_id: str = "localhost"
    provider_name: str = "Domain Connect Gateway"
    provider_display_name: str = ""
    base_url: str = "http://127.0.0.1:8080"
    templates: Path | None = None
    control_panel_url: str | None = None
    session_secret: str | None = None
    development: bool = False
    brand_color: str = "#0b5fff"
    accent_color: str = "#0b5fff"
    logo_url: str = ""
    width: int = 750
    height: int = 750

    def __post_init__(self) -> None:
        if not self.provider_display_name:
            object.__setattr__(self, "provider_display_name", self.provider_name)

    def signing_secret(self) -> str:
        """`session_secret` (resolved from the environment or a file now, where it is used),
        or a random one for this process when none is configured (sessions then do not
        survive a restart nor work across replicas)."""
        if self.session_secret:
            resolved = self.__dict__.get("_resolved_secret")
            if resolved is None:
                resolved = resolve_secret(self.session_secret, "gateway.session_secret")
                check_session_secret(resolved)
                object.__setattr__(self, "_resolved_secret", resolved)
            return resolved
        generated = self.__dict__.get("_generated_secret")
        if generated is None:
            log.warning("gateway.session_secret is not set; using a random secret for this process "
                        "(sessions end at restart and are not shared between replicas)")
            generated = secrets.token_urlsafe(32)
            object.__setattr__(self, "_generated_secret", generated)
        return generated


@dataclass(frozen=True)
class TtlSettings:
    """`[ttl]`: the TTL policy templates are held to."""

    minimum: int = 60
    maximum: int = 86400
    default: int = 3600

    def policy(self) -> TtlPolicy:
        return TtlPolicy(minimum=self.minimum, maximum=self.maximum, default=self.default)


@dataclass(frozen=True)
class DnsSettings:
    """`[dns]`: the resolver used to fetch signature keys; no nameservers = the system's."""

    nameservers: tuple[str, ...] = ()
    port: int = 53
    timeout: float = 5.0


@dataclass(frozen=True)
class RedirectSettings:
    """`[redirects]`: the public addresses of the gateway's HTTP listener for redirected names.
    Without the section, REDIR301 and REDIR302 are not supported."""

    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuthUser:
    username: str
    password_hash: str
    zones: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuthSettings:
    """`[auth]`: `driver` and, for "local", `users`; every other key stays in `options`."""

    driver: str = "local"
    users: tuple[AuthUser, ...] = ()
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    unresolved: str | None = None  # a secret reference that could not be resolved: raised where sign-in is loaded


@dataclass(frozen=True)
class DatabaseSettings:
    """`[database]`: SQLAlchemy URL of the state store, and how long a connect, statement or
    lock wait may take (seconds) before the request fails instead of waiting."""

    url: str = "sqlite:///dcgw.sqlite"
    timeout: float = 5.0


@dataclass(frozen=True)
class ServerSettings:
    """`[server]`: how the gateway sits behind a reverse proxy or load balancer."""

    # Proxies (addresses or networks) whose X-Forwarded-For and X-Forwarded-Proto are believed;
    # from anyone else, and when empty, the TCP peer is the client.
    forwarded_allow_ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricsSettings:
    """`[metrics]`: /metrics is served only to a scraper presenting `token` as a bearer token,
    or on the separate address `listen` ("host:port"); with neither it is not served."""

    token: str | None = None
    listen: tuple[str, int] | None = None


@dataclass(frozen=True)
class BackendConfig:
    """One `[[backends]]` table: instance name, entry point name, zones, and its own options."""

    name: str
    driver: str
    zones: tuple[str, ...] = (ANY_ZONE,)
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    unresolved: str | None = None  # a secret reference that could not be resolved: raised where it is loaded

    @property
    def claims_any_zone(self) -> bool:
        return ANY_ZONE in self.zones

    @property
    def explicit_zones(self) -> tuple[dns.name.Name, ...]:
        return tuple(dns.name.from_text(z) for z in self.zones if z != ANY_ZONE)


@dataclass(frozen=True)
class Config:
    path: Path
    gateway: GatewaySettings = GatewaySettings()
    ttl: TtlSettings = TtlSettings()
    dns: DnsSettings = DnsSettings()
    auth: AuthSettings = AuthSettings()
    database: DatabaseSettings = DatabaseSettings()
    backends: tuple[BackendConfig, ...] = ()
    server: ServerSettings = ServerSettings()
    limits: RenderLimits = RenderLimits()
    safety: SafetyPolicy = SafetyPolicy()
    metrics: MetricsSettings = MetricsSettings()
    redirects: RedirectSettings | None = None

    @property
    def directory(self) -> Path:
        return self.path.parent

    def apply_policies(self) -> dict[str, Any]:
        """The ApplyContext fields every apply takes from the config: ttl_policy, limits, safety."""
        return {"ttl_policy": self.ttl.policy(), "limits": self.limits, "safety": self.safety}


def default_config_path() -> Path:
    """The embedded default config, shipped inside the package: a zone-file backend, the
    demo user and the spec's example template."""
    return PACKAGE_DIR / "defaults" / "default.toml"


def data_directory() -> Path:
    """Where the embedded default keeps its state and zones: `$XDG_DATA_HOME/dcgw` when
    XDG_DATA_HOME is set, else `./dcgw-data` under the working directory (never inside
    the installed package, which may be read-only)."""
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg).expanduser().resolve() / "dcgw"
    return Path.cwd().resolve() / DATA_DIRECTORY_NAME


def embedded_default_config(data_dir: Path | None = None) -> Config:
    """The embedded default with its database and zone directory in `data_dir`."""
    data_dir = data_dir or data_directory()
    config = load_config(default_config_path())
    backend = config.backends[0]
    options = MappingProxyType({**backend.options, "directory": str(data_dir / "zones")})
    return replace(config, database=DatabaseSettings(url=f"sqlite:///{data_dir / 'dcgw.sqlite'}"),
                   backends=(replace(backend, options=options),))


def resolve_secret(value: str, key: str) -> str:
    """`value`, or what an `"env:NAME"` or `"file:/PATH"` reference points to; `ConfigError`
    naming `key` when the variable or file is missing."""
    if value.startswith(ENV_PREFIX):
        variable = value[len(ENV_PREFIX):]
        if not variable:
            raise ConfigError(f"{key}: 'env:' needs a variable name, as in 'env:PDNS_API_KEY'")
        if variable not in os.environ:
            raise ConfigError(f"{key}: environment variable {variable} is not set")
        return os.environ[variable]
    if value.startswith(FILE_PREFIX):
        name = value[len(FILE_PREFIX):]
        if not name:
            raise ConfigError(f"{key}: 'file:' needs a path, as in 'file:/run/secrets/pdns_api_key'")
        try:
            with open(name, "rb") as file:
                data = file.read(MAX_SECRET_FILE_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"{key}: cannot read secret file {name}: {exc.strerror or exc}") from None
        if len(data) > MAX_SECRET_FILE_BYTES:
            raise ConfigError(f"{key}: secret file {name} is larger than {MAX_SECRET_FILE_BYTES} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{key}: secret file {name} is not UTF-8 text") from None
        # Files written by `echo` or an editor end in a newline that is no part of the secret.
        return text.removesuffix("\n").removesuffix("\r")
    return value


def check_session_secret(secret: str) -> None:
    if len(secret) < MIN_SESSION_SECRET_LENGTH:
        raise ConfigError(f"gateway.session_secret: must be at least {MIN_SESSION_SECRET_LENGTH} characters "
                          f"(it is {len(secret)}); make one with "
                          "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")


def installed_drivers() -> list[str]:
    """Names of the backend drivers installed in this environment (entry points)."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check a config file; `ConfigError` naming the file and key on any problem."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return _Loader(path).config(document)


class _Loader:
    """Turns the parsed TOML document into `Config`, remembering the file for messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.resolve().parent

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {message}")

    def config(self, document: dict[str, Any]) -> Config:
        known = {"gateway", "ttl", "dns", "auth", "database", "backends", "limits", "safety", "metrics",
                 "redirects", "server"}
        unknown = sorted(set(document) - known)
        if unknown:
            raise self.fail(unknown[0], f"unknown section (expected one of: {', '.join(sorted(known))})")
        return Config(
            path=self.path.resolve(),
            gateway=self.gateway(self.table(document, "gateway")),
            ttl=self.ttl(self.table(document, "ttl")),
            dns=self.dns(self.table(document, "dns")),
            auth=self.auth_section(self.table(document, "auth")),
            database=self.database(self.table(document, "database")),
            backends=self.backends(document.get("backends", [])),
            server=self.server(self.table(document, "server")),
            limits=self.limits(self.table(document, "limits")),
            safety=self.safety(self.table(document, "safety")),
            metrics=self.metrics(self.table(document, "metrics")),
            redirects=self.redirects(self.table(document, "redirects")) if "redirects" in document else None,
        )

    # -- helpers --------------------------------------------------------------------------

    def table(self, document: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = document.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table ([{key}]), not {_kind(value)}")
        return value

    def resolve_env(self, value: Any, key: str) -> Any:
        """Replace every `"env:NAME"` and `"file:/PATH"` string in `value` by what it names."""
        if isinstance(value, str):
            try:
                return resolve_secret(value, key)
            except ConfigError as exc:
                raise ConfigError(f"{self.path}: {exc}") from None
        if isinstance(value, dict):
            return {k: self.resolve_env(v, f"{key}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve_env(v, f"{key}[{i}]") for i, v in enumerate(value)]
        return value

    def get(self, table: Mapping[str, Any], section: str, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        if key not in table:
            return default
        value = table[key]
        # TOML booleans are not integers here, whatever Python thinks.
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
            expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.fail(f"{section}.{key}", f"must be {_article(expected)}, not {_kind(value)}")
        return value

    def check_keys(self, table: Mapping[str, Any], section: str, allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(f"{section}.{key}", f"unknown key (expected one of: {', '.join(sorted(allowed))})")

    def strings(self, table: Mapping[str, Any], section: str, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self.get(table, section, key, list, None)
        if value is None:
            return default
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self.fail(f"{section}.{key}[{index}]", f"must be a string, not {_kind(item)}")
        return tuple(value)

    def path_value(self, value: str) -> Path:
        candidate = Path(value).expanduser()
        return Path(os.path.normpath(candidate if candidate.is_absolute() else self.base / candidate))

    # -- sections -------------------------------------------------------------------------

    def gateway(self, table: dict[str, Any]) -> GatewaySettings:
        strings = ("provider_id", "provider_name", "provider_display_name", "base_url", "brand_color",
                   "accent_color", "logo_url")
        self.check_keys(table, "gateway", set(strings) | {"templates", "control_panel_url", "session_secret",
                                                           "development", "width", "height"})
        values: dict[str, Any] = {key: self.get(table, "gateway", key, str, None) for key in strings}
        values = {k: v for k, v in values.items() if v is not None}
        if "base_url" in values:
            base_url = values["base_url"].rstrip("/")
            if not base_url.startswith(("https://", "http://")):
                raise self.fail("gateway.base_url", f"must be an http(s) URL, not {values['base_url']!r}")
            values["base_url"] = base_url
        for key in ("brand_color", "accent_color"):
            bare_hex = key in values and re.fullmatch(r"[0-9a-fA-F]{3,8}", values[key]) is not None
            if key in values and (bare_hex or not CSS_COLOR.fullmatch(values[key].strip())):
                hint = f" (did you mean '#{values[key]}'?)" if bare_hex else ""
                raise self.fail(f"gateway.{key}", f"{values[key]!r} is not a CSS color such as '#0b5fff'{hint}")
        templates = self.get(table, "gateway", "templates", str, None)
        # Resolved where sessions are signed (signing_secret), not by every command.
        secret = self.get(table, "gateway", "session_secret", str, None)
        if secret and not secret.startswith((ENV_PREFIX, FILE_PREFIX)):
            try:
                check_session_secret(secret)
            except ConfigError as exc:
                raise ConfigError(f"{self.path}: {exc}") from None
        for key in ("width", "height"):
            size = self.get(table, "gateway", key, int, None)
            if size is not None:
                if size <= 0:
                    raise self.fail(f"gateway.{key}", f"must be a positive number of pixels, not {size}")
                values[key] = size
        return GatewaySettings(
            **values,
            templates=self.path_value(templates) if templates is not None else None,
            control_panel_url=self.get(table, "gateway", "control_panel_url", str, None),
            session_secret=secret or None,
            development=self.get(table, "gateway", "development", bool, False),
        )

    def ttl(self, table: dict[str, Any]) -> TtlSettings:
        self.check_keys(table, "ttl", {"minimum", "maximum", "default"})
        defaults = TtlSettings()
        values = {key: self.get(table, "ttl", key, int, getattr(defaults, key))
                  for key in ("minimum", "maximum", "default")}
        for key, value in values.items():
            if not 0 <= value <= 2**31 - 1:
                raise self.fail(f"ttl.{key}", f"must be between 0 and 2147483647 seconds, not {value}")
        if values["minimum"] > values["maximum"]:
            raise self.fail("ttl.minimum", f"{values['minimum']} is greater than ttl.maximum {values['maximum']}")
        if not values["minimum"] <= values["default"] <= values["maximum"]:
            raise self.fail("ttl.default", f"{values['default']} is outside ttl.minimum..ttl.maximum "
                                           f"({values['minimum']}..{values['maximum']})")
        return TtlSettings(**values)

    def dns(self, table: dict[str, Any]) -> DnsSettings:
        self.check_keys(table, "dns", {"nameservers", "port", "timeout"})
        port = self.get(table, "dns", "port", int, 53)
        if not 0 < port < 65536:
            raise self.fail("dns.port", f"must be a port number (1-65535), not {port}")
        timeout = float(self.get(table, "dns", "timeout", (int, float), 5.0))
        if timeout <= 0:
            raise self.fail("dns.timeout", f"must be a positive number of seconds, not {timeout}")
        return DnsSettings(nameservers=self.strings(table, "dns", "nameservers", ()), port=port, timeout=timeout)

    def redirects(self, table: dict[str, Any]) -> RedirectSettings:
        self.check_keys(table, "redirects", {"addresses"})
        addresses = self.strings(table, "redirects", "addresses", ())
        if not addresses:
            raise self.fail("redirects.addresses", "must list at least one IPv4 or IPv6 address of the gateway's "
                                                   "HTTP listener, as in [\"203.0.113.80\"]")
        parsed = []
        for index, text in enumerate(addresses):
            try:
                parsed.append(str(ipaddress.ip_address(text.strip())))
            except ValueError:
                raise self.fail(f"redirects.addresses[{index}]", f"{text!r} is not an IP address") from None
        return RedirectSettings(addresses=tuple(dict.fromkeys(parsed)))
    def deferred(self, value: Any, key: str) -> tuple[Any, str | None]:
        """`value` with its secrets resolved, or as written and why not: a command that never
        loads this part (sign-in, one backend) must not need its secrets."""
        try:
            return self.resolve_env(value, key), None
        except ConfigError as exc:
            return value, str(exc)

    def auth_section(self, table: dict[str, Any]) -> AuthSettings:
        resolved, problem = self.deferred(table, "auth")
        settings = self.auth(resolved)
        return replace(settings, unresolved=problem) if problem else settings

    def auth(self, table: dict[str, Any]) -> AuthSettings:
        driver = self.get(table, "auth", "driver", str, "local")
        users = []
        raw_users = self.get(table, "auth", "users", list, [])
        for index, raw in enumerate(raw_users):
            section = f"auth.users[{index}]"
            if not isinstance(raw, dict):
                raise self.fail(section, f"must be a table ([[auth.users]]), not {_kind(raw)}")
            self.check_keys(raw, section, {"username", "password_hash", "zones"})
            # Users of an OpenID Provider have no password here; the table only lists their zones.
            required = ("username",) if driver == "oidc" else ("username", "password_hash")
            for key in required:
                if not isinstance(raw.get(key), str) or not raw[key]:
                    raise self.fail(f"{section}.{key}", "is required (a non-empty string)")
            zones = tuple(_zone_text(z, lambda m: self.fail(f"{section}.zones", m))
                          for z in self.strings(raw, section, "zones", ()))
            users.append(AuthUser(raw["username"], raw.get("password_hash", ""), zones))
        names = [u.username for u in users]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            raise self.fail("auth.users", f"user {duplicate!r} is defined more than once")
        options = {k: v for k, v in table.items() if k not in ("driver", "users")}
        return AuthSettings(driver=driver, users=tuple(users), options=MappingProxyType(options))

    def database(self, table: dict[str, Any]) -> DatabaseSettings:
        self.check_keys(table, "database", {"url", "timeout"})
        timeout = float(self.get(table, "database", "timeout", (int, float), 5.0))
        if not 0 < timeout <= 300:
            raise self.fail("database.timeout", f"must be between 0 and 300 seconds, not {timeout:g}")
        url = self.resolve_env(self.get(table, "database", "url", str, None), "database.url")
        if url is None:
            return DatabaseSettings(url=f"sqlite:///{self.base / 'dcgw.sqlite'}", timeout=timeout)
        if "://" not in url:
            raise self.fail("database.url", f"must be a database URL such as 'sqlite:///dcgw.sqlite', not {url!r}")
        # sqlite:///relative/path is relative to the config file, not to wherever dcgw runs.
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
            url = f"sqlite:///{self.path_value(url[len('sqlite:///'):])}"
        return DatabaseSettings(url=url, timeout=timeout)

    def server(self, table: dict[str, Any]) -> ServerSettings:
        self.check_keys(table, "server", {"forwarded_allow_ips"})
        proxies = self.strings(table, "server", "forwarded_allow_ips", ())
        for index, item in enumerate(proxies):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise self.fail(f"server.forwarded_allow_ips[{index}]",
                                f"{item!r} is not an IP address or network; list the proxies, "
                                'as in ["10.0.0.5", "10.1.0.0/16"]') from None
        return ServerSettings(forwarded_allow_ips=proxies)

    def limits(self, table: dict[str, Any]) -> RenderLimits:
        self.check_keys(table, "limits", {"max_txt_bytes"})
        size = self.get(table, "limits", "max_txt_bytes", int, RenderLimits().max_txt_bytes)
        if not 0 < size <= 65535:
            raise self.fail("limits.max_txt_bytes", f"must be between 1 and 65535 bytes, not {size}")
        return RenderLimits(max_txt_bytes=size)

    def safety(self, table: dict[str, Any]) -> SafetyPolicy:
        self.check_keys(table, "safety", {"protected_names", "max_deletes"})
        names = self.strings(table, "safety", "protected_names", ())
        for index, name in enumerate(names):
            try:
                dns.name.from_text(name, origin=dns.name.root)
            except dns.exception.DNSException as exc:
                raise self.fail(f"safety.protected_names[{index}]", f"{name!r} is not a DNS name: {exc}") from None
        max_deletes = self.get(table, "safety", "max_deletes", int, SafetyPolicy().max_deletes)
        if max_deletes < 0:
            raise self.fail("safety.max_deletes", f"must be 0 or more records, not {max_deletes}")
        return SafetyPolicy(protected_names=names, max_deletes=max_deletes)

    def metrics(self, table: dict[str, Any]) -> MetricsSettings:
        self.check_keys(table, "metrics", {"token", "listen"})
        token = self.resolve_env(self.get(table, "metrics", "token", str, None), "metrics.token")
        listen = self.get(table, "metrics", "listen", str, None)
        address = None
        if listen is not None:
            host, _, port = listen.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise self.fail("metrics.listen", f"must be host:port, such as '127.0.0.1:9100', not {listen!r}")
            address = (host.strip("[]"), int(port))
        return MetricsSettings(token=token or None, listen=address)

    def backends(self, raw_backends: Any) -> tuple[BackendConfig, ...]:
        if not isinstance(raw_backends, list):
            raise self.fail("backends", f"must be an array of tables ([[backends]]), not {_kind(raw_backends)}")
        installed = installed_drivers()
        configs: list[BackendConfig] = []
        for index, raw in enumerate(raw_backends):
            section = f"backends[{index}]"
            if not isinstance(raw, dict):
                raise self.fail(section, f"must be a table ([[backends]]), not {_kind(raw)}")
            for key in ("name", "driver"):
                if not isinstance(raw.get(key), str) or not raw[key].strip():
                    raise self.fail(f"{section}.{key}", "is required (a non-empty string)")
            name, driver = raw["name"].strip(), raw["driver"].strip()
            if driver not in installed:
                raise self.fail(f"{section}.driver", f"no backend driver {driver!r} "
                                                    f"(installed: {', '.join(installed) or 'none'})")
            if any(c.name == name for c in configs):
                raise self.fail(f"{section}.name", f"another backend is already named {name!r}")
            zones = self.strings(raw, section, "zones", (ANY_ZONE,))
            if not zones:
                raise self.fail(f"{section}.zones", 'must list at least one zone, or "*" for every zone')
            zones = tuple(z if z == ANY_ZONE else _zone_text(z, lambda m: self.fail(f"{section}.zones", m))
                          for z in zones)
            options, problem = self.deferred({k: v for k, v in raw.items() if k not in ("name", "driver", "zones")},
                                             section)
            options = {key: self.option_value(key, value) for key, value in options.items()}
            configs.append(BackendConfig(name=name, driver=driver, zones=tuple(dict.fromkeys(zones)),
                                         options=MappingProxyType(options), unresolved=problem))
        return tuple(configs)

    def option_value(self, key: str, value: Any) -> Any:
        if isinstance(value, str) and (key == "directory" or key.endswith(("_dir", "_file", "_path"))):
            return str(self.path_value(value))
        return value


def _zone_text(value: str, fail) -> str:
    try:
        return zone_text(value)
    except DomainError as exc:
        raise fail(str(exc)) from None


def _kind(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
             dict: "a table"}
    return kinds.get(type(value), type(value).__name__)


def _article(kind: str) -> str:
    return {"str": "a string", "int": "an integer", "bool": "a boolean (true or false)", "list": "an array",
            "int or float": "a number"}.get(kind, kind)
