"""The zonefile backend: the conformance kit, then what is particular to master files."""

from __future__ import annotations

import base64
import datetime
import json
import multiprocessing
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.zone
import filelock
import pytest

from backends.base import BackendError, ConfigError, RRsetChange, ZoneChanged
from backends.files import RETIRED_SUFFIX, wait_for_retired
from backends.records import same_rrset
from backends.testing import BackendConformance, conformance_template, rrset_from_text
from backends.zonedata import load_zone_file, zone_rrsets
from backends.zonefile import ZoneFileBackend, next_serial
from gateway.apply.pipeline import execute_apply, prepare_apply
from gateway.engine.render import ApplyContext
from tests.servers.common import free_port, require_program, stop, wait_for_port

ZONE = dns.name.from_text("example.com")
EMPTY_ZONE = """\
$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1.example.com. hostmaster.example.com. 2024010101 3600 600 86400 300
@ IN NS ns1.example.com.
ns1 IN A 192.0.2.53
"""


def make_zone_dir(directory: Path, text: str = EMPTY_ZONE) -> Path:
    (directory / "example.com.zone").write_text(text)
    return directory


class TestZoneFileConformance(BackendConformance):
    @pytest.fixture
    def backend_under_test(self, tmp_path):
        backend = ZoneFileBackend("files", {"directory": str(make_zone_dir(tmp_path))})
        yield backend, ZONE

    def round_trips(self, backend: ZoneFileBackend) -> int:
        return backend.file_reads

    def bulk_load(self, backend, zone, rrsets):
        backend.apply(zone, [_create(r) for r in rrsets])

    def break_next_apply(self, backend, zone):
        # A disk that fails while the new file is flushed: the kind of error a server hits mid-write.
        real_fsync = os.fsync
        state = {"armed": True}

        def failing_fsync(fd):
            if state["armed"]:
                state["armed"] = False
                raise OSError(5, "Input/output error")
            return real_fsync(fd)

        self._patch = pytest.MonkeyPatch()
        self._patch.setattr(os, "fsync", failing_fsync)

    @pytest.fixture(autouse=True)
    def _undo_patch(self):
        yield
        patch = getattr(self, "_patch", None)
        if patch is not None:
            patch.undo()


