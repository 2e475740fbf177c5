"""`dcgw serve`: run the gateway under uvicorn.

    dcgw serve [--config FILE] [--host 127.0.0.1] [--port 8080]

Without --config it runs the embedded default (config/default.toml): a zone-file backend
holding example.com, the user demo/demo and the spec's example template. With
`metrics.listen` it also serves /metrics, and nothing else, on that address.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
import threading
from pathlib import Path
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.config import Config, ConfigError, default_config_path, load_config
from gateway.observability import configure_logging, metrics_routes
from gateway.proxies import forwarding_warning

log = logging.getLogger(__name__)

EXIT_INVALID = 2
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="run the gateway", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", metavar="FILE", help="config file (default: the embedded default)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    embedded = args.config is None
    log_config = configure_logging(args.log_level.upper())
    try:
        config = load_config(default_config_path() if embedded else args.config)
        if embedded:
            config = embedded_default(config, args.host, args.port)
        app = create_app(config)
    except ConfigError as exc:
        print(f"dcgw serve: {exc}", file=sys.stderr)
        return EXIT_INVALID
    log.info("Domain Connect gateway on http://%s:%s (%s)", args.host, args.port, config.path)
    warning = forwarding_warning(config)
    if warning:
        log.warning(warning)
    if embedded:  # a person trying the gateway reads this, not a log collector
        print(f"Try it (sign in as demo / demo): {example_apply_url(config)}", file=sys.stderr)
    metrics_server = start_metrics_server(app, config)
    try:
        # The app applies uvicorn's proxy-header handling itself, with [server] forwarded_allow_ips
        # (gateway.proxies), keeping the TCP peer for the header sign-in: uvicorn must not do it again.
        uvicorn.run(app, host=args.host, port=args.port, log_config=log_config, proxy_headers=False)
    finally:
        if metrics_server is not None:
            metrics_server.should_exit = True
    return 0


def start_metrics_server(app, config: Config) -> uvicorn.Server | None:
    """/metrics alone on `metrics.listen`, in a thread beside the gateway (signals stay the gateway's)."""
    if config.metrics.listen is None:
        return None
    host, port = config.metrics.listen
    metrics_app = Starlette(routes=metrics_routes(app.state.runtime.metrics, config.metrics.token))
    server = uvicorn.Server(uvicorn.Config(metrics_app, host=host, port=port, log_config=None,
                                           access_log=False, proxy_headers=False))
    threading.Thread(target=server.run, name="metrics", daemon=True).start()
    log.info("metrics on http://%s:%s/metrics", host, port)
    return server


def embedded_default(config: Config, host: str, port: int) -> Config:
    """The embedded default as served here: its URLs follow --host and --port, and its zone
    directory gets example.com the first time it runs."""
    directory = Path(config.backends[0].options["directory"])
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "example.com.zone"
    if not target.exists():
        shutil.copyfile(EXAMPLES / "example.com.zone", target)
    gateway = dataclasses.replace(config.gateway, base_url=f"http://{host}:{port}")
    return dataclasses.replace(config, gateway=gateway)


def example_apply_url(config: Config) -> str:
    query = urlencode({"domain": "example.com", "var1": "192.0.2.10", "var2": "192.0.2.11",
                       "var3": "mail.example.net", "var4": "verify-123"})
    return f"{config.gateway.base_url}/v2/domainTemplates/providers/example.com/services/hosting/apply?{query}"
