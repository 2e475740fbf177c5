"""Two `dcgw serve` processes on one PostgreSQL database and one PowerDNS server, as behind a
load balancer: one writer per zone, one sign-in throttle, one set of sessions and consent pages."""

from __future__ import annotations

import html
import itertools
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import dns.name
import httpx
import pytest
from sqlalchemy import create_engine, text

from gateway.state import StateStore
from tests.gateway_app import HOSTING, PASSWORD, consent_form, csrf_of, start_serve, user_tables
from tests.servers.common import free_port, stop, wait_for_port
from tests.servers.pdns import PdnsServer

pytestmark = pytest.mark.servers

PROVIDER, SERVICE, REDIRECT = "replica.example", "web", "https://replica.example/cb"
API_TEMPLATE = {
    "providerId": PROVIDER, "providerName": "Replica Test", "serviceId": SERVICE, "serviceName": "Web",
    "version": 1, "records": [
        {"type": "A", "host": "@", "pointsTo": "%ip%", "ttl": 600},
        {"type": "TXT", "host": "@", "data": "round %n%", "ttl": 600, "txtConflictMatchingMode": "All"},
    ]}
USERS = ("alice", "dave", "eve", "frank")
ROUNDS, CONCURRENT = 10, 16
_addresses = itertools.count(1)


@dataclass
class Replicas:
    urls: tuple[str, str]
    store: StateStore
    pdns: PdnsServer
    zone: dns.name.Name
    logs: tuple[Path, Path]

    @property
    def domain(self) -> str:
        return self.zone.to_text(omit_final_dot=True)

    def client(self, replica: int, address: str | None = None, cookies: httpx.Cookies | None = None) -> httpx.Client:
        """A browser on its own address (X-Forwarded-For from the listed proxy, 127.0.0.1)."""
        headers = {"X-Forwarded-For": address or f"198.18.0.{next(_addresses)}"}
        return httpx.Client(base_url=self.urls[replica], headers=headers, cookies=cookies, timeout=60,
                            follow_redirects=False)


def _database(server_url: str, name: str) -> str:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="module")
def replicas(tmp_path_factory, postgres_url: str, pdns: PdnsServer) -> Iterator[Replicas]:
    directory = tmp_path_factory.mktemp("replicas")
    database = _database(postgres_url, "replicas")
    zone = pdns.new_zone("replicas")
    templates = directory / "templates"
    templates.mkdir()
    for template in (API_TEMPLATE, HOSTING):
        (templates / f"{template['providerId']}.{template['serviceId']}.json").write_text(json.dumps(template))
    users = user_tables({name: [zone.to_text(omit_final_dot=True)] for name in USERS})
    ports = (free_port(), free_port())
    config = directory / "gateway.toml"
    config.write_text(f"""\
[gateway]
provider_id = "dns.test"
provider_name = "Test DNS"
base_url = "http://127.0.0.1:{ports[0]}"
templates = "templates"
session_secret = "replicas-share-this-secret-0123456789"

[database]
url = "{database}"

[server]
forwarded_allow_ips = ["127.0.0.1"]

{users}
[[backends]]
name = "pdns"
driver = "powerdns"
api_url = "{pdns.api_url}"
api_key = "{pdns.api_key}"
zones = ["{zone.to_text(omit_final_dot=True)}"]
""")
    logs = (directory / "a.log", directory / "b.log")
    processes = []
    # Started together: they also migrate the empty database at the same moment.
    for port, log in zip(ports, logs):
        processes.append(start_serve(config, port, log, "--log-level", "warning"))
    store = None
    try:
        for port, process, log in zip(ports, processes, logs):
            wait_for_port(port, process, timeout=60, log=log)
        store = StateStore.open(database)
        yield Replicas(tuple(f"http://127.0.0.1:{port}" for port in ports), store, pdns, zone, logs)
    finally:
        for process in processes:
            stop(process)
        if store is not None:
            store.close()
        pdns.delete_zone(zone)


# --- one writer per zone -------------------------------------------------------------------


def _access_token(replicas: Replicas, host: str) -> str:
    store = replicas.store
    if store.client(PROVIDER) is None:
        store.add_client(PROVIDER, [REDIRECT])
    code = store.create_grant(PROVIDER, "alice", replicas.domain, [host], [SERVICE], REDIRECT)
    return store.redeem_code(code, PROVIDER, REDIRECT).access_token


def _served(replicas: Replicas, name: str) -> dict[str, set[tuple[int, str]]]:
    return {r["type"]: {(r["ttl"], record["content"]) for record in r["records"] if not record["disabled"]}
            for r in replicas.pdns.rrsets(replicas.zone) if r["name"] == name and r["type"] in ("A", "TXT")}


def _recorded(rows: list[dict]) -> dict[str, set[tuple[int, str]]]:
    recorded: dict[str, set[tuple[int, str]]] = {}
    for row in rows:
        if "spf" not in row:
            recorded.setdefault(row["type"], set()).add((row["ttl"], row["data"]))
    return recorded


