"""The SQLAlchemy engine of a state store: timeouts on every wait, and how durable a commit is.

On a SQLite file the database runs in WAL mode with `synchronous=FULL`: a commit is one
append and one fsync, and readers never wait for a writer. A transaction whose loss at a
power cut is harmless (an instance record whose intent is durable, an open consent page)
calls `relax_durability` and commits without waiting for the disk.
"""

from __future__ import annotations

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

DEFAULT_TIMEOUT = 5.0  # seconds: `database.timeout`
RELAXED = "dcgw_relaxed_durability"  # a pooled SQLite connection whose next commit skips the fsync


def open_engine(url: str, timeout: float = DEFAULT_TIMEOUT) -> Engine:
    """An engine whose connects, statements and lock waits give up after `timeout` seconds,
    so a stopped or locked database fails a request instead of holding it."""
    milliseconds = max(1, int(timeout * 1000))
    if url.startswith("sqlite"):
        engine = create_engine(url, future=True, connect_args={"timeout": timeout})

        on_file = sqlite_file(engine)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={milliseconds}")
            if on_file:
                # A write-ahead log: a commit is one append and one fsync (FULL: an intent, once
                # committed, survives a power cut too), and readers never wait for a writer.
                if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        @event.listens_for(engine, "checkin")
        def _durable_again(connection, record) -> None:
            if record.info.pop(RELAXED, False) and connection is not None:
                connection.execute("PRAGMA synchronous=FULL")
        return engine
    connect_args = {}
    if url.startswith("postgresql"):
        connect_args = {"connect_timeout": max(1, round(timeout)),
                        "options": f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds}"}
    return create_engine(url, future=True, pool_timeout=timeout, pool_pre_ping=True, connect_args=connect_args)


def sqlite_file(engine: Engine) -> bool:
    """Whether `engine` is SQLite on a file of its own (not in memory, not a `file:` URI)."""
    database = engine.url.database
    return bool(database) and database != ":memory:" and not database.startswith("file:")


def relax_durability(session: Session) -> None:
    """Let this transaction's commit return before the disk has it (later commits still
    come after it): SQLite's synchronous=NORMAL until the connection goes back to the pool,
    PostgreSQL's synchronous_commit=off for this transaction."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit = off"))
    elif connection.dialect.name == "sqlite" and sqlite_file(connection.engine):
        pooled = connection.connection
        pooled.info[RELAXED] = True
        pooled.dbapi_connection.execute("PRAGMA synchronous=NORMAL")
