"""The authenticator interface. The DNS host decides who a user is and which zones they control."""

from __future__ import annotations

from abc import ABC
from dataclasses import dataclass

from starlette.requests import Request
from stevedore import driver as stevedore_driver
from stevedore.exception import NoMatches

from gateway.config import AuthSettings, ConfigError

AUTH_ENTRY_POINT_GROUP = "domainconnect_gateway.auth"
ANY_ZONE = "*"


@dataclass(frozen=True)
class User:
    username: str
    zones: tuple[str, ...] = ()  # zone names in lower case without the final dot; "*" = every zone

    def controls(self, zone: str) -> bool:
        zone = zone.lower().rstrip(".")
        return ANY_ZONE in self.zones or zone in self.zones


class Authenticator(ABC):
    """Built from `[auth]`; `ConfigError` naming the key when the settings are wrong."""

    #: True when users sign in on the gateway's own form; False when someone in front
    #: of the gateway (a reverse proxy) has already done it.
    uses_login_form: bool = True

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings

    def authenticate(self, username: str, password: str) -> User | None:
        """The user for a username and password from the login form, or None."""
        return None

    def user_named(self, username: str) -> User | None:
        """The current view of a user remembered in a session (zones may have changed), or None."""
        return None

    def user_from_request(self, request: Request) -> User | None:
        """A user established by the request itself (a trusted proxy header), or None."""
        return None


def load_authenticator(settings: AuthSettings) -> Authenticator:
    def reraise(_manager, _entry_point, error: Exception) -> None:
        raise error

    if settings.unresolved:
        raise ConfigError(settings.unresolved)
    try:
        manager = stevedore_driver.DriverManager(namespace=AUTH_ENTRY_POINT_GROUP, name=settings.driver,
                                                 invoke_on_load=True, invoke_args=(settings,),
                                                 on_load_failure_callback=reraise)
    except NoMatches:
        raise ConfigError(f"auth.driver: no authentication driver {settings.driver!r}") from None
    return manager.driver