def test_concurrent_applies_to_one_host_on_two_replicas_leave_one_instance_that_dns_serves(replicas):
    host = "shared"
    token = _access_token(replicas, host)
    name = dns.name.from_text(host, replicas.zone).to_text()
    clients = [httpx.Client(base_url=url, timeout=120, headers={"Authorization": f"Bearer {token}"},
                            limits=httpx.Limits(max_connections=CONCURRENT)) for url in replicas.urls]
    path = f"/v2/domainTemplates/providers/{PROVIDER}/services/{SERVICE}/apply"

    def apply(sequence: int) -> httpx.Response:
        return clients[sequence % 2].post(path, params={
            "domain": replicas.domain, "host": host, "ip": f"198.51.100.{sequence % 250 + 1}", "n": str(sequence)})

    try:
        with ThreadPoolExecutor(CONCURRENT) as pool:
            for round_number in range(ROUNDS):
                sequences = range(round_number * CONCURRENT, (round_number + 1) * CONCURRENT)
                answers = list(pool.map(apply, sequences))
                assert [a.status_code for a in answers] == [200] * CONCURRENT, [a.text for a in answers if
                                                                               a.status_code != 200]
                instances = replicas.store.instances(replicas.domain, host)
                assert len(instances) == 1, f"round {round_number}: {len(instances)} instances recorded"
                assert _served(replicas, name) == _recorded(instances[0].records), f"round {round_number}"
    finally:
        for client in clients:
            client.close()


# --- sign-in throttle ------------------------------------------------------------------------


def _login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password, "next": "/",
                                       "csrf_token": csrf_of(page.text)})


def test_five_failures_on_one_replica_lock_the_user_on_the_other(replicas):
    address = f"198.19.0.{next(_addresses)}"
    with replicas.client(0, address) as first:
        assert [_login(first, "eve", "wrong").status_code for _ in range(5)] == [401] * 5
    with replicas.client(1, f"198.19.1.{next(_addresses)}") as second:  # another address, too
        refused = _login(second, "eve", PASSWORD)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert second.get("/").text.count("Sign out") == 0


def test_a_burst_of_parallel_wrong_passwords_over_both_replicas_is_limited_to_five_checks(replicas):
    clients = [replicas.client(n % 2) for n in range(30)]
    pages = [client.get("/login") for client in clients]

    def guess(n: int) -> int:
        return clients[n].post("/login", data={"username": "dave", "password": f"wrong{n}", "next": "/",
                                               "csrf_token": csrf_of(pages[n].text)}).status_code

    try:
        with ThreadPoolExecutor(30) as pool:
            statuses = list(pool.map(guess, range(30)))
        assert statuses.count(401) == 5 and statuses.count(429) == 25
        with replicas.client(1) as late:
            assert _login(late, "dave", PASSWORD).status_code == 429
    finally:
        for client in clients:
            client.close()


# --- sessions and consent pages ------------------------------------------------------------


def _signed_in(client: httpx.Client) -> bool:
    return "Sign out" in client.get("/").text


def test_logout_on_one_replica_ends_the_session_on_the_other(replicas):
    with replicas.client(0) as first:
        assert _login(first, "alice", PASSWORD).status_code == 303
        copied = httpx.Cookies(first.cookies)
        with replicas.client(1, cookies=copied) as second:
            assert _signed_in(second)
            home = first.get("/")
            assert first.post("/logout", data={"csrf_token": csrf_of(home.text)}).status_code == 303
            assert not _signed_in(second)
        with replicas.client(1, cookies=copied) as replayed:  # a copy of the cookie taken before logout
            assert not _signed_in(replayed)


def test_a_replayed_sync_consent_post_is_refused_on_the_other_replica(replicas):
    params = {"domain": replicas.domain, "host": "sync", "ip": "192.0.2.80", "token": "once"}
    apply_path = "/v2/domainTemplates/providers/provider.example/services/hosting/apply?" + urlencode(params)
    with replicas.client(0) as first:
        assert _login(first, "frank", PASSWORD).status_code == 303
        page = first.get(apply_path)
        assert page.status_code == 200 and "192.0.2.80" in page.text
        form, cookies = consent_form(page.text), httpx.Cookies(first.cookies)
        assert first.post("/v2/sync/consent", data=form).status_code == 200
    with replicas.client(1, cookies=cookies) as replay:
        again = replay.post("/v2/sync/consent", data=form)
        assert again.status_code == 400 and "expired" in again.text
    instances = [i for i in replicas.store.instances(replicas.domain, "sync") if i.service_id == "hosting"]
    assert len(instances) == 1


def test_a_replayed_oauth_consent_post_issues_no_second_code(replicas):
    if replicas.store.client(PROVIDER) is None:
        replicas.store.add_client(PROVIDER, [REDIRECT])
    query = {"client_id": PROVIDER, "redirect_uri": REDIRECT, "response_type": "code", "scope": SERVICE,
             "domain": replicas.domain, "host": "oauth", "state": "st", "ip": "192.0.2.9", "n": "1"}
    with replicas.client(0) as first:
        assert _login(first, "alice", PASSWORD).status_code == 303
        page = first.get(f"/v2/domainTemplates/providers/{PROVIDER}?" + urlencode(query))
        assert page.status_code == 200, page.text
        fields = {name: html.unescape(value) for name, value in
                  re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)}
        form, cookies = {**fields, "decision": "allow"}, httpx.Cookies(first.cookies)
        allowed = first.post("/v2/oauth/consent", data=form)
        assert allowed.status_code == 303 and "code" in parse_qs(urlsplit(allowed.headers["location"]).query)
    grants = [g.id for g in replicas.store.grants_of("alice") if g.hosts == ["oauth"]]
    with replicas.client(1, cookies=cookies) as replay:
        again = replay.post("/v2/oauth/consent", data=form)
        assert again.status_code == 400 and "already answered" in again.text
    assert [g.id for g in replicas.store.grants_of("alice") if g.hosts == ["oauth"]] == grants and len(grants) == 1
