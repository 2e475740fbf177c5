"""Slow down guessing: sign-in passwords per username and per client address, OAuth client
secrets per client_id and per address.

The counts live in the state store, so every replica sees every attempt. A sign-in is
counted before its password is checked, atomically: a burst of parallel guesses gets
exactly the configured number of checks, and the right password inside the burst is
refused like the others. The per-address limits sit well above the per-name ones, so a
few failures from a shared address (a NAT, an office, a proxy) never lock other people out.

The address is the TCP peer's unless `[server] forwarded_allow_ips` names the proxies
whose X-Forwarded-For is believed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from starlette.requests import HTTPConnection

from gateway.state import StateStore
from gateway.state.attempts import Limit

WINDOW_SECONDS = 15 * 60


@dataclass(frozen=True)
class Throttle:
    """At most `per_name` attempts for one name and `per_address` from one address in `window` seconds."""

    kind: str
    per_name: int
    per_address: int
    window: float = WINDOW_SECONDS

    def limits(self, name: str, address: str) -> list[Limit]:
        return [Limit(self.name_key(name), self.per_name, self.window),
                Limit(f"{self.kind} address:{address}", self.per_address, self.window)]

    def name_key(self, name: str) -> str:
        return f"{self.kind} name:{name.lower()}"


SIGN_IN = Throttle("sign-in", per_name=5, per_address=50)
# Client secrets are 256 random bits, so this is about load and noise, not guessing; the
# per-address limit is the lower one, so one attacker cannot lock a provider's client_id.
CLIENT_AUTHENTICATION = Throttle("client-auth", per_name=100, per_address=30)


def client_address(request: HTTPConnection) -> str:
    """The address attempts are counted against: an IPv6 client by its /64 (one subscriber's
    network hands out addresses from it freely), an IPv4 one by itself."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class SignInThrottle:
    """The sign-in throttle, counted in `store`."""

    def __init__(self, throttle: Throttle = SIGN_IN) -> None:
        self.throttle = throttle

    def begin(self, store: StateStore, username: str, address: str) -> int:
        """Count a sign-in attempt before its password is checked: 0 when it may go on, else the
        seconds to wait (the refused attempt is not counted)."""
        return store.count_attempt(self.throttle.limits(username, address))

    def locked(self, store: StateStore, username: str, address: str) -> bool:
        """Whether the next attempt would be refused (counting nothing): a failure that locks out."""
        return store.attempt_wait(self.throttle.limits(username, address)) > 0

    def succeeded(self, store: StateStore, username: str, address: str) -> None:
        """The attempt was right: the username starts afresh, and the address is not charged for it."""
        limits = self.throttle.limits(username, address)
        store.forget_attempts(limits[0].key)
        store.uncount_attempt(limits[1].key)
