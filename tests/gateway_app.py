"""A gateway built from a real config for tests: zone files in a temporary directory, users
with argon2 hashes, templates written by the test."""

from __future__ import annotations

import contextlib
import html
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.testclient import TestClient

from gateway.infra.config import Config, load_config
from gateway.web.app import create_app
from tests.servers.common import stop, wait_for_port

PASSWORD = "correct horse battery staple"
METRICS_TOKEN = "test-metrics-token"
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}  # /metrics is served to its bearer only
# Cheap parameters keep the tests fast; the gateway verifies any argon2 PHC string.
HASHER = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)

ZONE = """\
$ORIGIN {zone}.
$TTL 3600
@   IN SOA ns1.example.net. hostmaster.{zone}. 2024010101 7200 1800 1209600 3600
@   IN NS  ns1.example.net.
@   IN NS  ns2.example.net.
@   IN A   192.0.2.1
@   IN TXT "v=spf1 a ~all"
www IN A   192.0.2.2
"""

HOSTING = {
    "providerId": "provider.example", "providerName": "Example Hosting", "serviceId": "hosting",
    "serviceName": "Website", "version": 3, "logoUrl": "https://provider.example/logo.png",
    "syncRedirectDomain": "provider.example, partner.example",
    "records": [
        {"type": "A", "host": "www", "pointsTo": "%ip%", "ttl": 600, "groupId": "web"},
        {"type": "TXT", "host": "@", "data": "verify=%token%", "ttl": 600, "groupId": "verify"},
        {"type": "SPFM", "host": "@", "spfRules": "include:spf.provider.example", "groupId": "web"},
    ],
}


@dataclass
class Gateway:
    app: Starlette
    config: Config
    zones: Path

    def zone_text(self, zone: str = "example.com") -> str:
        return (self.zones / f"{zone}.zone").read_text()

    def client(self, **kwargs) -> TestClient:
        return TestClient(self.app, base_url="https://dc.test", follow_redirects=False, **kwargs)


def build_gateway(tmp_path: Path, templates: list[dict] | None = None, *, zones=("example.com", "other.com"),
                  users: dict[str, list[str]] | None = None, extra: str = "",
                  base_url: str = "https://dc.test", sections: str = "",
                  metrics: str = f'token = "{METRICS_TOKEN}"') -> Gateway:
    template_dir = tmp_path / "templates"
    template_dir.mkdir()
    for template in templates if templates is not None else [HOSTING]:
        name = f"{template['providerId']}.{template['serviceId']}.json"
        (template_dir / name).write_text(json.dumps(template))
    zone_dir = tmp_path / "zones"
    zone_dir.mkdir()
    for zone in zones:
        (zone_dir / f"{zone}.zone").write_text(ZONE.format(zone=zone))
    users = users if users is not None else {"alice": ["example.com"], "bob": ["other.com"]}
    config_path = tmp_path / "gateway.toml"
    config_path.write_text(f"""\
[gateway]
provider_id = "dns.test"
provider_name = "Test DNS"
base_url = "{base_url}"
templates = "templates"
session_secret = "test-secret-test-secret-test-secret"
control_panel_url = "https://panel.dns.test/domains/%domain%"
{extra}
[database]
url = "sqlite:///state.sqlite"

[metrics]
{metrics}

{user_tables(users)}
[[backends]]
name = "files"
driver = "zonefile"
directory = "zones"

{sections}
""")
    config = load_config(config_path)
    return Gateway(create_app(config), config, zone_dir)


def user_tables(users: dict[str, list[str]]) -> str:
    """`[[auth.users]]` tables, every user with the password PASSWORD."""
    password_hash = HASHER.hash(PASSWORD)
    return "".join(f'[[auth.users]]\nusername = "{name}"\npassword_hash = "{password_hash}"\n'
                   f"zones = {json.dumps(user_zones)}\n" for name, user_zones in users.items())


def start_serve(config: Path, port: int, log: Path, *options: str) -> subprocess.Popen:
    """`dcgw serve` as its own process on 127.0.0.1:port, its output in `log`."""
    with log.open("w") as output:
        return subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--config", str(config),
                                 "--port", str(port), *options], stdout=output, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def dcgw_serve(gateway: Gateway, port: int) -> Iterator[tuple[str, Path]]:
    """`dcgw serve` for `gateway`'s config on 127.0.0.1:`port`: its URL and its log file."""
    log = gateway.config.directory / "serve.log"
    process = start_serve(gateway.config.path, port, log)
    try:
        wait_for_port(port, process, timeout=30, log=log)
        yield f"http://127.0.0.1:{port}", log
    finally:
        stop(process)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def hidden(page: str, name: str) -> str:
    return html.unescape(re.search(rf'name="{name}" value="([^"]*)"', page).group(1))


def consent_form(page: str, decision: str = "confirm") -> dict[str, str]:
    """What the consent page's form posts when the user presses `decision`."""
    return {"csrf_token": csrf_of(page), "nonce": hidden(page, "nonce"), "query": hidden(page, "query"),
            "decision": decision}


def sign_in(client: TestClient, username: str = "alice", password: str = PASSWORD, next_path: str = "/"):
    page = client.get("/login", params={"next": next_path})
    return client.post("/login", data={"username": username, "password": password, "next": next_path,
                                       "csrf_token": csrf_of(page.text)})


def table_rows(page: str, caption: str) -> list[list[str]]:
    """The rows of the table captioned `caption`, each a list of its cells' text (tags removed)."""
    table = re.search(rf"<caption>{re.escape(caption)}</caption>(.*?)</table>", page, re.S).group(1)
    body = table.split("<tbody>", 1)[-1]
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]

