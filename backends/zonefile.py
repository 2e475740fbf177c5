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
directory) and the SOA serial goes up. The file is rewritten from its parsed records:
records are kept exactly, but comments and formatting are not, and `$GENERATE` ranges
are written out record by record. A file that uses `$INCLUDE` is read but never
rewritten (that would copy the included records into it): applies to it fail.

`reload_command` runs after a successful write with `{zone}` replaced by the zone name
(split like a shell would, but without one). When it fails, the apply raises
`BackendError`, but the new file stays: the records are written and a later reload
picks them up.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import re
import shlex
import subprocess
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Collection, Mapping, Sequence
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
from gateway.records import same_rrset
from gateway.zonedata import ZoneFileError, rrsets_in_scope

SUFFIX = ".zone"
SERIAL_MODULUS = 2**32
PARSED_ZONES_KEPT = 32
INCLUDE = re.compile(rb"^\s*\$INCLUDE", re.IGNORECASE | re.MULTILINE)
# Labels a zone file name may be built from; anything else ("/", escapes) could reach
# outside the directory or collide with another file, so no zone is looked up for it.
SAFE_LABEL = re.compile(rb"[a-z0-9_-]{1,63}", re.IGNORECASE)


class ZoneFileBackend(Backend):
    known_options = frozenset({"directory", "reload_command", "lock_timeout", "create_directory", "reload_timeout",
                               "apex_alias"})

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name, options)
        self.apex_alias_option()
        self.directory = Path(self.option("directory", kind=str))
        if self.option("create_directory", False, bool):
            self.directory.mkdir(parents=True, exist_ok=True)
        if not self.directory.is_dir():
            raise ConfigError(f"backend {name!r}: option 'directory': {self.directory} is not a directory")
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
        #: Zone files read by this instance, for the conformance kit's cost check.
        self.file_reads = 0
        # Parsed zones by the SHA-256 of their file's bytes: the same bytes always parse to the
        # same records, so this can never serve stale data, and it spares the parse (the bulk of
        # an apply's time) when the file did not change. Entries are never mutated, so readers
        # in other threads can share them.
        self._parsed: OrderedDict[dns.name.Name, tuple[bytes, dns.zone.Zone]] = OrderedDict()
        self._parsed_lock = threading.Lock()  # the web front end calls backends from worker threads

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
        return rrsets_in_scope(self._load(zone), names, subtrees)

    def apply(self, zone: dns.name.Name, changes: Sequence[RRsetChange]) -> None:
        if not changes:
            return
        path = self.path(zone)
        try:
            with self.zone_lock(zone), filelock.FileLock(f"{path}.lock", timeout=self.lock_timeout):
                current, data = self._load_with_bytes(zone)
                if INCLUDE.search(data):
                    raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: {path.name} uses $INCLUDE; "
                                       "rewriting it would copy the included records into it, so it is "
                                       "left alone (move the records into the zone file to manage it here)")
                self._check_unchanged(current, zone, changes)
                contents = _copy_for_changes(current, [c.name for c in changes] + [zone])
                for change in changes:
                    if change.after is None:
                        contents.delete_rdataset(change.name, change.rdtype)
                    else:
                        contents.replace_rdataset(change.name, change.after.to_rdataset())
                _bump_serial(contents)
                data = _master_file_bytes(contents)
                self._write(path, data)
                self._remember(zone, data, contents)
        except filelock.Timeout:
            raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: another writer held "
                               f"{path.name}.lock for more than {self.lock_timeout:g}s") from None
        except OSError as exc:  # the lock file: a read-only directory, a full disk
            raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: cannot lock {path.name}: "
                               f"{exc.strerror or exc}") from None
        self._reload(zone)

    def _load(self, zone: dns.name.Name) -> dns.zone.Zone:
        """The zone as its file holds it now. Callers must not modify the result."""
        return self._load_with_bytes(zone)[0]

    def _load_with_bytes(self, zone: dns.name.Name) -> tuple[dns.zone.Zone, bytes]:
        path = self.path(zone)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: no zone file {path}") from None
        except OSError as exc:
            raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: cannot read {path}: "
                               f"{exc.strerror or exc}") from None
        self.file_reads += 1
        digest = hashlib.sha256(data).digest()
        with self._parsed_lock:
            cached = self._parsed.get(zone)
            if cached is not None and cached[0] == digest:
                self._parsed.move_to_end(zone)
                return cached[1], data
        try:
            contents = parse_zone_text(data, zone, path)
        except ZoneFileError as exc:
            raise BackendError(f"backend {self.name!r}: zone {_text(zone)}: {exc}") from None
        self._remember(zone, data, contents)
        return contents, data

    def _remember(self, zone: dns.name.Name, data: bytes, contents: dns.zone.Zone) -> None:
        if INCLUDE.search(data):
            return  # the records also depend on other files, which the digest does not cover
        digest = hashlib.sha256(data).digest()
        with self._parsed_lock:
            self._parsed[zone] = (digest, contents)
            self._parsed.move_to_end(zone)
            while len(self._parsed) > PARSED_ZONES_KEPT:
                self._parsed.popitem(last=False)

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

    def _write(self, path: Path, data: bytes) -> None:
        """Replace `path` with `contents` so that readers see the old file or the new one, whole."""
        # A symlinked zone file stays a symlink: the file it points to is replaced.
        path = path.resolve() if path.is_symlink() else path
        status = path.stat()
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, status.st_mode & 0o7777)
            _keep_owner(temporary, status)
            _newer_than(temporary, status)
            os.replace(temporary, path)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise BackendError(f"backend {self.name!r}: cannot write {path}: {exc.strerror or exc}; "
                               "the zone file is unchanged") from None
        try:
            directory = os.open(path.parent, os.O_RDONLY)
        except OSError:
            return  # the rename is done; only its durability across a crash is in question
        try:
            os.fsync(directory)
        except OSError:
            pass
        finally:
            os.close(directory)

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
    stays as it was (readers and the parse cache may hold it)."""
    copy = dns.zone.Zone(contents.origin, contents.rdclass, relativize=False)
    copy.nodes = dict(contents.nodes)
    for name in set(names):
        node = contents.nodes.get(name)
        if node is not None:
            fresh = copy.node_factory()
            fresh.rdatasets.extend(node.rdatasets)
            copy.nodes[name] = fresh
    return copy


def _master_file_bytes(contents: dns.zone.Zone) -> bytes:
    text = io.StringIO()
    contents.to_file(text, relativize=True, want_origin=True)
    return text.getvalue().encode("utf-8")


def _newer_than(path: str, old: os.stat_result) -> None:
    """Give the new file a modification time after the old one's. DNS servers reload a
    zone only when its file is newer than the last load (BIND compares mtimes), and two
    writes within one tick of the file system clock would otherwise share a time."""
    new = os.stat(path)
    for step in (1_000, 1_000_000_000):  # a microsecond, or a second on coarse file systems
        if new.st_mtime_ns > old.st_mtime_ns:
            return
        os.utime(path, ns=(new.st_atime_ns, old.st_mtime_ns + step))
        new = os.stat(path)


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


def _bump_serial(contents: dns.zone.Zone) -> None:
    soa_set = contents.get_rdataset(contents.origin, dns.rdatatype.SOA)
    if soa_set is None:
        raise BackendError(f"zone {_text(contents.origin)} has no SOA record")
    soa = soa_set[0]
    bumped = soa.replace(serial=next_serial(soa.serial))
    contents.replace_rdataset(contents.origin, dns.rdataset.from_rdata(soa_set.ttl, bumped))
    # People read zone files top down: keep the SOA as the first record, where it was.
    contents.nodes[contents.origin].rdatasets.sort(key=lambda rdataset: rdataset.rdtype != dns.rdatatype.SOA)


def _text(zone: dns.name.Name) -> str:
    return zone.to_text(omit_final_dot=True)
