"""Loading and validating templates: every error names the file, the record index and the field."""

import json

import pytest

from gateway.engine.lint import lint_file
from gateway.engine.template import (
    EXTENSION_TYPES, Essential, TemplateError, TxtConflictMode, load_template, load_templates,
)
from tests.engine_helpers import make_template


def test_spec_example_template_loads(tmp_path):
    template = load_template("gateway/examples/example.com.hosting.json")
    assert template.key == ("example.com", "hosting")
    assert [r.type for r in template.records] == ["A", "A", "CNAME", "TXT", "SPFM"]
    assert template.variables() == ["var1", "var2", "var3", "var4"]
    assert template.group_ids == {"service", "verification"}


def _error(records=None, **fields) -> TemplateError:
    with pytest.raises(TemplateError) as info:
        make_template(records if records is not None else [{"type": "A", "host": "@", "pointsTo": "192.0.2.1",
                                                              "ttl": 60}], **fields)
    return info.value


@pytest.mark.parametrize("record, field, words", [
    ({"type": "A", "host": "@", "ttl": 60}, "pointsTo", "required for A"),
    ({"type": "MX", "host": "@", "pointsTo": "mx.example.net", "ttl": 60}, "priority", "required for MX"),
    ({"type": "SRV", "name": "@", "target": "t.example.net", "ttl": 60, "priority": 1, "weight": 1,
      "port": 1, "protocol": "_tcp"}, "service", "required for SRV"),
    ({"type": "TXT", "host": "@", "data": "x", "ttl": "soon"}, "ttl", "string of an integer"),
    ({"type": "TXT", "host": "@", "data": "x", "ttl": "%t%s"}, "ttl", "whole value"),
    ({"type": "MX", "host": "@", "pointsTo": "m.", "ttl": 1, "priority": 70000}, "priority", "out of range"),
    ({"type": "TXT", "host": "@", "data": "x", "ttl": 1, "essential": "No"}, "essential", "'No'"),
    ({"type": "TXT", "host": "@", "data": "x", "ttl": 1, "txtConflictMatchingMode": "Prefix"},
     "txtConflictMatchingPrefix", "required when"),
    ({"type": "TXT", "host": "@", "data": "x", "ttl": 1, "txtConflictMatchingMode": "Prefix",
      "txtConflictMatchingPrefix": "%p%"}, "txtConflictMatchingPrefix", "variables"),
    ({"type": "TXT", "host": "@", "data": "x", "ttl": 1, "groupId": "%g%"}, "groupId", "variables"),
    ({"type": "BOGUS", "host": "@", "data": "x", "ttl": 1}, "type", "unknown record type"),
    ({"type": "SOA", "host": "@", "data": "x", "ttl": 1}, "type", "managed by the DNS server"),
    ({"type": "TXT", "host": 5, "data": "x", "ttl": 1}, "host", "must be a string"),
])
def test_record_errors_name_index_and_field(record, field, words):
    error = _error([{"type": "A", "host": "@", "pointsTo": "192.0.2.1", "ttl": 60}, record])
    assert error.record == 1 and error.field == field
    assert words in str(error)
    assert str(error).startswith("test.json: records[1]: " + field)


@pytest.mark.parametrize("fields, field", [
    ({"providerId": ""}, "providerId"),
    ({"serviceId": "has space"}, "serviceId"),
    ({"syncBlock": "yes"}, "syncBlock"),
    ({"version": "1"}, "version"),
    ({"syncPubKeyDomain": "keys!.example.com"}, "syncPubKeyDomain"),
    ({"syncPubKeyDomain": "localhost"}, "syncPubKeyDomain"),
    ({"syncPubKeyDomain": "https://keys.example.com"}, "syncPubKeyDomain"),
    ({"syncPubKeyDomain": "192.0.2.1"}, "syncPubKeyDomain"),
])
def test_template_level_errors_name_the_field(fields, field):
    assert _error(**fields).field == field


def test_sync_pub_key_domain_may_hold_underscore_labels():
    template = make_template([{"type": "A", "host": "@", "pointsTo": "192.0.2.1", "ttl": 60}],
                             syncPubKeyDomain="_domainconnect.Example.com.")
    assert template.sync_pub_key_domain == "_domainconnect.example.com"


def test_records_must_be_a_non_empty_list():
    assert _error([]).field == "records"


def test_types_numbers_and_modes_are_normalised():
    template = make_template([
        {"type": "mx", "host": "@", "pointsTo": "mx.example.net", "ttl": "300", "priority": "10"},
        {"type": "TXT", "host": "@", "data": "x", "ttl": "%ttl%", "essential": "onApply",
         "txtConflictMatchingMode": "prefix", "txtConflictMatchingPrefix": "v=x"},
        {"type": "CAA", "host": "@", "data": '0 issue "ca.example.net"', "ttl": 300},
        {"type": "TYPE65534", "host": "@", "data": r"\# 2 0102", "ttl": 300},
    ], syncRedirectDomain=" a.example , B.example.")
    mx, txt, caa, generic = template.records
    assert (mx.type, mx.ttl, mx.priority) == ("MX", 300, 10)
    assert txt.ttl == "%ttl%" and txt.essential is Essential.ON_APPLY
    assert txt.txt_conflict_mode is TxtConflictMode.PREFIX
    assert caa.type == "CAA" and generic.type == "TYPE65534"
    assert template.sync_redirect_domains == ("a.example", "b.example")


@pytest.mark.parametrize("rtype", sorted(EXTENSION_TYPES))
def test_extension_types_load_as_extensions(rtype):
    template = make_template([{"type": rtype, "host": "@", "pointsTo": "x.example.net", "target": "https://x",
                               "ttl": 300}])
    assert template.records[0].is_extension


def test_directory_loading_reports_bad_files_and_duplicates(tmp_path):
    good = {"providerId": "p.example", "providerName": "P", "serviceId": "s", "serviceName": "S",
            "records": [{"type": "A", "host": "@", "pointsTo": "192.0.2.1", "ttl": 60}]}
    (tmp_path / "p.example.s.json").write_text(json.dumps(good))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "copy.json").write_text(json.dumps(good))
    (tmp_path / "broken.json").write_text("{not json")
    templates, errors = load_templates([tmp_path])
    assert list(templates) == [("p.example", "s")]
    messages = sorted(str(e) for e in errors)
    assert any("broken.json" in m and "not valid JSON" in m for m in messages)
    assert any("copy.json" in m and "duplicate template" in m for m in messages)


def test_lint_warns_about_an_underscore_sync_pub_key_domain(tmp_path):
    path = tmp_path / "provider.example.service.json"
    path.write_text(json.dumps({"providerId": "provider.example", "providerName": "P", "serviceId": "service",
                                "serviceName": "S", "syncPubKeyDomain": "_dc.provider.example",
                                "records": [{"type": "A", "host": "@", "pointsTo": "192.0.2.1", "ttl": 60}]}))
    [problem] = lint_file(path)
    assert problem.severity == "warning" and problem.error.field == "syncPubKeyDomain"
    assert "'_dc.provider.example' has an underscore label" in str(problem)
