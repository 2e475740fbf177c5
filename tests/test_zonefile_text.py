"""The zone-file backend keeps a person's zone file: only the lines of the changed RRsets are
rewritten; comments, $TTL, $ORIGIN, blank lines and untouched records stay byte for byte, and
the SOA serial is bumped inside its own line."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from backends.base import RRsetChange
from backends.testing import rrset_from_text
from backends.zonedata import load_zone_file, zone_rrsets
from backends.zonefile import ZoneFileBackend

ZONE = dns.name.from_text("example.com")

HAND_WRITTEN = """\
; example.com, kept by hand since 2009
$TTL 3600
$ORIGIN example.com.
@       IN SOA  ns1.example.com. hostmaster.example.com. (
                2024010101 ; serial
                7200       ; refresh
                1800 1209600 3600 )
        IN NS   ns1.example.com.   ; primary
        IN NS   ns2.example.net.

; web
www     300 IN A     192.0.2.10
        300 IN AAAA  2001:db8::10
ftp         IN CNAME www

$ORIGIN mail.example.com.
@           IN MX 10 mx1        ; mail.example.com
smtp        IN A  192.0.2.25
"""


def backend_with(tmp_path: Path, text: str, newline: str = "\n") -> tuple[ZoneFileBackend, Path]:
    path = tmp_path / "example.com.zone"
    path.write_bytes(text.replace("\n", newline).encode())
    return ZoneFileBackend("files", {"directory": str(tmp_path)}), path


def rrset(host: str, rtype: str, values: list[str], ttl: int = 600) -> dns.rrset.RRset:
    return rrset_from_text(ZONE, host, ttl, rtype, values)


def current(path: Path, host: str, rtype: str) -> dns.rrset.RRset | None:
    name = dns.name.from_text(host, ZONE) if host != "@" else ZONE
    return load_zone_file(path, ZONE).get_rrset(name, dns.rdatatype.from_text(rtype))


def change(path: Path, host: str, rtype: str, after: dns.rrset.RRset | None) -> RRsetChange:
    name = dns.name.from_text(host, ZONE) if host != "@" else ZONE
    return RRsetChange(name, dns.rdatatype.from_text(rtype), current(path, host, rtype), after)


def serial(path: Path) -> int:
    return load_zone_file(path, ZONE).get_rdataset(ZONE, "SOA")[0].serial


def test_only_changed_lines_are_rewritten(tmp_path):
    backend, path = backend_with(tmp_path, HAND_WRITTEN)
    backend.apply(ZONE, [change(path, "www", "A", rrset("www", "A", ["192.0.2.99"])),
                         change(path, "ftp", "CNAME", None),
                         change(path, "shop", "CNAME", rrset("shop", "CNAME", ["shops.provider.example."]))])
    new_serial = serial(path)
    assert new_serial > 2024010101
    assert path.read_text() == """\
; example.com, kept by hand since 2009
$TTL 3600
$ORIGIN example.com.
@       IN SOA  ns1.example.com. hostmaster.example.com. (
                {serial} ; serial
                7200       ; refresh
                1800 1209600 3600 )
        IN NS   ns1.example.com.   ; primary
        IN NS   ns2.example.net.

; web
www 600 IN A 192.0.2.99
        300 IN AAAA  2001:db8::10

