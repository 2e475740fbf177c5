"""The backend plugin contract.

A backend answers three questions and nothing more: which zone it hosts for a name,
what the RRsets at some names are, and "apply these RRset changes, all or nothing,
unless the zone changed since you were read". Everything Domain Connect is above it.

A backend that can also write extension records (APEXCNAME as a server-side alias, ...)
names their types in `supported_extensions`, reports them in `read_extensions`, and gets
their changes in the same `apply` call as the RRset changes, under the same all or
nothing rule. A template using any other extension is refused before anything is read.

A plugin is a subclass of `Backend` registered under the entry point group
`domainconnect_gateway.backends`; its constructor takes the instance name and the
options of its `[[backends]]` table (secrets already resolved).
"""

from __future__ import annotations

import abc
import contextlib
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import dns.name
import dns.rrset

from backends.locks import PROCESS_ZONE_LOCKS, ZoneLockError, ZoneLocks, ZoneLockTimeout
from backends.records import ExtensionChange, ExtensionRecord, ReadScope, RRsetChange, same_rrset

# The value types of backends.records are named here too, so that a plugin needs one import.
__all__ = ["Backend", "BackendError", "ConfigError", "ENTRY_POINT_GROUP", "ExtensionChange", "ExtensionRecord",
           "ReadScope", "RRsetChange", "ReloadFailed", "RememberedZones", "ZoneChanged", "same_rrset"]

APEX_ALIAS_MODES = ("flatten",)

ENTRY_POINT_GROUP = "domainconnect_gateway.backends"


class BackendError(RuntimeError):
    """The backend failed (unreachable, refused, misconfigured); nothing was changed."""


class ZoneChanged(BackendError):
    """The RRsets read for the plan changed before the write; nothing was written."""


class ReloadFailed(BackendError):
    """The change is written to the backend's data, but the server serving it was not told
    to load it (a failed reload command). The gateway records the change, then reports this."""


class ConfigError(ValueError):
    """A backend option is missing or invalid; the message names the option."""


