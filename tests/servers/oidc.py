"""A real OpenID Provider on 127.0.0.1: node-oidc-provider (pinned), installed from the npm
registry on first use into a cache directory, run by `oidc_provider.mjs` beside this file.

    with openid_provider(tmp_path, clients=[...], accounts={"alice": {"zones": ["example.com"]}}) as issuer:
        ...

Skips, saying why, only when node or npm is missing or the npm registry cannot be reached.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from filelock import FileLock

from tests.servers.common import free_port, stop, wait_for_port

OIDC_PROVIDER_VERSION = "9.6.1"
CACHE = Path(os.environ.get("DCGW_TEST_CACHE", Path.home() / ".cache" / "dcgw-tests")) / "oidc-provider"
SCRIPT = Path(__file__).with_name("oidc_provider.mjs")
NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH",
                  "network", "proxy")


def provider_module() -> Path:
    """The installed oidc-provider's entry module, installing the pinned version when missing."""
    module = CACHE / "node_modules" / "oidc-provider" / "lib" / "index.js"
    if installed_version() == OIDC_PROVIDER_VERSION:
        return module
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed to run the OpenID Provider (Debian: nodejs npm)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CACHE.parent / "oidc-provider.lock"), timeout=600):
        if installed_version() != OIDC_PROVIDER_VERSION:
            (CACHE / "package.json").write_text(json.dumps({"name": "dcgw-test-oidc-provider", "private": True}))
            result = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--omit=dev",
                                     f"oidc-provider@{OIDC_PROVIDER_VERSION}"],
                                    cwd=CACHE, capture_output=True, text=True, timeout=600)
            if result.returncode != 0:
                output = (result.stderr or result.stdout)[-2000:]
                if any(marker in output for marker in NETWORK_ERRORS):
                    pytest.skip(f"the npm registry cannot be reached to install oidc-provider@"
                                f"{OIDC_PROVIDER_VERSION}: {output.strip().splitlines()[-1]}")
                pytest.fail(f"npm install oidc-provider@{OIDC_PROVIDER_VERSION} failed:\n{output}")
    return module


def installed_version() -> str | None:
    try:
        return json.loads((CACHE / "node_modules" / "oidc-provider" / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def web_client(client_id: str, secret: str, gateway_url: str) -> dict:
    """The gateway registered as a confidential client: its callback and its home after logout."""
    return {"client_id": client_id, "client_secret": secret, "redirect_uris": [f"{gateway_url}/login/callback"],
            "post_logout_redirect_uris": [f"{gateway_url}/"], "grant_types": ["authorization_code"],
            "response_types": ["code"], "token_endpoint_auth_method": "client_secret_basic"}


@contextmanager
def openid_provider(directory: Path, *, clients: list[dict], accounts: dict[str, dict]) -> Iterator[str]:
    """Run the provider until the block ends; yields its issuer URL."""
    module = provider_module()
    port = free_port()
    log = directory / "oidc-provider.log"
    environment = {**os.environ, "OIDC_PROVIDER_MODULE": str(module), "NODE_ENV": "test",
                   "OIDC_TEST_CONFIG": json.dumps({"port": port, "clients": clients, "accounts": accounts})}
    with log.open("w") as output:
        process = subprocess.Popen([shutil.which("node") or "node", str(SCRIPT)], env=environment,
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, timeout=30, log=log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
