"""`POST {urlAPI}/v2/oauth/access_token`: authorization_code and refresh_token grants."""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.auth.throttle import CLIENT_AUTHENTICATION, client_address
from gateway.oauth.params import BadRequest, request_params
from gateway.state import InvalidGrant, IssuedTokens, StateStore

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status, headers=NO_STORE)


def token_endpoint(store: StateStore):
    async def access_token(request: Request) -> JSONResponse:
        try:
            params = await request_params(request)
        except BadRequest as exc:
            return oauth_error(400, "invalid_request", str(exc))
        client_id, client_secret = params.get("client_id", ""), params.get("client_secret", "")
        limits = CLIENT_AUTHENTICATION.limits(client_id, client_address(request))
        wait = await run_in_threadpool(store.attempt_wait, limits)
        if wait:
            return throttled(wait)
        if not store.authenticate_client(client_id, client_secret):
            await run_in_threadpool(client_authentication_failed, store, limits, client_id, client_address(request))
            return oauth_error(401, "invalid_client", "client_id or client_secret is wrong")
        grant_type = params.get("grant_type")
        try:
            if grant_type == "authorization_code":
                tokens = store.redeem_code(params.get("code", ""), client_id, params.get("redirect_uri", ""))
            elif grant_type == "refresh_token":
                tokens = store.refresh(params.get("refresh_token", ""), client_id)
            else:
                return oauth_error(400, "unsupported_grant_type",
                                   "grant_type: must be authorization_code or refresh_token")
        except InvalidGrant as exc:
            store.audit("refuse", f"client:{client_id}", None, {"reason": str(exc)})
            return oauth_error(400, "invalid_grant", str(exc))
        return JSONResponse(token_body(tokens), headers=NO_STORE)

    return access_token


def throttled(wait: int) -> JSONResponse:
    response = oauth_error(429, "temporarily_unavailable",
                           f"too many failed client authentications; try again in {wait} seconds")
    response.headers["Retry-After"] = str(wait)
    return response


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


def token_body(tokens: IssuedTokens) -> dict:
    return {"access_token": tokens.access_token, "token_type": "bearer", "expires_in": tokens.expires_in,
            "refresh_token": tokens.refresh_token}
