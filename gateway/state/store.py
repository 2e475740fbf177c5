"""The state store API: every read and write of the gateway's own database goes through here."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Select, bindparam, delete, event, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from backends.locks import ZoneLocks
from gateway.infra.observability import audit_log
from gateway.state import migrate
from gateway.state.attempts import AttemptCounters
from gateway.state.engine import DEFAULT_TIMEOUT, open_engine, relax_durability
from gateway.state.locks import zone_locks_for
from gateway.state.models import (
    ApplyIntent, AuditEntry, AuthorizationCode, Grant, OAuthClient, TemplateInstance, Token, WebRedirect,
)
from gateway.state.pkce import verifier_problem
from gateway.state.secrets import chosen_secret_hash, new_secret, secret_hash, secret_matches
from gateway.state.sessions import SessionRows

# The statements of every apply, on the tables and built once: building a statement, or
# the ORM's unit of work, cost more than running the SQL (see `_record`).
_INSTANCES = TemplateInstance.__table__
_INTENTS = ApplyIntent.__table__
_REDIRECTS = WebRedirect.__table__
_ADD_INSTANCE = insert(_INSTANCES)
_ADD_INTENT = insert(_INTENTS)
_ADD_REDIRECT = insert(_REDIRECTS)
_ADD_AUDIT = insert(AuditEntry.__table__)
_DROP_INTENT = delete(_INTENTS).where(_INTENTS.c.id == bindparam("intent_id"))
_DROP_INSTANCES = delete(_INSTANCES).where(_INSTANCES.c.id.in_(bindparam("ids", expanding=True)))
_DROP_REDIRECTS_OF = delete(_REDIRECTS).where(_REDIRECTS.c.instance_pk.in_(bindparam("ids", expanding=True)))
_LIVE_ACCESS_TOKEN = (select(Token.expires_at).join(Grant, Grant.id == Token.grant_id)
                      .where(Token.token_hash == bindparam("token_hash"), Token.kind == "access",
                             Token.revoked_at.is_(None), Grant.revoked_at.is_(None)))
_PENDING_INTENTS = (select(ApplyIntent).where(ApplyIntent.backend == bindparam("backend"),
                                              ApplyIntent.zone == bindparam("zone"), ApplyIntent.status == "pending")
                    .order_by(ApplyIntent.id))


@functools.cache
def _instances_query(by_domain: bool, by_host: bool) -> Select:
    query = select(TemplateInstance)
    if by_domain:
        query = query.where(TemplateInstance.domain == bindparam("domain"))
    if by_host:
        query = query.where(TemplateInstance.host == bindparam("host"))
    return query.order_by(TemplateInstance.id)


CODE_LIFETIME = timedelta(minutes=10)
ACCESS_LIFETIME = timedelta(hours=1)
REFRESH_LIFETIME = timedelta(days=365)


class StateError(Exception):
    """A request the store refuses; the message names what was wrong."""


class InstanceTaken(StateError):
    """Another instance with the same zone, host, template and instanceId was recorded meanwhile."""


class InvalidGrant(StateError):
    """A code or refresh token that is unknown, used, expired, revoked or bound elsewhere."""


class AccessRevoked(StateError):
    """The access token a write was made for is no longer live: nothing was written."""


@dataclass(frozen=True)
class WriteAhead:
    """What a write will do, decided from the zone's instances (StateStore.write_ahead)."""

    changes: list[dict]  # the intent's RRset and extension changes; []: nothing for DNS
    instance: dict | None  # the instance to record (None: remove `replaces`)
    replaces: Sequence[int]
    actor: str
    audit: dict | None = None


