"""The signed session cookie (Starlette's SessionMiddleware, set up by the app) and CSRF tokens.

The session holds the username and a CSRF token; never a password or a zone list, which are
looked up again on every request so a change in config takes effect at once.
"""

from __future__ import annotations

import secrets

from starlette.requests import Request

from gateway.auth.base import User

CSRF_FIELD = "csrf_token"
OPEN_PAGE_LIFETIME = 30 * 60  # seconds between showing a consent page and answering it
MAX_OPEN_PAGES = 3  # per session and kind: the signed cookie must stay small


def csrf_token(request: Request) -> str:
    """This session's CSRF token, created on first use."""
    if "session" not in request.scope:
        return ""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def csrf_ok(request: Request, submitted: object) -> bool:
    """Whether `submitted` (a form value: maybe missing, maybe a file upload) is this session's token."""
    expected = request.session.get("csrf") if "session" in request.scope else None
    return bool(expected and isinstance(submitted, str) and submitted
                and secrets.compare_digest(expected.encode(), submitted.encode()))


def current_user(request: Request) -> User | None:
    authenticator = request.app.state.runtime.authenticator
    user = authenticator.user_from_request(request)
    if user is not None or not authenticator.uses_login_form:
        return user
    return authenticator.user_in_session(request.session) if "session" in request.scope else None


def sign_in(request: Request, user: User) -> None:
    """Remember `user`; a fresh CSRF token stops a token planted before sign-in being reused."""
    request.session.clear()
    request.session["user"] = user.username
    request.session["csrf"] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    request.session.clear()


def remember_page(request: Request, kind: str, shown: dict, now: float) -> str:
    """Keep what a consent page showed in the session; the page's form carries only the nonce
    returned. The oldest open page of `kind` is forgotten past MAX_OPEN_PAGES."""
    nonce = secrets.token_urlsafe(16)
    pages = dict(request.session.get(kind, {}))
    while len(pages) >= MAX_OPEN_PAGES:
        pages.pop(min(pages, key=lambda key: pages[key]["at"]))
    pages[nonce] = {**shown, "at": int(now)}
    request.session[kind] = pages
    return nonce


def take_page(request: Request, kind: str, nonce: object, now: float) -> dict | None:
    """What the page `nonce` showed, once: answered or not, a page is used up. None when
    unknown, already answered or older than OPEN_PAGE_LIFETIME."""
    pages = dict(request.session.get(kind, {}))
    shown = pages.pop(nonce, None) if isinstance(nonce, str) else None
    request.session[kind] = pages
    if shown is None or shown["at"] + OPEN_PAGE_LIFETIME < now:
        return None
    return shown
