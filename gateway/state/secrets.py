"""Random secrets and their at-rest form.

Client secrets, codes and tokens are 32 random bytes, so a single SHA-256 is enough at
rest: there is no dictionary to try and 2**256 guesses is out of reach, while a slow hash
(argon2) would add tens of milliseconds to every token request for no gain. Comparisons
of presented secrets against stored hashes are constant-time.

A client secret the operator chose (`dcgw clients add --secret`) may be guessable, so it
is kept as an argon2id hash instead: a leaked database then costs a guesser that much per
try. Stored hashes say which they are (`$argon2...` or 64 hex digits). The parameters are
OWASP's (19 MiB, two passes, one lane: tens of milliseconds), and a secret once verified
against a hash is remembered by its SHA-256, so a client's every refresh does not pay again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cachetools import LRUCache

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_verified: LRUCache = LRUCache(maxsize=1024)  # (argon2 hash, SHA-256 of a secret that matched it)
_verified_lock = threading.Lock()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def chosen_secret_hash(secret: str) -> str:
    return _HASHER.hash(secret)


def secret_matches(secret: str, stored_hash: str) -> bool:
    if stored_hash.startswith("$argon2"):
        key = (stored_hash, secret_hash(secret))
        with _verified_lock:
            if key in _verified:
                return True
        try:
            _HASHER.verify(stored_hash, secret)
        except (VerificationError, InvalidHashError):
            return False
        with _verified_lock:
            _verified[key] = True
        return True
    return hmac.compare_digest(secret_hash(secret), stored_hash)
