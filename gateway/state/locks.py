"""One writer per zone across every gateway process that shares the state store.

An apply holds its zone's lock from the first read of its plan to the last row it records,
so the instances it plans against cannot change under it, and any write-ahead intent it
finds for the zone was left by a process that no longer holds the lock: a crash or a lost
answer, safe to settle.

    with zone_lock(engine, "pdns", "example.com.", timeout=5):
        ...

On PostgreSQL it is a transaction-scoped advisory lock on a connection of its own, released
when the block ends or the process dies. On SQLite, whose database is a file on one host,
it is a file lock beside the database.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import filelock
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError


class LockTimeout(RuntimeError):
    """Another apply held the zone for longer than the timeout."""


_memory_locks: dict[str, threading.Lock] = {}
_memory_guard = threading.Lock()


def lock_key(backend: str, zone: str) -> int:
    """A signed 64-bit key for `pg_advisory_xact_lock`, the same in every process."""
    digest = hashlib.sha256(f"dcgw-zone\0{backend}\0{zone.lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.contextmanager
def zone_lock(engine: Engine, backend: str, zone: str, timeout: float) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, lock_key(backend, zone), timeout):
            yield
        return
    database = engine.url.database
    if not database or database == ":memory:":
        with _memory_lock(f"{backend}\0{zone}", timeout):
            yield
        return
    directory = Path(f"{database}.locks")
    directory.mkdir(exist_ok=True)
    path = directory / f"{lock_key(backend, zone) & 0xFFFFFFFFFFFFFFFF:016x}.lock"
    try:
        with filelock.FileLock(str(path), timeout=timeout, thread_local=False, is_singleton=False):
            yield
    except filelock.Timeout:
        raise LockTimeout(f"zone {zone} on backend {backend!r}: another apply held it for more than "
                          f"{timeout:g}s") from None


@contextlib.contextmanager
def _advisory_lock(engine: Engine, key: int, timeout: float) -> Iterator[None]:
    with engine.connect() as connection:
        connection.execute(text(f"SET LOCAL lock_timeout = {max(1, int(timeout * 1000))}"))
        try:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        except DBAPIError as exc:
            if "lock timeout" in str(exc.orig).lower():
                raise LockTimeout(f"another apply held the zone for more than {timeout:g}s") from None
            raise
        try:
            yield
        finally:
            try:
                connection.rollback()  # ends the transaction, and with it the lock
            except DBAPIError:
                pass  # the connection is gone, and the lock with it


@contextlib.contextmanager
def _memory_lock(name: str, timeout: float) -> Iterator[None]:
    with _memory_guard:
        lock = _memory_locks.setdefault(name, threading.Lock())
    if not lock.acquire(timeout=timeout):
        raise LockTimeout(f"another apply held the zone for more than {timeout:g}s")
    try:
        yield
    finally:
        lock.release()
