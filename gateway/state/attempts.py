"""Attempt counters in the state store: the sign-in and client-authentication throttles.

A counter per key (a username, a client address, a client_id) counts attempts in a window
that opens with the first one. Counting is one upsert per key inside one transaction, so
concurrent attempts on every replica are counted one after another: of 30 parallel
attempts against a limit of 5, exactly 5 are counted and the others are refused.
Keys are stored as SHA-256 hashes: fixed size whatever an attacker posts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from gateway.state.models import AttemptCounter
from gateway.state.secrets import secret_hash


@dataclass(frozen=True)
class Limit:
    """At most `attempts` for `key` within `window` seconds of the first one."""

    key: str
    attempts: int
    window: float


class _OverLimit(Exception):
    def __init__(self, wait: int) -> None:
        self.wait = wait


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _key_hash(key: str) -> str:
    return secret_hash(key.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(math.ceil((_aware(moment) - now).total_seconds()), 1)


class AttemptCounters:
    """The throttle half of `StateStore`."""

    sessions: sessionmaker
    clock: Callable[[], datetime]

    def count_attempt(self, limits: Sequence[Limit]) -> int:
        """Count one attempt against every limit, or against none: 0 when counted, else the
        seconds until the attempt may be made (a refused attempt is not counted)."""
        now = self.clock()
        try:
            with self.sessions.begin() as session:
                waits = []
                # One order for every transaction, so two of them never wait on each other's rows.
                for limit in sorted(limits, key=lambda limit: _key_hash(limit.key)):
                    attempts, resets_at = self._bump(session, limit, now)
                    if attempts > limit.attempts:
                        waits.append(_seconds_until(resets_at, now))
                if waits:
                    raise _OverLimit(max(waits))  # rolls the transaction back: nothing counted
        except _OverLimit as over:
            return over.wait
        return 0

    def attempt_wait(self, limits: Sequence[Limit]) -> int:
        """Seconds until an attempt may be made under `limits`, counting nothing; 0 now."""
        now = self.clock()
        by_hash = {_key_hash(limit.key): limit for limit in limits}
        with self.sessions() as session:
            rows = session.scalars(select(AttemptCounter).where(AttemptCounter.key_hash.in_(by_hash))).all()
        return max((_seconds_until(row.resets_at, now) for row in rows
                    if _aware(row.resets_at) > now and row.attempts >= by_hash[row.key_hash].attempts), default=0)

    def forget_attempts(self, *keys: str) -> None:
        """Start the count of `keys` afresh (a successful sign-in clears its username)."""
        with self.sessions.begin() as session:
            session.execute(delete(AttemptCounter).where(AttemptCounter.key_hash.in_([_key_hash(k) for k in keys])))

    def uncount_attempt(self, *keys: str) -> None:
        """Take back one counted attempt of `keys` (it turned out not to be a failure)."""
        with self.sessions.begin() as session:
            session.execute(update(AttemptCounter)
                            .where(AttemptCounter.key_hash.in_([_key_hash(k) for k in keys]),
                                   AttemptCounter.attempts > 0)
                            .values(attempts=AttemptCounter.attempts - 1)
                            .execution_options(synchronize_session=False))

    def _bump(self, session: Session, limit: Limit, now: datetime) -> tuple[int, datetime]:
        """One more attempt for `limit.key`, opening a new window when the last one ended."""
        table = AttemptCounter.__table__
        insert = postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
        ended = table.c.resets_at <= now
        statement = insert(table).values(key_hash=_key_hash(limit.key), attempts=1,
                                         resets_at=now + timedelta(seconds=limit.window))
        statement = statement.on_conflict_do_update(index_elements=[table.c.key_hash], set_={
            "attempts": case((ended, 1), else_=table.c.attempts + 1),
            "resets_at": case((ended, now + timedelta(seconds=limit.window)), else_=table.c.resets_at),
        }).returning(table.c.attempts, table.c.resets_at)
        attempts, resets_at = session.execute(statement).one()
        return attempts, resets_at
