"""`POST {urlAPI}/v2/oauth/access_token`: authorization_code and refresh_token grants."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.oauth.params import BadRequest, request_params
from gateway.observability import metrics_of
from gateway.state import InvalidGrant, IssuedTokens, StateStore

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
        if not store.authenticate_client(client_id, client_secret):
            store.audit("refuse", f"client:{client_id}"[:255], None, {"reason": "client authentication"})
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
        metrics = metrics_of(request)
        if metrics is not None:
            metrics.token_event("issued" if grant_type == "authorization_code" else "refreshed")
        return JSONResponse(token_body(tokens), headers=NO_STORE)

    return access_token


def token_body(tokens: IssuedTokens) -> dict:
    return {"access_token": tokens.access_token, "token_type": "bearer", "expires_in": tokens.expires_in,
            "refresh_token": tokens.refresh_token}
