"""`driver = "header"`: a reverse proxy in front of the gateway has already signed the user in.

    [auth]
    driver = "header"
    trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]   # only these peers may name the user
    user_header = "X-Forwarded-User"                  # default
    zones_header = "X-Forwarded-Zones"                # default; comma-separated zone names

    [[auth.users]]            # optional: zones added to whatever the proxy sends
    username = "alice"
    password_hash = "$argon2id$..."
    zones = ["example.com"]

The headers are believed only when the TCP peer is a trusted proxy; from anyone else they are
ignored. The proxy must drop these headers when a client sends them. The peer is the TCP
connection's, also when `[server] forwarded_allow_ips` makes X-Forwarded-For the client address.
Every zone ("*") can be granted only in the config file, never by a header.

With `[auth.zones] source = "url"` the proxy need only assert who the user is: zones come from
the control panel and the zones header is not read (gateway/web/auth/zones.py); with
`source = "claim"` they are the zones header alone, without the config's additions.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request

from gateway.engine.domains import DomainError, zone_text
from gateway.infra.config import AuthSettings, ConfigError
from gateway.web.auth.base import ANY_ZONE, Authenticator, User
from gateway.web.proxies import tcp_peer_host

log = logging.getLogger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
KNOWN_OPTIONS = {"trusted_proxies", "user_header", "zones_header", "zones"}
MAX_USERNAME_LENGTH = 256
# A network this wide holds far more than a DNS host's proxies (an IPv4 /8, an IPv6 /16).
BROADEST_SENSIBLE_PREFIX = {4: 7, 6: 15}


class HeaderAuthenticator(Authenticator):
    uses_login_form = False

    def __init__(self, settings: AuthSettings) -> None:
        super().__init__(settings)
        options = settings.options
        for key in sorted(options):
            if key not in KNOWN_OPTIONS:
                raise ConfigError(f"auth.{key}: unknown key for the header driver "
                                  f"(expected one of: driver, users, {', '.join(sorted(KNOWN_OPTIONS))})")
        self.trusted_proxies = parse_trusted_proxies(options.get("trusted_proxies"))
        self.user_header = header_name(options, "user_header", "X-Forwarded-User")
        self.zones_header = header_name(options, "zones_header", "X-Forwarded-Zones")
        if self.user_header == self.zones_header:
            raise ConfigError(f"auth.zones_header: must differ from auth.user_header ({self.user_header!r})")
        self.configured_zones = {user.username: user.zones for user in settings.users}

    def user_from_request(self, request: Request) -> User | None:
        if not self.is_trusted_peer(request):
            return None
        usernames = request.headers.getlist(self.user_header)
        if len(usernames) != 1:  # absent, or repeated so that we cannot tell which one the proxy set
            return None
        username = usernames[0].strip()
        if not username or len(username) > MAX_USERNAME_LENGTH or not username.isprintable():
            return None
        if self.zone_source.name == "url":  # the control panel answers; whatever the header says is unused
            return User(username, self.configured_zones.get(username, ()))
        zone_headers = request.headers.getlist(self.zones_header)
        if len(zone_headers) > 1:  # a proxy that appends rather than replaces would let clients add zones
            return None
        zones = zones_from_header(zone_headers)
        extra = self.configured_zones.get(username, ())
        return User(username, tuple(dict.fromkeys((*zones, *extra))), claimed_zones=zones)

    def user_named(self, username: str) -> User | None:
        zones = self.configured_zones.get(username)
        return User(username, zones) if zones is not None else None

    def is_trusted_peer(self, request: Request) -> bool:
        peer = tcp_peer_host(request)  # the connection's own peer, not a forwarded address
        if peer is None:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
        return any(address in network for network in self.trusted_proxies)


def parse_trusted_proxies(value: object) -> tuple[IPNetwork, ...]:
    if value is None:
        raise ConfigError("auth.trusted_proxies: is required by the header driver "
                          '(a list of proxy addresses or networks, as in ["127.0.0.1"])')
    if not isinstance(value, list) or not value:
        raise ConfigError("auth.trusted_proxies: must be a non-empty list of addresses or networks, "
                          'as in ["127.0.0.1"]')
    networks = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(f"auth.trusted_proxies[{index}]: must be a string such as \"10.0.0.0/8\"")
        try:
            network = ipaddress.ip_network(item.strip(), strict=False)
        except ValueError:
            raise ConfigError(f"auth.trusted_proxies[{index}]: {item!r} is not an IP address or network") from None
        if network.prefixlen <= BROADEST_SENSIBLE_PREFIX[network.version]:
            log.warning("auth.trusted_proxies[%d]: %s trusts %s addresses to name the signed-in user; "
                        "list only your proxies' addresses", index, item,
                        "all" if network.prefixlen == 0 else "very many")
        networks.append(network)
    return tuple(networks)


def header_name(options: Mapping[str, Any], key: str, default: str) -> str:
    value = options.get(key, default)
    # RFC 9110 token characters; anything else could never arrive as a header.
    allowed = set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    if not isinstance(value, str) or not value or not set(value) <= allowed:
        raise ConfigError(f"auth.{key}: must be an HTTP header name such as {default!r}, not {value!r}")
    return value.lower()


def zones_from_header(values: Sequence[str]) -> tuple[str, ...]:
    """Zone names from comma-separated header values; invalid names and "*" are dropped."""
    zones: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            zone = header_zone(item)
            if zone is None:
                log.warning("ignoring %r from the zones header: not a zone name", item)
                continue
            zones.append(zone)
    return tuple(dict.fromkeys(zones))


def header_zone(value: str) -> str | None:
    """A zone named by the proxy, or None: never "*" nor a wildcard, whatever the header says."""
    if value == ANY_ZONE or "*" in value:
        return None
    try:
        return zone_text(value)
    except DomainError:
        return None
