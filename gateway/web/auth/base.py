"""The authenticator interface. The DNS host decides who a user is and which zones they control."""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from stevedore import driver as stevedore_driver
from stevedore.exception import NoMatches

from gateway.infra.config import AuthSettings, ConfigError, GatewaySettings

AUTH_ENTRY_POINT_GROUP = "domainconnect_gateway.auth"
ANY_ZONE = "*"


@dataclass(frozen=True)
class User:
    username: str
    zones: tuple[str, ...] = ()  # the driver's own list, lower case without the final dot; "*" = every zone
    # What the sign-in itself asserted (an ID token claim, a proxy's zones header); None = nothing.
    claimed_zones: tuple[str, ...] | None = None
    claim_problem: str = ""  # why the asserted list could not be used, for the log

    def controls(self, zone: str) -> bool:
        """Whether the driver's own list covers `zone`. Checks of zone control ask
        `gateway.web.auth.zones.controls`, which also knows the configured `[auth.zones]` source."""
        zone = zone.lower().rstrip(".")
        return ANY_ZONE in self.zones or zone in self.zones


class Authenticator(ABC):
    """Built from `[auth]`; `ConfigError` naming the key when the settings are wrong."""

    #: True when the gateway signs users in itself (its login form, or a redirect to an OpenID
    #: Provider) and remembers them in its session; False when someone in front of the gateway
    #: (a reverse proxy) has already done it.
    uses_login_form: bool = True
    #: True when signing in happens at another site (an OpenID Provider): after sign-out the
    #: gateway shows its home page rather than a sign-in that would sign the user straight back in.
    signs_in_elsewhere: bool = False

    def __init__(self, settings: AuthSettings) -> None:
        from gateway.web.auth.zones import zone_source  # zones reads User from here

        self.settings = settings
        self.zone_source = zone_source(self, settings.options)

    def check_deployment(self, gateway: GatewaySettings) -> None:
        """Checks that need `[gateway]` (its base URL, development mode); `ConfigError` when wrong."""
        self.zone_source.check_deployment(gateway)

    def authenticate(self, username: str, password: str) -> User | None:
        """The user for a username and password from the login form, or None."""
        return None

    def user_named(self, username: str) -> User | None:
        """The current view of a user remembered in a session (zones may have changed), or None."""
        return None

    def user_in_session(self, session: Mapping[str, Any]) -> User | None:
        """The user a session remembers, or None."""
        username = session.get("user")
        return self.user_named(username) if isinstance(username, str) and username else None

    def user_from_request(self, request: Request) -> User | None:
        """A user established by the request itself (a trusted proxy header), or None."""
        return None

    async def sign_in_redirect(self, request: Request, next_path: str) -> Response | None:
        """Where /login sends the browser when users sign in elsewhere (an OpenID Provider);
        None shows the gateway's own form."""
        return None

    async def sign_out_redirect(self, request: Request) -> str | None:
        """Where to go after the gateway's session ended (the provider's logout), or None."""
        return None

    @property
    def form_targets(self) -> tuple[str, ...]:
        """URLs outside the gateway that the answer to one of its forms may redirect to (the
        sign-out redirect); pages allow their origins in CSP form-action."""
        return ()

    def routes(self) -> list[BaseRoute]:
        """Routes the driver serves itself (an OpenID Connect callback)."""
        return []

    def close(self) -> None:
        """Release connections the driver or its zone source holds."""
        self.zone_source.close()


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
