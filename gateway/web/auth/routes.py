"""Sign-in and sign-out pages, and the answer a page gives when nobody is signed in.

    GET  /login?next=/path   the form
    POST /login              username, password, csrf_token, next -> 303 to `next` (local paths only)
    POST /logout             csrf_token -> 303 to /login (or the OpenID Provider's logout, or /)
    GET  /login/callback     the OpenID Provider's answer (driver = "oidc", gateway/web/auth/oidc.py)
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.infra.observability import metrics_of
from gateway.web.auth.base import Authenticator
from gateway.web.auth.session import sign_in, sign_out
from gateway.web.auth.throttle import SignInThrottle, client_address
from gateway.web.forms import submitted_form
from gateway.web.ui import render_page

LOGIN_PATH = "/login"
DEFAULT_NEXT = "/"
# One message for both cases, so the form does not reveal which usernames exist.
WRONG_CREDENTIALS = "The username or password is not correct."
TOO_MANY_ATTEMPTS = "Too many failed sign-ins. Wait a few minutes, then try again."
MAX_FIELD_LENGTH = 4096


def login_routes(throttle: SignInThrottle | None = None) -> list[Route]:
    throttle = throttle or SignInThrottle()

    async def submit(request: Request) -> Response:
        return await submit_login(request, throttle)

    return [
        Route(LOGIN_PATH, show_login, methods=["GET"], name="login"),
        Route(LOGIN_PATH, submit, methods=["POST"], name="login_submit"),
        Route("/logout", submit_logout, methods=["POST"], name="logout"),
    ]


def login_redirect(request: Request) -> Response:
    """What a page answers when nobody is signed in: the login form, coming back here afterwards;
    or, when a proxy signs users in, a page sending them to the DNS host's portal."""
    if not authenticator_of(request).uses_login_form:
        return portal_page(request)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{site_path(request, LOGIN_PATH)}?next={quote(here, safe='')}", status_code=303)


def safe_next(target: str | None) -> str:
    """`target` when it is a path on this site, else "/": never a redirect to another host.

    Browsers read a backslash as a slash and drop tabs and newlines, so "/\\evil.com" and
    "/\\t/evil.com" would mean "//evil.com", another host; only printable ASCII is let through.
    """
    if not target or len(target) > MAX_FIELD_LENGTH:
        return DEFAULT_NEXT
    if not all("!" <= character <= "~" for character in target):
        return DEFAULT_NEXT
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return DEFAULT_NEXT
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return target


async def show_login(request: Request) -> Response:
    authenticator = authenticator_of(request)
    if not authenticator.uses_login_form:
        return portal_page(request)
    next_path = safe_next(request.query_params.get("next"))
    elsewhere = await authenticator.sign_in_redirect(request, next_path)
    return elsewhere or login_form(request, next_path=next_path)


async def submit_login(request: Request, throttle: SignInThrottle) -> Response:
    authenticator = authenticator_of(request)
    if not authenticator.uses_login_form:
        return portal_page(request)
    form = await submitted_form(request)
    if isinstance(form, Response):
        return form
    next_path = safe_next(text_field(form, "next"))
    elsewhere = await authenticator.sign_in_redirect(request, next_path)
    if elsewhere is not None:  # no passwords here: users sign in at the provider
        return elsewhere
    username = text_field(form, "username")
    password = text_field(form, "password")
    store, address = request.app.state.runtime.store, client_address(request)
    # Counted before the password is checked, so parallel guesses cannot all be checked.
    wait = await run_in_threadpool(throttle.begin, store, username[:MAX_FIELD_LENGTH], address)
    metrics = metrics_of(request)
    if wait:
        if metrics is not None:
            metrics.sign_in_failure("locked")
        return login_form(request, next_path=next_path, username=username[:MAX_FIELD_LENGTH],
                          error=TOO_MANY_ATTEMPTS, status_code=429, headers={"Retry-After": str(wait)})
    user = None
    if username and password and len(username) <= MAX_FIELD_LENGTH and len(password) <= MAX_FIELD_LENGTH:
        # argon2 takes tens of milliseconds of CPU; keep it off the event loop.
        user = await run_in_threadpool(authenticator.authenticate, username, password)
    if user is None:
        if metrics is not None:
            locked_out = await run_in_threadpool(throttle.locked, store, username[:MAX_FIELD_LENGTH], address)
            metrics.sign_in_failure("credentials", locked_out=locked_out)
        return login_form(request, next_path=next_path, username=username[:MAX_FIELD_LENGTH],
                          error=WRONG_CREDENTIALS, status_code=401)
    await run_in_threadpool(throttle.succeeded, store, username, address)
    await run_in_threadpool(sign_in, request, user)
    return RedirectResponse(next_path, status_code=303)


async def submit_logout(request: Request) -> Response:
    form = await submitted_form(request)
    if isinstance(form, Response):
        return form
    await run_in_threadpool(sign_out, request)
    authenticator = authenticator_of(request)
    provider_logout = await authenticator.sign_out_redirect(request)
    if provider_logout:
        return RedirectResponse(provider_logout, status_code=303)
    after = LOGIN_PATH if authenticator.uses_login_form and not authenticator.signs_in_elsewhere else DEFAULT_NEXT
    return RedirectResponse(site_path(request, after), status_code=303)


def login_form(request: Request, *, next_path: str, username: str = "", error: str = "",
               status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = render_page(request, "login.html", {"next": next_path, "username": username, "error": error},
                           status_code=status_code)
    response.headers.update(headers or {})
    return response


def portal_page(request: Request) -> Response:
    brand = request.app.state.runtime.config.gateway
    portal = brand.control_panel_url
    detail = f"Sign in at {portal}, then try again." if portal else "Sign in there, then try again."
    return render_page(request, "error.html", {
        "heading": "Sign-in required",
        "message": f"You sign in at {brand.provider_display_name}'s portal, not on this page.",
        "detail": detail,
    }, status_code=401)


def site_path(request: Request, path: str) -> str:
    """`path` under the prefix a proxy serves the gateway at (uvicorn --root-path)."""
    return request.scope.get("root_path", "").rstrip("/") + path


def text_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def authenticator_of(request: Request) -> Authenticator:
    return request.app.state.runtime.authenticator
