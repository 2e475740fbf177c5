"""The gateway's TOML configuration, loaded once and passed around as frozen values.

    dcgw COMMAND --config FILE

Every section is a pydantic model that forbids keys it does not define; each command checks
what it needs. A string `"env:NAME"` or `"file:/PATH"` anywhere under `[[backends]]` and
`[auth]`, and in `gateway.session_secret`, `database.url` and `metrics.token`, is a secret reference
(`gateway.infra.secret_references`), so secrets stay out of the file. Each is resolved where it is used:
the session secret by the commands that sign sessions (`dcgw serve`), a backend's by the
commands that load it, so `dcgw apply` never needs the session secret. Relative paths
resolve against the config file's directory: `gateway.templates`, a relative SQLite
`database.url`, and backend options named `directory` or ending in `_dir`, `_file` or `_path`.

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
from functools import cached_property
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import dns.exception
import dns.name
from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, Strict, ValidationError, ValidationInfo, field_validator,
    model_validator,
)

from backends.base import ENTRY_POINT_GROUP
from backends.base import ConfigError as BackendConfigError
from gateway.engine.domains import DomainError, zone_text
from gateway.engine.render import RenderLimits, TtlPolicy
from gateway.engine.safety import SafetyPolicy
from gateway.engine.validation import Flag, KeyProblem, Seconds, Text, Whole, describe, field_names, key_text, must
from gateway.infra.secret_references import ENV_PREFIX, FILE_PREFIX, SecretUnavailable, resolve_references, secret_value

__all__ = [
    "AuthSettings", "AuthUser", "BackendConfig", "Config", "ConfigError", "DatabaseSettings", "DnsSettings",
    "GatewaySettings", "LimitsSettings", "MetricsSettings", "RedirectSettings", "SafetySettings", "ServerSettings",
    "TtlSettings", "data_directory", "default_config_path", "embedded_default_config", "installed_drivers",
    "load_config", "resolve_secret",
]

log = logging.getLogger(__name__)

MIN_SESSION_SECRET_LENGTH = 32
MAX_TTL = 2**31 - 1
ANY_ZONE = "*"
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # gateway/, which holds defaults/ and examples/
DATA_DIRECTORY_NAME = "dcgw-data"
# Hex colours and the functional notations; a bare "0b5fff" would be silently ignored by browsers.
CSS_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})"
                       r"|(?:rgb|rgba|hsl|hsla)\(\s*[0-9.%,\s/+-]+\)|[a-zA-Z]{3,20}")

def _zone(value: str) -> str:
    try:
        return zone_text(value)
    except DomainError as exc:
        raise ValueError(str(exc)) from None


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("is required (a non-empty string)")
    return value.strip()


Port = Annotated[int, Strict(), must(lambda v: 0 < v < 65536, "must be a port number (1-65535), not {value}")]
Pixels = Annotated[int, Strict(), must(lambda v: v > 0, "must be a positive number of pixels, not {value}")]
TtlSeconds = Annotated[int, Strict(), must(lambda v: 0 <= v <= MAX_TTL,
                                             f"must be between 0 and {MAX_TTL} seconds, not {{value}}")]
Name = Annotated[str, Strict(), AfterValidator(_non_empty)]
Zone = Annotated[str, Strict(), AfterValidator(_zone)]
CssColor = Annotated[str, Strict(), AfterValidator(lambda value: _css_color(value))]
BaseUrl = Annotated[str, Strict(), must(lambda v: v.startswith(("https://", "http://")),
                                         "must be an http(s) URL, not {value!r}"), AfterValidator(lambda v: v.rstrip("/"))]


class ConfigError(BackendConfigError):
    """The config file is missing, unreadable or wrong; the message names the file and key."""


class Section(BaseModel):
    """A config table: frozen, and no key it does not define."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _base(info: ValidationInfo) -> Path | None:
    """The config file's directory while a file is loaded; None for values built in code."""
    return (info.context or {}).get("base")


