"""Slow down password guessing: after too many failed sign-ins for one username or from one
address, refuse further attempts for a while. In memory, per process: behind several replicas
each one counts on its own, so put a rate limit at the proxy too."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60
MAX_KEYS = 100_000  # keys tracked at once; the oldest are forgotten first, so memory stays bounded


class SignInThrottle:
    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS) -> None:
        self.max_failures, self.window, self.clock, self.max_keys = max_failures, window, clock, max_keys
        self._failures: OrderedDict[bytes, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> int:
        """Seconds until any of `keys` (a username, an address) may try again; 0 when it may now.
        Asking stores nothing, so refused attempts cost no memory."""
        now = self.clock()
        with self._lock:
            waits = []
            for key in keys:
                failures = self._recent(_digest(key), now)
                if len(failures) >= self.max_failures:
                    waits.append(int(failures[0] + self.window - now) + 1)
            return max(waits, default=0)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in map(_digest, keys):
                failures = self._recent(key, now)
                failures.append(now)
                self._failures[key] = failures
                self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(_digest(key), None)

    def _recent(self, key: bytes, now: float) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures


def _digest(key: str) -> bytes:
    # Fixed-size keys, whatever length of username an attacker posts.
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=16).digest()
