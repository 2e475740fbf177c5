"""`POST {urlAPI}/v2/oauth/access_token`: authorization_code and refresh_token grants.

Clients authenticate with HTTP Basic (RFC 6749 2.3.1) or with client_id and client_secret
as parameters (query string, form or JSON body, as the published clients send them), never
both at once.
"""

from __future__ import annotations

import base64
import binascii
import logging
from urllib.parse import unquote_plus

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.infra.observability import metrics_of
from gateway.state import InvalidGrant, IssuedTokens, StateStore
from gateway.web.auth.throttle import CLIENT_AUTHENTICATION, client_address
from gateway.web.oauth.params import BadRequest, request_params

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
MAX_CREDENTIAL = 1024  # characters of a client_id or secret worth hashing


def oauth_error(status: int, error: str, description: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status,
                        headers={**NO_STORE, **(headers or {})})


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(client_id, client_secret) of an `Authorization: Basic` header, or None without one.
    Both halves are form-urlencoded before base64 (RFC 6749 2.3.1)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise BadRequest("Authorization: not valid Basic credentials") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise BadRequest("Authorization: Basic credentials must be client_id:client_secret")
    return unquote_plus(client_id), unquote_plus(secret)


def client_credentials(request: Request, params) -> tuple[str, str, bool]:
    """(client_id, client_secret, whether Basic was used); one method only (RFC 6749 2.3)."""
    basic = basic_credentials(request)
    if basic is None:
        return params.get("client_id", ""), params.get("client_secret", ""), False
    if "client_secret" in params:
        raise BadRequest("client_secret: send it in the Authorization header or as a parameter, not both")
    if params.get("client_id", basic[0]) != basic[0]:
        raise BadRequest("client_id: differs from the one in the Authorization header")
    return basic[0], basic[1], True


def token_endpoint(store: StateStore):
    async def access_token(request: Request) -> JSONResponse:
        try:
            params = await request_params(request)
            client_id, client_secret, basic = client_credentials(request, params)
        except BadRequest as exc:
            return oauth_error(400, "invalid_request", str(exc))
        # Hashing secrets and the database work stay off the event loop.
        response = await run_in_threadpool(grant_tokens, store, params, client_id, client_secret, basic,
                                           client_address(request))
        metrics = metrics_of(request)
        if metrics is not None and response.status_code == 200:
            metrics.token_event("issued" if params.get("grant_type") == "authorization_code" else "refreshed")
        return response

    return access_token


def throttled(wait: int) -> JSONResponse:
    return oauth_error(429, "temporarily_unavailable",
                       f"too many failed client authentications; try again in {wait} seconds",
                       {"Retry-After": str(wait)})


def client_authentication_failed(store: StateStore, limits, client_id: str, address: str) -> None:
    """Count the failure. Unauthenticated refusals are logged, not audited, so strangers cannot
    grow the audit table: it gets one row when a client_id or address reaches its limit."""
    store.count_attempt(limits)
    log.warning("client authentication failed for client_id %r from %s", client_id[:255], address)
    if store.attempt_wait(limits):
        store.audit("refuse", f"client:{client_id}"[:255], None, {
            "reason": "client authentication throttled", "address": address,
            "per_client_id": CLIENT_AUTHENTICATION.per_name, "per_address": CLIENT_AUTHENTICATION.per_address,
            "window_seconds": int(CLIENT_AUTHENTICATION.window)})


def grant_tokens(store: StateStore, params, client_id: str, client_secret: str, basic: bool,
                 address: str) -> JSONResponse:
    limits = CLIENT_AUTHENTICATION.limits(client_id[:MAX_CREDENTIAL], address)
    wait = store.attempt_wait(limits)
    if wait:
        return throttled(wait)
    if len(client_id) > MAX_CREDENTIAL or len(client_secret) > MAX_CREDENTIAL \
            or not store.authenticate_client(client_id, client_secret):
        client_authentication_failed(store, limits, client_id, address)
        # RFC 6749 5.2: a client that tried Basic is told which scheme to use.
        challenge = {"WWW-Authenticate": 'Basic realm="oauth"'} if basic else None
        return oauth_error(401, "invalid_client", "client_id or client_secret is wrong", challenge)
    grant_type = params.get("grant_type")
    try:
        if grant_type == "authorization_code":
            tokens = store.redeem_code(params.get("code", ""), client_id, params.get("redirect_uri", ""),
                                       params.get("code_verifier"))
        elif grant_type == "refresh_token":
            tokens = store.refresh(params.get("refresh_token", ""), client_id)
        else:
            return oauth_error(400, "unsupported_grant_type", "grant_type: must be authorization_code or refresh_token")
    except InvalidGrant as exc:
        store.audit("refuse", f"client:{client_id}", None, {"reason": str(exc)})
        return oauth_error(400, "invalid_grant", str(exc))
    return JSONResponse(token_body(tokens), headers=NO_STORE)


def token_body(tokens: IssuedTokens) -> dict:
    return {"access_token": tokens.access_token, "token_type": "bearer", "expires_in": tokens.expires_in,
            "refresh_token": tokens.refresh_token}
