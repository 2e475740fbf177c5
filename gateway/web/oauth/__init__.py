"""The asynchronous (OAuth) flow: token endpoint and the bearer-token apply and revert API."""

from gateway.web.oauth.routes import routes

__all__ = ["routes"]