class TestZoneFileAsBindLoadsIt(TestZoneFileConformance):
    """The kit again, with what is served taken from BIND's own zone loader: every file the
    backend writes must load in BIND, and hold the records the plan wanted."""

    @pytest.fixture
    def backend_under_test(self, tmp_path):
        self.checkzone = require_program("named-checkzone", "bind9-utils")
        self.dump_dir = tmp_path / "dumps"
        self.dump_dir.mkdir()
        zones = tmp_path / "zones"
        zones.mkdir()
        yield ZoneFileBackend("files", {"directory": str(make_zone_dir(zones))}), ZONE

    def served(self, backend, zone, name, rdtype):
        dump = self.dump_dir / "example.com.dump"
        # "-i local": the default integrity checks resolve out-of-zone MX/SRV targets over the network.
        result = subprocess.run([self.checkzone, "-i", "local", "-D", "-o", str(dump),
                                 zone.to_text(), str(backend.path(zone))],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"BIND does not load the zone file: {result.stdout}{result.stderr}"
        return dns.zone.from_file(str(dump), origin=zone, relativize=False).get_rrset(name, rdtype)


NAMED_CONF = """\
key "rndc-key" {{ algorithm hmac-sha256; secret "{secret}"; }};
controls {{ inet 127.0.0.1 port {control_port} allow {{ 127.0.0.1; }} keys {{ "rndc-key"; }}; }};
options {{
    directory "{work}";
    pid-file "{work}/named.pid";
    session-keyfile "{work}/session.key";
    managed-keys-directory "{work}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    notify no;
    dnssec-validation no;
}};
zone "example.com" {{ type primary; file "{zones}/example.com.zone"; }};
"""
RNDC_CONF = """\
key "rndc-key" {{ algorithm hmac-sha256; secret "{secret}"; }};
options {{ default-key "rndc-key"; default-server 127.0.0.1; default-port {control_port}; }};
"""


@pytest.fixture
def named_serving(tmp_path):
    """BIND named on 127.0.0.1 serving example.com from a zone file directory, reloaded with rndc."""
    named = require_program("named", "bind9")
    rndc = require_program("rndc", "bind9-utils")
    work, zones = tmp_path / "named", tmp_path / "zones"
    work.mkdir()
    zones.mkdir()
    make_zone_dir(zones)
    settings = {"secret": base64.b64encode(os.urandom(32)).decode(), "control_port": free_port(),
                "port": free_port(), "work": work, "zones": zones}
    (work / "named.conf").write_text(NAMED_CONF.format(**settings))
    (work / "rndc.conf").write_text(RNDC_CONF.format(**settings))
    log = work / "named.log"
    with log.open("w") as output:
        process = subprocess.Popen([named, "-g", "-c", str(work / "named.conf")], stdout=output,
                                   stderr=subprocess.STDOUT)
    try:
        wait_for_port(settings["port"], process, timeout=30, log=log)
        wait_for_port(settings["control_port"], process, timeout=30, log=log)
        reload_command = shlex.join([rndc, "-c", str(work / "rndc.conf")]) + " reload {zone}"
        yield zones, settings["port"], reload_command
    finally:
        stop(process)


class TestZoneFileServedByBind(TestZoneFileConformance):
    """The kit with a real DNS server: named loads the files, `reload_command` runs rndc, and
    what is served is what named answers over TCP once it has loaded the file's serial."""

    @pytest.fixture
    def backend_under_test(self, named_serving):
        zones, self.port, reload_command = named_serving
        yield ZoneFileBackend("files", {"directory": str(zones), "reload_command": reload_command}), ZONE

    def served(self, backend, zone, name, rdtype):
        expected = soa_serial(backend.path(zone))
        deadline = time.monotonic() + 15
        while self._ask(zone, dns.rdatatype.SOA)[0].serial != expected:
            assert time.monotonic() < deadline, f"named did not load serial {expected}"
            time.sleep(0.05)
        return self._ask(name, rdtype)

    def _ask(self, name, rdtype):
        response = dns.query.tcp(dns.message.make_query(name, rdtype), "127.0.0.1", port=self.port, timeout=5)
        assert response.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN), dns.rcode.to_text(response.rcode())
        return response.get_rrset(response.answer, name, dns.rdataclass.IN, rdtype)


def test_reload_command_makes_named_serve_each_write(named_serving):
    zones, port, reload_command = named_serving
    backend = ZoneFileBackend("files", {"directory": str(zones), "reload_command": reload_command})
    name = dns.name.from_text("fast", ZONE)
    before = None
    for index in range(10):
        after = a_record("fast", f"192.0.2.{index + 1}")
        backend.apply(ZONE, [RRsetChange(name, dns.rdatatype.A, before, after)])
        before = after
    query = dns.message.make_query(name, "A")
    deadline = time.monotonic() + 15
    while True:
        answer = dns.query.tcp(query, "127.0.0.1", port=port, timeout=5).answer
        if answer and [r.to_text() for r in answer[0]] == ["192.0.2.10"]:
            break
        assert time.monotonic() < deadline, f"named still serves {answer}"
        time.sleep(0.05)


def _create(rrset):
    return RRsetChange(rrset.name, rrset.rdtype, None, rrset)


# -- what is particular to master files ------------------------------------------------------

