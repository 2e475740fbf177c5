"""Server-rendered pages: one Jinja environment, the brand from `[gateway]`, no JavaScript needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from gateway.web.redirects import AUTHORITY

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"

pages = Jinja2Templates(directory=str(HERE / "templates"))
# The templates ship with the package: no file is stat()ed again on every page.
pages.env.auto_reload = False


def render_page(request: Request, name: str, context: dict[str, Any] | None = None,
                status_code: int = 200, *, return_to: str | None = None) -> HTMLResponse:
    """Render `templates/NAME` with the brand and the CSRF token every form needs.

    The page's forms may post to this site only; `return_to`, a return address already
    verified, is where the answer to a form may redirect the browser next."""
    from gateway.web.auth.session import csrf_token  # the session layer sits above the pages

    runtime = request.app.state.runtime
    values = {"brand": runtime.config.gateway, "csrf_token": csrf_token(request), **(context or {})}
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
               "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; "
                                          "img-src https: 'self'; "
                                          f"form-action {form_action(return_to, runtime)}; frame-ancestors 'none'",
               "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
    return pages.TemplateResponse(request, name, values, status_code=status_code, headers=headers)


def form_action(return_to: str | None, runtime: Any) -> str:
    """The CSP form-action sources: 'self', the origin of `return_to`, and the sign-in driver's
    (an OpenID Provider's logout). Browsers check the redirect that follows a form post too."""
    targets = [return_to, *getattr(runtime.authenticator, "form_targets", ())]
    origins = dict.fromkeys(origin for origin in map(origin_of, targets) if origin)
    return " ".join(["'self'", *origins])


def origin_of(url: str | None) -> str | None:
    """`scheme://host[:port]` of a plain http(s) URL, else None (nothing else enters a CSP)."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("https", "http") or not AUTHORITY.fullmatch(parts.netloc):
        return None
    return f"{parts.scheme}://{parts.netloc}"


def error_page(request: Request, heading: str, message: str, status_code: int, detail: str = "", *,
               back: str | None = None, back_label: str = "Back") -> HTMLResponse:
    """The one page every refusal shows: what went wrong, what to do about it, and, given a
    verified return address `back`, a link to it."""
    from gateway.web.auth.session import current_user  # the session layer sits above the pages

    return render_page(request, "error.html", {"heading": heading, "message": message, "detail": detail,
                                               "back": back, "back_label": back_label,
                                               "user": current_user(request)}, status_code)


def brand_css(request: Request) -> Response:
    """The brand colours from `[gateway]` as CSS variables, so pages need no inline style."""
    brand = request.app.state.runtime.config.gateway
    css = f":root {{ --brand: {_css_color(brand.brand_color)}; --accent: {_css_color(brand.accent_color)}; }}\n"
    return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=300"})


def _css_color(value: str) -> str:
    # A colour is a word, a #hex or a function like rgb(...): nothing that could close the rule.
    return value if value and not set(value) & set(";{}<>\\\"'") else "inherit"
