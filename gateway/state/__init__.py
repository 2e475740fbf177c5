"""The gateway's own database: OAuth clients and grants, applied template instances, audit log."""

from gateway.state.store import InvalidGrant, IssuedTokens, StateError, StateStore

__all__ = ["InvalidGrant", "IssuedTokens", "StateError", "StateStore"]
