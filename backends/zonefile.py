"""`zonefile`: a directory of RFC 1035 master files, the embedded default backend.

    [[backends]]
    name = "files"
    driver = "zonefile"
    directory = "/var/lib/bind/zones"        # holds example.com.zone, example.net.zone, ...
    reload_command = "rndc reload {zone}"    # optional; run after each write, no shell
    lock_timeout = 30                        # optional; seconds to wait for another writer
    create_directory = false                 # optional; create `directory` when missing
    apex_alias = "flatten"                   # optional; APEXCNAME as the A/AAAA its target resolves to

A zone is a file named `{zone}.zone` whose origin is the zone name. An apply holds the
zone lock of the backend kit (`zone_lock`, in the state store: it reaches gateways on
other hosts sharing the directory) and an exclusive file lock (`{zone}.zone.lock`, for
other tools that honour it) across re-read, compare, modify and write, so two gateway
processes never lose each other's changes; the new file replaces the old one
atomically (temporary file in the same directory, fsync, rename, fsync of the
directory) and the SOA serial goes up, edited inside its own line.

Only the lines of the RRsets that change are rewritten (`backends.zonefile_text`):
comments, `$TTL`, `$ORIGIN`, blank lines and every other record stay byte for byte, and a
new RRset is added at the end of the file. Where that cannot be done safely (a
`$GENERATE`, a record that inherits its TTL from the one before with no `$TTL` in
effect) the file is written whole from its records, without comments, and the log says
so. A file that uses `$INCLUDE` is read but never rewritten (that would copy the
included records into it): applies to it fail. Apart from writing and syncing the new
file, an apply costs the RRsets it changes, not the size of the zone: the parsed zone of
each version shares every unchanged node with the one before (`python bench/zonefile.py`).

`reload_command` runs after a successful write with `{zone}` replaced by the zone name
(split like a shell would, but without one). When it fails, the apply raises
`BackendError`, but the new file stays: the records are written and a later reload
picks them up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime
import functools
import io
import logging
import os
import re
import shlex
import subprocess
import threading
from collections import OrderedDict
from collections.abc import Collection, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.exception
import dns.name
import dns.rdataset
import dns.rdatatype
import dns.rrset
import dns.zone
import filelock

from backends.base import Backend, BackendError, ConfigError, ReloadFailed, RRsetChange, ZoneChanged
from backends.files import durable_temporary, remove_retired, replace_freeing_later
from backends.records import same_rrset
from backends.zonedata import ZoneFileError, rrsets_in_scope
from backends.zonefile_text import NotEditable, ZoneText

log = logging.getLogger(__name__)

SUFFIX = ".zone"
SERIAL_MODULUS = 2**32
PARSED_ZONES_KEPT = 32
LAYERS_KEPT = 32  # applies whose zones share nodes with one flat dictionary (see _LayeredNodes)
VERSIONS_KEPT = 4  # readers that opened an older file while applies went on still find it parsed
COMPARE_BLOCK = 64 * 1024  # small reads: many concurrent readers must not hold large buffers
INCLUDE = re.compile(rb"^\s*\$INCLUDE", re.IGNORECASE | re.MULTILINE)
# Labels a zone file name may be built from; anything else ("/", escapes) could reach
# outside the directory or collide with another file, so no zone is looked up for it.
SAFE_LABEL = re.compile(rb"[a-z0-9_-]{1,63}", re.IGNORECASE)


M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
LARGE_BUFFER_BYTES = 1 << 20


@functools.cache
def _return_large_buffers_to_the_system() -> None:
    """Have glibc give every buffer of 1 MiB or more its own mapping, returned when freed.

    By default glibc raises that threshold to the size of the first large block freed, after
    which a zone file's bytes (megabytes each, one per apply) come from per-thread arenas
    that keep freed memory: with 16 threads applying to one large zone the process grew by
    hundreds of MB it never gave back. A fixed threshold keeps memory flat. Elsewhere than
    glibc this does nothing."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, LARGE_BUFFER_BYTES)
    except (OSError, AttributeError):
        pass


