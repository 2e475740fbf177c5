"""A throwaway PostgreSQL cluster on 127.0.0.1 for the state store tests.

initdb refuses to run as root, so the cluster runs as the unprivileged user `nobody`
when the tests run as root. Its socket lives in the cluster's own directory (-k).
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import time
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.servers.common import free_port, require_program, stop, wait_for_port

UNPRIVILEGED_USER = "nobody"


def _as_cluster_user(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", UNPRIVILEGED_USER, "--", *command]
    return command


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class PostgresServer:
    """A running cluster: its URL, and stop/start for the tests that take the database away."""

    url: str
    command: list[str]
    log: Path
    port: int
    data: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log_file:
            self.process = subprocess.Popen(self.command, stdout=log_file, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process, timeout=60, log=self.log)
        # Listening is not ready: after a crash it replays its log first.
        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(self.url.replace("+psycopg", ""), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """kill -9 of the postmaster: the database is simply gone (its backends exit on their own)."""
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            postmaster = int(pid_file.read_text().split()[0])
            try:
                os.kill(postmaster, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process is not None:
            self.process.wait(timeout=30)
        # Its backends notice the postmaster is gone and exit; a new one cannot start before.
        deadline = time.monotonic() + 30
        while _listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a cluster; yields it with the SQLAlchemy URL of an empty database; removes everything on exit."""
    initdb = require_program("initdb", "postgresql")
    postgres = str(Path(initdb).with_name("postgres"))
    directory = Path(tempfile.mkdtemp(prefix="dcgw-pg-"))
    data, log = directory / "data", directory / "server.log"
    if os.geteuid() == 0:
        account = pwd.getpwnam(UNPRIVILEGED_USER)
        os.chown(directory, account.pw_uid, account.pw_gid)
    server = None
    try:
        subprocess.run(_as_cluster_user([initdb, "-D", str(data), "-U", "dcgw", "--auth=trust", "-E", "UTF8"]),
                       check=True, capture_output=True, timeout=120)
        port = free_port()
        server = PostgresServer(f"postgresql+psycopg://dcgw@127.0.0.1:{port}/postgres", _as_cluster_user(
            [postgres, "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(directory), "-c", "fsync=off"]),
            log, port, data)
        server.start()
        yield server
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"initdb failed: {exc.stderr.decode(errors='replace')[-2000:]}")
    finally:
        if server is not None and server.process is not None:
            stop(server.process)
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a cluster; yields a SQLAlchemy URL of an empty database; removes everything on exit."""
    with postgres_server() as server:
        yield server.url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url
