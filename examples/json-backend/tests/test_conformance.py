"""The gateway's conformance kit, run against this plugin."""

from __future__ import annotations

import json
import os

import dns.name
import dns.rdatatype
import pytest
from dcgw_json_backend import JsonFileBackend, rrset_from_json, rrset_to_json, empty_zone

from backends.testing import BackendConformance


class TestJsonFileBackend(BackendConformance):
    @pytest.fixture
    def backend_under_test(self, tmp_path):
        empty_zone(tmp_path, "example.com")
        yield JsonFileBackend("json", {"directory": str(tmp_path)}), dns.name.from_text("example.com")

    def served(self, backend, zone, name, rdtype):
        # Straight from the file, bypassing backend.read.
        for item in json.loads(backend.path(zone).read_text())["rrsets"]:
            rrset = rrset_from_json(item)
            if rrset.name == name and rrset.rdtype == rdtype:
                return rrset
        return None

    def mutate_behind_back(self, backend, zone, rrset):
        # Another writer edits the file itself.
        path = backend.path(zone)
        document = json.loads(path.read_text())
        document["rrsets"] = [item for item in document["rrsets"] if not (
            dns.name.from_text(item["name"]) == rrset.name
            and dns.rdatatype.from_text(item["type"]) == rrset.rdtype)] + [rrset_to_json(rrset)]
        path.write_text(json.dumps(document))

    def break_next_apply(self, backend, zone):
        real_replace = os.replace
        calls = []

        def failing_replace(source, destination):
            calls.append(source)
            if len(calls) == 1:
                raise OSError(28, "No space left on device")
            return real_replace(source, destination)

        self._patch = pytest.MonkeyPatch()
        self._patch.setattr(os, "replace", failing_replace)

    @pytest.fixture(autouse=True)
    def _undo_patch(self):
        yield
        if getattr(self, "_patch", None) is not None:
            self._patch.undo()

    def round_trips(self, backend):
        return backend.reads
