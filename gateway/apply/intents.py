"""Crash-safe writes: the state store and DNS agree after any single fault.

Every write to DNS that changes an instance goes through `write`:

1. the state store commits an *intent*: the exact RRset changes (and extension record
   changes, for a backend that writes those itself) and the instance row to record (or the
   instance to remove). If it cannot (database down, locked, slow), nothing
   is written and `StateUnavailable` says so;
2. the backend makes the change;
3. one transaction records the instance and drops the intent.

A fault between 1 and 3 leaves the intent behind. It is settled by re-reading the names
it touches: DNS as planned means the write happened (step 3 is done now); DNS as read
before means it did not (the intent is dropped); anything else flags the intent for the
operator and the zone is named in the error. The caller holds the zone lock (the backend
kit's, kept in the state store: gateway.state.locks), so an intent found for its zone is
never one still being written.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
from sqlalchemy.exc import SQLAlchemyError

from backends.base import Backend, BackendError, ExtensionChange, ReloadFailed, RRsetChange, ZoneChanged
from backends.locks import ZoneLockError, ZoneLockTimeout
from backends.records import ExtensionRecord, make_rrset, same_rrset
from gateway.apply.pipeline import write_changes
from gateway.state import InstanceTaken, StateStore
from gateway.state.models import ApplyIntent, TemplateInstance
from gateway.state.store import WriteAhead

UNAVAILABLE = "the gateway's state store is unavailable; nothing was changed, try again later"

log = logging.getLogger(__name__)


class StateUnavailable(RuntimeError):
    """The state store could not be reached in time; the message is safe to show."""


class WriteUnsettled(BackendError):
    """The backend's answer was lost and DNS could not be shown to match either side."""


def failure_message(error: BackendError) -> str:
    """What a caller is told of a failed write: backend messages name servers and accounts, so
    they go to the log; a flagged zone is named, since someone must look at it."""
    if isinstance(error, WriteUnsettled):
        return str(error)
    return "the DNS change could not be made; try again later"


@dataclass(frozen=True)
class Settled:
    outcome: str  # "applied", "discarded" or "flagged"
    instance: int | None = None


def change_json(change: RRsetChange) -> dict:
    return {"name": change.name.to_text(), "type": dns.rdatatype.to_text(change.rdtype),
            "before": _rrset_json(change.before), "after": _rrset_json(change.after)}


def change_from_json(row: dict) -> RRsetChange:
    name, rdtype = dns.name.from_text(row["name"]), dns.rdatatype.from_text(row["type"])
    return RRsetChange(name, rdtype, _rrset_from_json(name, rdtype, row["before"]),
                       _rrset_from_json(name, rdtype, row["after"]))


def extension_json(change: ExtensionChange) -> dict:
    return {"name": change.name.to_text(), "extension": change.type,
            "before": None if change.before is None else dict(change.before.fields),
            "after": None if change.after is None else dict(change.after.fields)}


def extension_from_json(row: dict) -> ExtensionChange:
    name = dns.name.from_text(row["name"])

    def record(fields: dict | None) -> ExtensionRecord | None:
        return None if fields is None else ExtensionRecord.of(row["extension"], name, fields)

    return ExtensionChange(row["extension"], name, record(row["before"]), record(row["after"]))


def _rrset_json(rrset) -> dict | None:
    return None if rrset is None else {"ttl": rrset.ttl, "data": [rd.to_text() for rd in rrset]}


def _rrset_from_json(name: dns.name.Name, rdtype, row: dict | None):
    if row is None:
        return None
    return make_rrset(name, int(row["ttl"]), [dns.rdata.from_text(dns.rdataclass.IN, rdtype, data)
                                              for data in row["data"]])


def _state(call, *args, **kwargs):
    """A state-store call whose database failure becomes `StateUnavailable`."""
    try:
        return call(*args, **kwargs)
    except SQLAlchemyError as exc:
        log.error("state store unavailable: %s", exc)
        raise StateUnavailable(UNAVAILABLE) from None


@dataclass(frozen=True)
class Draft:
    """One write as decided from the zone's instances (`write_decided`)."""

    changes: Sequence[RRsetChange]
    instance: dict | None
    replaces: Sequence[int]
    actor: str
    audit: dict | None = None
    extensions: Sequence[ExtensionChange] = ()


