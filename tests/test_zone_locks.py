"""The backend kit's zone lock: re-entrant in a thread, exclusive between threads and
processes, released by a process that dies, and as wide as the state store's database."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import dns.name
import pytest

from backends.base import BackendError
from backends.locks import ZoneLocks
from backends.zonefile import ZoneFileBackend
from gateway.state import StateStore
from gateway.state.locks import AdvisoryZoneLocks, FileZoneLocks
from tests.state_helpers import database_url  # noqa: F401  (fixture)

ZONE = dns.name.from_text("example.com")


@pytest.fixture
def backend(tmp_path):
    (tmp_path / "zones").mkdir()
    made = ZoneFileBackend("files", {"directory": str(tmp_path / "zones"), "lock_timeout": 0.3})
    made.zone_locks = ZoneLocks()
    return made


def test_a_thread_may_take_a_zone_it_holds_again(backend):
    with backend.zone_lock(ZONE), backend.zone_lock(ZONE):
        pass
    with backend.zone_lock(ZONE):  # and it was released
        pass


def test_another_thread_waits_then_gets_a_backend_error_naming_the_zone(backend):
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with backend.zone_lock(ZONE):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        started = time.monotonic()
        with pytest.raises(BackendError, match="backend 'files': zone example.com: another apply in this process "
                                               "held the zone for more than 0.3s; nothing was written"):
            with backend.zone_lock(ZONE):
                pass
        assert time.monotonic() - started >= 0.3
        with backend.zone_lock(dns.name.from_text("example.net")):  # other zones are free
            pass
    finally:
        release.set()
        thread.join(10)
    assert backend.zone_locks._local == {}  # nothing kept for zones nobody applies to


def test_the_store_gives_the_widest_lock_its_database_has(tmp_path, database_url):  # noqa: F811
    store = StateStore.open(database_url)
    try:
        expected = AdvisoryZoneLocks if database_url.startswith("postgresql") else FileZoneLocks
        assert type(store.zone_locks) is expected
    finally:
        store.close()
    memory = StateStore.open("sqlite://")
    assert type(memory.zone_locks) is ZoneLocks
    memory.close()


def _hold_forever(database_url: str, scope: str, ready) -> None:
    store = StateStore.open(database_url)
    with store.zone_locks.hold(scope, ZONE, timeout=30):
        ready.set()
        time.sleep(600)


def test_a_lock_held_by_a_process_that_dies_is_released(backend, database_url):  # noqa: F811
    store = StateStore.open(database_url)
    backend.zone_locks = store.zone_locks
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_hold_forever, args=(database_url, backend.lock_scope(), ready))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(BackendError, match="another gateway process held the zone"):
            with backend.zone_lock(ZONE):
                pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(30)
        backend.lock_timeout = 10.0
        with backend.zone_lock(ZONE):
            pass
    finally:
        if holder.is_alive():
            holder.kill()
        store.close()
