"""`dcgw users hash-password`: the printed hash verifies and signs the user in through the config."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from argon2 import PasswordHasher, Type, extract_parameters

from gateway.commands import users
from gateway.infra.config import load_config
from gateway.web.auth.local import LocalAuthenticator

PASSWORD = "a long and memorable passphrase"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dcgw")
    users.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def hash_from_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str) -> str:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert run(["users", "hash-password"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


def test_printed_hash_is_argon2id_and_verifies(monkeypatch, capsys) -> None:
    printed = hash_from_stdin(monkeypatch, capsys, PASSWORD + "\n")
    assert printed.endswith("\n") and printed.count("\n") == 1
    password_hash = printed.strip()
    assert password_hash.startswith("$argon2id$")
    assert extract_parameters(password_hash).type is Type.ID
    assert PasswordHasher().verify(password_hash, PASSWORD)


def test_printed_hash_works_in_a_config(monkeypatch, capsys, tmp_path: Path) -> None:
    password_hash = hash_from_stdin(monkeypatch, capsys, PASSWORD + "\n").strip()
    config_file = tmp_path / "config.toml"
    config_file.write_text(textwrap.dedent(f"""\
        [auth]
        driver = "local"

        [[auth.users]]
        username = "alice"
        password_hash = "{password_hash}"
        zones = ["example.com"]
        """))
    authenticator = LocalAuthenticator(load_config(config_file).auth)
    user = authenticator.authenticate("alice", PASSWORD)
    assert user is not None and user.username == "alice" and user.zones == ("example.com",)
    assert authenticator.authenticate("alice", PASSWORD + " ") is None


def test_each_run_uses_a_fresh_salt(monkeypatch, capsys) -> None:
    first = hash_from_stdin(monkeypatch, capsys, PASSWORD + "\n")
    second = hash_from_stdin(monkeypatch, capsys, PASSWORD + "\n")
    assert first != second


def test_only_the_line_ending_is_removed(monkeypatch, capsys) -> None:
    password_hash = hash_from_stdin(monkeypatch, capsys, "  spaces kept  \r\nsecond line ignored\n").strip()
    assert PasswordHasher().verify(password_hash, "  spaces kept  ")


def test_password_without_a_final_newline(monkeypatch, capsys) -> None:
    password_hash = hash_from_stdin(monkeypatch, capsys, PASSWORD).strip()
    assert PasswordHasher().verify(password_hash, PASSWORD)


@pytest.mark.parametrize("text", ["", "\n", "\r\n"])
def test_empty_password_on_stdin_is_refused(monkeypatch, capsys, text: str) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert run(["users", "hash-password"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "password" in err and "empty" in err


def test_terminal_asks_twice_without_echo(monkeypatch, capsys) -> None:
    prompts: list[str] = []

    def fake_getpass(prompt: str = "Password: ") -> str:
        prompts.append(prompt)
        return PASSWORD

    monkeypatch.setattr(sys, "stdin", FakeTerminal())
    monkeypatch.setattr("getpass.getpass", fake_getpass)
    assert run(["users", "hash-password"]) == 0
    assert prompts == ["Password: ", "Repeat password: "]
    assert PasswordHasher().verify(capsys.readouterr().out.strip(), PASSWORD)


def test_terminal_passwords_that_differ_are_refused(monkeypatch, capsys) -> None:
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr(sys, "stdin", FakeTerminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert run(["users", "hash-password"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "differ" in err


def test_empty_terminal_password_is_refused(monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys, "stdin", FakeTerminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "")
    assert run(["users", "hash-password"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "empty" in err


def test_password_is_not_accepted_as_an_argument() -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(["users", "hash-password", PASSWORD])
    assert exit_info.value.code == 2


def test_through_a_real_process() -> None:
    script = ("import argparse, sys\nfrom gateway.commands import users\n"
              "parser = argparse.ArgumentParser(prog='dcgw')\n"
              "users.register(parser.add_subparsers(dest='command', required=True))\n"
              "args = parser.parse_args(sys.argv[1:])\nsys.exit(args.func(args))\n")
    result = subprocess.run([sys.executable, "-c", script, "users", "hash-password"], input=PASSWORD + "\n",
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert PasswordHasher().verify(result.stdout.strip(), PASSWORD)
    refused = subprocess.run([sys.executable, "-c", script, "users", "hash-password"], input="",
                             capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 2
    assert refused.stdout == "" and "empty" in refused.stderr
