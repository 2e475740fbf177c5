"""The command line as an operator meets it: version, help, ports, one `--config` rule, the
linter's typo reports, and every command of the README run as written."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_operator_config import run_dcgw

ROOT = Path(__file__).resolve().parents[1]
HEAVY_MODULES = ("sqlalchemy", "alembic", "starlette", "uvicorn", "boto3", "httpx", "jinja2", "argon2")
TEMPLATE = {"providerId": "a.example", "providerName": "A", "serviceId": "web", "serviceName": "Web", "version": 1,
            "records": [{"type": "A", "host": "@", "pointsTo": "192.0.2.1", "ttl": 300}]}


# -- item 8 --------------------------------------------------------------------------------------


def test_version():
    result = run_dcgw("--version")
    assert result.returncode == 0
    assert re.fullmatch(r"dcgw (\d+\.\d+\.\d+\S*|unknown \(not installed\))\n", result.stdout)


def test_help_imports_no_heavy_library():
    probe = ("import sys; from gateway.cli import build_parser; build_parser(); "
             f"print([m for m in {HEAVY_MODULES!r} if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.stdout.strip() == "[]", result.stderr


def test_preview_imports_neither_the_web_stack_nor_the_database():
    zone = ROOT / "gateway" / "examples" / "example.com.zone"
    template = ROOT / "gateway" / "examples" / "example.com.hosting.json"
    probe = ("import sys; from gateway.cli import main; "
             f"main(['preview', '--zone', {str(zone)!r}, '--domain', 'example.com', '--template', {str(template)!r}, "
             "'--param', 'var1=192.0.2.1', '--param', 'var2=192.0.2.2', '--param', 'var3=mail.example.net', "
             "'--param', 'var4=x', '--json']); "
             f"print([m for m in {HEAVY_MODULES!r} if m in sys.modules], file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert json.loads(result.stdout)["add"]
    assert result.stderr.strip() == "[]"


@pytest.mark.parametrize("port", ["80000", "0", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error(port):
    result = run_dcgw("serve", "--port", port)
    assert result.returncode == 2
    assert "argument --port:" in result.stderr and "is not a port number (1-65535)" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_fails_before_printing_the_link(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_dcgw("serve", "--port", str(port), env={"XDG_DATA_HOME": str(tmp_path)}, timeout=60)
    assert result.returncode == 2
    assert "Try it" not in result.stderr
    assert f"dcgw serve: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["apply", "clients", "discovery-record", "preview", "serve", "templates",
                                     "templates lint", "users", "users hash-password"])
def test_help_texts_read_as_sentences(command):
    result = run_dcgw(*command.split(), "--help")
    assert result.returncode == 0
    description = result.stdout.split("\n\n")[1]
    assert not description.startswith("`") and description[0].isupper(), description


def test_top_level_help_lists_commands_without_backticks():
    result = run_dcgw("--help")
    assert "`" not in result.stdout and "--version" in result.stdout


@pytest.mark.parametrize("command", [["clients", "list"], ["discovery-record", "example.com"]])
def test_every_command_takes_the_embedded_default_without_config(tmp_path, command):
    result = run_dcgw(*command, env={"XDG_DATA_HOME": str(tmp_path)}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_apply_takes_config_like_the_others(tmp_path):
    result = run_dcgw("apply", "--help")
    assert "[--config FILE]" in result.stdout


# -- item 7: the linter ---------------------------------------------------------------------------


def lint(tmp_path: Path, document: dict, *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / f"{document.get('providerId', 'x')}.{document.get('serviceId', 'y')}.json"
    path.write_text(json.dumps(document))
    return run_dcgw("templates", "lint", *extra, str(path))


def test_unknown_template_keys_are_errors_with_a_suggestion(tmp_path):
    result = lint(tmp_path, {**TEMPLATE, "syncRedirectDomian": "a.example", "syncPubKeyDomian": "keys.a.example"})
    assert result.returncode == 1
    assert "syncRedirectDomian: unknown template key (did you mean 'syncRedirectDomain'?)" in result.stdout
    assert "syncPubKeyDomian: unknown template key (did you mean 'syncPubKeyDomain'?)" in result.stdout


def test_unknown_record_keys_are_errors_even_when_they_hide_a_required_one(tmp_path):
    record = {"type": "A", "host": "@", "pointsTo": "192.0.2.1", "tl": 300}
    result = lint(tmp_path, {**TEMPLATE, "records": [record]})
    assert result.returncode == 1
    assert "records[0]: tl: unknown record key (did you mean 'ttl'?)" in result.stdout


def test_a_key_with_the_wrong_case_is_named(tmp_path):
    result = lint(tmp_path, {**TEMPLATE, "syncpubkeydomain": "keys.a.example"})
    assert "syncpubkeydomain: unknown template key (did you mean 'syncPubKeyDomain'?)" in result.stdout


def test_a_prefix_without_prefix_mode_is_reported(tmp_path):
    record = {"type": "TXT", "host": "@", "data": "v=x", "ttl": 300, "txtConflictMatchingMode": "All",
              "txtConflictMatchingPrefix": "v=x"}
    result = lint(tmp_path, {**TEMPLATE, "records": [record]})
    assert "records[0]: txtConflictMatchingPrefix: is ignored: txtConflictMatchingMode is 'All', not 'Prefix'" \
        in result.stdout


def test_a_clean_template_lints_clean(tmp_path):
    result = lint(tmp_path, TEMPLATE)
    assert result.returncode == 0
    assert result.stdout.strip() == "1 templates: 1 valid, 0 invalid, 0 warnings"


def test_a_missing_path_is_one_line(tmp_path):
    result = run_dcgw("templates", "lint", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    assert result.stderr == f"dcgw templates lint: {tmp_path / 'nowhere'}: no such file or directory\n"
    assert result.stdout == ""


def test_an_empty_directory_says_so(tmp_path):
    result = run_dcgw("templates", "lint", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == f"dcgw templates lint: {tmp_path}: the directory holds no template files (*.json)\n"


# -- item 9: every README command runs as written --------------------------------------------------


def readme_commands() -> list[str]:
    """The indented command lines of the README (continuations joined), without the set-up lines."""
    commands, current = [], ""
    for line in (ROOT / "README.md").read_text().splitlines():
        if current:
            current += " " + line.strip()
        elif line.startswith("    ") and re.match(r"\s+(dcgw|printf|pip|python) ", line):
            current = line.strip()
        else:
            continue
        if current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        commands.append(current)
        current = ""
    return [c for c in commands if not c.startswith("pip install")]


def test_the_readme_has_commands_to_check():
    commands = readme_commands()
    assert any(c.startswith("dcgw preview") for c in commands)
    assert any("dcgw users hash-password" in c for c in commands)


@pytest.mark.parametrize("command", readme_commands())
def test_each_readme_command_runs_from_the_checkout_root(command, tmp_path):
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "dcgw").write_text(f"#!/bin/sh\nexec {sys.executable} -m gateway.cli \"$@\"\n")
    (shim / "dcgw").chmod(0o755)
    environment = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
                   "XDG_DATA_HOME": str(tmp_path / "data")}
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, env=environment,
                            timeout=120)
    assert result.returncode == 0, f"{command}\n{result.stderr}"