RICH_ZONE = EMPTY_ZONE + """\
; mail is hosted elsewhere
@ 3600 IN MX 10 mx.provider.example.
@ 3600 IN TXT "v=spf1 -all"
www 300 IN A 192.0.2.10
www 300 IN AAAA 2001:db8::10
ftp 300 IN CNAME www
_xmpp._tcp 300 IN SRV 5 0 5269 xmpp.example.com.
sub 3600 IN NS ns.sub.example.com.
ns.sub 3600 IN A 192.0.2.54
note 300 IN TXT "a \\"quoted\\" word" "second string"
"""


def backend_at(directory: Path, **options) -> ZoneFileBackend:
    return ZoneFileBackend("files", {"directory": str(directory), **options})


def a_record(host: str, address: str, ttl: int = 600):
    return rrset_from_text(ZONE, host, ttl, "A", [address])


def soa_serial(path: Path) -> int:
    return load_zone_file(path, ZONE).get_rdataset(ZONE, "SOA")[0].serial


def all_rrsets(path: Path) -> dict:
    return {(r.name, r.rdtype): r for r in zone_rrsets(load_zone_file(path, ZONE))}


def test_zones_and_find_zone(tmp_path):
    make_zone_dir(tmp_path)
    (tmp_path / "shop.example.com.zone").write_text(EMPTY_ZONE.replace("example.com.", "shop.example.com."))
    (tmp_path / "README").write_text("not a zone")
    (tmp_path / "example.com.zone.lock").write_text("")
    backend = backend_at(tmp_path)
    assert backend.zones() == [ZONE, dns.name.from_text("shop.example.com")]
    assert backend.find_zone(dns.name.from_text("a.shop.example.com")) == dns.name.from_text("shop.example.com")
    assert backend.find_zone(dns.name.from_text("www.example.com")) == ZONE
    assert backend.find_zone(dns.name.from_text("example.net")) is None


def test_read_returns_only_the_asked_names_and_subtrees(tmp_path):
    backend = backend_at(make_zone_dir(tmp_path, RICH_ZONE))
    www = dns.name.from_text("www", ZONE)
    sub = dns.name.from_text("sub", ZONE)
    found = {(r.name.to_text(), dns.rdatatype.to_text(r.rdtype)) for r in backend.read(ZONE, [www], [sub])}
    assert found == {("www.example.com.", "A"), ("www.example.com.", "AAAA"), ("sub.example.com.", "NS"),
                     ("ns.sub.example.com.", "A")}


def test_apply_keeps_every_other_record(tmp_path):
    path = make_zone_dir(tmp_path, RICH_ZONE) / "example.com.zone"
    before = all_rrsets(path)
    new = a_record("new", "192.0.2.77")
    backend_at(tmp_path).apply(ZONE, [RRsetChange(new.name, new.rdtype, None, new)])
    after = all_rrsets(path)
    assert same_rrset(after.pop((new.name, new.rdtype)), new)
    soa_key = (ZONE, dns.rdatatype.SOA)
    assert after.pop(soa_key)[0].serial > before.pop(soa_key)[0].serial
    assert after.keys() == before.keys()
    for key, rrset in before.items():
        assert same_rrset(after[key], rrset) and list(after[key]) == list(rrset), key
    # Only the serial changed in place and the new RRset's line was added: the rest is byte for byte.
    serial = soa_serial(path)
    assert path.read_text() == RICH_ZONE.replace(" 2024010101 ", f" {serial} ") + "new 600 IN A 192.0.2.77\n"


def test_apply_writes_a_new_file_atomically(tmp_path):
    path = make_zone_dir(tmp_path) / "example.com.zone"
    path.chmod(0o640)
    inode = path.stat().st_ino
    new = a_record("new", "192.0.2.77")
    backend_at(tmp_path).apply(ZONE, [RRsetChange(new.name, new.rdtype, None, new)])
    # A rename, not an in-place rewrite: a reader holding the old file sees it whole.
    assert path.stat().st_ino != inode
    assert path.stat().st_mode & 0o777 == 0o640
    wait_for_retired()  # the old file, unlinked in the background
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example.com.zone", "example.com.zone.lock"]


