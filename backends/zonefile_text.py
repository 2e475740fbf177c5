"""A master file as a person wrote it, edited RRset by RRset.

`ZoneText.scan(data, origin)` splits an RFC 1035 master file into entries (one logical
record each, parentheses included, or one line of comment, blank or directive) and knows
which entries hold the records of each (name, type). `edit()` then yields the new file
with only those entries rewritten: comments, `$TTL`, `$ORIGIN`, blank lines and every
untouched record stay byte for byte, and the SOA serial is replaced inside its own line.
An RRset that is new goes at the end of the file. The cost of an edit follows the number
of changed RRsets, not the size of the zone (one list copy and one join).

Where a file leans on context an edit would change, `NotEditable` says so and the caller
rewrites the file whole instead: a `$GENERATE` or records the scan cannot account for
(it must agree with dnspython's parse on every RRset), or a record without its own TTL
right after an edited one when no `$TTL` is in effect (it would inherit another TTL).
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from backends.base import RRsetChange
from backends.records import relative_text

Key = tuple[dns.name.Name, int]
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"?|;|\(|\)|[^\s;()"]+')
_TTL = re.compile(rb"\d+|(?:\d+[wdhmsWDHMS])+")
_CLASS = re.compile(rb"IN|CH|HS|NONE|ANY|CLASS\d+", re.IGNORECASE)


class NotEditable(Exception):
    """The file cannot be edited line by line; the message says why."""


class Offsets:
    """Entry lengths in a Fenwick tree: the byte offset of any entry, and a change of one
    entry's length, in O(log n), so an edit never walks the whole file."""

    def __init__(self) -> None:
        self.lengths = array("q")
        self.tree = array("q", [0])  # 1-based

    def append(self, length: int) -> None:
        self.lengths.append(length)
        index = len(self.lengths)
        low = index & -index
        self.tree.append(length + self.offset(index - 1) - self.offset(index - low))

    def offset(self, position: int) -> int:
        """Bytes before entry `position` (the sum of the lengths of entries 0..position-1)."""
        total = 0
        while position > 0:
            total += self.tree[position]
            position -= position & -position
        return total

    def span(self, position: int) -> tuple[int, int]:
        start = self.offset(position)
        return start, start + self.lengths[position]

    def set_length(self, position: int, length: int) -> None:
        delta = length - self.lengths[position]
        self.lengths[position] = length
        index = position + 1
        while index < len(self.tree):
            self.tree[index] += delta
            index += index & -index

    def __len__(self) -> int:
        return len(self.lengths)


