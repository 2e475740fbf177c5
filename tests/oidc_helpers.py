"""OpenID Connect helpers for the tests: a gateway signing in through a provider, a provider the
test controls (its own key, JWKS and token endpoint, so it can mint any ID token), and a
walk through node-oidc-provider's development sign-in pages over HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.gateway_app import Gateway, build_gateway
from tests.log_capture import Collect
from tests.loopback_http import JsonHandler, serving

CLIENT_ID, CLIENT_SECRET = "dcgw", "oidc-client-secret"


def oidc_gateway(tmp_path: Path, issuer: str, *, zone_source: str = 'source = "claim"', base_url: str = "https://dc.test",
                 scopes: tuple[str, ...] = ("openid", "zones"), auth: str = "", **kwargs) -> Gateway:
    """A gateway whose customers sign in at `issuer`; `zone_source` is the body of its [auth.zones]."""
    return build_gateway(tmp_path, users={}, base_url=base_url, sections=f"""
[auth]
driver = "oidc"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
scopes = {json.dumps(list(scopes))}
{auth}
[auth.zones]
{zone_source}
""", **kwargs)


@contextmanager
def collected(logger_name: str) -> Iterator[Collect]:
    """Every message `logger_name` logs inside the block, in `.lines`."""
    handler, logger = Collect(), logging.getLogger(logger_name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@dataclass
class Authorization:
    """What the gateway asked the provider for, read off the redirect to its authorization endpoint."""

    state: str
    nonce: str
    code_challenge: str
    redirect_uri: str


def authorization_of(location: str) -> Authorization:
    query = {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
    assert query["response_type"] == "code" and query["code_challenge_method"] == "S256"
    return Authorization(query["state"], query["nonce"], query["code_challenge"], query["redirect_uri"])


@dataclass
class MintingProvider:
    """An OpenID Provider on 127.0.0.1 whose token endpoint answers whatever ID token the test set."""

    issuer: str
    key: RSAKey
    id_token: str = ""
    token_requests: list[dict[str, str]] = field(default_factory=list)
    code_challenges: dict[str, str] = field(default_factory=dict)  # code -> challenge it must match

    def mint(self, key: RSAKey | None = None, header: dict | None = None, **claims) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": CLIENT_ID, "sub": "alice", "iat": now, "exp": now + 300, **claims}
        return jwt.encode(header or {"alg": "RS256", "kid": "test-key"}, payload, key or self.key)

    def discovery(self) -> dict:
        return {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                "end_session_endpoint": f"{self.issuer}/logout", "response_types_supported": ["code"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"]}

    def token_answer(self, form: dict[str, str], authorization: str) -> tuple[int, dict]:
        self.token_requests.append({**form, "authorization": authorization})
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if authorization != expected:
            return 401, {"error": "invalid_client"}
        challenge = self.code_challenges.get(form.get("code", ""))
        verifier = form.get("code_verifier", "")
        computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge is None or computed != challenge:
            return 400, {"error": "invalid_grant"}
        return 200, {"access_token": "opaque", "token_type": "Bearer", "expires_in": 300, "id_token": self.id_token}


@contextmanager
def minting_provider() -> Iterator[MintingProvider]:
    provider = MintingProvider("", RSAKey.generate_key(2048, {"kid": "test-key"}))
    with serving(ProviderHandler, provider) as port:
        provider.issuer = f"http://127.0.0.1:{port}"
        yield provider


class ProviderHandler(JsonHandler):
    def do_GET(self) -> None:
        provider: MintingProvider = self.server.state  # type: ignore[attr-defined]
        if self.path == "/.well-known/openid-configuration":
            self.answer(200, provider.discovery())
        elif self.path == "/jwks":
            self.answer(200, {"keys": [provider.key.as_dict(private=False)]})
        else:
            self.answer(404, {"error": "not_found"})

    def do_POST(self) -> None:
        provider: MintingProvider = self.server.state  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
        form = {key: values[0] for key, values in parse_qs(body).items()}
        self.answer(*provider.token_answer(form, self.headers.get("authorization", "")))


def sign_in_at_provider(browser: httpx.Client, authorize_url: str, login: str, gateway_url: str) -> str:
    """Walk node-oidc-provider's development login and consent pages; the gateway callback URL it returns to."""
    location = authorize_url
    for _ in range(12):
        if location.startswith(gateway_url):
            return location
        page = browser.get(location)
        if page.status_code in (302, 303):
            location = str(page.url.join(page.headers["location"]))
            continue
        assert page.status_code == 200, page.text
        action = re.search(r'<form[^>]*action="([^"]+)"', page.text).group(1)
        prompt = re.search(r'name="prompt" value="([^"]+)"', page.text).group(1)
        data = {"prompt": prompt, **({"login": login, "password": "any"} if prompt == "login" else {})}
        answer = browser.post(page.url.join(action), data=data)
        location = str(answer.url.join(answer.headers["location"]))
    raise AssertionError(f"the provider never sent the browser back to {gateway_url}")