def test_the_replaced_file_is_freed_after_the_write_and_leftovers_at_start(tmp_path):
    path = make_zone_dir(tmp_path) / "example.com.zone"
    old = path.stat()
    backend = backend_at(tmp_path)
    new = a_record("new", "192.0.2.77")
    backend.apply(ZONE, [RRsetChange(new.name, new.rdtype, None, new)])
    wait_for_retired()
    # The old file's last name is gone: its blocks are free.
    assert not [p for p in tmp_path.iterdir() if p.stat().st_ino == old.st_ino]
    leftover = tmp_path / f".example.com.zone.dead{RETIRED_SUFFIX}"  # a process killed before it unlinked
    os.link(path, leftover)
    backend_at(tmp_path)
    assert not leftover.exists() and path.exists()


def test_failed_write_leaves_the_file_and_no_debris(tmp_path, monkeypatch):
    path = make_zone_dir(tmp_path) / "example.com.zone"
    original = path.read_bytes()

    def broken_replace(source, destination):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    new = a_record("new", "192.0.2.77")
    with pytest.raises(BackendError, match="cannot write .*No space left on device; the zone file is unchanged"):
        backend_at(tmp_path).apply(ZONE, [RRsetChange(new.name, new.rdtype, None, new)])
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example.com.zone", "example.com.zone.lock"]


@pytest.mark.parametrize(("serial", "today", "expected"), [
    (2024010101, datetime.date(2026, 11, 23), 2026112300),   # older date: today's first
    (2026112300, datetime.date(2026, 11, 23), 2026112301),   # today's: next number
    (2026112399, datetime.date(2026, 11, 23), 2026112400),   # 100 changes in a day: borrow tomorrow
    (2026112405, datetime.date(2026, 11, 23), 2026112406),   # ahead of the clock: never go back
    (7, datetime.date(2026, 11, 23), 2026112300),            # small counter: date style from now on
    (3000000000, datetime.date(2026, 11, 23), 3000000001),   # larger than a date: plain increment
    (4294967295, datetime.date(2026, 11, 23), 0),            # RFC 1982 wrap is an increase
])
def test_next_serial(serial, today, expected):
    assert next_serial(serial, today) == expected


def test_each_apply_bumps_the_serial(tmp_path):
    path = make_zone_dir(tmp_path) / "example.com.zone"
    backend = backend_at(tmp_path)
    serials = [soa_serial(path)]
    for index in range(3):
        new = a_record(f"host{index}", "192.0.2.1")
        backend.apply(ZONE, [RRsetChange(new.name, new.rdtype, None, new)])
        serials.append(soa_serial(path))
    assert serials == sorted(set(serials)), serials


def _add_txt_until_applied(directory: str, worker: int, count: int) -> int:
    """Worker process: add `count` TXT values at one shared name, re-planning when refused."""
    backend = ZoneFileBackend(f"worker{worker}", {"directory": directory})
    refusals = 0
    for index in range(count):
        template = conformance_template([{"type": "TXT", "host": "shared", "data": f"w{worker}-{index}",
                                          "ttl": 300}], service_id=f"w{worker}")
        for _ in range(500):
            prepared = prepare_apply(backend, template, ApplyContext(domain="example.com"))
            try:
                execute_apply(prepared)
                break
            except ZoneChanged:
                refusals += 1
        else:
            raise AssertionError("never got a turn")
    return refusals


def test_concurrent_processes_never_lose_changes(tmp_path):
    path = make_zone_dir(tmp_path) / "example.com.zone"
    workers, count = 4, 8
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        results = [pool.apply_async(_add_txt_until_applied, (str(tmp_path), w, count)) for w in range(workers)]
        [result.get(timeout=120) for result in results]
    shared = all_rrsets(path)[(dns.name.from_text("shared", ZONE), dns.rdatatype.TXT)]
    assert sorted(b"".join(r.strings).decode() for r in shared) == sorted(
        f"w{w}-{i}" for w in range(workers) for i in range(count))


