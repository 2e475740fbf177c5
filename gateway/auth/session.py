"""The signed session cookie (Starlette's SessionMiddleware, set up by the app) and CSRF tokens.

The session holds the username and a CSRF token; never a password or a zone list, which are
looked up again on every request so a change in config takes effect at once.
"""

from __future__ import annotations

import secrets

from starlette.requests import Request

from gateway.auth.base import User

CSRF_FIELD = "csrf_token"


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
    username = request.session.get("user") if "session" in request.scope else None
    return authenticator.user_named(username) if username else None


def sign_in(request: Request, user: User) -> None:
    """Remember `user`; a fresh CSRF token stops a token planted before sign-in being reused."""
    request.session.clear()
    request.session["user"] = user.username
    request.session["csrf"] = secrets.token_urlsafe(32)


def sign_out(request: Request) -> None:
    request.session.clear()
