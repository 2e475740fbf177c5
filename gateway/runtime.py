"""Everything a running gateway holds: config, backends, onboarded templates, state, sign-in,
signature keys and metrics. Built once at start-up; request handlers reach it through
`request.app.state.runtime`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from gateway.auth import Authenticator, load_authenticator
from gateway.config import Config, ConfigError
from gateway.discovery import SettingsCache
from gateway.extensions import NO_EXTENSIONS, GatewayExtensions, gateway_extensions
from gateway.intents import settle_all
from gateway.observability import Metrics
from gateway.registry import BackendRouter
from gateway.render import TtlPolicy
from gateway.signature import KeyResolver
from gateway.state import StateStore
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
    extensions: GatewayExtensions = NO_EXTENSIONS  # redirects and alias flattening this gateway adds

    @classmethod
    def from_config(cls, config: Config) -> Runtime:
        """Load everything `config` names; `ConfigError` on the first problem, before serving anything."""
        templates = load_catalog(config.gateway.templates)
        authenticator = load_authenticator(config.auth)
        authenticator.check_deployment(config.gateway)
        router = BackendRouter.from_config(config)
        store = StateStore.open(config.database.url, timeout=config.database.timeout)
        router.use_zone_locks(store.zone_locks)  # one writer per zone across every replica
        return cls(config, router, templates, store, authenticator, KeyResolver(config.dns), Metrics(),
                   extensions=gateway_extensions(config))

    @property
    def ttl_policy(self) -> TtlPolicy:
        return self.config.ttl.policy()

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
