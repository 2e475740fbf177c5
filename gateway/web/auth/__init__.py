"""Who the user is: pluggable authenticators (stevedore group `domainconnect_gateway.auth`) and
the signed session cookie that remembers them."""

from gateway.web.auth.base import AUTH_ENTRY_POINT_GROUP, Authenticator, User, load_authenticator

__all__ = ["AUTH_ENTRY_POINT_GROUP", "Authenticator", "User", "load_authenticator"]