def _relative_to(base: Path | None, value: str) -> Path:
    candidate = Path(value).expanduser()
    if candidate.is_absolute() or base is None:
        return Path(os.path.normpath(candidate))
    return Path(os.path.normpath(base / candidate))


class GatewaySettings(Section):
    """`[gateway]`: who we are to service providers and where we are served."""

    provider_id: Text = "localhost"
    provider_name: Text = "Domain Connect Gateway"
    provider_display_name: Text = ""
    base_url: BaseUrl = "http://127.0.0.1:8080"
    templates: Path | None = None
    control_panel_url: Text | None = None
    session_secret: Text | None = None
    development: Flag = False
    brand_color: CssColor = "#0b5fff"
    accent_color: CssColor = "#0b5fff"
    logo_url: Text = ""
    width: Pixels = 750
    height: Pixels = 750

    _resolved_secret: str | None = PrivateAttr(None)
    _generated_secret: str | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _display_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("provider_display_name"):
            name = data.get("provider_name", cls.model_fields["provider_name"].default)
            return {**data, "provider_display_name": name}
        return data

    @field_validator("templates", mode="before")
    @classmethod
    def _templates(cls, value: Any, info: ValidationInfo) -> Any:
        return _relative_to(_base(info), value) if isinstance(value, str) else value

    @field_validator("session_secret")
    @classmethod
    def _session_secret(cls, value: str | None) -> str | None:
        # A reference is resolved where sessions are signed (signing_secret), not by every command.
        if value and not value.startswith((ENV_PREFIX, FILE_PREFIX)):
            _check_session_secret(value)
        return value or None

    def signing_secret(self) -> str:
        """`session_secret` (resolved from the environment or a file now, where it is used),
        or a random one for this process when none is configured (sessions then do not
        survive a restart nor work across replicas)."""
        if self.session_secret:
            if self._resolved_secret is None:
                resolved = resolve_secret(self.session_secret, "gateway.session_secret")
                try:
                    _check_session_secret(resolved)
                except ValueError as exc:
                    raise ConfigError(f"gateway.session_secret: {exc}") from None
                self._resolved_secret = resolved
            return self._resolved_secret
        if self._generated_secret is None:
            log.warning("gateway.session_secret is not set; using a random secret for this process "
                        "(sessions end at restart and are not shared between replicas)")
            self._generated_secret = secrets.token_urlsafe(32)
        return self._generated_secret


class TtlSettings(Section):
    """`[ttl]`: the TTL policy templates are held to."""

    minimum: TtlSeconds = 60
    maximum: TtlSeconds = 86400
    default: TtlSeconds = 3600

    @model_validator(mode="after")
    def _ordered(self) -> TtlSettings:
        if self.minimum > self.maximum:
            raise KeyProblem("ttl.minimum", f"{self.minimum} is greater than ttl.maximum {self.maximum}")
        if not self.minimum <= self.default <= self.maximum:
            raise KeyProblem("ttl.default", f"{self.default} is outside ttl.minimum..ttl.maximum "
                                            f"({self.minimum}..{self.maximum})")
        return self

    def policy(self) -> TtlPolicy:
        return TtlPolicy(minimum=self.minimum, maximum=self.maximum, default=self.default)


class DnsSettings(Section):
    """`[dns]`: the resolver used to fetch signature keys; no nameservers = the system's."""

    nameservers: tuple[Text, ...] = ()
    port: Port = 53
    timeout: Annotated[Seconds, must(lambda v: v > 0, "must be a positive number of seconds, not {value}")] = 5.0


class RedirectSettings(Section):
    """`[redirects]`: the public addresses of the gateway's HTTP listener for redirected names.
    Without the section, REDIR301 and REDIR302 are not supported."""

    addresses: tuple[Text, ...] = ()

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must list at least one IPv4 or IPv6 address of the gateway's HTTP listener, "
                             "as in [\"203.0.113.80\"]")
        parsed = []
        for index, text in enumerate(value):
            try:
                parsed.append(str(ipaddress.ip_address(text.strip())))
            except ValueError:
                raise KeyProblem(f"redirects.addresses[{index}]", f"{text!r} is not an IP address") from None
        return tuple(dict.fromkeys(parsed))