def test_concurrent_threads_of_one_backend_never_lose_changes(tmp_path):
    path = make_zone_dir(tmp_path) / "example.com.zone"
    backend = backend_at(tmp_path)
    workers, count = 4, 8

    def add_values(worker: int) -> None:
        for index in range(count):
            template = conformance_template([{"type": "TXT", "host": "shared", "data": f"t{worker}-{index}",
                                              "ttl": 300}], service_id=f"t{worker}")
            for _ in range(500):
                try:
                    execute_apply(prepare_apply(backend, template, ApplyContext(domain="example.com")))
                    break
                except ZoneChanged:
                    continue

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(add_values, range(workers), timeout=120))
    shared = all_rrsets(path)[(dns.name.from_text("shared", ZONE), dns.rdatatype.TXT)]
    assert sorted(b"".join(r.strings).decode() for r in shared) == sorted(
        f"t{w}-{i}" for w in range(workers) for i in range(count))

def test_lock_held_by_another_writer_times_out_without_writing(tmp_path):
    path = make_zone_dir(tmp_path) / "example.com.zone"
    original = path.read_bytes()
    new = a_record("new", "192.0.2.77")
    with filelock.FileLock(f"{path}.lock"):
        context = multiprocessing.get_context("fork")
        with context.Pool(1) as pool:
            outcome = pool.apply_async(_apply_in_child, (str(tmp_path), new)).get(timeout=60)
    assert "another writer held example.com.zone.lock for more than 0.2s" in outcome
    assert path.read_bytes() == original


def _apply_in_child(directory: str, rrset) -> str:
    try:
        backend_at(Path(directory), lock_timeout=0.2).apply(ZONE, [RRsetChange(rrset.name, rrset.rdtype, None, rrset)])
    except BackendError as exc:
        return str(exc)
    return "applied"


def test_reload_command_runs_after_the_write_with_the_zone_as_one_argument(tmp_path):
    zones = tmp_path / "zones"
    zones.mkdir()
    path = make_zone_dir(zones) / "example.com.zone"
    marker = tmp_path / "reloads.json"
    script = ("import json, sys, pathlib; "
              "records = pathlib.Path(sys.argv[2]).read_text(); "
              "pathlib.Path(sys.argv[3]).write_text(json.dumps([sys.argv[1:], 'new' in records]))")
    command = shlex.join([sys.executable, "-c", script]) + " {zone} " + shlex.join([str(path), str(marker)])
    new = a_record("new", "192.0.2.77")
    backend_at(zones, reload_command=command).apply(ZONE, [RRsetChange(new.name, new.rdtype, None, new)])
    argv, saw_new_records = json.loads(marker.read_text())
    assert argv == ["example.com", str(path), str(marker)]
    assert saw_new_records is True


def test_failing_reload_command_is_an_error_but_the_write_stays(tmp_path):
    path = make_zone_dir(tmp_path) / "example.com.zone"
    script = "import sys; sys.stderr.write('rndc: connection refused'); sys.exit(1)"
    command = shlex.join([sys.executable, "-c", script])
    new = a_record("new", "192.0.2.77")
    with pytest.raises(BackendError, match=r"zone example.com: written, but reload_command .* exited with status 1: "
                                           r"rndc: connection refused"):
        backend_at(tmp_path, reload_command=command).apply(ZONE, [RRsetChange(new.name, new.rdtype, None, new)])
    assert (new.name, new.rdtype) in all_rrsets(path)


def test_missing_reload_program_is_an_error_but_the_write_stays(tmp_path):
    path = make_zone_dir(tmp_path) / "example.com.zone"
    new = a_record("new", "192.0.2.77")
    with pytest.raises(BackendError, match="written, but reload_command '/nonexistent/rndc reload example.com' failed"):
        backend_at(tmp_path, reload_command="/nonexistent/rndc reload {zone}").apply(
            ZONE, [RRsetChange(new.name, new.rdtype, None, new)])
    assert (new.name, new.rdtype) in all_rrsets(path)


