"""Zone locks: one writer per zone.

    with locks.hold(scope, zone, timeout=30):   # ZoneLockTimeout when another holder keeps it
        re-read, compare, write

`ZoneLocks` holds within this process. The gateway gives every backend the locks of its
state store instead (`gateway.state.locks`), which reach every process sharing that store.
Every kind first takes a lock inside the process, so a process queues its own threads and
sends at most one waiter per zone further. A thread that holds a zone may take it again
(the API holds it across plan and record, and the backend's apply takes it inside).
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import dns.name

__all__ = ["PROCESS_ZONE_LOCKS", "ZoneLockError", "ZoneLockTimeout", "ZoneLocks", "lock_key"]


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


#: The locks of backends the gateway has not given its store's locks (tests, plugins on their own).
PROCESS_ZONE_LOCKS = ZoneLocks()
