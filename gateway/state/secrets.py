"""Random secrets and their at-rest form.

Client secrets, codes and tokens are 32 random bytes, so a single SHA-256 is enough at
rest: there is no dictionary to try and 2**256 guesses is out of reach, while a slow hash
(argon2) would add tens of milliseconds to every token request for no gain. Comparisons
of presented secrets against stored hashes are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(secret), stored_hash)