def test_stale_before_is_refused_without_writing(tmp_path):
    path = make_zone_dir(tmp_path, RICH_ZONE) / "example.com.zone"
    original = path.read_bytes()
    stale = a_record("www", "192.0.2.99", ttl=300)
    new = a_record("www", "192.0.2.1", ttl=300)
    created = a_record("fresh", "192.0.2.2")
    refusal = "backend 'files': zone example.com: the A records at www.example.com. changed"
    with pytest.raises(ZoneChanged, match=refusal):
        backend_at(tmp_path).apply(ZONE, [RRsetChange(created.name, created.rdtype, None, created),
                                          RRsetChange(new.name, new.rdtype, stale, new)])
    assert path.read_bytes() == original


def test_change_outside_the_zone_is_refused(tmp_path):
    path = make_zone_dir(tmp_path) / "example.com.zone"
    original = path.read_bytes()
    outside = rrset_from_text(dns.name.from_text("example.org"), "www", 300, "A", ["192.0.2.1"])
    with pytest.raises(BackendError, match="www.example.org. is outside the zone"):
        backend_at(tmp_path).apply(ZONE, [RRsetChange(outside.name, outside.rdtype, None, outside)])
    assert path.read_bytes() == original


def test_missing_or_broken_zone_file(tmp_path):
    backend = backend_at(tmp_path)
    with pytest.raises(BackendError, match="zone example.com: no zone file .*example.com.zone"):
        backend.read(ZONE, [ZONE])
    (tmp_path / "example.com.zone").write_text("@ IN SOA garbage\n")
    with pytest.raises(BackendError, match="zone example.com: .*example.com.zone: not a valid zone file"):
        backend.read(ZONE, [ZONE])


@pytest.mark.parametrize(("options", "message"), [
    ({}, "backend 'files': option 'directory' is required"),
    ({"directory": 5}, "backend 'files': option 'directory' must be str, not 5"),
    ({"directory": "/nonexistent/zones"}, "option 'directory': /nonexistent/zones is not a directory"),
    ({"directory": "."}, None),
    ({"directory": ".", "reload_comand": "x"}, "unknown option 'reload_comand'"),
    ({"directory": ".", "reload_command": "rndc 'reload"}, "option 'reload_command' cannot be split"),
    ({"directory": ".", "reload_command": "  "}, "option 'reload_command' cannot be split"),
    ({"directory": ".", "lock_timeout": 0}, "'lock_timeout' and 'reload_timeout' must be positive"),
    ({"directory": ".", "lock_timeout": "5"}, "option 'lock_timeout' must be int or float"),
])
def test_option_errors(options, message):
    if message is None:
        ZoneFileBackend("files", options)
        return
    with pytest.raises(ConfigError) as caught:
        ZoneFileBackend("files", options)
    assert message in str(caught.value)


def test_create_directory(tmp_path):
    backend = ZoneFileBackend("files", {"directory": str(tmp_path / "a" / "zones"), "create_directory": True})
    assert backend.directory.is_dir() and backend.zones() == []


@pytest.mark.parametrize("domain", ["a/b.example.com", r"\.\..example.com", "x\\/y.example.com", "a\\000.example.com"])
def test_names_that_are_not_file_names_never_reach_the_file_system(tmp_path, domain):
    zones = tmp_path / "zones"
    make_zone_dir(zones.mkdir() or zones)
    (zones / "a").mkdir()
    (zones / "a" / "b.example.com.zone").write_text(EMPTY_ZONE.replace("example.com.", "b.example.com."))
    backend = backend_at(zones)
    name = dns.name.from_text(domain)
    # The lookup ends at the real parent zone, never at a file reached through the odd label.
    assert backend.find_zone(name) == ZONE
    with pytest.raises(BackendError, match="cannot be a zone file name"):
        backend.read(name, [name])