def write_decided(store: StateStore, backend: Backend, zone: dns.name.Name, domain: str,
                  decide: Callable[[list[TemplateInstance]], Draft | None], *,
                  access_token: str | None = None) -> int | None:
    """`write` as one step with the reads it depends on, for a caller holding the zone lock
    (`exclusive(..., settle=False)`) that has read DNS under it already: one transaction
    reads the zone's pending intents and its instances, lets `decide` plan from them, and
    commits the intent. A pending intent is a dead writer's (the lock is held): it is settled,
    which changes the state store but never DNS, so the caller's read stays true, and the
    zone's instances are read again. With `access_token`, nothing is written unless that
    token is still live (`AccessRevoked`).

    Returns the recorded instance's id (None when `decide` said None); raises like `write`.
    """
    drafts: list[Draft] = []

    def ahead(applied: list[TemplateInstance]) -> WriteAhead | None:
        draft = decide(applied)
        if draft is None:
            return None
        drafts.append(draft)
        return WriteAhead(changes=_changes_json(draft.changes, draft.extensions), instance=draft.instance,
                          replaces=draft.replaces, actor=draft.actor, audit=draft.audit)

    for _ in range(2):  # settling leaves no intent pending (flagged ones are not)
        started = _state(store.write_ahead, backend=backend.name, zone=zone.to_text(), domain=domain,
                         decide=ahead, access_token=access_token)
        if not started.pending:
            break
        for intent in started.pending:
            settle(store, backend, intent)
    else:
        raise StateUnavailable(UNAVAILABLE)  # an intent pending again, under the lock: not ours to guess
    if started.intent is None:
        return started.instance
    return _write_intended(store, backend, zone, started.intent, drafts[-1].changes, drafts[-1].extensions)


def _changes_json(changes: Sequence[RRsetChange], extensions: Sequence[ExtensionChange]) -> list[dict]:
    return [*(change_json(c) for c in changes), *(extension_json(e) for e in extensions)]


def write(store: StateStore, backend: Backend, zone: dns.name.Name, domain: str,
          changes: Sequence[RRsetChange], *, instance: dict | None, replaces: Sequence[int], actor: str,
          audit: dict | None = None, extensions: Sequence[ExtensionChange] = ()) -> int | None:
    """Make `changes` (and `extensions`) and record `instance` (None: remove `replaces`) as one
    crash-safe step.

    Returns the recorded instance's id. Raises `StateUnavailable` (nothing written),
    `ZoneChanged` (nothing written), or `BackendError` when the write failed or could
    not be settled.
    """
    if not changes and not extensions:
        return _state(store.commit, instance, replaces, actor, audit)
    intent = _state(store.add_intent, backend=backend.name, zone=zone.to_text(), domain=domain,
                    changes=_changes_json(changes, extensions), instance=instance, replaces=replaces, actor=actor,
                    audit=audit)
    return _write_intended(store, backend, zone, intent, changes, extensions)


def _write_intended(store: StateStore, backend: Backend, zone: dns.name.Name, intent: ApplyIntent,
                    changes: Sequence[RRsetChange], extensions: Sequence[ExtensionChange]) -> int | None:
    """Steps 2 and 3, once the intent is committed."""
    try:
        write_changes(backend, zone, changes, extensions)
    except ZoneChanged:
        _forget(store, intent.id)
        raise
    except ReloadFailed:
        _finish(store, intent, zone)  # the change is in the backend's data: record it, then say so
        raise
    except Exception as exc:  # noqa: BLE001  any failure may have reached DNS: look before answering
        log.error("apply to %s on backend %r failed (%s); checking what reached DNS", zone, backend.name, exc)
        settled = settle(store, backend, intent)
        if settled.outcome == "applied":
            return settled.instance
        if settled.outcome == "flagged":
            raise WriteUnsettled(_flag_message(zone)) from None
        raise exc if isinstance(exc, BackendError) else BackendError(str(exc)) from None
    return _finish(store, intent, zone)


def _finish(store: StateStore, intent: ApplyIntent, zone: dns.name.Name) -> int | None:
    try:
        return _state(store.finish_intent, intent)
    except InstanceTaken as exc:  # only without the zone lock: DNS is written, so the operator decides
        log.error("intent %d on %s: %s", intent.id, intent.zone, exc)
        _state(store.flag_intent, intent.id, {"reason": str(exc)})
        raise WriteUnsettled(_flag_message(zone)) from None


def _forget(store: StateStore, intent_id: int) -> None:
    try:
        store.discard_intent(intent_id)
    except SQLAlchemyError as exc:  # it settles later, as "not written"
        log.error("could not drop intent %d: %s", intent_id, exc)


