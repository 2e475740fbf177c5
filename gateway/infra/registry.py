"""Backend instances from the config, and which one hosts a domain.

Backends load through stevedore from the entry point group
`domainconnect_gateway.backends`, the built-ins exactly like third-party plugins.

Routing: the most specific zone wins; for the same zone an explicit `zones` entry wins
over `"*"`, and among several `"*"` backends the first configured wins. Two backends
naming the same explicit zone is a `ConfigError` when the router is built.

Nothing is cached here: `"*"` backends are asked (`find_zone`) on every lookup, so a
zone created or removed on the DNS server is routed correctly at once. A backend may
cache its own zone list briefly; that is its call, since only it knows the cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import dns.name
from stevedore import driver as stevedore_driver
from stevedore.exception import NoMatches

from backends.base import ENTRY_POINT_GROUP, Backend, BackendError
from backends.base import ConfigError as BackendConfigError
from backends.locks import ZoneLocks
from gateway.infra.config import BackendConfig, Config, ConfigError, installed_drivers

__all__ = ["BackendRouter", "Route", "load_backend", "load_backends"]


def load_backend(config: BackendConfig) -> Backend:
    """Instantiate the backend a `[[backends]]` table describes; `ConfigError` naming it when
    the driver is unknown or rejects its options."""

    def reraise(_manager, _entry_point, error: Exception) -> None:
        raise error

    if config.unresolved:
        raise ConfigError(config.unresolved)
    try:
        manager = stevedore_driver.DriverManager(
            namespace=ENTRY_POINT_GROUP, name=config.driver, invoke_on_load=True,
            invoke_args=(config.name, dict(config.options)), on_load_failure_callback=reraise)
    except NoMatches:
        raise ConfigError(f"backend {config.name!r}: no backend driver {config.driver!r} "
                          f"(installed: {', '.join(installed_drivers()) or 'none'})") from None
    except BackendConfigError as exc:
        raise ConfigError(_named(config, str(exc))) from None
    except ImportError as exc:
        raise ConfigError(f"backend {config.name!r}: driver {config.driver!r} cannot be loaded: {exc}") from None
    backend = manager.driver
    if not isinstance(backend, Backend):
        raise ConfigError(f"backend {config.name!r}: driver {config.driver!r} is not a Backend "
                          f"({type(backend).__name__})")
    return backend


def _named(config: BackendConfig, message: str) -> str:
    return message if repr(config.name) in message else f"backend {config.name!r}: {message}"


@dataclass(frozen=True)
class Route:
    """A backend with the zones it is configured for."""

    backend: Backend
    explicit_zones: tuple[dns.name.Name, ...]
    any_zone: bool


class BackendRouter:
    """Finds the backend and zone hosting a domain."""

    def __init__(self, routes: Iterable[Route | tuple[Backend, Sequence[str]]]) -> None:
        self.routes: list[Route] = [r if isinstance(r, Route) else _route(*r) for r in routes]
        self._explicit: dict[dns.name.Name, Backend] = {}
        for route in self.routes:
            for zone in route.explicit_zones:
                other = self._explicit.get(zone)
                if other is not None and other is not route.backend:
                    raise ConfigError(f"zone {zone.to_text(omit_final_dot=True)} is claimed by two backends: "
                                      f"{other.name!r} and {route.backend.name!r}")
                self._explicit[zone] = route.backend

    @classmethod
    def from_config(cls, config: Config) -> BackendRouter:
        return cls(Route(load_backend(b), b.explicit_zones, b.claims_any_zone) for b in config.backends)

    @property
    def backends(self) -> list[Backend]:
        return [route.backend for route in self.routes]

    def use_zone_locks(self, locks: ZoneLocks) -> None:
        """Make every backend take its zone locks from `locks` (the state store's, shared by
        every gateway process that uses the same database)."""
        for backend in self.backends:
            backend.zone_locks = locks

    def backend_named(self, name: str) -> Backend | None:
        return next((b for b in self.backends if b.name == name), None)

    def backend_for(self, domain: dns.name.Name) -> tuple[Backend, dns.name.Name] | None:
        """The backend and zone hosting `domain`, or None. Raises `BackendError` when a
        `"*"` backend cannot be asked."""
        best: tuple[Backend, dns.name.Name] | None = None
        name = domain
        while True:
            if name in self._explicit:
                best = (self._explicit[name], name)
                break
            if name == dns.name.root:
                break
            name = name.parent()
        for route in self.routes:
            if not route.any_zone:
                continue
            zone = route.backend.find_zone(domain)
            # Strictly more specific only: on a tie the explicit or earlier backend wins.
            if zone is not None and (best is None or (zone != best[1] and zone.is_subdomain(best[1]))):
                best = (route.backend, zone)
        return best

    def zone_backend(self, zone: dns.name.Name) -> Backend | None:
        """The backend hosting `zone` as a zone of its own (not a name inside another), or None.
        Domain Connect works on zones: settings, consent and grants all name one."""
        found = self.backend_for(zone)
        return found[0] if found is not None and found[1] == zone else None

    def close(self) -> None:
        for backend in self.backends:
            try:
                backend.close()
            except BackendError:
                pass


def _route(backend: Backend, zones: Sequence[str]) -> Route:
    explicit = tuple(dns.name.from_text(z) for z in zones if z != "*")
    return Route(backend, explicit, "*" in zones)


def load_backends(config: Config) -> BackendRouter:
    """Every configured backend, ready to route; `ConfigError` on the first problem."""
    return BackendRouter.from_config(config)
