"""Everything a running gateway holds: config, backends, onboarded templates, state, sign-in,
signature keys and metrics. Built once at start-up; request handlers reach it through
`request.app.state.runtime`."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from backends.base import Backend, ZoneChanged
from gateway.apply.extensions import NO_EXTENSIONS, GatewayExtensions, gateway_extensions
from gateway.apply.intents import settle_all
from gateway.engine.render import TtlPolicy
from gateway.infra.catalog import ReloadReport, TemplateCatalog, load_catalog, reload_catalog
from gateway.infra.config import Config, ConfigError
from gateway.infra.observability import Metrics
from gateway.infra.registry import BackendRouter
from gateway.state import StateStore
from gateway.state.database import check_database, open_state_store
from gateway.web.auth import Authenticator, load_authenticator
from gateway.web.discovery import SettingsCache
from gateway.web.signature import KeyResolver

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    config: Config
    router: BackendRouter
    templates: TemplateCatalog
    store: StateStore
    authenticator: Authenticator
    keys: KeyResolver
    metrics: Metrics
    settings_cache: SettingsCache = field(default_factory=SettingsCache)
    extensions: GatewayExtensions = NO_EXTENSIONS  # redirects and alias flattening this gateway adds

    @classmethod
    def from_config(cls, config: Config) -> Runtime:
        """Load everything `config` names; `ConfigError` on the first problem, before serving anything."""
        authenticator = load_authenticator(config.auth)
        templates = load_catalog(config.gateway.templates)
        authenticator.check_deployment(config.gateway)
        router = BackendRouter.from_config(config)
        try:
            store = open_state_store(config.database)
        except ConfigError:
            router.close()
            raise
        router.use_zone_locks(store.zone_locks)  # one writer per zone across every replica
        metrics = Metrics()
        instrument_backends(router, metrics)
        metrics.templates_reloaded(len(templates), time.time())
        return cls(config, router, templates, store, authenticator, KeyResolver(config.dns), metrics,
                   extensions=gateway_extensions(config))

    def readiness_checks(self) -> dict[str, Callable[[], object]]:
        """What `/readyz` asks: the state database and every backend, by its configured name."""
        checks: dict[str, Callable[[], object]] = {"database": lambda: check_database(self.store)}
        for backend in self.router.backends:
            checks[backend.name] = backend.check_ready
        return checks

    @property
    def ttl_policy(self) -> TtlPolicy:
        return self.config.ttl.policy()

    def reload_templates(self) -> ReloadReport | None:
        """Re-read `gateway.templates` (SIGHUP); logged, and None when there is nothing to read."""
        directory = self.config.gateway.templates
        if directory is None:
            log.info("templates reload: gateway.templates is not set; nothing to reload")
            return None
        try:
            report = reload_catalog(self.templates, directory)
        except ConfigError as exc:
            log.error("templates reload failed, the templates loaded before stay: %s", exc)
            return None
        self.metrics.templates_reloaded(report.loaded, report.finished_at)
        log.info("templates reloaded from %s: %s", directory, report.summary())
        return report
    def tidy_store(self) -> None:
        """Purge expired sessions, consent pages and attempt counters, and end the sessions of
        users removed from the config's user list, on every replica."""
        purged = self.store.purge_expired()
        # Only a list of users in the config can say a user is gone; other drivers (a proxy,
        # an identity provider) learn of users as they sign in.
        if self.config.auth.driver == "local":
            purged["sessions"] += self.store.end_sessions_unless(
                lambda username: self.authenticator.user_named(username) is not None)
        if any(purged.values()):
            log.info("purged from the state store: %s", purged)

    def settle_pending(self) -> None:
        """Settle the writes a crashed or cut-off gateway process left pending."""
        left = settle_all(self.store, {b.name: b for b in self.router.backends})
        if left:
            log.warning("%d zone(s) still have pending writes; they are settled before their next apply", left)

    def close(self) -> None:
        self.router.close()
        self.store.close()
        self.authenticator.close()




BACKEND_OPERATIONS = ("zones", "find_zone", "read", "apply", "check_ready")


def instrument_backends(router: BackendRouter, metrics: Metrics) -> None:
    """Time every backend call and count its failures, by backend and operation, whatever
    plugin the backend is: its methods are wrapped on the instance, so identity stays."""
    for backend in router.backends:
        for operation in BACKEND_OPERATIONS:
            setattr(backend, operation, _timed(backend, operation, getattr(backend, operation), metrics))


def _timed(backend: Backend, operation: str, method: Callable, metrics: Metrics) -> Callable:
    @functools.wraps(method)
    def timed(*args, **kwargs):
        started = time.perf_counter()
        failure = None
        try:
            return method(*args, **kwargs)
        except ZoneChanged:
            failure = "zone_changed"
            raise
        except Exception:
            failure = "error"
            raise
        finally:
            metrics.backend_call(backend.name, operation, time.perf_counter() - started, failure)

    return timed