class ZoneFileBackend(Backend):
    known_options = frozenset({"directory", "reload_command", "lock_timeout", "create_directory", "reload_timeout",
                               "apex_alias"})

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.apex_alias_option()
        _return_large_buffers_to_the_system()
        self.directory = Path(self.option("directory", kind=str))
        if self.option("create_directory", False, bool):
            self.directory.mkdir(parents=True, exist_ok=True)
        if not self.directory.is_dir():
            raise ConfigError(f"backend {name!r}: option 'directory': {self.directory} is not a directory")
        remove_retired(self.directory)  # old zone versions a process that ended had not unlinked yet
        self.reload_command: str | None = self.option("reload_command", None, str)
        if self.reload_command is not None:
            try:
                if not shlex.split(self.reload_command):
                    raise ValueError("it is empty")
            except ValueError as exc:
                raise ConfigError(f"backend {name!r}: option 'reload_command' cannot be split into "
                                  f"arguments: {exc}") from None
        self.lock_timeout = float(self.option("lock_timeout", 30.0, (int, float)))
        self.reload_timeout = float(self.option("reload_timeout", 60.0, (int, float)))
        if self.lock_timeout <= 0 or self.reload_timeout <= 0:
            raise ConfigError(f"backend {name!r}: options 'lock_timeout' and 'reload_timeout' must be positive")
        #: Zone files read and parsed by this instance, for the conformance kit's cost check
        #: and the benchmark (a parse is what a large zone must not pay per apply).
        self.file_reads = 0
        self.parses = 0
        # Parsed zones with the exact bytes they were parsed from (the newest two versions of
        # each): the same bytes always parse to the same records, so this never serves stale
        # data, and it spares the parse (the bulk of an apply's time) when the file did not
        # change. Zones in it are never mutated, so readers in other threads can share them.
        self._parsed: OrderedDict[dns.name.Name, list[_Parsed]] = OrderedDict()
        self._parse_locks: dict[dns.name.Name, threading.Lock] = {}
        self._parsed_lock = threading.Lock()  # the web front end calls backends from worker threads

    def check_ready(self) -> None:
        if not os.access(self.directory, os.R_OK | os.W_OK | os.X_OK):
            raise BackendError(f"backend {self.name!r}: {self.directory} is not a readable and writable directory")
    def lock_scope(self) -> str:
        return f"zonefile {self.directory.resolve()}"

    def path(self, zone: dns.name.Name) -> Path:
        if not is_safe_zone_name(zone):
            raise BackendError(f"backend {self.name!r}: {zone.to_text()!r} cannot be a zone file name")
        return self.directory / f"{zone.to_text(omit_final_dot=True).lower()}{SUFFIX}"

    def zones(self) -> list[dns.name.Name]:
        found = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            try:
                zone = dns.name.from_text(path.name[: -len(SUFFIX)])
            except dns.exception.DNSException:
                continue  # not named like a zone: not ours
            if is_safe_zone_name(zone):
                found.append(zone)
        return found

    def find_zone(self, domain: dns.name.Name) -> dns.name.Name | None:
        # One stat per label instead of listing a directory that may hold many zones.
        name = domain
        while name != dns.name.root:
            if is_safe_zone_name(name) and self.path(name).is_file():
                return name
            name = name.parent()
        return None

    def read(self, zone: dns.name.Name, names: Collection[dns.name.Name],
             subtrees: Collection[dns.name.Name] = ()) -> list[dns.rrset.RRset]:
        # A master file can only be read whole; the slice keeps the planner's cost small.
        # A read may trust an unchanged stat: the apply compares the bytes under the lock.
        return rrsets_in_scope(self._load_entry(zone, trust_stat=True).zone, names, subtrees)

    def apply(self, zone: dns.name.Name, changes: Sequence[RRsetChange]) -> None:
        if not changes:
            return
        path = self.path(zone)
        try:
            with self.zone_lock(zone), filelock.FileLock(f"{path}.lock", timeout=self.lock_timeout):
                entry = self._load_entry(zone)
                if entry.includes:
                    raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: {path.name} uses $INCLUDE; "
                                       "rewriting it would copy the included records into it, so it is "
                                       "left alone (move the records into the zone file to manage it here)")
                self._check_unchanged(entry.zone, zone, changes)
                contents = _copy_for_changes(entry.zone, [c.name for c in changes] + [zone])
                for change in changes:
                    if change.after is None:
                        contents.delete_rdataset(change.name, change.rdtype)
                    else:
                        contents.replace_rdataset(change.name, change.after.to_rdataset())
                serial = _bump_serial(contents)
                data, text = self._edited(zone, entry, changes, serial, contents)
                temporary, inode = self._write_temporary(path, data)
                # Remembered before the rename, next to the version it replaces, so that a
                # reader seeing either file finds it parsed: nobody parses a large zone again.
                written = self._remember(zone, data, contents, text)
                self._replace(temporary, path)
                written.seen = self._identity_of_written(path, inode)
        except filelock.Timeout:
            raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: another writer held "
                               f"{path.name}.lock for more than {self.lock_timeout:g}s") from None
        except OSError as exc:  # the lock file: a read-only directory, a full disk
            raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: cannot lock {path.name}: "
                               f"{exc.strerror or exc}") from None
        self._reload(zone)

    def _edited(self, zone: dns.name.Name, entry: _Parsed, changes: Sequence[RRsetChange], serial: int,
                contents: dns.zone.Zone) -> tuple[bytes, ZoneText | None]:
        """The new file: the old one with only the changed RRsets' lines rewritten, or, when
        the file leans on context that makes that unsafe, the whole zone written anew."""
        text = entry.text
        if text is None:
            text = entry.text = ZoneText.scan(entry.data, zone, entry.zone)
        try:
            data, commit = text.edit(entry.data, changes, serial)
        except NotEditable as exc:
            log.warning("backend %r: zone %s: rewriting %s whole, without its comments and layout: %s",
                        self.name, _text(zone), self.path(zone).name, exc)
            if isinstance(contents.nodes, _LayeredNodes):
                contents.nodes = contents.nodes.flat()  # written and scanned whole: one plain dictionary
            return _master_file_bytes(contents), None
        commit()
        entry.text = None  # the text now describes the new file, not this one
        return data, text

    def _load_entry(self, zone: dns.name.Name, trust_stat: bool = False) -> _Parsed:
        """The zone as its file holds it now (callers must not modify it). With `trust_stat`,
        a cached parse whose file has the same inode, size and times as when its bytes were
        last compared is taken without reading the file again."""
        path = self.path(zone)
        self.file_reads += 1
        found = self._cached(zone, path, trust_stat)
        if found is not None:
            return found
        # One parse per zone at a time: concurrent readers of a changed file wait for it
        # rather than each parsing (and holding) a copy of a large zone.
        with self._parse_lock(zone):
            found = self._cached(zone, path)
            if found is not None:
                return found
            data = self._read_bytes(zone, path)
            try:
                contents = parse_zone_text(data, zone, path)
            except ZoneFileError as exc:
                raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: {exc}") from None
            self.parses += 1
            return self._remember(zone, data, contents, None, newest=False)

    def _cached(self, zone: dns.name.Name, path: Path, trust_stat: bool = False) -> _Parsed | None:
        """The parsed entry whose bytes the file holds now, compared without reading it whole."""
        with self._parsed_lock:
            entries = list(self._parsed.get(zone, ()))
        try:
            with path.open("rb", buffering=0) as file:
                status = os.fstat(file.fileno())
                seen = _identity(status)
                for entry in entries:
                    if (trust_stat and entry.seen == seen) or (
                            len(entry.data) == status.st_size and _same_bytes(file, entry.data)):
                        entry.seen = seen
                        with self._parsed_lock:
                            if zone in self._parsed:
                                self._parsed.move_to_end(zone)
                        return entry
                    file.seek(0)
        except FileNotFoundError:
            raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: no zone file {path}") from None
        except OSError as exc:
            raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: cannot read {path}: "
                               f"{exc.strerror or exc}") from None
        return None

    def _read_bytes(self, zone: dns.name.Name, path: Path) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: no zone file {path}") from None
        except OSError as exc:
            raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: cannot read {path}: "
                               f"{exc.strerror or exc}") from None

    def _parse_lock(self, zone: dns.name.Name) -> threading.Lock:
        with self._parsed_lock:
            return self._parse_locks.setdefault(zone, threading.Lock())

    def _remember(self, zone: dns.name.Name, data: bytes, contents: dns.zone.Zone,
                  text: ZoneText | None, newest: bool = True) -> _Parsed:
        """Keep `contents` as the parse of `data`: first when this process wrote it (`newest`),
        else after the versions it wrote (a file read may be older than they are)."""
        # An edit never adds an $INCLUDE, so a written file has none: searching 4 MB is not free.
        entry = _Parsed(data, contents, text, includes=text is None and INCLUDE.search(data) is not None)
        if entry.includes:
            return entry  # the records also depend on other files, which the bytes do not cover
        with self._parsed_lock:
            others = [e for e in self._parsed.get(zone, ()) if e.data is not data]
            versions = [entry, *others] if newest else [*others, entry]
            self._parsed[zone] = versions[:VERSIONS_KEPT] if newest else versions[-VERSIONS_KEPT:]
            self._parsed.move_to_end(zone)
            while len(self._parsed) > PARSED_ZONES_KEPT:
                dropped, _ = self._parsed.popitem(last=False)
                self._parse_locks.pop(dropped, None)
        return entry

    def _check_unchanged(self, contents: dns.zone.Zone, zone: dns.name.Name, changes: Sequence[RRsetChange]) -> None:
        for change in changes:
            if not change.name.is_subdomain(zone):
                raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: "
                                   f"{change.name.to_text()} is outside the zone")
            current = contents.get_rrset(change.name, change.rdtype)
            if not same_rrset(current, change.before):
                raise ZoneChanged(f"backend {self.name!r}: zone {_text(zone)}: the "
                                  f"{dns.rdatatype.to_text(change.rdtype)} records at {change.name.to_text()} "
                                  "changed since they were read; nothing was written")

    def _write_temporary(self, path: Path, data: bytes) -> tuple[str, int]:
        """`data` in a durable temporary file beside `path`, with its mode, owner and a newer
        mtime; returns its name and inode."""
        target = self._target(path)
        status = target.stat()
        temporary = None
        try:
            temporary = durable_temporary(target, data)
            os.chmod(temporary, status.st_mode & 0o7777)
            _keep_owner(temporary, status)
            inode = _newer_than(temporary, status).st_ino
        except OSError as exc:
            if temporary is not None:
                Path(temporary).unlink(missing_ok=True)
            raise BackendError(f"backend {self.name!r}: cannot write {target}: {exc.strerror or exc}; "
                               "the zone file is unchanged") from None
        return temporary, inode

    def _replace(self, temporary: str, path: Path) -> None:
        """Put the temporary file in place, so that readers see the old file or the new one, whole."""
        target = self._target(path)
        try:
            replace_freeing_later(temporary, target)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise BackendError(f"backend {self.name!r}: cannot write {target}: {exc.strerror or exc}; "
                               "the zone file is unchanged") from None
        try:
            directory = os.open(target.parent, os.O_RDONLY)
        except OSError:
            return  # the rename is done; only its durability across a crash is in question
        try:
            os.fsync(directory)
        except OSError:
            pass
        finally:
            os.close(directory)

    def _identity_of_written(self, path: Path, inode: int) -> tuple[int, ...] | None:
        """The identity of the file this apply put at `path`, so the next read need not compare
        its bytes; None when the file there is no longer the one written (another rename)."""
        try:
            status = os.stat(self._target(path))
        except OSError:
            return None
        return _identity(status) if status.st_ino == inode else None

    @staticmethod
    def _target(path: Path) -> Path:
        # A symlinked zone file stays a symlink: the file it points to is replaced.
        return path.resolve() if path.is_symlink() else path

    def _reload(self, zone: dns.name.Name) -> None:
        if self.reload_command is None:
            return
        zone_text = _text(zone)
        # Substitute after splitting, so a zone name can never become extra arguments.
        argv = [part.replace("{zone}", zone_text) for part in shlex.split(self.reload_command)]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=self.reload_timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ReloadFailed(f"backend {self.name!r}: zone {zone_text}: written, but reload_command "
                               f"{shlex.join(argv)!r} failed: {exc}") from None
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()[-500:]
            raise ReloadFailed(f"backend {self.name!r}: zone {zone_text}: written, but reload_command "
                               f"{shlex.join(argv)!r} exited with status {result.returncode}"
                               + (f": {detail}" if detail else ""))


