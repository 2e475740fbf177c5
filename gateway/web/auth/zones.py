"""Which zones a user controls: the one place every check of zone control asks (sync consent,
OAuth consent, the API's check that a grant's user still controls the zone, the authorizations page).

    [auth.zones]
    source = "url"                                         # "config" (default) | "claim" | "url"
    url = "https://panel.internal/api/users/{user}/zones"  # answers a JSON list of zone names
    token = "env:PANEL_TOKEN"                              # optional bearer token (env: or file:)
    cache_seconds = 60                                     # default 60; 0 asks on every check
    timeout = 5                                            # seconds, default 5

    [auth.zones]
    source = "claim"
    claim = "zones"                                        # the ID token claim (oidc) listing zones

`config` is the driver's own lists (`[[auth.users]] zones`, and for the header driver the zones
header). `claim` is what the sign-in itself asserted: an ID token claim, or the header driver's
zones header; it is known only while the user is signed in, so between visits (the API) a grant
stands until revoked. `url` asks the DNS host's control panel.

A failure never widens access: when a source cannot be reached or answers anything but a list
of zone names, `ZonesUnavailable` says why (logged here) and nobody controls anything.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx
from cachetools import TTLCache

from gateway.engine.domains import DomainError, idna_domain
from gateway.infra.config import ConfigError, GatewaySettings

if TYPE_CHECKING:
    from gateway.web.auth.base import Authenticator, User

log = logging.getLogger(__name__)

ANY_ZONE = "*"
FILE_PREFIX = "file:"
SOURCES = ("config", "claim", "url")
CLAIM_DRIVERS = ("oidc", "header")  # drivers whose sign-in itself names zones
DEFAULT_CACHE_SECONDS = 60
DEFAULT_TIMEOUT = 5.0
MAX_ANSWER_BYTES = 1 << 20  # a control panel's answer; more is not a zone list
MAX_ZONES = 100_000
MAX_CACHED_USERS = 100_000
MAX_CLAIMED_ZONES = 100  # a claim's zones live in the session cookie, which browsers cap at 4 KB
UNAVAILABLE = ("Which domains your account controls could not be checked just now, so no domain can be "
               "changed. Try again in a few minutes.")


class ZonesUnavailable(Exception):
    """The zone source failed; the message says why (for the log, not for the customer)."""


class ZoneSource(ABC):
    name: str

    @abstractmethod
    def zones_of(self, user: User) -> frozenset[str]:
        """The zones a signed-in user controls; `ZonesUnavailable` when that cannot be known."""

    @abstractmethod
    def zones_between_visits(self, username: str) -> frozenset[str] | None:
        """The zones of a user who is not here (the API acting on their grant); None when this
        source only knows while the user is signed in."""

    def check_deployment(self, gateway: GatewaySettings) -> None:
        """`ConfigError` when the source does not suit this gateway (an http URL in production)."""

    def close(self) -> None:
        """Release the connections the source holds."""


class ConfigZones(ZoneSource):
    """The driver's own lists: `[[auth.users]] zones`, and the proxy's zones header."""

    name = "config"

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    def zones_of(self, user: User) -> frozenset[str]:
        return frozenset(user.zones)

    def zones_between_visits(self, username: str) -> frozenset[str] | None:
        user = self.authenticator.user_named(username)
        if user is None:
            # Proxy-signed users are unknown between visits unless listed; a user the gateway
            # signs in itself and no longer knows has lost everything.
            return None if not self.authenticator.uses_login_form else frozenset()
        return frozenset(user.zones)


class ClaimedZones(ZoneSource):
    """Zones the sign-in asserted: the ID token's claim, or the header driver's zones header."""

    name = "claim"

    def __init__(self, claim: str) -> None:
        self.claim = claim

    def zones_of(self, user: User) -> frozenset[str]:
        if user.claim_problem:
            raise ZonesUnavailable(user.claim_problem)
        if user.claimed_zones is None:
            raise ZonesUnavailable(f"the sign-in did not say which zones {user.username!r} controls")
        return frozenset(user.claimed_zones)

    def zones_between_visits(self, username: str) -> frozenset[str] | None:
        return None

    def read_claim(self, claims: Mapping[str, Any]) -> tuple[tuple[str, ...] | None, str]:
        """(zones, "") from the ID token's claims, or (None, why not)."""
        if self.claim not in claims:
            return None, f"the ID token has no {self.claim!r} claim"
        try:
            zones = zone_list(claims[self.claim])
        except ValueError as exc:
            return None, f"the ID token's {self.claim!r} claim: {exc}"
        if len(zones) > MAX_CLAIMED_ZONES:
            return None, (f"the ID token's {self.claim!r} claim lists {len(zones)} zones, more than a sign-in "
                          f"keeps ({MAX_CLAIMED_ZONES}); use source = \"url\" for such accounts")
        return zones, ""