class AuthUser(Section):
    """One `[[auth.users]]` table. Users of an OpenID Provider have no password here; the
    table only lists their zones."""

    username: Name
    password_hash: Text = ""
    zones: tuple[Zone, ...] = ()


class AuthSettings(Section):
    """`[auth]`: `driver` and, for "local", `users`; every other key stays in `options`
    (the driver checks them)."""

    driver: Text = "local"
    users: tuple[AuthUser, ...] = ()
    options: Mapping[str, Any] = Field(default_factory=lambda: MappingProxyType({}))
    unresolved: str | None = None  # a secret reference that could not be resolved: raised where sign-in is loaded

    @model_validator(mode="before")
    @classmethod
    def _gather(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or info.context is None:
            return data
        resolved, problem = _deferred(data, "auth")
        options = {k: v for k, v in resolved.items() if k not in ("driver", "users")}
        table = {k: v for k, v in resolved.items() if k in ("driver", "users")}
        return {**table, "options": options, "unresolved": problem}

    @field_validator("options")
    @classmethod
    def _frozen(cls, value: Mapping[str, Any]) -> Mapping[str, Any]:
        return MappingProxyType(dict(value))

    @model_validator(mode="after")
    def _users(self) -> AuthSettings:
        if self.driver != "oidc":
            for index, user in enumerate(self.users):
                if not user.password_hash:
                    raise KeyProblem(f"auth.users[{index}].password_hash", "is required (a non-empty string)")
        names = [user.username for user in self.users]
        duplicate = next((name for name in names if names.count(name) > 1), None)
        if duplicate:
            raise KeyProblem("auth.users", f"user {duplicate!r} is defined more than once")
        return self


class DatabaseSettings(Section):
    """`[database]`: SQLAlchemy URL of the state store, and how long a connect, statement or
    lock wait may take (seconds) before the request fails instead of waiting."""

    url: Text = "sqlite:///dcgw.sqlite"
    timeout: Annotated[Seconds, must(lambda v: 0 < v <= 300, "must be between 0 and 300 seconds, not {value:g}")] = 5.0

    @model_validator(mode="before")
    @classmethod
    def _default_url(cls, data: Any, info: ValidationInfo) -> Any:
        # Without a URL the state store sits beside the config file, wherever dcgw runs.
        base = _base(info)
        if isinstance(data, dict) and "url" not in data and base is not None:
            return {**data, "url": f"sqlite:///{base / 'dcgw.sqlite'}"}
        return data

    @field_validator("url")
    @classmethod
    def _url(cls, value: str, info: ValidationInfo) -> str:
        value = secret_value(value)
        if "://" not in value:
            raise ValueError(f"must be a database URL such as 'sqlite:///dcgw.sqlite', not {value!r}")
        # sqlite:///relative/path is relative to the config file, not to wherever dcgw runs.
        if value.startswith("sqlite:///") and not value.startswith("sqlite:////") and value != "sqlite:///:memory:":
            return f"sqlite:///{_relative_to(_base(info), value[len('sqlite:///'):])}"
        return value


class ServerSettings(Section):
    """`[server]`: how the gateway sits behind a reverse proxy or load balancer."""

    # Proxies (addresses or networks) whose X-Forwarded-For and X-Forwarded-Proto are believed;
    # from anyone else, and when empty, the TCP peer is the client.
    forwarded_allow_ips: tuple[Text, ...] = ()

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for index, item in enumerate(value):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise KeyProblem(f"server.forwarded_allow_ips[{index}]",
                                 f"{item!r} is not an IP address or network; list the proxies, "
                                 'as in ["10.0.0.5", "10.1.0.0/16"]') from None
        return value


class LimitsSettings(Section):
    """`[limits]`: bounds on what a template may render."""

    max_txt_bytes: Annotated[Whole, must(lambda v: 0 < v <= 65535, "must be between 1 and 65535 bytes, not {value}")] \
        = RenderLimits().max_txt_bytes

    def policy(self) -> RenderLimits:
        return RenderLimits(max_txt_bytes=self.max_txt_bytes)


class SafetySettings(Section):
    """`[safety]`: names no apply may touch, and how many records one apply may delete."""

    protected_names: tuple[Text, ...] = ()
    max_deletes: Annotated[Whole, must(lambda v: v >= 0, "must be 0 or more records, not {value}")] \
        = SafetyPolicy().max_deletes

    @field_validator("protected_names")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for index, name in enumerate(value):
            try:
                dns.name.from_text(name, origin=dns.name.root)
            except dns.exception.DNSException as exc:
                raise KeyProblem(f"safety.protected_names[{index}]", f"{name!r} is not a DNS name: {exc}") from None
        return value

    def policy(self) -> SafetyPolicy:
        return SafetyPolicy(protected_names=self.protected_names, max_deletes=self.max_deletes)


class MetricsSettings(Section):
    """`[metrics]`: /metrics is served only to a scraper presenting `token` as a bearer token,
    or on the separate address `listen` ("host:port"); with neither it is not served."""

    token: Text | None = None
    listen: tuple[str, int] | None = None

    @field_validator("token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return secret_value(value) or None  # an empty secret is no token: /metrics stays closed

    @field_validator("listen", mode="before")
    @classmethod
    def _listen(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"must be host:port, such as '127.0.0.1:9100', not {value!r}")
        return (host.strip("[]"), int(port))


class BackendConfig(Section):
    """One `[[backends]]` table: instance name, entry point name, zones, and its own options."""

    name: Name
    driver: Name
    zones: tuple[Text, ...] = (ANY_ZONE,)
    options: Mapping[str, Any] = Field(default_factory=lambda: MappingProxyType({}))
    unresolved: str | None = None  # a secret reference that could not be resolved: raised where it is loaded

    @model_validator(mode="before")
    @classmethod
    def _gather(cls, data: Any, info: ValidationInfo) -> Any:
        # Every key but these three is the driver's: the backend checks its own options.
        if not isinstance(data, dict) or info.context is None:
            return data
        table = {k: v for k, v in data.items() if k in ("name", "driver", "zones")}
        return {**table, "options": {k: v for k, v in data.items() if k not in table}}

    @field_validator("driver")
    @classmethod
    def _driver(cls, value: str, info: ValidationInfo) -> str:
        installed = installed_drivers()
        if info.context is not None and value not in installed:  # a config file names a driver to load
            raise ValueError(f"no backend driver {value!r} (installed: {', '.join(installed) or 'none'})")
        return value

    @field_validator("zones")
    @classmethod
    def _zones(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError('must list at least one zone, or "*" for every zone')
        return tuple(dict.fromkeys(z if z == ANY_ZONE else _zone(z) for z in value))

    @field_validator("options")
    @classmethod
    def _frozen(cls, value: Mapping[str, Any]) -> Mapping[str, Any]:
        return MappingProxyType(dict(value))

    def resolved(self, key: str, base: Path) -> BackendConfig:
        """This backend with its secrets resolved (or why not) and its path options absolute."""
        options, problem = _deferred(dict(self.options), key)
        options = {name: _option_path(name, value, base) for name, value in options.items()}
        return self.model_copy(update={"options": MappingProxyType(options), "unresolved": problem})

    @property
    def claims_any_zone(self) -> bool:
        return ANY_ZONE in self.zones

    @property
    def explicit_zones(self) -> tuple[dns.name.Name, ...]:
        return tuple(dns.name.from_text(z) for z in self.zones if z != ANY_ZONE)


def _section() -> Any:
    # A missing table is validated as an empty one, so that what depends on the file's
    # directory (the default database) holds for it too.
    return Field(default_factory=dict, validate_default=True)


class Config(Section):
    path: Path
    gateway: GatewaySettings = _section()
    ttl: TtlSettings = _section()
    dns: DnsSettings = _section()
    auth: AuthSettings = _section()
    database: DatabaseSettings = _section()
    backends: tuple[BackendConfig, ...] = ()
    server: ServerSettings = _section()
    limits: LimitsSettings = _section()
    safety: SafetySettings = _section()
    metrics: MetricsSettings = _section()
    redirects: RedirectSettings | None = None

    @field_validator("backends")
    @classmethod
    def _backends(cls, value: tuple[BackendConfig, ...], info: ValidationInfo) -> tuple[BackendConfig, ...]:
        for index, backend in enumerate(value):
            if any(other.name == backend.name for other in value[:index]):
                raise KeyProblem(f"backends[{index}].name", f"another backend is already named {backend.name!r}")
        base = _base(info)
        if base is None:
            return value
        return tuple(backend.resolved(f"backends[{index}]", base) for index, backend in enumerate(value))

    @property
    def directory(self) -> Path:
        return self.path.parent

    def apply_policies(self) -> dict[str, Any]:
        """The ApplyContext fields every apply takes from the config: ttl_policy, limits, safety."""
        return dict(self._policies)

    @cached_property
    def _policies(self) -> dict[str, Any]:
        return {"ttl_policy": self.ttl.policy(), "limits": self.limits.policy(), "safety": self.safety.policy()}


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
    return config.model_copy(update={
        "database": DatabaseSettings(url=f"sqlite:///{data_dir / 'dcgw.sqlite'}"),
        "backends": (backend.model_copy(update={"options": options}),),
    })


def resolve_secret(value: str, key: str) -> str:
    """`value`, or what an `"env:NAME"` or `"file:/PATH"` reference points to; `ConfigError`
    naming `key` when the variable or file is missing."""
    try:
        return secret_value(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _deferred(value: dict[str, Any], key: str) -> tuple[dict[str, Any], str | None]:
    """`value` with its secrets resolved, or as written and why not: a command that never
    loads this part (sign-in, one backend) must not need its secrets. The reason is
    completed with the file's name by `load_config`."""
    try:
        return resolve_references(value, key), None
    except SecretUnavailable as exc:
        return value, f"{exc.key}: {exc}"


def _check_session_secret(secret: str) -> None:
    if len(secret) < MIN_SESSION_SECRET_LENGTH:
        raise ValueError(f"must be at least {MIN_SESSION_SECRET_LENGTH} characters (it is {len(secret)}); "
                         "make one with `python -c 'import secrets; print(secrets.token_urlsafe(32))'`")


def _option_path(key: str, value: Any, base: Path) -> Any:
    if isinstance(value, str) and (key == "directory" or key.endswith(("_dir", "_file", "_path"))):
        return str(_relative_to(base, value))
    return value


def _css_color(value: str) -> str:
    bare_hex = re.fullmatch(r"[0-9a-fA-F]{3,8}", value) is not None
    if bare_hex or not CSS_COLOR.fullmatch(value.strip()):
        hint = f" (did you mean '#{value}'?)" if bare_hex else ""
        raise ValueError(f"{value!r} is not a CSS color such as '#0b5fff'{hint}")
    return value


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
    if "path" in document:  # a field of Config, not a section of the file
        sections = ", ".join(sorted(set(field_names(Config)) - {"path"}))
        raise ConfigError(f"{path}: path: unknown section (expected one of: {sections})")
    try:
        config = Config.model_validate({**document, "path": path.resolve()},
                                       context={"base": path.resolve().parent})
    except ValidationError as exc:
        where, message = describe(exc, Config, toml=True)
        raise ConfigError(f"{path}: {key_text(where)}: {message}") from None
    return _with_file_name(config, path)


def _with_file_name(config: Config, path: Path) -> Config:
    """Secrets that could not be resolved are reported where they are used, naming the file."""
    auth = config.auth
    if auth.unresolved:
        auth = auth.model_copy(update={"unresolved": f"{path}: {auth.unresolved}"})
    backends = tuple(b.model_copy(update={"unresolved": f"{path}: {b.unresolved}"}) if b.unresolved else b
                     for b in config.backends)
    return config.model_copy(update={"auth": auth, "backends": backends})
