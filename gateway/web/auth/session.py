"""Sessions, CSRF tokens and open consent pages.

The signed cookie (Starlette's SessionMiddleware, set up by the app) carries one random
session id; a sign-in driver may keep its own keys beside it, signed with it (the OpenID
Connect driver's zones claim). Who is signed in, and what each open consent page showed,
live in the state store, so every replica sees the same: signing out on one ends the
session on all, and a consent form is answered once whichever replica gets it, even when
an old copy of the cookie is replayed. The CSRF token is derived from the session id with
the session secret, so anonymous visitors (the login form) cost no row.

Zones are never stored: they are looked up again on every request, so a change in config
takes effect at once, and a user removed from the config is signed out everywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

import anyio.to_thread
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.web.auth.base import User

CSRF_FIELD = "csrf_token"
SESSION_LIFETIME = timedelta(hours=8)  # from sign-in, whatever happens meanwhile
OPEN_PAGE_LIFETIME = 30 * 60  # seconds between showing a consent page and answering it
MAX_OPEN_PAGES = 3  # per session and kind
SESSION_ID = "sid"  # the cookie's only key
SIGNED_IN = "dcgw.signed_in"  # scope key: the username of the session's row, looked up once


class SessionLoader:
    """Looks the cookie's session up in the store once per request, off the event loop."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and "session" in scope:
            session_id = _session_id(scope)
            if session_id is not None:
                store = scope["app"].state.runtime.store
                try:
                    scope[SIGNED_IN] = await anyio.to_thread.run_sync(store.session_user, session_id)
                except SQLAlchemyError:
                    pass  # looked up again by the handler, whose error handling answers 503
        await self.app(scope, receive, send)


def _session_id(scope: Scope) -> str | None:
    value = scope["session"].get(SESSION_ID)
    return value if isinstance(value, str) and value else None


def session_id(request: HTTPConnection, create: bool = False) -> str | None:
    """The cookie's session id; with `create`, a new one when the cookie has none."""
    if "session" not in request.scope:
        return None
    value = _session_id(request.scope)
    if value is None and create:
        value = request.session[SESSION_ID] = secrets.token_urlsafe(32)
    return value


def _csrf_for(request: HTTPConnection, session: str) -> str:
    secret = request.app.state.runtime.config.gateway.signing_secret()
    return hmac.new(secret.encode(), f"csrf {session}".encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """This session's CSRF token (a session id is made on first use)."""
    session = session_id(request, create=True)
    return _csrf_for(request, session) if session else ""


def csrf_ok(request: Request, submitted: object) -> bool:
    """Whether `submitted` (a form value: maybe missing, maybe a file upload) is this session's token."""
    session = session_id(request)
    return bool(session and isinstance(submitted, str) and submitted
                and secrets.compare_digest(_csrf_for(request, session).encode(), submitted.encode()))


def signed_in_username(request: HTTPConnection) -> str | None:
    """The username of the cookie's live session, or None."""
    if SIGNED_IN not in request.scope:  # apps without SessionLoader, or its lookup failed
        session = session_id(request)
        # Nobody, should the lookup fail: the error page answering that failure must not fail too.
        request.scope[SIGNED_IN] = None
        if session:
            request.scope[SIGNED_IN] = request.app.state.runtime.store.session_user(session)
    return request.scope[SIGNED_IN]


def current_user(request: Request) -> User | None:
    authenticator = request.app.state.runtime.authenticator
    user = authenticator.user_from_request(request)
    if user is not None or not authenticator.uses_login_form:
        return user
    username = signed_in_username(request)
    if not username:
        return None
    # The store says who; what a driver keeps beside the id in the signed cookie (an OpenID
    # Connect zones claim) is read with it.
    return authenticator.user_in_session({**request.session, "user": username})


def sign_in(request: Request, user: User) -> None:
    """Start a session for `user` under a new id, ending the one the cookie had: an id (and
    with it a CSRF token) planted before sign-in is worth nothing after it."""
    store = request.app.state.runtime.store
    old = session_id(request)
    if old is not None:
        store.end_session(old)
    request.session.clear()
    request.session[SESSION_ID] = store.start_session(user.username, SESSION_LIFETIME)
    request.scope[SIGNED_IN] = user.username


def sign_out(request: Request) -> None:
    """End the session in the store, so no copy of the cookie signs in again on any replica."""
    old = session_id(request)
    if old is not None:
        request.app.state.runtime.store.end_session(old)
    request.session.clear()
    request.scope[SIGNED_IN] = None


def remember_page(request: Request, kind: str, shown: dict, now: float) -> str:
    """Keep what a consent page showed in the store, for this session; the page's form
    carries only the nonce returned. The oldest open page of `kind` goes past MAX_OPEN_PAGES."""
    store = request.app.state.runtime.store
    return store.remember_page(session_id(request, create=True), str(shown.get("user", "")), kind,
                               {**shown, "at": int(now)}, timedelta(seconds=OPEN_PAGE_LIFETIME), MAX_OPEN_PAGES)


def peek_page(request: Request, kind: str, nonce: object, now: float) -> dict | None:
    """What the page `nonce` showed, leaving it open (reads only); None as for `take_page`."""
    return _open_page(request, kind, nonce, now, take=False)


def take_page(request: Request, kind: str, nonce: object, now: float) -> dict | None:
    """What the page `nonce` showed, once: answered or not, a page is used up. None when
    unknown, already answered (on any replica), another session's, or older than OPEN_PAGE_LIFETIME."""
    return _open_page(request, kind, nonce, now, take=True)


def _open_page(request: Request, kind: str, nonce: object, now: float, take: bool) -> dict | None:
    session = session_id(request)
    if session is None or not isinstance(nonce, str) or not nonce or len(nonce) > 100:
        return None
    store = request.app.state.runtime.store
    shown = (store.take_page if take else store.open_page)(session, kind, nonce)
    if shown is None or shown["at"] + OPEN_PAGE_LIFETIME < now:
        return None
    return shown