class UrlZones(ZoneSource):
    """The DNS host's control panel: GET `url` with {user} filled in answers a JSON list of zones,
    remembered for `cache_seconds` per user."""

    name = "url"

    def __init__(self, url: str, token: str | None, cache_seconds: float, timeout: float) -> None:
        self.url, self.cache_seconds = url, cache_seconds
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.Client(headers=headers, timeout=timeout, follow_redirects=False)
        self.cache: TTLCache[str, frozenset[str]] | None = (
            TTLCache(MAX_CACHED_USERS, cache_seconds) if cache_seconds > 0 else None)
        self.lock = threading.Lock()

    def zones_of(self, user: User) -> frozenset[str]:
        return self.fetch(user.username)

    def zones_between_visits(self, username: str) -> frozenset[str] | None:
        return self.fetch(username)

    def check_deployment(self, gateway: GatewaySettings) -> None:
        require_secure_url(self.url, "auth.zones.url", gateway)

    def fetch(self, username: str) -> frozenset[str]:
        if self.cache is not None:
            with self.lock:
                cached = self.cache.get(username)
            if cached is not None:
                return cached
        zones = frozenset(self.ask(username))
        if self.cache is not None:
            with self.lock:
                self.cache[username] = zones
        return zones

    def ask(self, username: str) -> tuple[str, ...]:
        url = self.url.replace("{user}", quote(username, safe=""))
        try:
            with self.client.stream("GET", url) as response:
                if response.status_code != 200:
                    raise ZonesUnavailable(f"GET {url} answered HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise ZonesUnavailable(f"GET {url} answered more than {MAX_ANSWER_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise ZonesUnavailable(f"GET {url} failed: {type(exc).__name__}: {exc}") from None
        try:
            return zone_list(json.loads(body))
        except ValueError as exc:  # JSONDecodeError is a ValueError too
            raise ZonesUnavailable(f"GET {url} answered something that is not a list of zone names: {exc}") from None

    def close(self) -> None:
        self.client.close()


# --- the checks -------------------------------------------------------------------------


def controls(authenticator: Authenticator, user: User, zone: str) -> bool:
    """Whether the signed-in `user` controls `zone`; `ZonesUnavailable` (logged) when the source failed.
    May call out to the control panel: call it off the event loop."""
    return covers(zones_of(authenticator, user), zone)


def zones_of(authenticator: Authenticator, user: User) -> frozenset[str]:
    """Every zone the signed-in `user` controls ("*" = all); `ZonesUnavailable` (logged) on failure."""
    try:
        return authenticator.zone_source.zones_of(user)
    except ZonesUnavailable as exc:
        log.warning("zones of %r could not be read from the %s source: %s", user.username,
                    authenticator.zone_source.name, exc)
        raise


def still_controls(authenticator: Authenticator, username: str, zone: str) -> bool:
    """Whether the user who consented still controls `zone`. True when the source only knows during
    a sign-in (a revoked grant is then what ends access); `ZonesUnavailable` (logged) when it failed."""
    try:
        zones = authenticator.zone_source.zones_between_visits(username)
    except ZonesUnavailable as exc:
        log.warning("zones of %r could not be read from the %s source: %s", username,
                    authenticator.zone_source.name, exc)
        raise
    return True if zones is None else covers(zones, zone)


def covers(zones: Iterable[str], zone: str) -> bool:
    zones = frozenset(zones)
    return ANY_ZONE in zones or zone.lower().rstrip(".") in zones


# --- reading [auth.zones] ---------------------------------------------------------------


def zone_source(authenticator: Authenticator, options: Mapping[str, Any]) -> ZoneSource:
    """The source `[auth.zones]` names (`config` when the table is absent); `ConfigError` naming the key."""
    table = options.get("zones", {})
    if not isinstance(table, Mapping):
        raise ConfigError("auth.zones: must be a table ([auth.zones]) with source = \"config\", \"claim\" or \"url\"")
    source = table.get("source", "config")
    if source not in SOURCES:
        raise ConfigError(f"auth.zones.source: must be one of {', '.join(SOURCES)}, not {source!r}")
    allowed = {"config": {"source"}, "claim": {"source", "claim"},
               "url": {"source", "url", "token", "cache_seconds", "timeout"}}[source]
    for key in sorted(table):
        if key not in allowed:
            raise ConfigError(f"auth.zones.{key}: unknown key for source {source!r} "
                              f"(expected one of: {', '.join(sorted(allowed))})")
    if source == "config":
        return ConfigZones(authenticator)
    if source == "claim":
        if authenticator.settings.driver not in CLAIM_DRIVERS:
            raise ConfigError(f"auth.zones.source: 'claim' needs a driver whose sign-in names the zones "
                              f"({' or '.join(CLAIM_DRIVERS)}), not {authenticator.settings.driver!r}")
        claim = table.get("claim", "zones")
        if not isinstance(claim, str) or not claim:
            raise ConfigError(f"auth.zones.claim: must be the name of an ID token claim, not {claim!r}")
        return ClaimedZones(claim)
    url = table.get("url")
    if not isinstance(url, str) or "{user}" not in url or not url.startswith(("https://", "http://")):
        raise ConfigError("auth.zones.url: is required: an http(s) URL with {user} in it, "
                          "such as 'https://panel.internal/api/users/{user}/zones'")
    token = table.get("token")
    if token is not None:
        token = secret_text(token, "auth.zones.token")
    return UrlZones(url, token, seconds(table, "cache_seconds", DEFAULT_CACHE_SECONDS, allow_zero=True),
                    seconds(table, "timeout", DEFAULT_TIMEOUT, allow_zero=False))


def seconds(table: Mapping[str, Any], key: str, default: float, *, allow_zero: bool) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value == 0 and not allow_zero):
        kind = "a number of seconds, 0 or more" if allow_zero else "a positive number of seconds"
        raise ConfigError(f"auth.zones.{key}: must be {kind}, not {value!r}")
    return float(value)


def secret_text(value: object, key: str) -> str:
    """A secret from the config: the value itself (`env:` was read by the loader), or the first
    line of the file a `file:/path` names (as container secrets are mounted)."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: must be a non-empty string (or 'env:NAME', or 'file:/path')")
    if not value.startswith(FILE_PREFIX):
        return value
    path = Path(value[len(FILE_PREFIX):]).expanduser()
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc.strerror or exc}") from None
    if not text:
        raise ConfigError(f"{key}: {path} is empty")
    return text


def zone_list(value: object) -> tuple[str, ...]:
    """Zone names from a JSON value that must be a list of them; `ValueError` saying what was wrong.
    Never "*": every zone is granted only in the config file."""
    if not isinstance(value, list):
        raise ValueError(f"expected a JSON list of zone names, got {type(value).__name__}")
    if len(value) > MAX_ZONES:
        raise ValueError(f"more than {MAX_ZONES} zones")
    zones = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or "*" in item:
            raise ValueError(f"item {index} ({item!r:.80}) is not a zone name")
        try:  # host-name rules (letters, digits, hyphens; Unicode as IDNA), as the protocol's domain
            zones.append(idna_domain(item, f"item {index}"))
        except DomainError as exc:
            raise ValueError(str(exc)) from None
    return tuple(dict.fromkeys(zones))


def require_secure_url(url: str, key: str, gateway: GatewaySettings) -> None:
    """https, or http to a loopback address or in `gateway.development`: identity and zone answers
    travel on this connection, so nobody on the network may read or change them."""
    parts = urlsplit(url)
    if parts.scheme == "https" or gateway.development or (parts.scheme == "http" and is_loopback(parts.hostname)):
        return
    raise ConfigError(f"{key}: {url!r} must be https (http only to a loopback address, "
                      "or with gateway.development = true)")


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


