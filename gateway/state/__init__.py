"""The gateway's own database: OAuth clients and grants, applied template instances, audit log."""

from gateway.state.store import AccessRevoked, InstanceTaken, InvalidGrant, IssuedTokens, StateError, StateStore

__all__ = ["AccessRevoked", "InstanceTaken", "InvalidGrant", "IssuedTokens", "StateError", "StateStore"]
