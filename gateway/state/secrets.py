"""Random secrets and their at-rest form.

Client secrets, codes and tokens are 32 random bytes, so a single SHA-256 is enough at
rest: there is no dictionary to try and 2**256 guesses is out of reach, while a slow hash
(argon2) would add tens of milliseconds to every token request for no gain. Comparisons
of presented secrets against stored hashes are constant-time.

A client secret the operator chose (`dcgw clients add --secret`) may be guessable, so it
is kept as an argon2id hash instead: a leaked database then costs a guesser that much per
try. Stored hashes say which they are (`$argon2...` or 64 hex digits).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def chosen_secret_hash(secret: str) -> str:
    return _HASHER.hash(secret)


def secret_matches(secret: str, stored_hash: str) -> bool:
    if stored_hash.startswith("$argon2"):
        try:
            return _HASHER.verify(stored_hash, secret)
        except (VerificationError, InvalidHashError):
            return False
    return hmac.compare_digest(secret_hash(secret), stored_hash)
