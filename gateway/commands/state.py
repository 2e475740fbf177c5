"""What the commands that read or write the state store share."""

from __future__ import annotations

from gateway.infra.config import Config
from gateway.state import StateStore
from gateway.state.database import open_state_store


def open_store(config: Config) -> StateStore:
    """The state store `config` names, migrated, with its timeouts; `ConfigError` naming
    `database.url` in one line when it cannot be opened."""
    return open_state_store(config.database)
