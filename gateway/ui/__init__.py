"""Server-rendered pages: one Jinja environment, the brand from `[gateway]`, no JavaScript needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"

pages = Jinja2Templates(directory=str(HERE / "templates"))


def render_page(request: Request, name: str, context: dict[str, Any] | None = None,
                status_code: int = 200) -> HTMLResponse:
    """Render `templates/NAME` with the brand and the CSRF token every form needs."""
    from gateway.auth.session import csrf_token  # the session layer sits above the pages

    runtime = request.app.state.runtime
    values = {"brand": runtime.config.gateway, "csrf_token": csrf_token(request), **(context or {})}
    headers = {"Cache-Control": "no-store", "X-Frame-Options": "DENY",
               "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; "
                                          "img-src https: 'self'; "
                                          "form-action 'self' https: http:; frame-ancestors 'none'",
               "Referrer-Policy": "no-referrer"}
    return pages.TemplateResponse(request, name, values, status_code=status_code, headers=headers)


def error_page(request: Request, heading: str, message: str, status_code: int, detail: str = "", *,
               back: str | None = None, back_label: str = "Back") -> HTMLResponse:
    """The one page every refusal shows: what went wrong, what to do about it, and, given a
    verified return address `back`, a link to it."""
    from gateway.auth.session import current_user  # the session layer sits above the pages

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
