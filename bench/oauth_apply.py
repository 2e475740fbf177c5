"""Cost of the asynchronous flow's apply: one bearer-token API apply through the gateway
(uvicorn on 127.0.0.1, PowerDNS backend) next to the same change made as one direct
PowerDNS API PATCH, with 1 and with 8 concurrent clients; then a check that 8 clients
applying to one zone at once lose no update. Also counted: PowerDNS requests and SQL
transactions per apply.

    python bench/oauth_apply.py            # 200 applies per round
    python bench/oauth_apply.py -n 400

Every client has its own grant and token, for its own host in one zone, so each apply
changes two RRsets (A and TXT at that host) and nothing else. The figure to watch is the
ratio: what the protocol layer, the state store and the planner add to a bare write.

The gateway serves from a process of its own, as deployed: in the benchmark's process its
clients' threads would share one interpreter lock with it, which no real client does.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import dns.name
import httpx
import uvicorn
from sqlalchemy import event
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.powerdns import PowerDNSBackend  # noqa: E402
from backends.testing import conformance_template  # noqa: E402
from gateway.infra.config import AuthSettings, AuthUser  # noqa: E402
from gateway.infra.registry import BackendRouter  # noqa: E402
from gateway.state import StateStore  # noqa: E402
from gateway.web.auth.local import LocalAuthenticator  # noqa: E402
from gateway.web.oauth import routes  # noqa: E402
from tests.servers.common import free_port, wait_for_port  # noqa: E402
from tests.servers.pdns import CountingTransport, PdnsServer, pdns_server  # noqa: E402

PROVIDER, SERVICE, REDIRECT = "conformance.example", "bench", "https://conformance.example/cb"
TEMPLATE = conformance_template([
    {"type": "A", "host": "@", "pointsTo": "%ip%", "ttl": 600},
    {"type": "TXT", "host": "@", "data": "bench %n%", "ttl": 600, "txtConflictMatchingMode": "All"},
], service_id=SERVICE)
CLIENTS = (1, 8)


@dataclass(frozen=True)
class Round:
    how: str
    clients: int
    applies: int
    median_seconds: float
    per_second: float


def address(index: int) -> str:
    return f"198.18.{index >> 8 & 255}.{index & 255}"


def timed_round(how: str, clients: int, applies: int, one: Callable[[int, int], None]) -> Round:
    """`applies` calls of `one(client, sequence)` spread over `clients` threads; latency of each."""
    latencies: list[float] = []
    guard = threading.Lock()

    def worker(client: int) -> None:
        for sequence in range(client, applies, clients):
            start = time.perf_counter()
            one(client, sequence)
            elapsed = time.perf_counter() - start
            with guard:
                latencies.append(elapsed)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(worker, c) for c in range(clients)]:
            future.result()
    wall = time.perf_counter() - start
    return Round(how, clients, applies, statistics.median(latencies), applies / wall)


def serve_gateway(options: dict, domain: str, database: str, port: int) -> None:
    """The gateway's process: the OAuth routes on uvicorn, with `/bench/counts` answering how
    many PowerDNS requests and SQL transactions it made so far."""
    transport = CountingTransport()
    backend = PowerDNSBackend("powerdns", options, transport=transport)
    store = StateStore.open(database)
    transactions = [0]
    event.listen(store.engine, "begin", lambda _connection: transactions.__setitem__(0, transactions[0] + 1))
    # The user who consented, still in control of the zone (each apply checks).
    authenticator = LocalAuthenticator(AuthSettings(users=(
        AuthUser(username="bench", password_hash="$argon2id$v=19$m=65536,t=3,p=4$YmVuY2gtc2FsdA$YmVuY2gtaGFzaA",
                 zones=(domain,)),)))

    async def counts(_request: Request) -> JSONResponse:
        return JSONResponse({"requests": len(transport.requests), "transactions": transactions[0]})

    app = Starlette(routes=[Route("/bench/counts", counts), *routes(
        store, BackendRouter([(backend, [domain])]), {(PROVIDER, SERVICE): TEMPLATE}, authenticator=authenticator)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class Gateway:
    """The gateway in a process of its own, a token per host, and a direct PATCH for comparison."""

    def __init__(self, server: PdnsServer, zone: dns.name.Name, directory: Path, clients: int) -> None:
        self.server, self.zone = server, zone
        database = f"sqlite:///{directory / 'state.sqlite'}"
        self.store = StateStore.open(database)
        self.store.add_client(PROVIDER, [REDIRECT])
        self.domain = zone.to_text(omit_final_dot=True)
        self.hosts = [f"client-{c:02d}" for c in range(clients)]
        self.tokens = [self.store.redeem_code(
            self.store.create_grant(PROVIDER, "bench", self.domain, [host], [SERVICE], REDIRECT),
            PROVIDER, REDIRECT).access_token for host in self.hosts]
        port = free_port()
        self.process = multiprocessing.get_context("spawn").Process(
            target=serve_gateway, args=(server.backend_options(), self.domain, database, port), daemon=True)
        self.process.start()
        wait_for_port(port, timeout=30)
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits)
        self.pdns = httpx.Client(base_url=f"{server.api_url}/api/v1/servers/{server.server_id}", timeout=60,
                                 headers={"X-API-Key": server.api_key}, limits=limits)
        self.last: dict[str, int] = {}
        self.guard = threading.Lock()
        self.patch_retries = 0

    def counted_applies(self, applies: int) -> tuple[float, float]:
        """PowerDNS requests and SQL transactions per API apply, one client."""
        before = self.http.get("/bench/counts").json()
        for sequence in range(applies):
            self.api_apply(0, 10_000 + sequence)
        after = self.http.get("/bench/counts").json()
        return ((after["requests"] - before["requests"]) / applies,
                (after["transactions"] - before["transactions"]) / applies)

    def api_apply(self, client: int, sequence: int) -> None:
        host = self.hosts[client]
        response = self.http.post(f"/v2/domainTemplates/providers/{PROVIDER}/services/{SERVICE}/apply",
                                  params={"domain": self.domain, "host": host, "ip": address(sequence),
                                          "n": str(sequence)},
                                  headers={"Authorization": f"Bearer {self.tokens[client]}"})
        if response.status_code != 200:
            raise RuntimeError(f"apply for {host}: HTTP {response.status_code} {response.text}")
        self.last[host] = sequence

    def direct_patch(self, client: int, sequence: int) -> None:
        """The same two RRsets, written as one PATCH by a client that knows what it wants (at hosts
        of their own: records the gateway did not write would be conflicts for its applies)."""
        name = dns.name.from_text(f"patch-{client:02d}", self.zone).to_text()
        rrsets = [{"name": name, "type": "A", "ttl": 600, "changetype": "REPLACE",
                   "records": [{"content": address(sequence), "disabled": False}]},
                  {"name": name, "type": "TXT", "ttl": 600, "changetype": "REPLACE",
                   "records": [{"content": f'"bench {sequence}"', "disabled": False}]}]
        for _ in range(200):
            response = self.pdns.patch(f"/zones/{self.zone}", json={"rrsets": rrsets})
            if response.status_code != 500:
                break
            # pdns on gsqlite3 answers 500 when another write holds the database: try again.
            with self.guard:
                self.patch_retries += 1
            time.sleep(0.005)
        if not response.is_success:
            raise RuntimeError(f"PATCH: HTTP {response.status_code} {response.text}")

    def lost_updates(self) -> list[str]:
        """Hosts whose A and TXT are not the last values their client applied."""
        served = {(r["name"], r["type"]): [x["content"] for x in r["records"]] for r in self.server.rrsets(self.zone)}
        lost = []
        for host, sequence in self.last.items():
            name = dns.name.from_text(host, self.zone).to_text()
            if served.get((name, "A")) != [address(sequence)] or served.get((name, "TXT")) != [f'"bench {sequence}"']:
                lost.append(host)
        return lost

    def close(self) -> None:
        self.http.close()
        self.pdns.close()
        self.process.terminate()
        self.process.join(timeout=10)
        self.store.close()


def run(applies: int, clients: Sequence[int] = CLIENTS) -> tuple[list[Round], list[str], int, int, tuple]:
    with pdns_server() as server, tempfile.TemporaryDirectory(prefix="dcgw-bench-") as directory:
        zone = dns.name.from_text("bench-oauth.test")
        server.create_zone(zone)
        gateway = Gateway(server, zone, Path(directory), max(clients))
        try:
            rounds = []
            for count in clients:
                rounds.append(timed_round("PowerDNS PATCH", count, applies, gateway.direct_patch))
                rounds.append(timed_round("gateway API apply", count, applies, gateway.api_apply))
            lost = gateway.lost_updates()
            instances = len(gateway.store.instances(gateway.domain))
            counts = gateway.counted_applies(min(applies, 20))
            retries = gateway.patch_retries
        finally:
            gateway.close()
    return rounds, lost, instances, retries, counts


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--applies", type=int, default=200, help="applies per round (default 200)")
    parser.add_argument("--quick", action="store_true", help="tiny counts: check that the benchmark runs "
                                                             "(figures mean nothing)")
    args = parser.parse_args(argv)
    rounds, lost, instances, retries, (requests, transactions) = run(2 if args.quick else args.applies, (1, 2) if args.quick else CLIENTS)
    print(f"{'how':<18}  {'clients':>7}  {'applies':>7}  {'median':>9}  {'applies/s':>9}  {'ratio':>6}")
    direct = {r.clients: r for r in rounds if r.how == "PowerDNS PATCH"}
    for r in rounds:
        ratio = r.median_seconds / direct[r.clients].median_seconds
        print(f"{r.how:<18}  {r.clients:>7}  {r.applies:>7}  {r.median_seconds * 1000:>6.1f} ms  "
              f"{r.per_second:>9.0f}  {ratio:>5.1f}x")
    print(f"per API apply: {requests:.1f} PowerDNS requests, {transactions:.1f} SQL transactions")
    if retries:
        print(f"PowerDNS refused {retries} direct PATCHes with HTTP 500 while another write held its database; "
              "they were retried and their time counts")
    clients = max(r.clients for r in rounds)
    verdict = f"; LOST: {', '.join(lost)}" if lost else ""
    print(f"{clients} concurrent clients, one zone: {instances} instances recorded, "
          f"{clients - len(lost)}/{clients} hosts hold their last apply{verdict}")
    if lost or instances != clients:
        sys.exit(1)


if __name__ == "__main__":
    main()