@dataclass
class WriteStarted:
    """What `StateStore.write_ahead` did: nothing but find `pending` intents; or commit `intent`;
    or record `instance` at once (nothing for DNS); or nothing (`decide` said None)."""

    pending: list[ApplyIntent]
    intent: ApplyIntent | None = None
    instance: int | None = None


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns.
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _code_problem(code: AuthorizationCode, grant: Grant, client_id: str, redirect_uri: str,
                  code_verifier: str | None, now: datetime) -> str | None:
    if _aware(code.expires_at) <= now:
        return "code: expired"
    if grant.client_id != client_id:
        return "code: issued to another client"
    if code.redirect_uri != redirect_uri:
        return "redirect_uri: does not match the authorization request"
    if grant.revoked_at is not None:
        return "code: authorization revoked"
    return verifier_problem(code_verifier, code.code_challenge, code.code_challenge_method)


VERIFIED_TOKENS = 4096  # access tokens remembered as verified (StateStore.verified_grant)


class StateStore(SessionRows, AttemptCounters):
    def __init__(self, engine: Engine, clock=utcnow, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.engine = engine
        self.clock = clock
        self.timeout = timeout
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        #: Zone locks shared by every gateway process using this database (backends.base.Backend.zone_lock).
        self.zone_locks: ZoneLocks = zone_locks_for(engine)
        # token hash -> (grant, expiry): access tokens this process found live (`verified_grant`).
        self._verified: OrderedDict[str, tuple[Grant, datetime]] = OrderedDict()
        self._verified_guard = threading.Lock()

    @classmethod
    def open(cls, url: str, clock=utcnow, timeout: float = DEFAULT_TIMEOUT) -> "StateStore":
        """Open the database at `url`, migrating it to the current schema first."""
        engine = open_engine(url, timeout)
        migrate.upgrade(engine)
        return cls(engine, clock, timeout)

    def close(self) -> None:
        self.zone_locks.close()
        self.engine.dispose()

    # --- OAuth clients -------------------------------------------------------------------

    def add_client(self, client_id: str, redirect_uris: Sequence[str], secret: str | None = None) -> str:
        """Register a client with `secret` (generated when None); returns the secret, which is
        not stored and cannot be shown again."""
        if not client_id or len(client_id) > 255:
            raise StateError("client_id: must be 1 to 255 characters")
        if not redirect_uris:
            raise StateError("redirect_uri: at least one is required")
        for uri in redirect_uris:
            if not uri.startswith(("https://", "http://")):
                raise StateError(f"redirect_uri: {uri!r} must be an absolute http(s) URL")
        if secret is not None and not secret:
            raise StateError("secret: must not be empty")
        if secret is None:
            secret = new_secret()
            stored = secret_hash(secret)
        else:
            stored = chosen_secret_hash(secret)  # perhaps guessable: a slow hash at rest
        client = OAuthClient(client_id=client_id, secret_hash=stored,
                             redirect_uris=list(redirect_uris), created_at=self.clock())
        try:
            with self.sessions.begin() as session:
                session.add(client)
                self._audit(session, "client_add", "operator", None, {"client_id": client_id})
        except IntegrityError:
            raise StateError(f"client_id: {client_id!r} is already registered") from None
        return secret

    def clients(self) -> list[OAuthClient]:
        with self.sessions() as session:
            return list(session.scalars(select(OAuthClient).order_by(OAuthClient.client_id)))

    def client(self, client_id: str) -> OAuthClient | None:
        with self.sessions() as session:
            return session.get(OAuthClient, client_id)

    def remove_client(self, client_id: str) -> None:
        with self.sessions.begin() as session:
            client = session.get(OAuthClient, client_id)
            if client is None:
                raise StateError(f"client_id: {client_id!r} is not registered")
            session.delete(client)
            self._audit(session, "client_remove", "operator", None, {"client_id": client_id})

    def authenticate_client(self, client_id: str, client_secret: str) -> bool:
        client = self.client(client_id)
        # Hash anyway when the client is unknown so timing does not tell which ids exist.
        stored = client.secret_hash if client else secret_hash(new_secret())
        return secret_matches(client_secret, stored) and client is not None

    # --- consent, codes and tokens ---------------------------------------------------------

    def create_grant(self, client_id: str, user: str, domain: str, hosts: Sequence[str],
                     services: Sequence[str], redirect_uri: str, *, approved: Sequence[dict] = (),
                     code_challenge: str | None = None, code_challenge_method: str | None = None) -> str:
        """Record a user's consent; returns a single-use authorization code. `approved` is what
        the consent page said would be replaced or removed (see Grant.approved); the PKCE
        challenge, when given, must be answered when the code is redeemed."""
        client = self.client(client_id)
        if client is None:
            raise StateError(f"client_id: {client_id!r} is not registered")
        if redirect_uri not in client.redirect_uris:
            raise StateError("redirect_uri: not registered for this client")
        code = new_secret()
        now = self.clock()
        with self.sessions.begin() as session:
            grant = Grant(client_id=client_id, user=user, domain=domain, hosts=list(hosts),
                          services=list(services), approved=list(approved), created_at=now)
            session.add(grant)
            session.flush()
            session.add(AuthorizationCode(code_hash=secret_hash(code), grant_id=grant.id,
                                          redirect_uri=redirect_uri, expires_at=now + CODE_LIFETIME,
                                          code_challenge=code_challenge,
                                          code_challenge_method=code_challenge_method))
            self._audit(session, "consent", f"user:{user}", domain,
                        {"client_id": client_id, "hosts": list(hosts), "services": list(services)})
        return code

    def redeem_code(self, code: str, client_id: str, redirect_uri: str,
                    code_verifier: str | None = None) -> IssuedTokens:
        """Exchange a code for tokens: once, within its lifetime, by its client and redirect_uri,
        with the PKCE verifier when the authorization request carried a challenge."""
        now = self.clock()
        code_hash = secret_hash(code)
        with self.sessions.begin() as session:
            row = session.get(AuthorizationCode, code_hash)
            if row is None:
                raise InvalidGrant("code: unknown")
            grant = session.get(Grant, row.grant_id)
            # Claim the code in one conditional UPDATE: of concurrent redeemers exactly one
            # wins, on SQLite (where SELECT ... FOR UPDATE locks nothing) as on PostgreSQL.
            claimed = session.execute(
                update(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash,
                                                AuthorizationCode.used_at.is_(None))
                .values(used_at=now).execution_options(synchronize_session=False)).rowcount == 1
            if claimed:
                problem = _code_problem(row, grant, client_id, redirect_uri, code_verifier, now)
                if problem:
                    raise InvalidGrant(problem)  # rolled back: the code stays unused
                return self._issue(session, grant, now)
            # A replayed code may mean it leaked: revoke what it issued (committed, then refused).
            self._revoke_grant(session, grant, now)
            self._audit(session, "refuse", f"client:{client_id}", grant.domain, {"reason": "code replay"})
        raise InvalidGrant("code: already used")

    def refresh(self, refresh_token: str, client_id: str) -> IssuedTokens:
        """Rotate a refresh token: the presented one stops working, a new pair is issued.

        A token that was already rotated, presented again, means two parties hold it: one
        of them stole it. Which one cannot be told, so the whole grant is revoked
        (RFC 9700 4.14.2) and the user has to consent again."""
        now = self.clock()
        token_hash = secret_hash(refresh_token)
        with self.sessions.begin() as session:
            token = session.get(Token, token_hash)
            if token is None or token.kind != "refresh":
                raise InvalidGrant("refresh_token: unknown, expired or revoked")
            grant = session.get(Grant, token.grant_id)
            if grant.client_id != client_id:
                raise InvalidGrant("refresh_token: issued to another client")
            if grant.revoked_at is not None:
                raise InvalidGrant("refresh_token: authorization revoked")
            # Revoking a grant revokes its tokens, so a revoked token of a live grant was rotated.
            # The conditional UPDATE also makes the loser of two concurrent refreshes a reuse.
            rotated = token.revoked_at is None and session.execute(
                update(Token).where(Token.token_hash == token_hash, Token.revoked_at.is_(None))
                .values(revoked_at=now).execution_options(synchronize_session=False)).rowcount == 1
            if rotated:
                if _aware(token.expires_at) <= now:
                    raise InvalidGrant("refresh_token: unknown, expired or revoked")  # rolled back
                return self._issue(session, grant, now)
            self._revoke_grant(session, grant, now)
            self._audit(session, "refuse", f"client:{client_id}", grant.domain,
                        {"reason": "refresh token reuse", "grant_id": grant.id})
        raise InvalidGrant("refresh_token: already used, so it may have leaked; the authorization is revoked")

    def grant_for_access_token(self, access_token: str) -> Grant | None:
        """The live grant an access token stands for; None when unknown, expired or revoked."""
        token_hash = secret_hash(access_token)
        with self.sessions() as session:
            found = self._live_grant(session, token_hash)
        if found is None:
            return None
        with self._verified_guard:
            self._verified[token_hash] = found
            self._verified.move_to_end(token_hash)
            while len(self._verified) > VERIFIED_TOKENS:
                self._verified.popitem(last=False)
        return found[0]

    def verified_grant(self, access_token: str) -> Grant | None:
        """Like `grant_for_access_token`, but a token this process found live before, and that
        has not expired, is answered from memory. Another process may have revoked it since: a
        caller writes only through `write_ahead(access_token=...)`, which checks it again in
        the transaction that records the write, and which forgets it when it is revoked."""
        return self.remembered_grant(access_token) or self.grant_for_access_token(access_token)

    def remembered_grant(self, access_token: str) -> Grant | None:
        """`verified_grant`'s answer from memory only (no database call); None when it has none."""
        with self._verified_guard:
            found = self._verified.get(secret_hash(access_token))
        return found[0] if found is not None and _aware(found[1]) > self.clock() else None

    def _live_grant(self, session: Session, token_hash: str) -> tuple[Grant, datetime] | None:
        token = session.get(Token, token_hash)
        if token is None or token.kind != "access" or token.revoked_at is not None:
            return None
        if _aware(token.expires_at) <= self.clock():
            return None
        grant = session.get(Grant, token.grant_id)
        return (grant, token.expires_at) if grant is not None and grant.revoked_at is None else None

    def _token_live(self, session: Session, token_hash: str) -> bool:
        """`_live_grant` as one small query, for a write to check its token on the way."""
        expires_at = session.scalar(_LIVE_ACCESS_TOKEN, {"token_hash": token_hash})
        return expires_at is not None and _aware(expires_at) > self.clock()

    def _forget_tokens(self, grant_id: int) -> None:
        with self._verified_guard:
            for token_hash in [h for h, (grant, _) in self._verified.items() if grant.id == grant_id]:
                del self._verified[token_hash]

    def grants_of(self, user: str) -> list[Grant]:
        with self.sessions() as session:
            return list(session.scalars(select(Grant).where(Grant.user == user, Grant.revoked_at.is_(None))
                                        .order_by(Grant.id)))

    def revoke_grant(self, grant_id: int, user: str) -> None:
        """Revoke a user's own authorization and every token it issued."""
        with self.sessions.begin() as session:
            grant = session.get(Grant, grant_id)
            if grant is None or grant.user != user:
                raise StateError(f"authorization {grant_id}: not found")
            self._revoke_grant(session, grant, self.clock())
            self._audit(session, "revoke", user, grant.domain, {"grant_id": grant_id, "client_id": grant.client_id})

    def _revoke_grant(self, session: Session, grant: Grant, now: datetime) -> None:
        self._forget_tokens(grant.id)
        grant.revoked_at = grant.revoked_at or now
        for token in session.scalars(select(Token).where(Token.grant_id == grant.id, Token.revoked_at.is_(None))):
            token.revoked_at = now

    def _issue(self, session: Session, grant: Grant, now: datetime) -> IssuedTokens:
        access, refresh = new_secret(), new_secret()
        session.add(Token(token_hash=secret_hash(access), kind="access", grant_id=grant.id,
                          expires_at=now + ACCESS_LIFETIME))
        session.add(Token(token_hash=secret_hash(refresh), kind="refresh", grant_id=grant.id,
                          expires_at=now + REFRESH_LIFETIME))
        return IssuedTokens(access, refresh, int(ACCESS_LIFETIME.total_seconds()))

    # --- applied template instances ------------------------------------------------------

    def record_instance(self, *, provider_id: str, service_id: str, domain: str, host: str,
                        instance_id: str | None, group_ids: Sequence[str], params: dict[str, str],
                        records: list[dict], applied_by: str, replaces: Sequence[int] = (),
                        multi_instance: bool = False) -> int:
        """Store an applied instance, dropping the ones it replaces, in one transaction."""
        row = instance_row(provider_id=provider_id, service_id=service_id, domain=domain, host=host,
                           instance_id=instance_id, group_ids=group_ids, params=params, records=records,
                           applied_by=applied_by, multi_instance=multi_instance)
        return self.commit(row, replaces, applied_by)

    def commit(self, instance: dict | None, replaces: Sequence[int], actor: str, audit: dict | None = None,
               intent_id: int | None = None) -> int | None:
        """Record `instance` in place of `replaces` (None: remove `replaces`, a revert) and drop
        the intent of the write, in one transaction. Returns the new instance's id."""
        with self.sessions.begin() as session:
            if intent_id is not None:
                # Lost in a power cut, this commit takes the intent back with it, and the intent
                # (durable before the DNS write) is settled again: no need to wait for the disk.
                relax_durability(session)
                session.execute(_DROP_INTENT, {"intent_id": intent_id})
            return self._commit_in(session, instance, replaces, actor, audit)

    def _commit_in(self, session: Session, instance: dict | None, replaces: Sequence[int], actor: str,
                   audit: dict | None) -> int | None:
        if instance is not None:
            return self._record(session, instance, replaces)
        for old_id in replaces:
            old = session.get(TemplateInstance, old_id)
            if old is not None:
                self._remove(session, old, actor, audit)
        return None

    def _record(self, session: Session, row: dict, replaces: Sequence[int]) -> int:
        # Statements on the tables, not objects of the session: an apply's hot path, where the
        # ORM's bookkeeping cost more than the SQL.
        if replaces:  # without loading them: only their ids matter here
            session.execute(_DROP_REDIRECTS_OF, {"ids": list(replaces)})
            session.execute(_DROP_INSTANCES, {"ids": list(replaces)})
        session.flush()  # anything the caller left pending goes first
        try:
            instance_pk = session.execute(_ADD_INSTANCE, {**row, "applied_at": self.clock()}) \
                .inserted_primary_key[0]
        except IntegrityError:
            raise InstanceTaken(f"instance of {row['provider_id']}/{row['service_id']} at "
                                f"{row['host'] or '@'} on {row['domain']}: recorded by another apply meanwhile") from None
        # Served from now on: the redirect goes live with the instance, once DNS has its addresses.
        self._index_redirects(session, instance_pk, row["records"])
        self._audit(session, "apply", row["applied_by"], row["domain"], {
            "provider_id": row["provider_id"], "service_id": row["service_id"], "host": row["host"],
            "instance_id": row["instance_id"], "replaced": list(replaces), "records": row["records"]})
        return instance_pk

    # --- write-ahead intents ---------------------------------------------------------------

    def add_intent(self, *, backend: str, zone: str, domain: str, changes: list[dict], instance: dict | None,
                   replaces: Sequence[int], actor: str, audit: dict | None = None) -> ApplyIntent:
        """Commit what is about to be written to DNS; the write is made only once this returns."""
        with self.sessions.begin() as session:
            return self._add_intent(session, backend=backend, zone=zone, domain=domain, changes=changes,
                                    instance=instance, replaces=replaces, actor=actor, audit=audit)

    def _add_intent(self, session: Session, *, backend: str, zone: str, domain: str, changes: list[dict],
                    instance: dict | None, replaces: Sequence[int], actor: str, audit: dict | None) -> ApplyIntent:
        """Insert the intent; returns it as an object outside the session, id set."""
        values = dict(backend=backend, zone=zone, domain=domain, changes=changes, instance=instance,
                      replaces=list(replaces), actor=actor, audit=audit, created_at=self.clock(), status="pending")
        intent_id = session.execute(_ADD_INTENT, values).inserted_primary_key[0]
        return ApplyIntent(id=intent_id, **values)

    def write_ahead(self, *, backend: str, zone: str, domain: str,
                    decide: Callable[[list[TemplateInstance]], WriteAhead | None],
                    access_token: str | None = None) -> WriteStarted:
        """One transaction from the zone's state to the intent of its next write, for a caller
        holding the zone lock: the intents still pending for (backend, zone) (when there are
        any, nothing else is done: they are a dead writer's, to settle first); else `decide`
        sees the domain's instances and says what to write, and its intent is committed (its
        instance recorded at once when DNS has nothing to change; nothing when it says None).
        With `access_token`, nothing is done unless that token is still live (`AccessRevoked`)."""
        with self.sessions.begin() as session:
            if access_token is not None and not self._token_live(session, secret_hash(access_token)):
                with self._verified_guard:
                    self._verified.pop(secret_hash(access_token), None)
                raise AccessRevoked("the access token is missing, expired or revoked")
            pending = list(session.scalars(_PENDING_INTENTS, {"backend": backend, "zone": zone}))
            if pending:
                return WriteStarted(pending)
            ahead = decide(list(session.scalars(_instances_query(True, False), {"domain": domain})))
            if ahead is None:
                return WriteStarted([])
            if not ahead.changes:
                return WriteStarted([], instance=self._commit_in(session, ahead.instance, ahead.replaces,
                                                                 ahead.actor, ahead.audit))
            intent = self._add_intent(session, backend=backend, zone=zone, domain=domain, changes=ahead.changes,
                                      instance=ahead.instance, replaces=ahead.replaces, actor=ahead.actor,
                                      audit=ahead.audit)
        return WriteStarted([], intent=intent)

    def intents(self, backend: str | None = None, zone: str | None = None,
                status: str | None = "pending") -> list[ApplyIntent]:
        query = select(ApplyIntent).order_by(ApplyIntent.id)
        if backend is not None:
            query = query.where(ApplyIntent.backend == backend)
        if zone is not None:
            query = query.where(ApplyIntent.zone == zone)
        if status is not None:
            query = query.where(ApplyIntent.status == status)
        with self.sessions() as session:
            return list(session.scalars(query))

    def finish_intent(self, intent: ApplyIntent) -> int | None:
        """The intent's write is in DNS: record what it says and drop it, in one transaction."""
        return self.commit(intent.instance, intent.replaces, intent.actor, intent.audit, intent_id=intent.id)

    def discard_intent(self, intent_id: int) -> None:
        """Nothing of the intent reached DNS."""
        with self.sessions.begin() as session:
            session.execute(_DROP_INTENT, {"intent_id": intent_id})

    def flag_intent(self, intent_id: int, detail: dict) -> None:
        """DNS matches neither side of the intent: keep it for the operator."""
        with self.sessions.begin() as session:
            intent = session.get(ApplyIntent, intent_id)
            if intent is None:
                return
            intent.status = "flagged"
            self._audit(session, "flag", intent.actor, intent.domain, {"intent": intent_id, "zone": intent.zone,
                                                                        **detail})

    def instances(self, domain: str | None = None, host: str | None = None) -> list[TemplateInstance]:
        with self.sessions() as session:
            return list(session.scalars(_instances_query(domain is not None, host is not None),
                                        {"domain": domain, "host": host}))

    def newest_instances(self, domains: Collection[str] | None, limit: int) -> list[TemplateInstance]:
        """The newest `limit` instances on `domains` (None: on every domain), newest first."""
        query = select(TemplateInstance).order_by(TemplateInstance.id.desc()).limit(limit)
        if domains is not None:
            query = query.where(TemplateInstance.domain.in_(list(domains)))
        with self.sessions() as session:
            return list(session.scalars(query))

    def instance(self, instance_pk: int) -> TemplateInstance | None:
        with self.sessions() as session:
            return session.get(TemplateInstance, instance_pk)

    def remove_instance(self, instance_pk: int, actor: str, detail: dict | None = None) -> None:
        with self.sessions.begin() as session:
            instance = session.get(TemplateInstance, instance_pk)
            if instance is None:
                raise StateError(f"instance {instance_pk}: not found")
            self._remove(session, instance, actor, detail)

    def _remove(self, session: Session, instance: TemplateInstance, actor: str, detail: dict | None) -> None:
        self._drop_redirects(session, instance.id)
        session.delete(instance)
        self._audit(session, "revert", actor, instance.domain, {
            "provider_id": instance.provider_id, "service_id": instance.service_id,
            "host": instance.host, "instance_id": instance.instance_id, **(detail or {})})

    # --- web redirects -------------------------------------------------------------------

    def web_redirect(self, name: str) -> WebRedirect | None:
        """Where `name` (lower case, no final dot) redirects to: the newest instance's redirect wins."""
        with self.sessions() as session:
            return session.scalars(select(WebRedirect).where(WebRedirect.name == name)
                                   .order_by(WebRedirect.id.desc()).limit(1)).first()

    def _index_redirects(self, session: Session, instance_pk: int, records: list[dict]) -> None:
        redirects = [{"instance_pk": instance_pk, "name": row["name"].rstrip(".").lower(), "target": row["redirect"],
                      "code": int(row["code"])} for row in records if "redirect" in row]
        if redirects:
            session.execute(_ADD_REDIRECT, redirects)

    def _drop_redirects(self, session: Session, instance_pk: int) -> None:
        # Explicit, not only ON DELETE CASCADE: SQLite honours that only with foreign keys on.
        session.execute(_DROP_REDIRECTS_OF, {"ids": [instance_pk]})

    # --- audit log -----------------------------------------------------------------------

    def audit(self, action: str, actor: str, domain: str | None, detail: dict) -> None:
        """Append an entry, e.g. a refusal, outside any other change."""
        with self.sessions.begin() as session:
            self._audit(session, action, actor, domain, detail)

    def audit_entries(self) -> list[AuditEntry]:
        with self.sessions() as session:
            return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))

    def _audit(self, session: Session, action: str, actor: str, domain: str | None, detail: dict) -> None:
        session.execute(_ADD_AUDIT, {"at": self.clock(), "action": action, "actor": actor, "domain": domain,
                                     "detail": detail})
        # Logged once the entry is committed: the log never tells of a change that was rolled back.
        event.listen(session, "after_commit", lambda _session: audit_log(action, actor=actor, domain=domain,
                                                                         detail=detail), once=True)


def instance_row(*, provider_id: str, service_id: str, domain: str, host: str, instance_id: str | None,
                 group_ids: Sequence[str], params: dict[str, str], records: list[dict], applied_by: str,
                 multi_instance: bool) -> dict:
    """The columns of a TemplateInstance, JSON-ready for an intent."""
    return {"provider_id": provider_id, "service_id": service_id, "domain": domain, "host": host,
            "instance_id": instance_id, "instance_key": (instance_id or "") if multi_instance else "",
            "group_ids": list(group_ids), "params": dict(params), "records": records, "applied_by": applied_by}
