"""Sign-in sessions and open consent pages, kept in the state store so that every replica
sees the same ones: a session ended on one is ended on all, and a consent page answered
on one cannot be answered again on another.

Session ids and page nonces are random secrets handed to the browser; only their SHA-256
hashes are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, and_, bindparam, delete, func, insert, or_, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.state.engine import relax_durability
from gateway.state.models import AttemptCounter, OpenPage, SignInSession
from gateway.state.secrets import new_secret, secret_hash

MAX_PAGES_PER_USER = 20  # open consent pages of one user over all their sessions


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns.
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# The statements of every signed-in request, built once: building one costs more than running it.
_PAGES = OpenPage.__table__
_SESSION_USER = select(SignInSession.username, SignInSession.expires_at) \
    .where(SignInSession.id_hash == bindparam("id_hash"))
_IN_SESSION = and_(_PAGES.c.session_hash == bindparam("session_hash"), _PAGES.c.kind == bindparam("kind"))
_OF_USER = _PAGES.c.username == bindparam("username")
_PAGE_COUNTS = select(func.count().filter(_IN_SESSION), func.count().filter(_OF_USER)).where(or_(_IN_SESSION, _OF_USER))
_ADD_PAGE = insert(_PAGES)
_PAGE = select(_PAGES.c.session_hash, _PAGES.c.kind, _PAGES.c.shown).where(_PAGES.c.nonce_hash == bindparam("nonce_hash"))
_TAKE_PAGE = delete(_PAGES).where(_PAGES.c.nonce_hash == bindparam("nonce_hash"))


def _hash(secret: str) -> str:
    return secret_hash(secret.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))


class SessionRows:
    """The session and page half of `StateStore`."""

    engine: Engine
    sessions: sessionmaker
    clock: Callable[[], datetime]

    def start_session(self, username: str, lifetime: timedelta) -> str:
        """A new session of `username`; returns its id, which only the cookie keeps."""
        session_id, now = new_secret(), self.clock()
        with self.sessions.begin() as session:
            session.add(SignInSession(id_hash=_hash(session_id), username=username, created_at=now,
                                      expires_at=now + lifetime))
        return session_id

    def session_user(self, session_id: str) -> str | None:
        """The username of a live session; None when unknown, ended or expired."""
        # One plain SELECT, no ORM unit of work: every signed-in request asks this.
        with self.engine.connect() as connection:
            row = connection.execute(_SESSION_USER, {"id_hash": _hash(session_id)}).first()
        if row is None or _aware(row.expires_at) <= self.clock():
            return None
        return row.username

    def end_session(self, session_id: str) -> None:
        """End a session and forget the pages it had open."""
        session_hash = _hash(session_id)
        with self.sessions.begin() as session:
            session.execute(delete(SignInSession).where(SignInSession.id_hash == session_hash))
            session.execute(delete(OpenPage).where(OpenPage.session_hash == session_hash))

    def end_sessions_unless(self, still_known: Callable[[str], bool]) -> int:
        """End every session of a user for whom `still_known(username)` is False (removed from
        the config); returns how many ended."""
        with self.sessions.begin() as session:
            names = session.scalars(select(SignInSession.username).distinct()).all()
            gone = [name for name in names if not still_known(name)]
            if not gone:
                return 0
            ended = session.execute(delete(SignInSession).where(SignInSession.username.in_(gone))).rowcount
            session.execute(delete(OpenPage).where(OpenPage.username.in_(gone)))
            return ended

    def remember_page(self, session_id: str, username: str, kind: str, shown: dict, lifetime: timedelta,
                      per_session: int) -> str:
        """Keep what a page showed; returns the nonce its form carries. Past `per_session` open
        pages of `kind` in the session (or MAX_PAGES_PER_USER of the user) the oldest go."""
        nonce, now, session_hash = new_secret(), self.clock(), _hash(session_id)
        keys = {"session_hash": session_hash, "kind": kind, "username": username}
        with self.sessions.begin() as session:
            # A page lost at a power cut is shown again when the customer reloads: no fsync.
            relax_durability(session)
            # Both counts in one statement: the pages are seldom over either limit.
            session_pages, user_pages = session.execute(_PAGE_COUNTS, keys).one()
            if session_pages > per_session - 1:
                _drop_oldest(session, per_session - 1, _IN_SESSION, keys)
            if user_pages > MAX_PAGES_PER_USER - 1:
                _drop_oldest(session, MAX_PAGES_PER_USER - 1, _OF_USER, keys)
            session.execute(_ADD_PAGE, {"nonce_hash": _hash(nonce), "session_hash": session_hash, "username": username,
                                        "kind": kind, "shown": shown, "created_at": now, "expires_at": now + lifetime})
        return nonce

    def open_page(self, session_id: str, kind: str, nonce: str) -> dict | None:
        """What the page `nonce` of this session showed, leaving it open; None as for `take_page`."""
        with self.engine.connect() as connection:
            row = connection.execute(_PAGE, {"nonce_hash": _hash(nonce)}).first()
        if row is None or row.session_hash != _hash(session_id) or row.kind != kind:
            return None
        return row.shown

    def take_page(self, session_id: str, kind: str, nonce: str) -> dict | None:
        """What the page `nonce` of this session showed, once: of concurrent takers exactly one
        gets it. None when unknown, taken or of another session; the caller judges its age."""
        nonce_hash = _hash(nonce)
        with self.sessions.begin() as session:
            row = session.execute(_PAGE, {"nonce_hash": nonce_hash}).first()
            if row is None or row.session_hash != _hash(session_id) or row.kind != kind:
                return None  # another session's page is left alone: a guessed nonce must not end it
            # Claimed by one conditional DELETE, so the same page cannot be answered twice.
            taken = session.execute(_TAKE_PAGE, {"nonce_hash": nonce_hash}).rowcount == 1
            return row.shown if taken else None

    def purge_expired(self) -> dict[str, int]:
        """Delete expired sessions, pages and attempt counters; how many of each."""
        now = self.clock()
        with self.sessions.begin() as session:
            return {
                "sessions": session.execute(delete(SignInSession).where(SignInSession.expires_at <= now)).rowcount,
                "pages": session.execute(delete(OpenPage).where(OpenPage.expires_at <= now)).rowcount,
                "attempts": session.execute(delete(AttemptCounter).where(AttemptCounter.resets_at <= now)).rowcount,
            }


def _drop_oldest(session: Session, keep: int, where, keys: dict) -> None:
    count = session.scalar(select(func.count()).select_from(_PAGES).where(where), keys)
    if count <= keep:
        return
    oldest = session.scalars(select(_PAGES.c.nonce_hash).where(where).order_by(_PAGES.c.created_at)
                             .limit(count - keep), keys).all()
    session.execute(delete(_PAGES).where(_PAGES.c.nonce_hash.in_(oldest)))
