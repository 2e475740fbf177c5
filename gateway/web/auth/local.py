"""`driver = "local"`: users and argon2 password hashes listed in the config file.

    [auth]
    driver = "local"

    [[auth.users]]
    username = "alice"
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$..."   # from `dcgw users hash-password`
    zones = ["example.com", "example.net"]                 # or ["*"] for every zone

Zones may come from the control panel instead (`[auth.zones] source = "url"`, gateway/web/auth/zones.py).
"""

from __future__ import annotations

import logging
import re
import secrets

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.infra.config import AuthSettings, AuthUser, ConfigError
from gateway.web.auth.base import Authenticator, User

log = logging.getLogger(__name__)
# What the example configs hold instead of a hash: it can never verify, and refusing it
# keeps a copied example from going live with a known password.
PLACEHOLDER_PREFIX = "REPLACE-ME"


class LocalAuthenticator(Authenticator):
    uses_login_form = True

    def __init__(self, settings: AuthSettings) -> None:
        super().__init__(settings)
        unknown = sorted(set(settings.options) - {"zones"})
        if unknown:
            raise ConfigError(f"auth.{unknown[0]}: unknown key for the local driver (expected: driver, users, zones)")
        if not settings.users:
            log.warning("auth.users: the local driver has no users; nobody can sign in "
                        "(add [[auth.users]] with `dcgw users hash-password`)")
        for index, user in enumerate(settings.users):
            if user.password_hash.startswith(PLACEHOLDER_PREFIX):
                raise ConfigError(f"auth.users[{index}].password_hash: replace the placeholder with the output "
                                  "of `dcgw users hash-password`")
            if not is_argon2_hash(user.password_hash):
                raise ConfigError(f"auth.users[{index}].password_hash: not an argon2 PHC string "
                                  "(make one with `dcgw users hash-password`)")
        self.users: dict[str, AuthUser] = {user.username: user for user in settings.users}
        self.hasher = PasswordHasher()
        self.dummy_hash = self.make_dummy_hash()

    def make_dummy_hash(self) -> str:
        """A hash of a random password with the cost of the configured hashes, verified for unknown
        usernames so the time a failed sign-in takes does not tell which usernames exist."""
        if not self.settings.users:
            return self.hasher.hash(secrets.token_urlsafe(16))
        parameters = extract_parameters(self.settings.users[0].password_hash)
        return PasswordHasher.from_parameters(parameters).hash(secrets.token_urlsafe(16))

    def authenticate(self, username: str, password: str) -> User | None:
        user = self.users.get(username)
        stored_hash = user.password_hash if user is not None else self.dummy_hash
        try:
            self.hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is None:  # the random dummy password was guessed; still nobody
            return None
        return User(user.username, user.zones)

    def user_named(self, username: str) -> User | None:
        user = self.users.get(username)
        return User(user.username, user.zones) if user is not None else None


# $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>, salt and hash in unpadded standard base64.
PHC_PATTERN = re.compile(r"\$argon2(id|i|d)\$v=(16|19)\$m=[1-9][0-9]*,t=[1-9][0-9]*,p=[1-9][0-9]*"
                         r"\$[A-Za-z0-9+/]{11,}\$[A-Za-z0-9+/]{6,}")
MINIMUM_SALT_BYTES = 8
MINIMUM_HASH_BYTES = 4


def is_argon2_hash(text: str) -> bool:
    """True for a well-formed argon2 PHC string; argon2's own parser accepts some that can never verify."""
    if not PHC_PATTERN.fullmatch(text):
        return False
    try:
        parameters = extract_parameters(text)
    except InvalidHashError:
        return False
    return parameters.salt_len >= MINIMUM_SALT_BYTES and parameters.hash_len >= MINIMUM_HASH_BYTES
