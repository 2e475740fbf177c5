"""A throwaway PostgreSQL cluster on 127.0.0.1 for the state store tests.

initdb refuses to run as root, so the cluster runs as the unprivileged user `nobody`
when the tests run as root. Its socket lives in the cluster's own directory (-k).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.servers.common import free_port, require_program, stop, wait_for_port

UNPRIVILEGED_USER = "nobody"


def _as_cluster_user(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", UNPRIVILEGED_USER, "--", *command]
    return command


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a cluster; yields a SQLAlchemy URL of an empty database; removes everything on exit."""
    initdb = require_program("initdb", "postgresql")
    postgres = str(Path(initdb).with_name("postgres"))
    directory = Path(tempfile.mkdtemp(prefix="dcgw-pg-"))
    data, log = directory / "data", directory / "server.log"
    if os.geteuid() == 0:
        account = pwd.getpwnam(UNPRIVILEGED_USER)
        os.chown(directory, account.pw_uid, account.pw_gid)
    process = None
    try:
        subprocess.run(_as_cluster_user([initdb, "-D", str(data), "-U", "dcgw", "--auth=trust", "-E", "UTF8"]),
                       check=True, capture_output=True, timeout=120)
        port = free_port()
        with open(log, "wb") as log_file:
            process = subprocess.Popen(
                _as_cluster_user([postgres, "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                                  "-k", str(directory), "-c", "fsync=off"]),
                stdout=log_file, stderr=subprocess.STDOUT)
        wait_for_port(port, process, timeout=60, log=log)
        yield f"postgresql+psycopg://dcgw@127.0.0.1:{port}/postgres"
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"initdb failed: {exc.stderr.decode(errors='replace')[-2000:]}")
    finally:
        if process is not None:
            stop(process)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url