def test_directory_listing_skips_files_that_are_not_zone_names(tmp_path):
    make_zone_dir(tmp_path)
    (tmp_path / "we ird.zone").write_text(EMPTY_ZONE)
    (tmp_path / "a..b.zone").write_text(EMPTY_ZONE)
    assert backend_at(tmp_path).zones() == [ZONE]


def test_symlinked_zone_file_stays_a_symlink(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    make_zone_dir(real)
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "example.com.zone").symlink_to(real / "example.com.zone")
    new = a_record("new", "192.0.2.77")
    backend_at(zones).apply(ZONE, [RRsetChange(new.name, new.rdtype, None, new)])
    assert (zones / "example.com.zone").is_symlink()
    assert (new.name, new.rdtype) in all_rrsets(real / "example.com.zone")
    wait_for_retired()
    assert sorted(p.name for p in real.iterdir()) == ["example.com.zone"]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_owner_of_the_zone_file_is_kept(tmp_path):
    path = make_zone_dir(tmp_path) / "example.com.zone"
    os.chown(path, 65534, 65534)
    new = a_record("new", "192.0.2.77")
    backend_at(tmp_path).apply(ZONE, [RRsetChange(new.name, new.rdtype, None, new)])
    assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534)


def test_no_changes_writes_nothing(tmp_path):
    path = make_zone_dir(tmp_path) / "example.com.zone"
    original, inode = path.read_bytes(), path.stat().st_ino
    backend_at(tmp_path).apply(ZONE, [])
    assert path.read_bytes() == original and path.stat().st_ino == inode


def test_edits_by_others_are_seen_even_with_the_same_size_and_time(tmp_path):
    path = make_zone_dir(tmp_path, RICH_ZONE) / "example.com.zone"
    backend = backend_at(tmp_path)
    www = dns.name.from_text("www", ZONE)
    assert backend.read(ZONE, [www])  # parsed and remembered
    status = path.stat()
    edited = RICH_ZONE.replace("192.0.2.10", "192.0.2.11")
    assert len(edited) == len(RICH_ZONE)
    with path.open("r+") as file:  # in place, as an editor might
        file.write(edited)
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))
    [a] = [r for r in backend.read(ZONE, [www]) if r.rdtype == dns.rdatatype.A]
    assert [r.to_text() for r in a] == ["192.0.2.11"]


def test_a_read_after_an_apply_sees_an_edit_made_since(tmp_path):
    """The apply remembers the identity of the file it wrote, so the next read skips the
    comparison; an edit in place afterwards changes that identity and is read."""
    path = make_zone_dir(tmp_path) / "example.com.zone"
    backend = backend_at(tmp_path)
    new = a_record("new", "192.0.2.77")
    backend.apply(ZONE, [RRsetChange(new.name, new.rdtype, None, new)])
    assert [r.to_text() for r in backend.read(ZONE, [new.name])[0]] == ["192.0.2.77"]
    edited = path.read_text().replace("192.0.2.77", "192.0.2.78")
    time.sleep(0.05)  # past a tick of the file system clock; within one the times stay (test below)
    with path.open("r+") as file:
        file.write(edited)
    assert [r.to_text() for r in backend.read(ZONE, [new.name])[0]] == ["192.0.2.78"]


