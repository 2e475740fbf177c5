"""Bring a database to the current schema with Alembic, from the installed package."""

from __future__ import annotations

import contextlib
from pathlib import Path

import filelock

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


# Replicas starting together migrate one at a time; the others then find nothing to do.
MIGRATION_LOCK = 0x6463_6777_6D69_6772  # "dcgwmigr"


def upgrade(engine: Engine, revision: str = "head") -> None:
    with _sqlite_file_lock(engine), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        command.upgrade(alembic_config(connection), revision)


def _sqlite_file_lock(engine: Engine) -> contextlib.AbstractContextManager:
    """On a SQLite file, a lock beside it: its driver commits each CREATE TABLE on its own, so
    two processes starting at once (`dcgw serve` and a `dcgw clients add`) would both create."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        return contextlib.nullcontext()
    return filelock.FileLock(f"{database}.migrate.lock", timeout=60)


def downgrade(engine: Engine, revision: str) -> None:
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)


def head() -> str:
    """The revision `upgrade` brings a database to."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()
