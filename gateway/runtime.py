"""Everything a running gateway holds: config, backends, onboarded templates, state, sign-in,
signature keys and metrics. Built once at start-up; request handlers reach it through
`request.app.state.runtime`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.auth import Authenticator, load_authenticator
from gateway.config import Config, ConfigError
from gateway.discovery import SettingsCache
from gateway.observability import Metrics
from gateway.registry import BackendRouter
from gateway.render import TtlPolicy
from gateway.signature import KeyResolver
from gateway.state import StateStore
from gateway.state.database import check_database, open_state_store
from gateway.template import Template, load_templates

log = logging.getLogger(__name__)

TemplateCatalog = dict[tuple[str, str], Template]


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

    @classmethod
    def from_config(cls, config: Config) -> Runtime:
        """Load everything `config` names; `ConfigError` on the first problem, before serving anything."""
        authenticator = load_authenticator(config.auth)
        templates = load_catalog(config.gateway.templates)
        router = BackendRouter.from_config(config)
        try:
            store = open_state_store(config.database)
        except ConfigError:
            router.close()
            raise
        return cls(config, router, templates, store, authenticator, KeyResolver(config.dns), Metrics())

    def readiness_checks(self) -> dict[str, Callable[[], object]]:
        """What `/readyz` asks: the state database and every backend, by its configured name."""
        checks: dict[str, Callable[[], object]] = {"database": lambda: check_database(self.store)}
        for backend in self.router.backends:
            checks[backend.name] = backend.check_ready
        return checks

    @property
    def ttl_policy(self) -> TtlPolicy:
        return self.config.ttl.policy()

    def close(self) -> None:
        self.router.close()
        self.store.close()


def load_catalog(directory: Path | None) -> TemplateCatalog:
    """The onboarded templates. An invalid file is logged and left out rather than stopping
    the gateway: one service provider's broken template must not take down the others."""
    if directory is None:
        return {}
    if not directory.is_dir():
        raise ConfigError(f"gateway.templates: {directory} is not a directory")
    templates, errors = load_templates([directory])
    for error in errors:
        log.warning("template left out: %s", error)
    log.info("%d templates onboarded from %s", len(templates), directory)
    return templates
