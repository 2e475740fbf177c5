"""`dcgw apply` end to end: a real process, a real config, the zonefile backend, every exit status."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import filelock
import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "gateway" / "examples" / "example.com.hosting.json"
PARAMS = ["--param", "var1=192.0.2.1", "--param", "var2=192.0.2.2", "--param", "var3=target.example.net",
          "--param", "var4=verified"]
ZONE_TEXT = """\
$ORIGIN example.com.
$TTL 3600
@ IN SOA ns1 hostmaster 2024010101 3600 600 86400 300
@ IN NS ns1
ns1 IN A 192.0.2.53
www IN A 192.0.2.10
other IN TXT "untouched"
"""
PROMPT = "Apply these changes to example.com on backend files? [y/N]"


@pytest.fixture
def setup(tmp_path):
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "example.com.zone").write_text(ZONE_TEXT)
    config = tmp_path / "dcgw.toml"
    config.write_text('[ttl]\nminimum = 300\n\n[[backends]]\nname = "files"\ndriver = "zonefile"\n'
                      'directory = "zones"\n')
    return config, zones / "example.com.zone"


def dcgw_apply(config: Path, *extra: str, params=PARAMS, template: Path = TEMPLATE, domain: str = "example.com"):
    argv = [sys.executable, "-m", "gateway.cli", "apply", "--config", str(config), "--domain", domain,
            "--template", str(template), *params, *extra]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)


def test_yes_applies_and_a_second_run_has_nothing_to_do(setup):
    config, zone_file = setup
    result = dcgw_apply(config, "--yes")
    assert result.returncode == 0, result.stderr
    assert "+ www" in result.stdout and "- www" in result.stdout
    assert "applied 5 RRset change(s) to example.com on backend 'files'" in result.stderr
    text = zone_file.read_text()
    assert "www 600 IN A 192.0.2.1" in text and "192.0.2.10" not in text
    assert '\nother IN TXT "untouched"\n' in text  # untouched lines stay as written
    assert "m 600 IN A 192.0.2.2" in text

    again = dcgw_apply(config, "--yes")
    assert again.returncode == 0, again.stderr
    assert "nothing to change" in again.stdout
    assert zone_file.read_text() == text


def test_json_output(setup):
    config, _ = setup
    result = dcgw_apply(config, "--yes", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert {"add", "delete", "zone"} <= document.keys()
    assert {"name": "www", "type": "A", "ttl": 600, "data": "192.0.2.1"} in document["add"]
    assert document["delete"] == [{"name": "www", "type": "A", "ttl": 3600, "data": "192.0.2.10"}]
    # `zone` covers the touched names only, as they are after the apply.
    names = {record["name"] for record in document["zone"]}
    assert {"www", "m", "webmail", "example", "@"} <= names and "other" not in names
    assert {"name": "@", "type": "NS", "ttl": 3600, "data": "ns1.example.com."} in document["zone"]


def test_ttl_policy_comes_from_the_config(setup):
    config, zone_file = setup
    config.write_text(config.read_text().replace("minimum = 300", "minimum = 900"))
    assert dcgw_apply(config, "--yes").returncode == 0
    # The template asks for 600; the config's minimum raises it.
    assert "www 900 IN A 192.0.2.1" in zone_file.read_text()


def test_without_yes_or_terminal_nothing_is_applied(setup):
    config, zone_file = setup
    result = dcgw_apply(config)
    assert result.returncode == 1
    assert "not applied to example.com on backend 'files'" in result.stderr and "--yes" in result.stderr
    assert "+ www" in result.stdout
    assert zone_file.read_text() == ZONE_TEXT


def run_on_terminal(config: Path, answer: str, before_answer=None) -> tuple[int, str]:
    """Run `dcgw apply` with a terminal on stdin, answer the prompt, return (status, stderr)."""
    controller, terminal = pty.openpty()
    argv = [sys.executable, "-m", "gateway.cli", "apply", "--config", str(config), "--domain", "example.com",
            "--template", str(TEMPLATE), *PARAMS]
    process = subprocess.Popen(argv, cwd=ROOT, stdin=terminal, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    os.close(terminal)
    try:
        seen = b""
        deadline = time.monotonic() + 60
        while PROMPT.encode() not in seen:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no prompt; stderr so far: {seen!r}"
            ready, _, _ = select.select([process.stderr], [], [], remaining)
            chunk = os.read(process.stderr.fileno(), 4096) if ready else b""
            assert chunk or process.poll() is None, f"exited without asking: {seen!r}"
            seen += chunk
        if before_answer is not None:
            before_answer()
        os.write(controller, answer.encode() + b"\n")
        rest = process.communicate(timeout=60)[1]
        return process.returncode, (seen + rest).decode()
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
            process.wait()


def test_terminal_confirmation_yes(setup):
    config, zone_file = setup
    status, stderr = run_on_terminal(config, "y")
    assert status == 0, stderr
    assert "www 600 IN A 192.0.2.1" in zone_file.read_text()


def test_terminal_confirmation_no(setup):
    config, zone_file = setup
    status, stderr = run_on_terminal(config, "")
    assert status == 1
    assert "not applied to example.com on backend 'files'" in stderr
    assert zone_file.read_text() == ZONE_TEXT


def test_zone_changed_while_waiting_for_confirmation_exits_3(setup):
    config, zone_file = setup
    changed = ZONE_TEXT.replace("www IN A 192.0.2.10", "www IN A 198.51.100.1")

    status, stderr = run_on_terminal(config, "y", before_answer=lambda: zone_file.write_text(changed))
    assert status == 3, stderr
    assert "backend 'files': zone example.com:" in stderr and "changed since they were read" in stderr
    assert zone_file.read_text() == changed


@pytest.mark.parametrize(("change", "message"), [
    ({"params": PARAMS[:-2]}, "var4"),
    ({"params": ["--param", "var1=not-an-address", *PARAMS[2:]]}, "'not-an-address' is not an IPv4 address"),
    ({"params": ["--param", "novalue", *PARAMS]}, "--param 'novalue': expected NAME=VALUE"),
    ({"domain": "example.org"}, "no configured backend hosts a zone for example.org"),
    ({"domain": "bad..name"}, "--domain 'bad..name' is not a valid domain name"),
])
def test_invalid_input_exits_2_and_writes_nothing(setup, change, message):
    config, zone_file = setup
    result = dcgw_apply(config, "--yes", **change)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert zone_file.read_text() == ZONE_TEXT


def test_bad_template_exits_2(setup, tmp_path):
    config, zone_file = setup
    template = tmp_path / "broken.json"
    template.write_text('{"providerId": "x", "records": [{"type": "A", "host": "@"}]}')
    result = dcgw_apply(config, "--yes", template=template)
    assert result.returncode == 2
    assert "broken.json" in result.stderr
    assert zone_file.read_text() == ZONE_TEXT


@pytest.mark.parametrize(("config_text", "message"), [
    ('[[backends]]\nname = "files"\ndriver = "zonefil"\ndirectory = "zones"\n',
     "dcgw.toml: backends[0].driver: no backend driver 'zonefil'"),
    ('[[backends]]\nname = "files"\ndriver = "zonefile"\ndirectory = "nowhere"\n',
     "backend 'files': option 'directory':"),
    ('[[backends]]\nname = "files"\n', "dcgw.toml: backends[0].driver: is required"),
    ('[ttl\n', "dcgw.toml: not valid TOML"),
])
def test_bad_config_exits_2(setup, config_text, message):
    config, zone_file = setup
    config.write_text(config_text)
    result = dcgw_apply(config, "--yes")
    assert result.returncode == 2
    assert message in result.stderr
    assert zone_file.read_text() == ZONE_TEXT


def test_unreadable_zone_exits_4(setup):
    config, zone_file = setup
    zone_file.write_text("@ IN SOA broken\n")
    result = dcgw_apply(config, "--yes")
    assert result.returncode == 4
    assert "backend 'files': zone example.com:" in result.stderr and "not a valid zone file" in result.stderr


def test_failed_reload_exits_4_naming_backend_and_zone(setup):
    config, zone_file = setup
    config.write_text('[[backends]]\nname = "files"\ndriver = "zonefile"\ndirectory = "zones"\n'
                      f'reload_command = "{sys.executable} -c \'raise SystemExit(7)\' {{zone}}"\n')
    result = dcgw_apply(config, "--yes")
    assert result.returncode == 4
    assert "backend 'files': zone example.com: written, but reload_command" in result.stderr
    assert "exited with status 7" in result.stderr


def test_held_lock_exits_4(setup):
    config, zone_file = setup
    config.write_text('[[backends]]\nname = "files"\ndriver = "zonefile"\ndirectory = "zones"\nlock_timeout = 0.3\n')
    with filelock.FileLock(f"{zone_file}.lock"):
        result = dcgw_apply(config, "--yes")
    assert result.returncode == 4
    assert "another writer held example.com.zone.lock" in result.stderr
    assert zone_file.read_text() == ZONE_TEXT


def test_group_and_host_select_what_is_applied(setup):
    config, zone_file = setup
    result = dcgw_apply(config, "--yes", "--group", "verification", "--host", "shop")
    assert result.returncode == 0, result.stderr
    text = zone_file.read_text()
    assert 'example.shop 600 IN TXT "verified"' in text
    assert "\nwww IN A 192.0.2.10\n" in text and "192.0.2.1\n" not in text
