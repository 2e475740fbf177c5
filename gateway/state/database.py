"""Opening the state database named by `[database] url`, with errors an operator can act on.

A SQLite file's directory is created; any other problem (an unknown or uninstalled driver,
an unreachable server, a file that is not a database) is one `ConfigError` line naming
`database.url`, never a driver traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gateway.infra.config import ConfigError, DatabaseSettings
from gateway.state.store import StateStore

log = logging.getLogger(__name__)


def open_state_store(settings: DatabaseSettings) -> StateStore:
    """The store at `settings.url`, migrated; `ConfigError` naming `database.url` when it cannot be."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    try:
        url = make_url(settings.url)
    except ArgumentError:
        raise ConfigError(f"database.url: {settings.url!r} is not a database URL such as "
                          "'sqlite:///dcgw.sqlite' or 'postgresql+psycopg://user@host/dcgw'") from None
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        _make_directory(Path(url.database).parent, shown)
    try:
        return StateStore.open(settings.url, timeout=settings.timeout)
    except ImportError as exc:  # the dialect's driver package is not installed (mysql://, postgresql://)
        raise ConfigError(f"database.url: {shown}: the database driver is not installed ({exc.name or exc}); "
                          "the gateway supports SQLite and PostgreSQL (pip install 'domainconnect-gateway[postgresql]')"
                          ) from None
    except SQLAlchemyError as exc:
        log.debug("cannot open the state database", exc_info=True)
        raise ConfigError(f"database.url: cannot open {shown}: {_first_line(exc)}") from None
    except OSError as exc:
        raise ConfigError(f"database.url: cannot open {shown}: {exc.strerror or exc}") from None


def check_database(store: StateStore) -> None:
    """Raise unless the database answers a trivial query (readiness)."""
    from sqlalchemy import text

    with store.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _make_directory(directory: Path, shown: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"database.url: {shown}: cannot create the directory {directory}: "
                          f"{exc.strerror or exc}") from None


def _first_line(exc: Exception) -> str:
    """The driver's own message, without SQLAlchemy's statement dump and help link."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return text[0] if text else type(original).__name__