def test_apply_compares_the_bytes_even_when_the_stat_cannot_tell(tmp_path, monkeypatch):
    """A read trusts an unchanged inode, size and times; a same-size edit within one tick of
    the file system clock keeps all of them. The apply must still see it and write nothing."""
    monkeypatch.setattr("backends.zonefile._identity", lambda status: (status.st_ino,))
    path = make_zone_dir(tmp_path, RICH_ZONE) / "example.com.zone"
    backend = backend_at(tmp_path)
    www = dns.name.from_text("www", ZONE)
    backend.read(ZONE, [www])
    [before] = [r for r in backend.read(ZONE, [www]) if r.rdtype == dns.rdatatype.A]  # trusted, not re-read
    edited = RICH_ZONE.replace("192.0.2.10", "192.0.2.11")
    with path.open("r+") as file:
        file.write(edited)
    [stale] = [r for r in backend.read(ZONE, [www]) if r.rdtype == dns.rdatatype.A]
    assert [r.to_text() for r in stale] == ["192.0.2.10"]  # what the stat shortcut allows a read
    after = a_record("www", "192.0.2.99")
    with pytest.raises(ZoneChanged):
        backend.apply(ZONE, [RRsetChange(www, dns.rdatatype.A, before, after)])
    assert path.read_text() == edited


def test_included_files_are_read_every_time(tmp_path):
    include = tmp_path / "hosts.inc"
    include.write_text("www 300 IN A 192.0.2.10\n")
    make_zone_dir(tmp_path, EMPTY_ZONE + f"$INCLUDE {include}\n")
    backend = backend_at(tmp_path)
    www = dns.name.from_text("www", ZONE)
    assert [r.to_text() for r in backend.read(ZONE, [www])[0]] == ["192.0.2.10"]
    include.write_text("www 300 IN A 192.0.2.12\n")
    assert [r.to_text() for r in backend.read(ZONE, [www])[0]] == ["192.0.2.12"]


def test_zone_with_include_is_never_rewritten(tmp_path):
    include = tmp_path / "hosts.inc"
    include.write_text("www 300 IN A 192.0.2.10\n")
    path = make_zone_dir(tmp_path, EMPTY_ZONE + f"$INCLUDE {include}\n") / "example.com.zone"
    original = path.read_bytes()
    new = a_record("new", "192.0.2.77")
    with pytest.raises(BackendError, match=r"example.com.zone uses \$INCLUDE"):
        backend_at(tmp_path).apply(ZONE, [RRsetChange(new.name, new.rdtype, None, new)])
    assert path.read_bytes() == original


def test_new_file_is_always_newer_than_the_old_one(tmp_path):
    path = make_zone_dir(tmp_path) / "example.com.zone"
    # An old file "from the future", as after a clock step back: the new one must still be newer,
    # or a DNS server comparing times skips the reload.
    future = time.time_ns() + 3600 * 10**9
    os.utime(path, ns=(future, future))
    new = a_record("new", "192.0.2.77")
    backend_at(tmp_path).apply(ZONE, [RRsetChange(new.name, new.rdtype, None, new)])
    assert path.stat().st_mtime_ns > future


def test_many_applies_in_a_row_read_what_the_file_holds(tmp_path):
    """Each apply's zone is a layer over the one before, flattened every few applies: over
    many creates, replaces and deletes, what the backend reads is what parsing the file gives."""
    backend = ZoneFileBackend("files", {"directory": str(make_zone_dir(tmp_path))})
    names = [dns.name.from_text(f"host{i}", ZONE) for i in range(4)]
    for step in range(30):
        name = names[step % len(names)]
        current = {(r.name, r.rdtype): r for r in backend.read(ZONE, names)}
        before = current.get((name, dns.rdatatype.A))
        if step % 3 == 2 and before is not None:
            backend.apply(ZONE, [RRsetChange(name, dns.rdatatype.A, before, None)])
        else:
            after = rrset_from_text(ZONE, name.relativize(ZONE).to_text(), 300, "A", [f"192.0.2.{step + 1}"])
            backend.apply(ZONE, [RRsetChange(name, dns.rdatatype.A, before, after)])
        parsed = load_zone_file(tmp_path / "example.com.zone", ZONE)
        assert sorted(map(str, backend.read(ZONE, [ZONE, *names]))) == sorted(
            str(r) for r in zone_rrsets(parsed) if r.name in {ZONE, *names})
        assert backend.parses == 1  # every version after the first came from the applies themselves
