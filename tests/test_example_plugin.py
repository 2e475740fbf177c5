"""The example out-of-tree plugin: installed like any third-party package, found through its
entry point, driven by `dcgw apply`, and passing the conformance kit on its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "json-backend"


@pytest.fixture(scope="module")
def plugin_source(tmp_path_factory) -> Path:
    """A copy of the plugin's source tree, so building and testing it leave the repository clean."""
    source = tmp_path_factory.mktemp("plugin-source") / PLUGIN.name
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    return source


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory, plugin_source) -> Path:
    """The plugin built and installed into a private directory, so this environment is left as it was."""
    target = tmp_path_factory.mktemp("plugin-site")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--quiet", "--target", str(target), str(plugin_source)],
        capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.skip(f"cannot install {PLUGIN.relative_to(ROOT)} with pip: {result.stderr.strip()[-1000:]}")
    return target


def run_python(plugin_path: Path, *argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(plugin_path), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_entry_point_is_found_by_the_registry(plugin_path):
    script = """
from gateway.infra.config import BackendConfig, installed_drivers
from gateway.infra.registry import load_backend
assert "jsonfile" in installed_drivers(), installed_drivers()
backend = load_backend(BackendConfig(name="json", driver="jsonfile", options={"directory": "."}))
print(type(backend).__module__, type(backend).__name__)
"""
    result = run_python(plugin_path, "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["dcgw_json_backend", "JsonFileBackend"]


def test_dcgw_apply_through_the_plugin(plugin_path, tmp_path):
    (tmp_path / "zones").mkdir()
    run_python(plugin_path, "-c", f"import pathlib, dcgw_json_backend as p; "
                                  f"p.empty_zone(pathlib.Path({str(tmp_path / 'zones')!r}), 'example.com')")
    config = tmp_path / "dcgw.toml"
    config.write_text('[[backends]]\nname = "json"\ndriver = "jsonfile"\ndirectory = "zones"\n')
    result = run_python(plugin_path, "-m", "gateway.cli", "apply", "--config", str(config), "--domain",
                        "example.com", "--template", str(ROOT / "gateway" / "examples" / "example.com.hosting.json"),
                        "--param", "var1=192.0.2.1", "--param", "var2=192.0.2.2", "--param", "var3=t.example.net",
                        "--param", "var4=hello", "--yes")
    assert result.returncode == 0, result.stderr
    assert "on backend 'json'" in result.stderr
    rrsets = json.loads((tmp_path / "zones" / "example.com.json").read_text())["rrsets"]
    assert {"name": "www.example.com.", "type": "A", "ttl": 600, "data": ["192.0.2.1"]} in rrsets


def test_plugin_passes_the_conformance_kit(plugin_path, plugin_source):
    result = run_python(plugin_path, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", cwd=plugin_source)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "7 passed" in result.stdout and "skipped" not in result.stdout
