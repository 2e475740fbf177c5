"""Zone locks shared by every gateway process that uses one state store.

How far a lock reaches follows the state store's database, which is what replicas share:

- PostgreSQL: a transaction-scoped advisory lock (`pg_advisory_xact_lock`), keyed by a hash
  of the scope (what the backend writes to) and the zone, taken with `lock_timeout` on a
  connection of its own and released when that transaction ends, also when a process dies;
- a SQLite file: a file lock in a directory beside the database (every process that can
  open that database runs on this host);
- otherwise (no store, an in-memory database): within this process only (`backends.locks`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from backends.locks import ZoneLockError, ZoneLocks, ZoneLockTimeout
from gateway.state.engine import sqlite_file

__all__ = ["AdvisoryZoneLocks", "FileZoneLocks", "zone_locks_for"]

log = logging.getLogger(__name__)

LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout runs out


class FileZoneLocks(ZoneLocks):
    """Zone locks shared by the processes of one host through lock files in `directory`."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    @contextmanager
    def _shared(self, key: int, timeout: float) -> Iterator[None]:
        # flock(2) itself, as filelock takes it, without that library's per-call bookkeeping
        # (a lock is taken on every apply). The kernel drops it when the process dies.
        try:
            self.directory.mkdir(mode=0o700, exist_ok=True)
            descriptor = os.open(self.directory / f"{key & (2**64 - 1):016x}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ZoneLockError(f"cannot create a lock file in {self.directory}: {exc.strerror or exc}") from None
        try:
            _take(descriptor, timeout)
            try:
                yield
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)


def _take(descriptor: int, timeout: float) -> None:
    """An exclusive flock on `descriptor` within `timeout` seconds, polled: a blocking flock
    could not give up."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise ZoneLockTimeout("another gateway process held the zone") from None
        except OSError as exc:
            raise ZoneLockError(f"cannot lock a zone lock file: {exc.strerror or exc}") from None
        time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
        pause = min(pause * 2, 0.05)


class AdvisoryZoneLocks(ZoneLocks):
    """Zone locks shared by every process on every host using one PostgreSQL database."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        # A pool of its own: a waiting lock must never take the connection its holder needs
        # to record the instance. At most one waiter per zone per process (see `hold`).
        self.engine = create_engine(engine.url, pool_size=2, max_overflow=62, pool_timeout=30, pool_pre_ping=True,
                                    connect_args={"connect_timeout": 10})

    @contextmanager
    def _shared(self, key: int, timeout: float) -> Iterator[None]:
        try:
            connection = self.engine.connect()
        except PoolTimeout:
            raise ZoneLockTimeout("every zone-lock connection to the database was busy") from None
        except SQLAlchemyError as exc:
            raise ZoneLockError(f"the state database did not answer: {type(exc).__name__}") from None
        try:
            transaction = connection.begin()
            try:
                # set_config(..., true) is SET LOCAL: the timeout ends with this transaction.
                connection.execute(text("SELECT set_config('lock_timeout', :ms, true)"),
                                   {"ms": str(max(int(timeout * 1000), 1))})
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            except SQLAlchemyError as exc:
                transaction.rollback()
                if getattr(getattr(exc, "orig", None), "sqlstate", None) == LOCK_NOT_AVAILABLE:
                    raise ZoneLockTimeout("another gateway process held the zone") from None
                raise ZoneLockError(f"the state database refused the zone lock: {type(exc).__name__}") from None
            try:
                yield
            finally:
                try:
                    transaction.commit()  # ends the transaction, and with it the lock
                except SQLAlchemyError as exc:  # the connection broke: the server has dropped the lock already
                    log.warning("zone lock connection failed on release: %s", exc)
        finally:
            connection.close()

    def close(self) -> None:
        self.engine.dispose()


def zone_locks_for(engine: Engine) -> ZoneLocks:
    """The widest zone locks `engine`'s database can give."""
    if engine.dialect.name == "postgresql":
        return AdvisoryZoneLocks(engine)
    if engine.dialect.name == "sqlite" and sqlite_file(engine):
        path = Path(engine.url.database).resolve()
        return FileZoneLocks(path.with_name(f"{path.name}.locks"))
    return ZoneLocks()