def parse_zone_text(data: bytes, origin: dns.name.Name, path: Path) -> dns.zone.Zone:
    try:
        return dns.zone.from_text(data.decode("utf-8"), origin=origin, relativize=False, check_origin=True,
                                  filename=str(path), allow_include=True)
    except (dns.exception.DNSException, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise ZoneFileError(f"{path}: not a valid zone file for {origin.to_text()}: {exc}") from None


def _copy_for_changes(contents: dns.zone.Zone, names: Sequence[dns.name.Name]) -> dns.zone.Zone:
    """A zone to modify at `names` that shares every other node with `contents`, which
    stays as it was (readers and the parse cache may hold it). The copy's nodes are a layer
    over those of `contents`, not a copy of its dictionary: an apply costs the names it
    changes, not the size of the zone."""
    copy = dns.zone.Zone(contents.origin, contents.rdclass, relativize=False)
    copy.nodes = _LayeredNodes(contents.nodes)
    for name in set(names):
        node = contents.nodes.get(name)
        if node is not None:
            fresh = copy.node_factory()
            fresh.rdatasets.extend(node.rdatasets)
            copy.nodes[name] = fresh
    return copy


class _LayeredNodes(MutableMapping):
    """A zone's nodes as the names set or removed here over a `base` mapping that is never
    modified. Past LAYERS_KEPT layers the next one starts from a flat dictionary, so a
    lookup walks a few layers at most and a large zone is copied once every LAYERS_KEPT applies."""

    __slots__ = ("base", "top", "removed", "depth")

    def __init__(self, base: Mapping[dns.name.Name, Any]) -> None:
        depth = base.depth + 1 if isinstance(base, _LayeredNodes) else 1
        if depth > LAYERS_KEPT:
            base, depth = base.flat(), 1
        self.base = base
        self.top: dict[dns.name.Name, Any] = {}
        self.removed: set[dns.name.Name] = set()
        self.depth = depth

    def flat(self) -> dict[dns.name.Name, Any]:
        layers = []
        mapping: Mapping[dns.name.Name, Any] = self
        while isinstance(mapping, _LayeredNodes):
            layers.append(mapping)
            mapping = mapping.base
        flat = dict(mapping)
        for layer in reversed(layers):
            for name in layer.removed:
                flat.pop(name, None)
            flat.update(layer.top)
        return flat

    def __getitem__(self, name: dns.name.Name) -> Any:
        node = self.top.get(name)
        if node is not None:
            return node
        if name in self.removed:
            raise KeyError(name)
        return self.base[name]

    def get(self, name: dns.name.Name, default: Any = None) -> Any:
        node = self.top.get(name)
        if node is not None:
            return node
        if name in self.removed:
            return default
        return self.base.get(name, default)

    def __contains__(self, name: object) -> bool:
        return name in self.top or (name not in self.removed and name in self.base)

    def __setitem__(self, name: dns.name.Name, node: Any) -> None:
        self.top[name] = node
        self.removed.discard(name)

    def __delitem__(self, name: dns.name.Name) -> None:
        if name not in self:
            raise KeyError(name)
        self.top.pop(name, None)
        self.removed.add(name)

    def __iter__(self) -> Iterator[dns.name.Name]:
        yield from self.top
        for name in self.base:
            if name not in self.top and name not in self.removed:
                yield name

    def __len__(self) -> int:
        added = sum(1 for name in self.top if name not in self.base)
        gone = sum(1 for name in self.removed if name in self.base)
        return len(self.base) + added - gone


def _master_file_bytes(contents: dns.zone.Zone) -> bytes:
    text = io.StringIO()
    contents.to_file(text, relativize=True, want_origin=True)
    return text.getvalue().encode("utf-8")


def _newer_than(path: str, old: os.stat_result) -> os.stat_result:
    """Give the new file a modification time after the old one's (returns its status). DNS
    servers reload a zone only when its file is newer than the last load (BIND compares
    mtimes), and two writes within one tick of the file system clock would otherwise share a time."""
    new = os.stat(path)
    for step in (1_000, 1_000_000_000):  # a microsecond, or a second on coarse file systems
        if new.st_mtime_ns > old.st_mtime_ns:
            return new
        os.utime(path, ns=(new.st_atime_ns, old.st_mtime_ns + step))
        new = os.stat(path)
    return new


def _keep_owner(path: str, status: os.stat_result) -> None:
    """Give the new file the old one's owner, so a DNS server running as its own user can
    still read (and, for its journal, write) it."""
    if (status.st_uid, status.st_gid) == (os.geteuid(), os.getegid()):
        return
    try:
        os.chown(path, status.st_uid, status.st_gid)
    except PermissionError:
        pass  # only root can give files away; the mode bits still apply


def is_safe_zone_name(zone: dns.name.Name) -> bool:
    return zone != dns.name.root and all(SAFE_LABEL.fullmatch(label) for label in zone.labels[:-1])


def next_serial(serial: int, today: datetime.date | None = None) -> int:
    """The SOA serial after `serial`: today's YYYYMMDD00 when that is larger (date-style
    serials, and small counters moving to date style), else serial + 1 in RFC 1982 arithmetic,
    which never goes backwards."""
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    date_serial = int(today.strftime("%Y%m%d")) * 100
    if serial < date_serial:
        return date_serial
    return (serial + 1) % SERIAL_MODULUS


def _bump_serial(contents: dns.zone.Zone) -> int:
    soa_set = contents.get_rdataset(contents.origin, dns.rdatatype.SOA)
    if soa_set is None:
        raise BackendError(f"zone {_text(contents.origin)} has no SOA record")
    soa = soa_set[0]
    bumped = soa.replace(serial=next_serial(soa.serial))
    contents.replace_rdataset(contents.origin, dns.rdataset.from_rdata(soa_set.ttl, bumped))
    # People read zone files top down: keep the SOA as the first record, where it was.
    contents.nodes[contents.origin].rdatasets.sort(key=lambda rdataset: rdataset.rdtype != dns.rdatatype.SOA)
    return bumped.serial


def _same_bytes(file, expected: bytes) -> bool:
    """Whether `file` (at its start) holds exactly `expected`, read a block at a time so that
    concurrent readers of a large zone do not each hold a copy of it."""
    offset = 0
    while True:
        block = file.read(COMPARE_BLOCK)
        if not block:
            return offset == len(expected)
        if expected[offset:offset + len(block)] != block:
            return False
        offset += len(block)


@dataclass
class _Parsed:
    data: bytes
    zone: dns.zone.Zone
    text: ZoneText | None  # the line index of `data`, made on the first apply
    includes: bool = False  # uses $INCLUDE: never cached, never rewritten
    # The file's identity when it was last found to hold `data`. Any write through another
    # inode (editors, this backend) or of another size or time changes it.
    seen: tuple[int, ...] | None = None


def _identity(status: os.stat_result) -> tuple[int, ...]:
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns


def _text(zone: dns.name.Name) -> str:
    return zone.to_text(omit_final_dot=True)
