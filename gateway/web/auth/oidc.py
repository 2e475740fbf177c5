"""`driver = "oidc"`: customers sign in at the DNS host's own OpenID Provider (authorization
code flow with PKCE; authlib speaks the protocol and checks the ID token).

    [auth]
    driver = "oidc"
    issuer = "https://id.example.net"          # endpoints from its discovery document
    client_id = "domain-connect"
    client_secret = "env:DCGW_OIDC_SECRET"     # or "file:/run/secrets/oidc-secret"
    scopes = ["openid"]                        # default; "openid" must be one of them
    username_claim = "sub"                     # default: the claim that names the user
    timeout = 10                               # seconds for each call to the provider

    [auth.zones]                               # which zones each customer controls
    source = "claim"                           # or "url" (the control panel), or "config"
    claim = "zones"

Register `{gateway.base_url}/login/callback` as the client's redirect URI, and
`{gateway.base_url}/` as its post-logout redirect URI. The issuer must be https; http is
accepted only on a loopback address or with `gateway.development = true`.

The ID token's signature is checked against the provider's JWKS (fetched again when a key id is
unknown, so key rotation works), and its `iss`, `aud`, `exp` and `nonce`; the discovery
document must name the configured issuer. A sign-in that fails any check signs nobody in.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.deprecate import AuthlibDeprecationWarning
from joserfc.errors import JoseError

with warnings.catch_warnings():  # authlib announces a future httpx successor at import; nothing to act on
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.starlette_client import OAuth

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.infra.config import AuthSettings, ConfigError, GatewaySettings
from gateway.web.auth.base import Authenticator, User
from gateway.web.auth.zones import ClaimedZones, covers, require_secure_url, secret_text

log = logging.getLogger(__name__)

CALLBACK_PATH = "/login/callback"
ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri", "end_session_endpoint")
KNOWN_OPTIONS = {"issuer", "client_id", "client_secret", "scopes", "username_claim", "timeout", "zones"}
DEFAULT_TIMEOUT = 10.0
LEEWAY_SECONDS = 60  # clock skew allowed on exp and iat
METADATA_MAX_AGE = 3600  # the discovery document is read again after an hour
MAX_USERNAME_LENGTH = 256
NEXT_KEY = "sign_in_next"  # session: where the sign-in returns to
CLAIMED_KEY, CLAIM_PROBLEM_KEY = "claimed_zones", "claim_problem"


class SignInFailed(Exception):
    """A sign-in refused: `public` for the page, the message for the log."""

    def __init__(self, status: int, public: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.public = status, public


class OidcAuthenticator(Authenticator):
    uses_login_form = True  # the gateway signs users in itself, through the provider, and keeps a session
    signs_in_elsewhere = True

    def __init__(self, settings: AuthSettings) -> None:
        options = settings.options
        for key in sorted(options):
            if key not in KNOWN_OPTIONS:
                raise ConfigError(f"auth.{key}: unknown key for the oidc driver "
                                  f"(expected one of: driver, users, {', '.join(sorted(KNOWN_OPTIONS))})")
        super().__init__(settings)
        self.issuer = required_text(options, "issuer")
        if not self.issuer.startswith(("https://", "http://")):
            raise ConfigError(f"auth.issuer: must be the provider's https URL, not {self.issuer!r}")
        self.client_id = required_text(options, "client_id")
        client_secret = secret_text(options.get("client_secret"), "auth.client_secret")
        scopes = options.get("scopes", ["openid"])
        if (not isinstance(scopes, list) or not all(isinstance(s, str) and s and " " not in s for s in scopes)
                or "openid" not in scopes):
            raise ConfigError(f'auth.scopes: must be a list of scope names including "openid", not {scopes!r}')
        self.username_claim = options.get("username_claim", "sub")
        if not isinstance(self.username_claim, str) or not self.username_claim:
            raise ConfigError(f"auth.username_claim: must be a claim name such as 'sub', not {self.username_claim!r}")
        timeout = options.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(f"auth.timeout: must be a positive number of seconds, not {timeout!r}")
        self.configured_zones = {user.username: user.zones for user in settings.users}
        self.client = OAuth().register(
            "oidc", client_id=self.client_id, client_secret=client_secret,
            server_metadata_url=self.issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={"scope": " ".join(dict.fromkeys(scopes)), "code_challenge_method": "S256",
                           "timeout": float(timeout)})
        self.base_url: str | None = None
        self.gateway = GatewaySettings()

    @property
    def form_targets(self) -> tuple[str, ...]:
        return (self.issuer,)  # the provider's logout follows the sign-out form

    def check_deployment(self, gateway: GatewaySettings) -> None:
        super().check_deployment(gateway)
        require_secure_url(self.issuer, "auth.issuer", gateway)
        self.base_url = gateway.base_url.rstrip("/")
        self.gateway = gateway

    # -- who is signed in -------------------------------------------------------------------

    def user_named(self, username: str) -> User | None:
        zones = self.configured_zones.get(username)
        return User(username, zones) if zones is not None else None

    def user_in_session(self, session) -> User | None:
        username = session.get("user")
        if not isinstance(username, str) or not username:
            return None
        claimed = session.get(CLAIMED_KEY)
        return User(username, self.configured_zones.get(username, ()),
                    claimed_zones=tuple(claimed) if isinstance(claimed, list) else None,
                    claim_problem=str(session.get(CLAIM_PROBLEM_KEY, "")))

    # -- signing in and out -----------------------------------------------------------------

    async def sign_in_redirect(self, request: Request, next_path: str) -> Response | None:
        try:
            await self.metadata()
            response = await self.client.authorize_redirect(request, self.callback_url(request))
        except SignInFailed as failed:
            return self.refusal(request, failed)
        request.session[NEXT_KEY] = next_path
        return response

    async def callback(self, request: Request) -> Response:
        from gateway.web.auth.routes import safe_next  # routes sits above the drivers
        from gateway.web.auth.session import sign_in

        try:
            user, claimed, problem = await self.verified_user(request)
        except SignInFailed as failed:
            request.session.pop(NEXT_KEY, None)
            return self.refusal(request, failed)
        next_path = safe_next(request.session.get(NEXT_KEY))
        sign_in(request, user)
        request.session[CLAIMED_KEY] = list(claimed) if claimed is not None else None
        if problem:
            request.session[CLAIM_PROBLEM_KEY] = problem
        if claimed is not None:
            await run_in_threadpool(revoke_lost_grants, request.app.state.runtime.store, user.username, claimed)
        log.info("signed in %r through %s", user.username, self.issuer)
        return RedirectResponse(next_path, status_code=303)

    async def verified_user(self, request: Request) -> tuple[User, tuple[str, ...] | None, str]:
        if "error" in request.query_params:
            error = request.query_params.get("error", "")[:100]
            raise SignInFailed(401, "The sign-in was cancelled or refused, so you are not signed in.",
                               f"the provider answered error={error!r}")
        answered_by = request.query_params.get("iss")
        if answered_by is not None and answered_by != self.issuer:  # RFC 9207: another provider's answer
            raise SignInFailed(401, "The sign-in could not be verified, so you are not signed in.",
                               f"the authorization response came from issuer {answered_by[:200]!r}")
        await self.metadata()
        try:
            token = await self.client.authorize_access_token(request, claims_options=self.claims_options(),
                                                             leeway=LEEWAY_SECONDS)
        except JoseError as exc:
            raise SignInFailed(401, "The sign-in could not be verified, so you are not signed in.",
                               f"ID token refused: {type(exc).__name__}: {exc}") from None
        except AuthlibBaseError as exc:  # unknown or used state, an error from the token endpoint
            raise SignInFailed(400, "This sign-in has expired or was not started here. Start again from the "
                                    "service's page.", f"sign-in refused: {exc}") from None
        except (httpx.HTTPError, ValueError) as exc:
            raise self.unreachable(exc) from None
        claims = token.get("userinfo")
        if not claims:
            raise SignInFailed(401, "The sign-in could not be verified, so you are not signed in.",
                               "the token endpoint answered no ID token")
        username = claims.get(self.username_claim)
        if (not isinstance(username, str) or not username or len(username) > MAX_USERNAME_LENGTH
                or not username.isprintable()):
            raise SignInFailed(401, "The sign-in did not say who you are, so you are not signed in.",
                               f"the ID token's {self.username_claim!r} claim is not a usable user name")
        claimed, problem = None, ""
        if isinstance(self.zone_source, ClaimedZones):
            claimed, problem = self.zone_source.read_claim(claims)
        return User(username, self.configured_zones.get(username, ())), claimed, problem

    def claims_options(self) -> dict[str, Any]:
        return {"iss": {"essential": True, "value": self.issuer},
                "aud": {"essential": True, "value": self.client_id},
                "exp": {"essential": True}}

    async def sign_out_redirect(self, request: Request) -> str | None:
        """RP-initiated logout when the provider offers it, coming back to the gateway's home."""
        try:
            metadata = await self.metadata()
        except SignInFailed as failed:
            log.warning("signing out without the provider's logout: %s", failed)
            return None
        if not metadata.get("end_session_endpoint"):
            return None
        logout = await self.client.create_logout_url(post_logout_redirect_uri=self.site_url(request, "/"),
                                                     client_id=self.client_id)
        return logout["url"]

    def routes(self) -> list[BaseRoute]:
        return [Route(CALLBACK_PATH, self.callback, methods=["GET"], name="oidc_callback")]

    # -- the provider -----------------------------------------------------------------------

    async def metadata(self) -> dict[str, Any]:
        """The discovery document (read again after METADATA_MAX_AGE), which must name our issuer."""
        cached = self.client.server_metadata
        if time.time() - cached.get("_loaded_at", 0) > METADATA_MAX_AGE:
            cached.pop("_loaded_at", None)
        try:
            metadata = await self.client.load_server_metadata()
        except (httpx.HTTPError, ValueError) as exc:
            raise self.unreachable(exc) from None
        if metadata.get("issuer") != self.issuer:
            cached.pop("_loaded_at", None)
            raise SignInFailed(502, "The sign-in service is misconfigured; try again later.",
                               f"the discovery document names issuer {metadata.get('issuer')!r}, "
                               f"not {self.issuer!r}")
        for endpoint in ENDPOINTS:  # codes, secrets and keys travel there: https like the issuer
            if endpoint in metadata:
                try:
                    require_secure_url(str(metadata[endpoint]), endpoint, self.gateway)
                except ConfigError as exc:
                    cached.pop("_loaded_at", None)
                    raise SignInFailed(502, "The sign-in service is misconfigured; try again later.",
                                       f"discovery document: {exc}") from None
        # Only signed ID tokens: never "none", whatever the document lists.
        algorithms = [a for a in metadata.get("id_token_signing_alg_values_supported") or ["RS256"] if a != "none"]
        metadata["id_token_signing_alg_values_supported"] = algorithms or ["RS256"]
        return metadata

    def unreachable(self, error: Exception) -> SignInFailed:
        return SignInFailed(503, "The sign-in service cannot be reached just now; try again in a few minutes.",
                            f"{self.issuer}: {type(error).__name__}: {error}")

    def callback_url(self, request: Request) -> str:
        return self.site_url(request, CALLBACK_PATH)

    def site_url(self, request: Request, path: str) -> str:
        if self.base_url is not None:
            return self.base_url + path
        return str(request.base_url).rstrip("/") + path

    def refusal(self, request: Request, failed: SignInFailed) -> Response:
        from gateway.web.ui import error_page

        log.warning("OpenID Connect sign-in refused: %s", failed)
        return error_page(request, "Sign-in failed", failed.public, failed.status,
                          detail="Nothing was changed.")


def revoke_lost_grants(store, username: str, claimed: tuple[str, ...]) -> None:
    """A claim is seen only at sign-in, so that is when grants on zones it no longer lists end."""
    for grant in store.grants_of(username):
        if not covers(claimed, grant.domain):
            store.revoke_grant(grant.id, username)
            log.info("revoked grant %s of %r: the ID token no longer lists %s", grant.id, username, grant.domain)


def required_text(options, key: str) -> str:
    value = options.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"auth.{key}: is required by the oidc driver (a non-empty string)")
    return value.strip()
