"""PKCE (RFC 7636): the challenge a client sends with its authorization request, and the
verifier it must present with the code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

METHODS = ("S256", "plain")
# 43 to 128 unreserved characters (RFC 7636 4.1); an S256 challenge is 43 of them.
VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


class PkceError(ValueError):
    """A challenge or method the authorization request may not carry; the message names it."""


def checked_challenge(challenge: str | None, method: str | None) -> tuple[str | None, str | None]:
    """(challenge, method) to store for a code, (None, None) without PKCE; PkceError otherwise.
    A missing method means plain (RFC 7636 4.3)."""
    if not challenge:
        if method:
            raise PkceError("code_challenge: required with code_challenge_method")
        return None, None
    method = method or "plain"
    if method not in METHODS:
        raise PkceError(f"code_challenge_method: {method!r} is not supported; use S256 or plain")
    if not VERIFIER.match(challenge):
        raise PkceError("code_challenge: must be 43 to 128 letters, digits or -._~")
    return challenge, method


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verifier_problem(verifier: str | None, challenge: str | None, method: str | None) -> str | None:
    """Why `verifier` does not redeem a code issued for `challenge`, or None when it does."""
    if challenge is None:
        # A verifier without a challenge is a downgrade attempt (RFC 9700 2.1.1).
        return "code_verifier: the authorization request had no code_challenge" if verifier else None
    if not verifier:
        return "code_verifier: required, the authorization request carried a code_challenge"
    if not VERIFIER.match(verifier):
        return "code_verifier: must be 43 to 128 letters, digits or -._~"
    expected = s256(verifier) if method == "S256" else verifier
    if not hmac.compare_digest(expected.encode("ascii"), challenge.encode("ascii")):
        return "code_verifier: does not match the code_challenge"
    return None
