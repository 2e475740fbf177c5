"""The package as a plain `pip install` leaves it: a wheel in a new virtual environment,
run from an empty directory, far from the checkout. The embedded default must serve the demo."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.servers.common import free_port, stop, wait_for_port

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The `bin` directory of a venv holding the project installed from its wheel."""
    work = tmp_path_factory.mktemp("fresh-install")
    source = work / "source"
    source.mkdir()
    for name in ("gateway", "backends"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"),
         str(source)], cwd=work)
    [wheel] = (work / "dist").glob("*.whl")
    # System site packages spare downloading the dependencies; the project itself comes from the wheel.
    run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(work / "venv")], cwd=work)
    python = work / "venv" / "bin" / "python"
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)], cwd=work)
    return python.parent


def clean_environment(**extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XDG_DATA_HOME")}
    return {**environment, **extra}


def run(command: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=clean_environment(), timeout=300,
                            **kwargs)
    assert result.returncode == 0, result.stderr
    return result


def test_the_package_comes_from_the_wheel_not_the_checkout(installed, tmp_path):
    result = run([str(installed / "python"), "-c", "import gateway, backends; print(gateway.__file__)"], cwd=tmp_path)
    location = Path(result.stdout.strip())
    assert installed.parent in location.parents and ROOT not in location.parents


def test_embedded_default_serves_the_demo_from_any_directory(installed, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        process = subprocess.Popen([str(installed / "dcgw"), "serve", "--port", str(port)], cwd=tmp_path,
                                   stdout=output, stderr=subprocess.STDOUT, env=clean_environment())
    try:
        wait_for_port(port, process, timeout=60, log=log)
        base = f"http://127.0.0.1:{port}"
        settings = httpx.get(f"{base}/v2/example.com/settings")
        assert settings.status_code == 200 and settings.json()["providerId"] == "localhost"
        printed = log.read_text()
        assert f"State and zones in {tmp_path / 'dcgw-data'}" in printed
        link = re.search(r"Try it \(sign in as demo / demo\): (\S+)", printed).group(1)
        with httpx.Client(follow_redirects=True) as client:
            page = client.get(link)
            assert page.status_code == 200 and 'name="password"' in page.text
            form = {k: html.unescape(v) for k, v in re.findall(r'name="(csrf_token|next)" value="([^"]*)"', page.text)}
            consent = client.post(f"{base}/login", data={**form, "username": "demo", "password": "demo"})
            assert consent.status_code == 200
            assert "192.0.2.10" in consent.text  # the records the example template would add
        assert httpx.get(f"{base}/readyz").json() == {"status": "ok"}
    finally:
        stop(process)
    assert (tmp_path / "dcgw-data" / "zones" / "example.com.zone").is_file()
    assert (tmp_path / "dcgw-data" / "dcgw.sqlite").is_file()


def test_embedded_default_data_follows_xdg_data_home(installed, tmp_path):
    data_home = tmp_path / "xdg"
    result = subprocess.run([str(installed / "dcgw"), "clients", "list", "--json"], cwd=tmp_path, capture_output=True,
                            text=True, env=clean_environment(XDG_DATA_HOME=str(data_home)), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert (data_home / "dcgw" / "dcgw.sqlite").is_file()


def test_discovery_record_and_version_from_a_plain_install(installed, tmp_path):
    record = run([str(installed / "dcgw"), "discovery-record", "example.com"], cwd=tmp_path)
    assert record.stdout.strip() == '_domainconnect.example.com. 3600 IN TXT "127.0.0.1:8080"'
    assert re.fullmatch(r"dcgw \d+\.\d+\.\d+\S*\n", run([str(installed / "dcgw"), "--version"], cwd=tmp_path).stdout)
