"""Server throughput and the server's own share of a synchronous apply. Run: python bench/server.py

1. Requests per second of `GET /v2/example.com/settings` and `GET /healthz` on the gateway,
   next to a bare Starlette endpoint answering the same JSON, each a real uvicorn process on
   127.0.0.1 under the same settings (workers, log level warning, access log off). Keep-alive
   connections from a small asyncio client load one server, then the other, round after
   round; the ratio (median of the rounds' ratios) is what the gateway's routing, middleware
   and zone lookup cost over the framework itself.
2. The server time of one synchronous apply without the backend: the consent page (parse,
   render, read, plan, page) and the confirm (re-plan, apply, instance record, redirect),
   through the app in process, with a backend whose read and apply are in-memory dicts.
   Each consent page is followed by a bare Starlette endpoint rendering the same page's
   bytes as a Jinja template, the anchor of the page's cost.

    python bench/server.py [--workers N] [--connections N] [--seconds S] [--rounds N] [--applies N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from urllib.parse import urlencode

import dns.name
import dns.rdatatype
import dns.rrset
import dns.zone
import httpx
import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))

from tests.servers.common import free_port, stop  # noqa: E402

EXAMPLES = ROOT / "gateway" / "examples"
SETTINGS_PATH = "/v2/example.com/settings"
CONFIG_VARIABLE = "DCGW_BENCH_CONFIG"  # how the uvicorn process finds the gateway's config
USERNAME, PASSWORD = "bench", "bench-password"
APPLY_PARAMS = {"domain": "example.com", "var1": "192.0.2.10", "var2": "192.0.2.11", "var3": "mail.example.net",
                "var4": "verify-123"}
APPLY_PATH = "/v2/domainTemplates/providers/example.com/services/hosting/apply"


# -- the two apps uvicorn serves (factories: `uvicorn server:bare_app --factory`) ---------------------

# The shape of the gateway's settings answer, so both servers send about the same bytes.
BARE_SETTINGS = {
    "providerId": "localhost", "providerName": "Domain Connect Gateway",
    "providerDisplayName": "Domain Connect Gateway", "urlSyncUX": "http://127.0.0.1:8080",
    "urlAsyncUX": "http://127.0.0.1:8080", "urlAPI": "http://127.0.0.1:8080", "width": 750, "height": 750,
}


async def bare_settings(request: Request) -> JSONResponse:
    return JSONResponse(BARE_SETTINGS)


async def bare_healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


def bare_app() -> Starlette:
    return Starlette(routes=[Route("/v2/{domain}/settings", bare_settings, methods=["GET"]),
                             Route("/healthz", bare_healthz, methods=["GET"])])


def bare_jinja_app(page: str) -> Starlette:
    """A bare Starlette endpoint that renders `page` (the gateway's consent page) with Jinja."""
    template = jinja2.Environment(autoescape=True).from_string(page.replace("{", "{{ '{' }}"))

    async def render(request: Request) -> HTMLResponse:
        return HTMLResponse(template.render())

    return Starlette(routes=[Route("/page", render, methods=["GET"])])


def gateway_app() -> Starlette:
    from gateway.infra.config import load_config
    from gateway.web.app import create_app

    return create_app(load_config(os.environ[CONFIG_VARIABLE]))


# -- a gateway config in a temporary directory --------------------------------------------------------


def write_gateway_config(directory: Path, port: int) -> Path:
    from argon2 import PasswordHasher

    zones = directory / "zones"
    zones.mkdir()
    (zones / "example.com.zone").write_bytes((EXAMPLES / "example.com.zone").read_bytes())
    config = directory / "dcgw.toml"
    config.write_text(f"""\
[gateway]
base_url = "http://127.0.0.1:{port}"
templates = "{EXAMPLES}"
session_secret = "bench-session-secret-bench-session-secret"

[[auth.users]]
username = "{USERNAME}"
password_hash = "{PasswordHasher().hash(PASSWORD)}"
zones = ["example.com"]

[database]
url = "sqlite:///{directory / 'dcgw.sqlite'}"

[[backends]]
name = "zones"
driver = "zonefile"
zones = ["*"]
directory = "{zones}"
""")
    return config


# -- uvicorn processes ---------------------------------------------------------------------------------


@contextlib.contextmanager
def uvicorn_process(factory: str, port: int, workers: int, env: dict[str, str] | None = None) -> Iterator[None]:
    """`factory` (a function of this module) served by uvicorn on 127.0.0.1:port until the block ends."""
    argv = [sys.executable, "-m", "uvicorn", f"server:{factory}", "--factory", "--app-dir", str(BENCH_DIR),
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_until_answering(port, process)
        yield
    finally:
        stop(process)


def wait_until_answering(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with status {process.returncode}:\n{process.stderr.read()[-3000:]}")
        try:
            response = httpx.get(f"http://127.0.0.1:{port}{SETTINGS_PATH}", timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        if response.status_code != 200:
            raise RuntimeError(f"GET {SETTINGS_PATH} answered {response.status_code}: {response.text[:500]}")
        return
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port} within {timeout:g} s")


# -- load: keep-alive HTTP/1.1 from asyncio, lighter than a full client so the server is the limit -----


async def _connection_loop(port: int, request: bytes, until: float, counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, _, header_text = head.decode("latin-1").partition("\r\n")
            length = int(re.search(r"(?im)^content-length:\s*(\d+)", header_text).group(1))
            await reader.readexactly(length)
            counts[0 if status_line.split()[1] == "200" else 1] += 1
    finally:
        writer.close()


async def _load(port: int, path: str, connections: int, seconds: float) -> tuple[int, int]:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    counts = [0, 0]  # answered 200, answered otherwise
    until = time.perf_counter() + seconds
    await asyncio.gather(*(_connection_loop(port, request, until, counts) for _ in range(connections)))
    return counts[0], counts[1]


def requests_per_second(port: int, path: str, connections: int, seconds: float,
                        warmup: float = 1.0) -> tuple[float, float]:
    """Answers per second, and the share of one core the client itself used: near 100 % the
    client, not the server, is the limit, and the figure says little."""
    asyncio.run(_load(port, path, connections, warmup))
    started, cpu_started = time.perf_counter(), time.process_time()
    ok, failed = asyncio.run(_load(port, path, connections, seconds))
    elapsed = time.perf_counter() - started
    if failed:
        raise RuntimeError(f"GET {path}: {failed} of {ok + failed} requests did not answer 200")
    return ok / elapsed, (time.process_time() - cpu_started) / elapsed


# -- the synchronous apply in process, with an in-memory backend ----------------------------------------


def memory_backend_class():
    from backends.base import Backend, RRsetChange, ZoneChanged
    from backends.records import same_rrset

    class MemoryBackend(Backend):
        """One zone in a dict: reads and applies cost next to nothing, leaving the gateway's own time."""

        def __init__(self, zone: dns.zone.Zone) -> None:
            super().__init__("memory", {})
            self.origin = zone.origin
            self.rrsets = {(name, rdataset.rdtype): dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))
                           for name, node in zone.nodes.items() for rdataset in node.rdatasets}

        def zones(self) -> list[dns.name.Name]:
            return [self.origin]

        def read(self, zone: dns.name.Name, names: Collection[dns.name.Name],
                 subtrees: Collection[dns.name.Name] = ()) -> list[dns.rrset.RRset]:
            return [rrset for (name, _), rrset in self.rrsets.items()
                    if name in names or any(name.is_subdomain(tree) for tree in subtrees)]

        def apply(self, zone: dns.name.Name, changes: Sequence[RRsetChange]) -> None:
            if any(not same_rrset(self.rrsets.get((c.name, c.rdtype)), c.before) for c in changes):
                raise ZoneChanged("memory: the zone changed since it was read")
            for change in changes:
                if change.after is None:
                    self.rrsets.pop((change.name, change.rdtype), None)
                else:
                    self.rrsets[(change.name, change.rdtype)] = change.after

    return MemoryBackend


HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([\w-]+)" value="([^"]*)"')


def hidden_fields(page: str) -> dict[str, str]:
    # Values are HTML-escaped in the page (`&amp;` in a query string); a browser posts them unescaped.
    return {name: html.unescape(value) for name, value in HIDDEN_INPUT.findall(page)}


async def _sync_apply_times(config_path: Path, applies: int) -> tuple[list[float], list[float], list[float], int]:
    from gateway.infra.config import load_config
    from gateway.infra.registry import BackendRouter
    from gateway.web.app import create_app
    from gateway.web.runtime import Runtime

    config = load_config(config_path)
    runtime = Runtime.from_config(config)
    original_zone = dns.zone.from_file(str(EXAMPLES / "example.com.zone"), origin="example.com.", relativize=False)
    memory_backend = memory_backend_class()
    app = create_app(config, runtime)
    transport = httpx.ASGITransport(app=app)
    consent_times, confirm_times, bare_times = [], [], []
    bare_client: httpx.AsyncClient | None = None
    async with httpx.AsyncClient(transport=transport, base_url=config.gateway.base_url) as client:
        login = await client.get("/login")
        signed_in = await client.post("/login", data={**hidden_fields(login.text), "username": USERNAME,
                                                      "password": PASSWORD})
        if signed_in.status_code != 303:
            raise RuntimeError(f"sign-in answered {signed_in.status_code}")
        url = f"{APPLY_PATH}?{urlencode(APPLY_PARAMS)}"
        for _ in range(applies + 1):  # the first round warms caches and is not counted
            # A fresh zone each round, so every apply changes the same records.
            runtime.router = BackendRouter([(memory_backend(original_zone), ["example.com"])])
            started = time.perf_counter()
            consent = await client.get(url)
            consent_time = time.perf_counter() - started
            if consent.status_code != 200 or "nonce" not in hidden_fields(consent.text):
                raise RuntimeError(f"consent page answered {consent.status_code}: {consent.text[:500]}")
            if bare_client is None:
                page_bytes = len(consent.content)
                bare_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=bare_jinja_app(consent.text)),
                                                base_url="http://127.0.0.1")
            started = time.perf_counter()
            bare = await bare_client.get("/page")
            bare_times.append(time.perf_counter() - started)
            if len(bare.content) != page_bytes:
                raise RuntimeError(f"the bare page has {len(bare.content)} bytes, the consent page {page_bytes}")
            started = time.perf_counter()
            done = await client.post("/v2/sync/consent", data={**hidden_fields(consent.text), "decision": "confirm"})
            confirm_time = time.perf_counter() - started
            if done.status_code != 200 or "Done" not in done.text:
                raise RuntimeError(f"confirm answered {done.status_code}: {done.text[:500]}")
            consent_times.append(consent_time)
            confirm_times.append(confirm_time)
    await bare_client.aclose()
    applied = runtime.metrics.registry.get_sample_value(
        "dcgw_applies_total", {"backend": "memory", "outcome": "applied", "flow": "sync"})
    runtime.close()
    if applied != applies + 1:
        raise RuntimeError(f"{applies + 1} confirms made {applied or 0} applies that changed the zone")
    return consent_times[1:], confirm_times[1:], bare_times[1:], page_bytes


# -- report --------------------------------------------------------------------------------------------


def milliseconds(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms"


def ratio_rounds(ports: dict[str, int], path: str, connections: int, seconds: float,
                 rounds: int) -> dict[str, float]:
    """Requests per second of each server, one after the other, `rounds` times: the median of
    each, and the median of the rounds' gateway/bare ratios (`ratio`)."""
    figures: dict[str, list[float]] = {name: [] for name in ports}
    for _ in range(rounds):
        for name, port in ports.items():
            figures[name].append(requests_per_second(port, path, connections, seconds, warmup=0.2)[0])
    result = {name: statistics.median(values) for name, values in figures.items()}
    result["ratio"] = statistics.median(g / b for g, b in zip(figures["gateway"], figures["bare"]))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes for both servers")
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per server and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each loading one server then the other")
    parser.add_argument("--applies", type=int, default=50, help="synchronous applies to time")
    parser.add_argument("--quick", action="store_true", help="tiny counts: check that the benchmark runs "
                                                             "(figures mean nothing)")
    args = parser.parse_args(argv)
    if args.quick:
        args.connections, args.seconds, args.rounds, args.applies = 2, 0.2, 1, 2

    print(f"{args.workers} uvicorn worker(s), log level warning, access log off, {args.connections} connections, "
          f"{args.rounds} rounds of {args.seconds:g} s per server")
    with tempfile.TemporaryDirectory(prefix="dcgw-bench-") as directory:
        ports = {"bare": free_port(), "gateway": free_port()}
        config = write_gateway_config(Path(directory), ports["gateway"])
        with uvicorn_process("bare_app", ports["bare"], args.workers), \
                uvicorn_process("gateway_app", ports["gateway"], args.workers, env={CONFIG_VARIABLE: str(config)}):
            print(f"  {'GET':<28} {'gateway':>10} {'bare Starlette':>15} {'ratio':>6}")
            for path in (SETTINGS_PATH, "/healthz"):
                figures = ratio_rounds(ports, path, args.connections, args.seconds, args.rounds)
                print(f"  {path:<28} {figures['gateway']:>6,.0f}/s {figures['bare']:>13,.0f}/s "
                      f"{figures['ratio']:>6.2f}", flush=True)

        consent, confirm, bare, page_bytes = asyncio.run(_sync_apply_times(config, args.applies))
        print(f"\nSynchronous apply, server time without the backend (in-memory backend, {args.applies} applies):")
        print(f"  consent page (GET apply URL)  {milliseconds(consent)}")
        print(f"  bare Jinja, same {page_bytes} bytes {milliseconds(bare)}")
        print(f"  consent / bare Jinja          {statistics.median(c / b for c, b in zip(consent, bare)):7.2f}x")
        print(f"  confirm (POST, apply, record) {milliseconds(confirm)}")
        print(f"  both                          {milliseconds([a + b for a, b in zip(consent, confirm)])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
