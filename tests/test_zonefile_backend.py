"""The zonefile backend: the conformance kit, then what is particular to master files."""

from __future__ import annotations

import os
from pathlib import Path

import dns.name
import pytest

from backends.testing import BackendConformance
from backends.zonefile import ZoneFileBackend

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


def _create(rrset):
    from backends.base import RRsetChange
    return RRsetChange(rrset.name, rrset.rdtype, None, rrset)