@dataclass
class ZoneText:
    """Where each entry of a master file is and, for each record entry, what it holds. The
    bytes themselves are the caller's (the file as last read or written)."""

    entries: Offsets
    index: dict[Key, list[int]]  # positions of each RRset's records, in file order
    owners: list[dns.name.Name | None]  # record entries: the owner; others: None
    explicit_owner: bytearray  # 1 where the entry names its owner, 0 where it inherits it
    explicit_ttl: bytearray
    origins: list[dns.name.Name]  # the $ORIGIN in effect at each entry
    first_ttl_directive: int | None
    end_origin: dns.name.Name
    newline: bytes = b"\n"
    problem: str | None = None  # why it cannot be edited, when it cannot
    apex: dns.name.Name = dns.name.root

    # -- scanning ----------------------------------------------------------------------------

    @classmethod
    def scan(cls, data: bytes, origin: dns.name.Name, parsed: dns.zone.Zone) -> ZoneText:
        """The entries of `data`, checked against `parsed` (dnspython's reading of it)."""
        text = cls(Offsets(), {}, [], bytearray(), bytearray(), [], None, origin, apex=origin)
        text.newline = b"\r\n" if b"\r\n" in data[:4096] else b"\n"
        try:
            text._scan(data, origin)
            text._agree_with(parsed)
        except NotEditable as exc:
            text.problem = str(exc)
        return text

    def _scan(self, data: bytes, zone_origin: dns.name.Name) -> None:
        origin = zone_origin
        last_owner: dns.name.Name | None = None
        pending_length = 0
        depth = 0
        for line in data.splitlines(keepends=True):
            if depth > 0:  # inside a record's parentheses
                pending_length += len(line)
                depth = _depth_after(line, depth)
                if depth == 0:
                    self.entries.append(pending_length)
                continue
            position = len(self.entries)
            self.origins.append(origin)
            stripped = line.lstrip()
            if not stripped or stripped.startswith(b";"):
                self._plain(line)
                continue
            if line.startswith(b"$"):
                origin = self._directive(line, origin, position)
                self._plain(line)
                continue
            owner, explicit_owner, explicit_ttl, rdtype = _record_head(line, origin, last_owner)
            last_owner = owner
            if owner.is_subdomain(zone_origin):  # dnspython skips records outside the zone
                self.owners.append(owner)
                self.index.setdefault((owner, rdtype), []).append(position)
            else:
                self.owners.append(None)
            self.explicit_owner.append(explicit_owner)
            self.explicit_ttl.append(explicit_ttl)
            depth = _depth_after(line, 0) if b"(" in line else 0
            if depth:
                pending_length = len(line)
            else:
                self.entries.append(len(line))
        if depth:
            raise NotEditable("a record's parentheses are never closed")
        self.end_origin = origin

    def _plain(self, line: bytes) -> None:
        self.entries.append(len(line))
        self.owners.append(None)
        self.explicit_owner.append(1)
        self.explicit_ttl.append(1)

    def _directive(self, line: bytes, origin: dns.name.Name, position: int) -> dns.name.Name:
        words = _words(line)
        keyword = words[0].upper()
        if keyword == b"$ORIGIN" and len(words) > 1:
            try:
                return dns.name.from_text(words[1].decode("utf-8"), origin)
            except (dns.exception.DNSException, UnicodeDecodeError) as exc:
                raise NotEditable(f"$ORIGIN {words[1]!r}: {exc}") from None
        if keyword == b"$TTL":
            if self.first_ttl_directive is None:
                self.first_ttl_directive = position
            return origin
        raise NotEditable(f"it uses {keyword.decode('ascii', 'replace')}")

    def _agree_with(self, parsed: dns.zone.Zone) -> None:
        """Every RRset the scan found holds as many records as dnspython read, and no RRset is missed."""
        found = 0
        for name, node in parsed.nodes.items():
            for rdataset in node.rdatasets:
                positions = self.index.get((name, rdataset.rdtype))
                if positions is None or len(positions) != len(rdataset):
                    raise NotEditable(f"the records of {name} {dns.rdatatype.to_text(rdataset.rdtype)} could not "
                                      "be told apart line by line")
                found += 1
        if found != len(self.index):
            raise NotEditable("some records could not be matched with what the zone holds")

    # -- editing -----------------------------------------------------------------------------

    def edit(self, data: bytes, changes: Sequence[RRsetChange],
             soa_serial: int) -> tuple[bytes, Callable[[], None]]:
        """`data` (the file this text describes) with `changes` made and the SOA serial set to
        `soa_serial`, and a function that makes this text describe the result (call it once
        the new file is written)."""
        if self.problem is not None:
            raise NotEditable(self.problem)
        replaced: dict[int, bytes] = {}
        appended: list[bytes] = []
        new_index: dict[Key, list[int] | None] = {}
        ends_with_newline = not data or data.endswith((b"\n", b"\r"))
        if not ends_with_newline:
            appended.append(self.newline)
        for change in changes:
            key = (change.name, int(change.rdtype))
            positions = self.index.get(key, [])
            if positions:
                lines = self._lines(change.after, self.origins[positions[0]]) if change.after is not None else b""
                replaced[positions[0]] = lines
                replaced.update((p, b"") for p in positions[1:])
                new_index[key] = positions[:1] if change.after is not None else None
            elif change.after is not None:
                new_index[key] = [len(self.entries) + len(appended)]
                appended.append(self._lines(change.after, self.end_origin))
        soa_positions = self.index.get((self.apex, int(dns.rdatatype.SOA)))
        if not soa_positions or soa_positions[0] in replaced:
            raise NotEditable("the SOA record is missing or changed by the edit")
        soa = soa_positions[0]
        replaced[soa] = _with_serial(self._entry(data, soa), soa_serial)
        self._keep_context(data, replaced, soa)
        # Views, not slices: the new file is the only copy of the zone this makes.
        view, pieces, copied = memoryview(data), [], 0
        for position in sorted(replaced):
            start, end = self.entries.span(position)
            pieces += [view[copied:start], replaced[position]]
            copied = end
        pieces.append(view[copied:])
        new_data = b"".join(pieces + appended)

        def commit() -> None:
            for position, value in replaced.items():
                self.entries.set_length(position, len(value))
                if position != soa:
                    self.explicit_owner[position] = 1
                    self.explicit_ttl[position] = 1
            for value in appended:
                self.entries.append(len(value))
                self.origins.append(self.end_origin)
                self.explicit_owner.append(1)
                self.explicit_ttl.append(1)
                self.owners.append(None)
            for key, positions in new_index.items():
                if positions is None:
                    for position in self.index.pop(key, []):
                        self.owners[position] = None
                else:
                    for position in self.index.get(key, []):
                        self.owners[position] = None
                    self.index[key] = positions
                    self.owners[positions[0]] = key[0]

        return new_data, commit

    def _entry(self, data: bytes, position: int) -> bytes:
        start, end = self.entries.span(position)
        return data[start:end]

    def _lines(self, rrset: dns.rrset.RRset, origin: dns.name.Name) -> bytes:
        owner = relative_text(rrset.name, origin)
        rdtype = dns.rdatatype.to_text(rrset.rdtype)
        rdclass = dns.rdataclass.to_text(rrset.rdclass)
        return b"".join(f"{owner} {rrset.ttl} {rdclass} {rdtype} {rdata.to_text(origin=origin, relativize=True)}"
                        .encode("utf-8") + self.newline for rdata in rrset)

    def _keep_context(self, data: bytes, replaced: dict[int, bytes], soa: int) -> None:
        """Keep what the record after each edited entry inherits: its owner (written out when
        it would change) and its TTL (NotEditable when it would change)."""
        for position in sorted(replaced):
            if position == soa:
                continue  # only the serial changed there: owner and TTL stay
            following = self._next_record(position + 1, replaced)
            if following is None or following in replaced:
                continue
            if not self.explicit_ttl[following] and (self.first_ttl_directive is None
                                                     or self.first_ttl_directive > following):
                raise NotEditable(f"the record after an edited one ({self.owners[following]}) has no TTL of its own "
                                  "and no $TTL is in effect")
            if not self.explicit_owner[following]:
                # A rewritten entry ends with its own RRset's owner, so the owner of the last
                # record left before `following` is what it inherits in the new file.
                before = self._previous_record(following - 1, replaced)
                inherited = self.owners[before] if before is not None else None
                if inherited != self.owners[following]:
                    owner = relative_text(self.owners[following], self.origins[following]).encode("utf-8")
                    replaced[following] = owner + self._entry(data, following)

    def _next_record(self, start: int, replaced: dict[int, bytes]) -> int | None:
        for position in range(start, len(self.entries)):
            if self.owners[position] is not None and replaced.get(position, None) != b"":
                return position
        return None

    def _previous_record(self, start: int, replaced: dict[int, bytes]) -> int | None:
        for position in range(start, -1, -1):
            if self.owners[position] is not None and replaced.get(position, None) != b"":
                return position
        return None


