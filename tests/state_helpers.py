"""A fresh state database per test, on SQLite and on PostgreSQL; a store on it with a clock
the test moves."""

from __future__ import annotations

import itertools
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, text

from gateway.state import StateStore

_databases = itertools.count()

# A zone with its SOA, NS and the name server's address only.
SMALL_ZONE = """\
$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1.example.com. hostmaster.example.com. 2024010101 3600 600 86400 300
@ IN NS ns1.example.com.
ns1 IN A 192.0.2.53
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.sqlite'}"
    server_url = request.getfixturevalue("postgres_url")
    name = f"state_{next(_databases)}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(database_url, clock):  # noqa: F811
    opened = StateStore.open(database_url, clock=clock)
    yield opened
    opened.close()