$ORIGIN mail.example.com.
@           IN MX 10 mx1        ; mail.example.com
smtp        IN A  192.0.2.25
shop.example.com. 600 IN CNAME shops.provider.example.
""".format(serial=new_serial)


def test_the_serial_is_bumped_again_in_place(tmp_path):
    backend, path = backend_with(tmp_path, HAND_WRITTEN)
    backend.apply(ZONE, [change(path, "www", "A", rrset("www", "A", ["192.0.2.1"]))])
    first = serial(path)
    backend.apply(ZONE, [change(path, "www", "A", rrset("www", "A", ["192.0.2.2"]))])
    assert serial(path) == first + 1
    assert f"                {first + 1} ; serial\n" in path.read_text()


def test_removing_the_line_that_names_an_owner_writes_it_on_the_next(tmp_path):
    text = HAND_WRITTEN.replace("www     300 IN A     192.0.2.10\n", "www     300 IN A     192.0.2.10\n"
                                                                        "        300 IN TXT   \"hello\"\n")
    backend, path = backend_with(tmp_path, text)
    backend.apply(ZONE, [change(path, "www", "A", None)])
    written = path.read_text()
    assert "www        300 IN TXT   \"hello\"\n        300 IN AAAA  2001:db8::10\n" in written
    assert current(path, "www", "TXT")[0].to_text() == '"hello"'
    assert current(path, "www", "AAAA")[0].to_text() == "2001:db8::10"
    assert current(path, "www", "A") is None


def test_crlf_files_stay_crlf(tmp_path):
    backend, path = backend_with(tmp_path, HAND_WRITTEN, newline="\r\n")
    backend.apply(ZONE, [change(path, "new", "A", rrset("new", "A", ["192.0.2.7"]))])
    data = path.read_bytes()
    assert data.count(b"\n") == data.count(b"\r\n")
    assert data.endswith(b"new.example.com. 600 IN A 192.0.2.7\r\n")


@pytest.mark.parametrize(("text", "reason"), [
    # No $TTL: the record after the edited one inherits the TTL written before it.
    ("$ORIGIN example.com.\n@ 3600 IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ 3600 IN NS ns1\n"
     "www 300 IN A 192.0.2.1\n IN AAAA 2001:db8::1\n", "has no TTL of its own"),
    ("$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\n"
     "$GENERATE 1-3 host-$ A 192.0.2.$\nwww IN A 192.0.2.1\n", "$GENERATE"),
])
def test_files_that_cannot_be_edited_line_by_line_are_rewritten_whole_and_logged(tmp_path, caplog, text, reason):
    backend, path = backend_with(tmp_path, text)
    expected = {(r.name, r.rdtype): r for r in zone_rrsets(load_zone_file(path, ZONE))}
    new = rrset("www", "A", ["192.0.2.50"])
    with caplog.at_level(logging.WARNING, logger="backends.zonefile"):
        backend.apply(ZONE, [change(path, "www", "A", new)])
    assert any("rewriting example.com.zone whole" in r.getMessage() and reason in r.getMessage()
               for r in caplog.records)
    after = {(r.name, r.rdtype): r for r in zone_rrsets(load_zone_file(path, ZONE))}
    expected[(new.name, new.rdtype)] = new
    assert {k: sorted(r.to_text().split("\n")) for k, r in after.items() if k[1] != dns.rdatatype.SOA} == \
        {k: sorted(r.to_text().split("\n")) for k, r in expected.items() if k[1] != dns.rdatatype.SOA}


# -- many edits, checked against dnspython's own reading of the result -----------------------------

HOSTS = ["@", "www", "mail", "a.b", "shop", "x", "_dmarc", "sub.deep"]
TYPES = {"A": lambda r: [f"192.0.2.{r.randrange(1, 250)}" for _ in range(r.randrange(1, 3))],
         "TXT": lambda r: [f'"v{r.randrange(1000)}"' for _ in range(r.randrange(1, 3))],
         "MX": lambda r: [f"{r.randrange(1, 50)} mx{r.randrange(5)}.example.net."]}


def random_zone(r: random.Random) -> str:
    lines = ["; generated", "$ORIGIN example.com.", "$TTL 900" if r.random() < 0.8 else "; no $TTL",
             "@ 3600 IN SOA ns1 hostmaster ( 2020010100 ; serial", "   3600 600 86400 300 )", "@ 3600 IN NS ns1"]
    for host in HOSTS:
        for rtype, values in TYPES.items():
            if rtype == "MX" and host != "@" or r.random() < 0.4:
                continue
            if r.random() < 0.3:
                lines.append(f"; {host} {rtype}")
            for index, value in enumerate(values(r)):
                owner = host if index == 0 or r.random() < 0.5 else " " * r.randrange(1, 8)
                ttl = f" {r.choice([60, 300, 3600])}" if r.random() < 0.7 else ""
                lines.append(f"{owner}{ttl} IN {rtype} {value}")
            if r.random() < 0.2:
                lines.append("")
    return "\n".join(lines) + ("\n" if r.random() < 0.9 else "")


@pytest.mark.parametrize("seed", range(40))
def test_random_edits_leave_exactly_the_planned_records(tmp_path, caplog, seed):
    r = random.Random(seed)
    backend, path = backend_with(tmp_path, random_zone(r))
    for _ in range(6):
        before = {(x.name, x.rdtype): x for x in zone_rrsets(load_zone_file(path, ZONE))}
        comments = [line for line in path.read_text().splitlines() if line.startswith((";", "$"))]
        changes, expected = [], dict(before)
        for host in r.sample(HOSTS, 2):
            rtype = r.choice(["A", "TXT"])
            after = rrset(host, rtype, TYPES[rtype](r), ttl=r.choice([60, 600])) if r.random() < 0.7 else None
            changes.append(change(path, host, rtype, after))
            key = (changes[-1].name, changes[-1].rdtype)
            expected.pop(key, None)
            if after is not None:
                expected[key] = after
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="backends.zonefile"):
            backend.apply(ZONE, changes)
        rewritten_whole = any("whole" in record.getMessage() for record in caplog.records)
        after_zone = {(x.name, x.rdtype): x for x in zone_rrsets(load_zone_file(path, ZONE))}
        soa = dns.rdatatype.SOA
        assert after_zone[(ZONE, soa)][0].serial > before[(ZONE, soa)][0].serial
        assert {k: (v.ttl, sorted(x.to_text() for x in v)) for k, v in after_zone.items() if k[1] != soa} == \
            {k: (v.ttl, sorted(x.to_text() for x in v)) for k, v in expected.items() if k[1] != soa}
        if not rewritten_whole:  # line edits keep every comment and directive, in order
            assert [line for line in path.read_text().splitlines() if line.startswith((";", "$"))] == comments
