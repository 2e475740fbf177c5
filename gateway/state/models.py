"""Tables of the gateway's own state: OAuth clients, grants, applied template instances, audit log.

DNS data never lives here; it stays in the backend. Secrets are stored as SHA-256 hashes only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class OAuthClient(Base):
    __tablename__ = "oauth_clients"

    # The client id is the template providerId.
    client_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(255))  # SHA-256 hex, or argon2id for a chosen secret
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Grant(Base):
    """What a user consented to: one provider, some services, one domain, some hosts."""

    __tablename__ = "oauth_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), index=True)
    user: Mapped[str] = mapped_column(String(255), index=True)
    domain: Mapped[str] = mapped_column(String(255))
    hosts: Mapped[list[str]] = mapped_column(JSON)
    services: Mapped[list[str]] = mapped_column(JSON)
    # What the consent page said applying would replace or remove, per template and host:
    # [{"service", "host", "records": [{"name", "type", "data"}], "disabled": ["provider/service"]}].
    # An API apply whose conflicts are all listed here was consented to, so needs no `force`.
    approved: Mapped[list[dict]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuthorizationCode(Base):
    __tablename__ = "oauth_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("oauth_grants.id", ondelete="CASCADE"), index=True)
    redirect_uri: Mapped[str] = mapped_column(Text)
    # PKCE (RFC 7636): the challenge of the authorization request, checked at the exchange.
    code_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)
    code_challenge_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Token(Base):
    """An access or refresh token; `kind` tells which."""

    __tablename__ = "oauth_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    grant_id: Mapped[int] = mapped_column(ForeignKey("oauth_grants.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class TemplateInstance(Base):
    """One application of a template: its context and the exact records it wrote.

    At most one row per zone, host, template and instance key: the database, not the code,
    makes sure two gateway processes never both record the same instance.
    """

    __tablename__ = "template_instances"
    __table_args__ = (Index("ix_template_instances_target", "domain", "host"),
                      UniqueConstraint("domain", "host", "provider_id", "service_id", "instance_key",
                                       name="uq_template_instances_live"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider_id: Mapped[str] = mapped_column(String(255))
    service_id: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255))
    instance_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # instance_id, or "" for a template that is not multiInstance (SQL sees NULLs as distinct).
    instance_key: Mapped[str] = mapped_column(String(255), default="")
    group_ids: Mapped[list[str]] = mapped_column(JSON)
    params: Mapped[dict[str, str]] = mapped_column(JSON)
    # [{"name", "type", "ttl", "data"}], names absolute, exactly as handed to the backend.
    records: Mapped[list[dict]] = mapped_column(JSON)
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    applied_by: Mapped[str] = mapped_column(String(255))


class ApplyIntent(Base):
    """A write to DNS that is about to be made, committed before the backend is asked.

    `changes` are the exact RRset changes ({"name", "type", "before", "after"}); `instance`
    is the instance row to record once they are in DNS (None for a revert), `replaces` the
    instance ids it removes. A row outlives its write only after a crash or a lost answer;
    it is then settled by re-reading the names (see gateway.apply.intents).
    """

    __tablename__ = "apply_intents"
    __table_args__ = (Index("ix_apply_intents_zone", "backend", "zone"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    backend: Mapped[str] = mapped_column(String(255))
    zone: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str] = mapped_column(String(255))
    changes: Mapped[list[dict]] = mapped_column(JSON)
    instance: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    replaces: Mapped[list[int]] = mapped_column(JSON)
    audit: Mapped[dict | None] = mapped_column(JSON, nullable=True)  # a revert's audit detail
    actor: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # "pending" until settled; "flagged" when DNS matched neither side: kept for the operator.
    status: Mapped[str] = mapped_column(String(16), default="pending")


class WebRedirect(Base):
    """A name the HTTP listener redirects, while the instance that wrote it lives (REDIR301/302).

    Derived from the instance's rows when it is recorded, and removed with it; every replica
    reads the same table, so every replica answers alike."""

    __tablename__ = "web_redirects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_pk: Mapped[int] = mapped_column(ForeignKey("template_instances.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), index=True)  # lower case, no final dot
    target: Mapped[str] = mapped_column(Text)
    code: Mapped[int] = mapped_column(Integer)


class AuditEntry(Base):
    """Append-only: the store API has no update or delete for these rows."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(255))
    domain: Mapped[str | None] = mapped_column(String(255), nullable=True)
    detail: Mapped[dict] = mapped_column(JSON)


class SignInSession(Base):
    """A signed-in browser session; its cookie carries only the id, stored here as a SHA-256 hash.
    Every replica reads the same rows, so signing out on one ends the session on all."""

    __tablename__ = "sign_in_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(255), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class OpenPage(Base):
    """What a consent page showed, until its form is answered once (or it expires)."""

    __tablename__ = "open_pages"

    nonce_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64), index=True)
    username: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    shown: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AttemptCounter(Base):
    """Attempts counted against one key (a username, an address, a client_id) until `resets_at`."""

    __tablename__ = "attempt_counters"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    resets_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