def _record_head(line: bytes, origin: dns.name.Name,
                 last_owner: dns.name.Name | None) -> tuple[dns.name.Name, int, int, int]:
    """Owner, whether the line names it, whether it has a TTL, and the type of a record line."""
    words = _words(line, limit=4)
    explicit_owner = not line[:1].isspace()
    if explicit_owner:
        try:
            owner = dns.name.from_text(words[0].decode("utf-8"), origin)
        except (dns.exception.DNSException, UnicodeDecodeError) as exc:
            raise NotEditable(f"owner {words[0]!r}: {exc}") from None
        words = words[1:]
    elif last_owner is None:
        raise NotEditable("a record inherits an owner before any is named")
    else:
        owner = last_owner
    explicit_ttl = 0
    for _ in range(2):  # [ttl] [class] in either order, as dnspython reads them
        if words and _TTL.fullmatch(words[0]):
            explicit_ttl, words = 1, words[1:]
        elif words and _CLASS.fullmatch(words[0]):
            words = words[1:]
    if not words:
        raise NotEditable(f"a record of {owner} has no type on its first line")
    try:
        rdtype = dns.rdatatype.from_text(words[0].decode("ascii"))
    except (dns.exception.DNSException, UnicodeDecodeError, ValueError):
        raise NotEditable(f"unknown type {words[0]!r}") from None
    return owner, int(explicit_owner), explicit_ttl, int(rdtype)


def _words(line: bytes, limit: int | None = None) -> list[bytes]:
    """The leading plain words of a line, up to a comment, quote or parenthesis."""
    words = []
    for match in _TOKEN.finditer(line):
        token = match.group()
        if token in (b";", b"(", b")") or token.startswith(b'"'):
            break
        words.append(token)
        if limit is not None and len(words) == limit:
            break
    return words


def _tokens(text: bytes) -> Iterator[re.Match[bytes]]:
    """Every token of an entry, comments skipped, parentheses left out."""
    position = 0
    while True:
        match = _TOKEN.search(text, position)
        if match is None:
            return
        position = match.end()
        token = match.group()
        if token == b";":
            newline = text.find(b"\n", position)
            if newline < 0:
                return
            position = newline + 1
        elif token not in (b"(", b")"):
            yield match


def _depth_after(line: bytes, depth: int) -> int:
    for match in _TOKEN.finditer(line):
        token = match.group()
        if token == b";":
            break
        if token == b"(":
            depth += 1
        elif token == b")":
            depth = max(depth - 1, 0)
    return depth


def _with_serial(entry: bytes, serial: int) -> bytes:
    """The SOA entry with its serial (the third field after the type) replaced in place."""
    tokens = list(_tokens(entry))
    for index, match in enumerate(tokens):
        if match.group().upper() == b"SOA":
            serial_match = tokens[index + 3] if index + 3 < len(tokens) else None
            break
    else:
        serial_match = None
    if serial_match is None or not serial_match.group().isdigit():
        raise NotEditable("the SOA serial could not be found in its line")
    return entry[:serial_match.start()] + str(serial).encode("ascii") + entry[serial_match.end():]
