"""Zone locks: one writer per zone across every gateway process that shares a state store.

    with locks.hold(scope, zone, timeout=30):   # ZoneLockTimeout when another holder keeps it
        re-read, compare, write

How far a lock reaches follows the state store's database, which is what replicas share:

- PostgreSQL: a transaction-scoped advisory lock (`pg_advisory_xact_lock`), keyed by a hash
  of the scope (what the backend writes to) and the zone, taken with `lock_timeout` on a
  connection of its own and released when that transaction ends, also when a process dies;
- a SQLite file: a file lock in a directory beside the database (every process that can
  open that database runs on this host);
- otherwise (no store, an in-memory database): within this process only.

Every kind first takes a lock inside the process, so a process queues its own threads and
sends at most one waiter per zone to the database. A thread that holds a zone may take it
again (the API holds it across plan and record, and the backend's apply takes it inside).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import dns.name
import filelock
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

__all__ = ["AdvisoryZoneLocks", "FileZoneLocks", "PROCESS_ZONE_LOCKS", "ZoneLockError", "ZoneLockTimeout",
           "ZoneLocks", "lock_key", "zone_locks_for"]

log = logging.getLogger(__name__)

LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout runs out


class ZoneLockError(RuntimeError):
    """The zone lock could not be taken (the database did not answer); nothing was done under it."""


class ZoneLockTimeout(ZoneLockError):
    """Another apply held the zone for longer than the timeout."""


def lock_key(scope: str, zone: dns.name.Name) -> int:
    """A signed 64-bit key for (scope, zone), the form PostgreSQL's advisory locks take."""
    digest = hashlib.sha256(f"{scope}\n{zone.canonicalize().to_text()}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class ZoneLocks:
    """Zone locks within this process; subclasses add the lock shared with other processes."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._local: dict[int, tuple[threading.Lock, int]] = {}  # key -> (lock, threads using it)
        self._held = threading.local()

    @contextmanager
    def hold(self, scope: str, zone: dns.name.Name, timeout: float) -> Iterator[None]:
        """Hold (scope, zone) exclusively; `ZoneLockTimeout` after `timeout` seconds of waiting."""
        key = lock_key(scope, zone)
        held: set[int] = self._held.__dict__.setdefault("keys", set())
        if key in held:  # this thread holds it already: the outer holder releases it
            yield
            return
        deadline = time.monotonic() + timeout
        lock = self._use(key)
        try:
            if not lock.acquire(timeout=timeout):
                raise ZoneLockTimeout(f"another apply in this process held the zone for more than {timeout:g}s")
            try:
                shared = ExitStack()
                try:
                    shared.enter_context(self._shared(key, max(deadline - time.monotonic(), 0.001)))
                except ZoneLockTimeout as exc:
                    raise ZoneLockTimeout(f"{exc} for more than {timeout:g}s") from None
                with shared:
                    held.add(key)
                    try:
                        yield
                    finally:
                        held.discard(key)
            finally:
                lock.release()
        finally:
            self._unuse(key)

    @contextmanager
    def _shared(self, key: int, timeout: float) -> Iterator[None]:
        """The part of the lock other processes see; nothing within one process."""
        yield

    def _use(self, key: int) -> threading.Lock:
        with self._guard:
            lock, users = self._local.get(key, (None, 0))
            lock = lock or threading.Lock()
            self._local[key] = (lock, users + 1)
            return lock

    def _unuse(self, key: int) -> None:
        # Locks of zones nobody is applying to are dropped: memory follows the applies in flight.
        with self._guard:
            lock, users = self._local[key]
            if users == 1:
                del self._local[key]
            else:
                self._local[key] = (lock, users - 1)

    def close(self) -> None:
        """Release connections; the default has none."""


class FileZoneLocks(ZoneLocks):
    """Zone locks shared by the processes of one host through lock files in `directory`."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    @contextmanager
    def _shared(self, key: int, timeout: float) -> Iterator[None]:
        try:
            self.directory.mkdir(mode=0o700, exist_ok=True)
            lock = filelock.FileLock(str(self.directory / f"{key & (2**64 - 1):016x}.lock"), timeout=timeout)
            lock.acquire()
        except filelock.Timeout:
            raise ZoneLockTimeout("another gateway process held the zone") from None
        except OSError as exc:
            raise ZoneLockError(f"cannot create a lock file in {self.directory}: {exc.strerror or exc}") from None
        try:
            yield
        finally:
            lock.release()


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
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if database and database != ":memory:" and not database.startswith("file:"):
        path = Path(database).resolve()
        return FileZoneLocks(path.with_name(f"{path.name}.locks"))
    return ZoneLocks()


#: The locks of backends the gateway has not given its store's locks (tests, plugins on their own).
PROCESS_ZONE_LOCKS = ZoneLocks()
