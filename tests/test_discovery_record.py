"""`dcgw discovery-record` against the zonefile backend in a temporary directory."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone
import pytest

from gateway.commands import discovery_record

ZONE_TEXT = """\
$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1 hostmaster 2024010101 3600 600 86400 300
@ IN NS ns1
ns1 IN A 192.0.2.53
www IN A 192.0.2.10
"""
BASE_URL = "https://dc.example.net"


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="dcgw")
    discovery_record.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["discovery-record", *argv])
    return args.func(args)


def write_config(directory: Path, base_url: str = BASE_URL, backend: str = "") -> Path:
    config = directory / "dcgw.toml"
    backend = backend or '[[backends]]\nname = "files"\ndriver = "zonefile"\ndirectory = "zones"\n'
    config.write_text(f'[gateway]\nbase_url = "{base_url}"\n\n{backend}')
    return config


@pytest.fixture
def zones(tmp_path) -> Path:
    directory = tmp_path / "zones"
    directory.mkdir()
    (directory / "example.com.zone").write_text(ZONE_TEXT)
    return directory


@pytest.fixture
def config(tmp_path, zones) -> Path:
    return write_config(tmp_path)


def txt_values(zone_file: Path, origin: str = "example.com.") -> list[str] | None:
    zone = dns.zone.from_file(str(zone_file), origin=origin, relativize=False)
    rdataset = zone.get_rdataset(f"_domainconnect.{origin}", dns.rdatatype.TXT)
    if rdataset is None:
        return None
    return sorted(b"".join(rdata.strings).decode() for rdata in rdataset)


# -- printing ----------------------------------------------------------------------------------


def test_prints_the_record_a_dns_host_publishes(config, zones, capsys):
    assert run("example.com", "--config", str(config)) == 0
    out, err = capsys.readouterr()
    assert out == '_domainconnect.example.com. 3600 IN TXT "dc.example.net"\n'
    assert err == ""
    assert txt_values(zones / "example.com.zone") is None  # printing writes nothing


@pytest.mark.parametrize(("base_url", "value"), [
    ("https://dc.example.net/", "dc.example.net"),
    ("https://dc.example.net:8443", "dc.example.net:8443"),
    ("https://example.net/domainconnect/", "example.net/domainconnect"),
])
def test_value_is_base_url_without_scheme_and_trailing_slash(tmp_path, capsys, base_url, value):
    config = write_config(tmp_path, base_url=base_url, backend=" ")
    assert run("example.com", "--config", str(config)) == 0
    assert capsys.readouterr().out == f'_domainconnect.example.com. 3600 IN TXT "{value}"\n'


def test_json_output(config, capsys):
    assert run("Example.COM.", "--config", str(config), "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "name": "_domainconnect.example.com.", "type": "TXT", "ttl": 3600, "data": '"dc.example.net"',
        "value": "dc.example.net"}


def test_unicode_domain_is_printed_in_punycode(config, capsys):
    assert run("bücher.example", "--config", str(config)) == 0
    assert capsys.readouterr().out == '_domainconnect.xn--bcher-kva.example. 3600 IN TXT "dc.example.net"\n'


def test_http_base_url_prints_a_warning(tmp_path, capsys):
    config = write_config(tmp_path, base_url="http://127.0.0.1:8080", backend=" ")
    assert run("example.com", "--config", str(config)) == 0
    out, err = capsys.readouterr()
    assert out == '_domainconnect.example.com. 3600 IN TXT "127.0.0.1:8080"\n'
    assert "warning: gateway.base_url 'http://127.0.0.1:8080' is not https" in err


def test_default_config_is_used_without_config(capsys):
    assert run("example.com") == 0
    assert capsys.readouterr().out == '_domainconnect.example.com. 3600 IN TXT "127.0.0.1:8080"\n'


# -- writing -----------------------------------------------------------------------------------


def test_write_adds_the_record_and_a_second_run_is_a_no_op(config, zones, capsys):
    zone_file = zones / "example.com.zone"
    assert run("example.com", "--config", str(config), "--write") == 0
    out, err = capsys.readouterr()
    assert out == '_domainconnect.example.com. 3600 IN TXT "dc.example.net"\n'
    assert "wrote _domainconnect.example.com. TXT to zone example.com on backend 'files'" in err
    assert txt_values(zone_file) == ["dc.example.net"]
    text = zone_file.read_text()
    assert "\nwww IN A 192.0.2.10\n" in text  # untouched lines stay as they were written

    assert run("example.com", "--config", str(config), "--write") == 0
    assert "already holds" in capsys.readouterr().err
    assert zone_file.read_text() == text  # not rewritten: the serial did not move either


def test_write_replaces_a_different_value(config, zones, capsys):
    zone_file = zones / "example.com.zone"
    zone_file.write_text(ZONE_TEXT + '_domainconnect 300 IN TXT "old.example.org"\n'
                         '_domainconnect 300 IN TXT "other.example.org"\n')
    assert run("example.com", "--config", str(config), "--write", "--json") == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["written"] is True
    assert 'replaced "old.example.org", "other.example.org"' in err
    assert txt_values(zone_file) == ["dc.example.net"]
    assert "_domainconnect 3600 IN TXT" in zone_file.read_text()


def test_write_keeps_the_same_value_with_another_ttl(config, zones, capsys):
    zone_file = zones / "example.com.zone"
    zone_file.write_text(ZONE_TEXT + '_domainconnect 600 IN TXT "dc.example.net"\n')
    before = zone_file.read_text()
    assert run("example.com", "--config", str(config), "--write", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "name": "_domainconnect.example.com.", "type": "TXT", "ttl": 3600, "data": '"dc.example.net"',
        "value": "dc.example.net", "written": False, "backend": "files", "zone": "example.com"}
    assert zone_file.read_text() == before


def test_write_unicode_domain_to_its_punycode_zone(tmp_path, zones, capsys):
    (zones / "xn--bcher-kva.example.zone").write_text(ZONE_TEXT.replace("example.com.", "xn--bcher-kva.example."))
    config = write_config(tmp_path)
    assert run("BÜCHER.example", "--config", str(config), "--write") == 0
    assert txt_values(zones / "xn--bcher-kva.example.zone", "xn--bcher-kva.example.") == ["dc.example.net"]
    assert txt_values(zones / "example.com.zone") is None


# -- refusals ----------------------------------------------------------------------------------


def test_refuses_a_name_inside_a_zone(config, zones, capsys):
    assert run("shop.example.com", "--config", str(config), "--write") == 2
    err = capsys.readouterr().err
    assert "shop.example.com is inside zone example.com on backend 'files'" in err
    assert "zone's apex only" in err
    assert txt_values(zones / "example.com.zone") is None


def test_refuses_a_domain_no_backend_hosts(config, capsys):
    assert run("example.org", "--config", str(config), "--write") == 2
    assert "no configured backend hosts a zone for example.org" in capsys.readouterr().err


def test_refuses_to_add_txt_next_to_a_cname(config, zones, capsys):
    zone_file = zones / "example.com.zone"
    zone_file.write_text(ZONE_TEXT + "_domainconnect IN CNAME _domainconnect.provider.example.\n")
    before = zone_file.read_text()
    assert run("example.com", "--config", str(config), "--write") == 2
    err = capsys.readouterr().err
    assert "_domainconnect.example.com. is a CNAME to _domainconnect.provider.example." in err
    assert zone_file.read_text() == before


@pytest.mark.parametrize(("domain", "message"), [
    ("", "DOMAIN: required"),
    ("com", "DOMAIN 'com' is not a domain with a public suffix"),
    ("exa mple.com", "DOMAIN 'exa mple.com' has an invalid label 'exa mple'"),
    ("*.example.com", "has an invalid label '*'"),
    ("example..com", "DOMAIN 'example..com' is not a valid domain name"),
    ("_domainconnect.example.com", "give the zone (example.com), not the record name"),
    ("a" * 64 + ".com", "is not a valid domain name"),
])
def test_refuses_a_bad_domain(config, capsys, domain, message):
    assert run(domain, "--config", str(config)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("dcgw discovery-record: ") and message in err


def test_refuses_a_missing_config(tmp_path, capsys):
    assert run("example.com", "--config", str(tmp_path / "missing.toml")) == 2
    assert "missing.toml: cannot read config file" in capsys.readouterr().err


def test_refuses_a_config_that_is_not_toml(tmp_path, capsys):
    config = tmp_path / "dcgw.toml"
    config.write_text("[gateway\n")
    assert run("example.com", "--config", str(config)) == 2
    assert "dcgw.toml: not valid TOML" in capsys.readouterr().err


@pytest.mark.parametrize(("base_url", "message"), [
    ("dc.example.net", "must be an http(s) URL"),
    ("ftp://dc.example.net", "must be an http(s) URL"),
    ("https://:8443/", "must be an absolute http(s) URL"),
    ("https://dc.example.net/?x=1", "must not hold a user name, query or fragment"),
    ("https://admin@dc.example.net", "must not hold a user name, query or fragment"),
    ("https://bücher.example", "must be ASCII"),
    ("https://dc.example.net/" + "p" * 260, "is longer than the 255 characters of one TXT string"),
])
def test_refuses_a_base_url_that_cannot_be_discovered(tmp_path, capsys, base_url, message):
    config = write_config(tmp_path, base_url=base_url, backend=" ")
    assert run("example.com", "--config", str(config)) == 2
    err = capsys.readouterr().err
    assert "gateway.base_url" in err and message in err


def test_refuses_a_backend_the_config_cannot_start(tmp_path, capsys):
    config = write_config(tmp_path, backend='[[backends]]\nname = "files"\ndriver = "zonefile"\n'
                                            'directory = "nowhere"\n')
    assert run("example.com", "--config", str(config), "--write") == 2
    assert "backend 'files'" in capsys.readouterr().err


# -- backend failures: exit 4 --------------------------------------------------------------------


def test_backend_failure_on_write_exits_4(config, zones, capsys):
    zone_file = zones / "example.com.zone"
    (zones / "extra.inc").write_text("extra IN A 192.0.2.99\n")
    zone_file.write_text(ZONE_TEXT + f"$INCLUDE {zones / 'extra.inc'}\n")
    before = zone_file.read_text()
    assert run("example.com", "--config", str(config), "--write") == 4
    err = capsys.readouterr().err
    assert "backend 'files'" in err and "$INCLUDE" in err
    assert zone_file.read_text() == before


def test_backend_failure_on_read_exits_4(config, zones, capsys):
    (zones / "example.com.zone").write_text("this is not a zone file\n")
    assert run("example.com", "--config", str(config), "--write") == 4
    err = capsys.readouterr().err
    assert err.startswith("dcgw discovery-record: backend 'files'")


def test_failing_reload_exits_4_but_the_record_is_written(tmp_path, zones, capsys):
    config = write_config(tmp_path, backend='[[backends]]\nname = "files"\ndriver = "zonefile"\n'
                                            'directory = "zones"\nreload_command = "false {zone}"\n')
    assert run("example.com", "--config", str(config), "--write") == 4
    assert "backend 'files'" in capsys.readouterr().err
    assert txt_values(zones / "example.com.zone") == ["dc.example.net"]


def test_dns_name_of_the_record():
    record = discovery_record.DiscoveryRecord(dns.name.from_text("example.com"), "dc.example.net")
    assert record.name == dns.name.from_text("_domainconnect.example.com")