class RememberedZones:
    """Zones a backend found on its server, kept so that the next lookup of the same zone asks
    nothing; bounded (least recently used go first) and safe to share between threads. A
    backend forgets a zone when the server answers as if it no longer had it."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._zones: OrderedDict[dns.name.Name, None] = OrderedDict()
        self._guard = threading.Lock()

    def __contains__(self, zone: dns.name.Name) -> bool:
        with self._guard:
            if zone not in self._zones:
                return False
            self._zones.move_to_end(zone)
            return True

    def remember(self, zone: dns.name.Name) -> None:
        with self._guard:
            self._zones[zone] = None
            while len(self._zones) > self.size:
                self._zones.popitem(last=False)

    def forget(self, zone: dns.name.Name) -> None:
        with self._guard:
            self._zones.pop(zone, None)


class Backend(abc.ABC):
    """Base class of every backend plugin."""

    #: Extension record types (APEXCNAME, ...) this backend applies itself: `read_extensions`
    #: reports them and `apply` receives their changes. The gateway implements REDIR301 and
    #: REDIR302 for every backend (as A/AAAA records), so a backend does not list those.
    supported_extensions: ClassVar[frozenset[str]] = frozenset()

    #: True when APEXCNAME is to be written as the A/AAAA records its target resolves to,
    #: which the gateway looks up (see `apex_alias_option`).
    flattens_apex_alias: bool = False

    #: Option names this backend accepts; any other key in its table is a ConfigError
    #: (a misspelt option must not be silently ignored). None: accept anything.
    known_options: ClassVar[frozenset[str] | None] = None

    #: Seconds `zone_lock` waits for another apply to the same zone.
    lock_timeout: float = 30.0

    #: Where `zone_lock` keeps its locks. The gateway sets this at start-up to the locks of its
    #: state store, shared by every replica; until then they hold within this process only.
    zone_locks: ZoneLocks = PROCESS_ZONE_LOCKS

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.options = dict(options)
        if self.known_options is not None:
            unknown = sorted(set(self.options) - self.known_options)
            if unknown:
                raise ConfigError(f"backend {name!r}: unknown option {unknown[0]!r} "
                                  f"(expected one of: {', '.join(sorted(self.known_options))})")

    def option(self, key: str, default: Any = ..., kind: type | tuple[type, ...] | None = None) -> Any:
        """An option of this backend's config table; `ConfigError` naming it when missing or mistyped."""
        if key not in self.options:
            if default is ...:
                raise ConfigError(f"backend {self.name!r}: option {key!r} is required")
            return default
        value = self.options[key]
        if kind is not None and not isinstance(value, kind):
            expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise ConfigError(f"backend {self.name!r}: option {key!r} must be {expected}, not {value!r}")
        return value

    def apex_alias_option(self) -> None:
        """Read the option `apex_alias` ("flatten": the gateway writes APEXCNAME as A/AAAA
        records); for backends that list it in `known_options`."""
        mode = self.option("apex_alias", None, str)
        if mode is not None and mode not in APEX_ALIAS_MODES:
            raise ConfigError(f"backend {self.name!r}: option 'apex_alias' must be one of "
                              f"{', '.join(map(repr, APEX_ALIAS_MODES))}, not {mode!r}")
        self.flattens_apex_alias = mode == "flatten"

    @abc.abstractmethod
    def zones(self) -> list[dns.name.Name]:
        """Every zone this backend hosts (used for `zones = ["*"]`)."""

    def find_zone(self, domain: dns.name.Name) -> dns.name.Name | None:
        """The zone hosting `domain`: the longest hosted zone that contains it."""
        hosted = set(self.zones())
        name = domain
        while True:
            if name in hosted:
                return name
            if name == dns.name.root:
                return None
            name = name.parent()

    @abc.abstractmethod
    def read(self, zone: dns.name.Name, names: Collection[dns.name.Name],
             subtrees: Collection[dns.name.Name] = ()) -> list[dns.rrset.RRset]:
        """The RRsets at `names` and at or below each of `subtrees`, in `zone`.

        Reads only those names: the cost of an apply must follow the template, not the zone.
        """

    def read_extensions(self, zone: dns.name.Name, names: Collection[dns.name.Name]) -> list[ExtensionRecord]:
        """The extension records (types in `supported_extensions`) at `names` in `zone`.

        Each is an `ExtensionRecord.of(type, name, fields)` with the fields exactly as the
        gateway renders them (APEXCNAME: `pointsTo`, the absolute target, and `ttl`), so the
        planner can tell an unchanged one from a changed one. The default has none.
        """
        return []

    def read_with_extensions(self, zone: dns.name.Name, names: Collection[dns.name.Name],
                             subtrees: Collection[dns.name.Name],
                             extension_names: Collection[dns.name.Name]) -> tuple[list[dns.rrset.RRset],
                                                                                  list[ExtensionRecord]]:
        """`read(zone, names, subtrees)` and `read_extensions(zone, extension_names)` together, as
        the planner asks for them; override when one request to the server answers both."""
        rrsets = self.read(zone, names, subtrees)
        return rrsets, self.read_extensions(zone, extension_names) if extension_names else []
    @contextlib.contextmanager
    def holding(self, zone: dns.name.Name) -> Iterator[None]:
        """One read-plan-apply of `zone`, done in this block by this thread. A backend whose
        applies lock the zone may hold the lock across the block instead, so that what it
        reads in the block is what the apply writes over, with no re-read. Default: nothing."""
        yield

    def read_for_plan(self, zone: dns.name.Name, scope: ReadScope) -> list[dns.rrset.RRset]:
        """What the planner needs to see: `read` of the scope's names and subtrees. A backend
        that asks for each record type on its own may ask only for `scope.types` at a name."""
        return self.read(zone, scope.names, scope.subtrees)

    @abc.abstractmethod
    def apply(self, zone: dns.name.Name, changes: Sequence[RRsetChange],
              extensions: Sequence[ExtensionChange] = ()) -> None:
        """Make every change, atomically.

        Each change says what the RRset was when read (`before`) and what it must become
        (`after`, None to delete). If any RRset no longer matches its `before`, raise
        `ZoneChanged` and write nothing. On any other failure raise `BackendError` and
        leave the zone as it was; `ReloadFailed` when the change is written but not loaded.
        Touch nothing outside the changed RRsets.

        `extensions` are changes to extension records, given only to a backend whose
        `supported_extensions` lists their types, and never dropped: they are part of the
        same all or nothing write, with `before` as `read_extensions` reported it. A backend
        that declares no extension may leave the parameter out.

        When the answer is lost (a timeout, a dropped connection) the gateway cannot know
        whether the change was made: it re-reads the changed names with `read` (and
        `read_extensions`) and compares them with `before` and `after`, so both must show a
        completed write at once.
        """

    def check_ready(self) -> None:
        """Raise unless the backend answers now (`/readyz`, run with a timeout). The default
        lists the zones; backends override it with their cheapest request."""
        self.zones()
    def lock_scope(self) -> str:
        """What this backend writes to, as the same text in every gateway process: with the
        zone, the key of `zone_lock`. Override it when two backend configurations can reach
        one server (PowerDNS answers with its API URL and server id)."""
        return f"{type(self).__module__}.{type(self).__qualname__}:{self.name}"

    @contextmanager
    def zone_lock(self, zone: dns.name.Name) -> Iterator[None]:
        """Hold `zone` against every other apply by every gateway process that shares the
        state store (PostgreSQL: an advisory lock; SQLite: a file lock beside the database).

        Use it in `apply` when the server has no conditional write: take it, re-read what the
        changes touch, compare with each `before`, write, and let it go. Waits `lock_timeout`
        seconds at most, then raises `BackendError`. A thread may take a zone it holds again.
        """
        where = f"backend {self.name!r}: zone {zone.to_text(omit_final_dot=True)}"
        try:
            with self.zone_locks.hold(self.lock_scope(), zone, self.lock_timeout):
                yield
        except ZoneLockTimeout as exc:
            raise BackendError(f"{where}: {exc}; nothing was written") from None
        except ZoneLockError as exc:
            raise BackendError(f"{where}: the zone lock could not be taken ({exc}); nothing was written") from None

    def close(self) -> None:
        """Release connections; the default has none."""

    def describe(self) -> str:
        return f"{self.name} ({type(self).__name__})"
