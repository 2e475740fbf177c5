"""What the commands that read or write the state store share."""

from __future__ import annotations

from gateway.config import Config
from gateway.state import StateStore


def open_store(config: Config) -> StateStore:
    """The state store `config` names, migrated, with its timeouts."""
    return StateStore.open(config.database.url, timeout=config.database.timeout)