def settle(store: StateStore, backend: Backend, intent: ApplyIntent | None) -> Settled:
    """Decide what became of an intent's write from what DNS serves now."""
    if intent is None:
        return Settled("discarded")
    changes = [change_from_json(row) for row in intent.changes if "extension" not in row]
    extensions = [extension_from_json(row) for row in intent.changes if "extension" in row]
    zone = dns.name.from_text(intent.zone)
    try:
        current = {(r.name, r.rdtype): r for r in backend.read(zone, {c.name for c in changes}, ())}
        current_extensions = {(e.name, e.type): e for e in backend.read_extensions(zone, {e.name for e in extensions})
                              } if extensions else {}
    except BackendError as exc:
        log.error("intent %d on %s stays pending: cannot read the zone: %s", intent.id, intent.zone, exc)
        raise BackendError(f"zone {_text(zone)}: the outcome of an earlier change cannot be checked yet") from None

    def matches(side: str) -> bool:
        return all(same_rrset(current.get((c.name, c.rdtype)), getattr(c, side)) for c in changes) and all(
            current_extensions.get((e.name, e.type)) == getattr(e, side) for e in extensions)

    if matches("after"):
        log.warning("intent %d on %s: the write reached DNS; recording it", intent.id, intent.zone)
        return Settled("applied", _finish(store, intent, zone))
    if matches("before"):
        log.warning("intent %d on %s: the write did not reach DNS; dropping it", intent.id, intent.zone)
        _state(store.discard_intent, intent.id)
        return Settled("discarded")
    differing = [f"{c.name.to_text()} {dns.rdatatype.to_text(c.rdtype)}" for c in changes
                 if not same_rrset(current.get((c.name, c.rdtype)), c.after)]
    differing += [f"{e.name.to_text()} {e.type}" for e in extensions
                  if current_extensions.get((e.name, e.type)) != e.after]
    log.error("intent %d on %s: DNS matches neither the plan nor what was read; flagged (%s)", intent.id,
              intent.zone, ", ".join(differing))
    _state(store.flag_intent, intent.id, {"differing": differing})
    return Settled("flagged")


@contextlib.contextmanager
def exclusive(store: StateStore, backend: Backend, zone: dns.name.Name, *, settle: bool = True) -> Iterator[None]:
    """Hold the zone against every other gateway process, and settle what a crash left first
    (`settle=False`: the caller writes through `write_decided`, which settles as it goes)."""
    with contextlib.ExitStack() as stack:
        try:
            # The same lock the backend's own apply takes (Backend.zone_lock), held from here: the
            # thread may take it again inside.
            stack.enter_context(store.zone_locks.hold(backend.lock_scope(), zone, backend.lock_timeout))
        except ZoneLockTimeout as exc:
            raise StateUnavailable(f"zone {_text(zone)} is busy with another change; try again later") from exc
        except (ZoneLockError, SQLAlchemyError) as exc:
            log.error("state store unavailable for the zone lock: %s", exc)
            raise StateUnavailable(UNAVAILABLE) from None
        # Inside the gateway's lock, the backend's own: what is read from here on is what the
        # write replaces, so a backend that locks its applies need not read again (`holding`).
        stack.enter_context(backend.holding(zone))
        if settle:
            settle_zone(store, backend, zone)
        yield


def settle_zone(store: StateStore, backend: Backend, zone: dns.name.Name) -> list[Settled]:
    """Settle every pending intent of `zone`; call it holding the zone lock."""
    return [settle(store, backend, intent)
            for intent in _state(store.intents, backend.name, zone.to_text())]


def _flag_message(zone: dns.name.Name) -> str:
    return (f"zone {_text(zone)}: the DNS change may have been made only in part; the zone is flagged "
            "for the operator (dcgw instances verify)")


def _text(zone: dns.name.Name) -> str:
    return zone.to_text(omit_final_dot=True)


def settle_all(store: StateStore, backends: Mapping[str, Backend]) -> int:
    """Settle the intents every zone has pending, as at start-up; returns how many were left
    pending (a backend that cannot be read now is tried again before its zone's next apply)."""
    try:
        zones = sorted({(i.backend, i.zone) for i in store.intents()})
    except SQLAlchemyError as exc:
        log.error("pending intents cannot be read now: %s", exc)
        return 0
    left = 0
    for backend_name, zone_text in zones:
        backend = backends.get(backend_name)
        if backend is None:
            log.error("pending intents for zone %s name backend %r, which is not configured", zone_text, backend_name)
            left += 1
            continue
        try:
            with exclusive(store, backend, dns.name.from_text(zone_text)):
                pass  # taking the zone settles it
        except (BackendError, StateUnavailable) as exc:
            log.error("zone %s keeps its pending intents for now: %s", zone_text, exc)
            left += 1
    return left
