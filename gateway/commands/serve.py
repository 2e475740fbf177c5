"""`dcgw serve`: run the gateway under uvicorn.

    dcgw serve [--config FILE] [--host 127.0.0.1] [--port 8080]

Without --config it runs the embedded default, shipped inside the package: a zone-file
backend holding example.com, the user demo/demo and the spec's example template. Its
state and zones go to a data directory it names at start-up: ./dcgw-data under the
working directory, or $XDG_DATA_HOME/dcgw when XDG_DATA_HOME is set. With
`metrics.listen` it also serves /metrics, and nothing else, on that address.

The port is taken before anything is printed, so a port in use is one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import socket
import sys
import threading
from pathlib import Path
from urllib.parse import urlencode

from gateway.commands.common import add_command, port_number

log = logging.getLogger(__name__)

EXIT_INVALID = 2
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "serve", __doc__)
    parser.add_argument("--config", metavar="FILE", help="config file (default: the embedded default)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=port_number, default=8080, help="port to listen on (default: 8080)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway.infra.config import ConfigError, data_directory, embedded_default_config, load_config
    from gateway.infra.observability import configure_logging
    from gateway.web.proxies import forwarding_warning

    embedded = args.config is None
    log_config = configure_logging(args.log_level.upper())
    try:
        listener = bind_listener(args.host, args.port)
    except OSError as exc:
        print(f"dcgw serve: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
              + ("; is another server running there? Pass --port to use another" if _in_use(exc) else ""),
              file=sys.stderr)
        return EXIT_INVALID
    try:
        from gateway.web.app import create_app

        if embedded:
            data_dir = data_directory()
            config = embedded_default(embedded_default_config(data_dir), args.host, args.port)
            log.info("embedded default: state and zones in %s", data_dir)
        else:
            config = load_config(args.config)
        app = create_app(config)
    except ConfigError as exc:
        listener.close()
        print(f"dcgw serve: {exc}", file=sys.stderr)
        return EXIT_INVALID
    log.info("Domain Connect gateway on http://%s:%s (%s)", args.host, args.port, config.path)
    warning = forwarding_warning(config)
    if warning:
        log.warning(warning)
    if embedded:  # a person trying the gateway reads this, not a log collector
        print(f"State and zones in {data_dir}", file=sys.stderr)
        print(f"Try it (sign in as demo / demo): {example_apply_url(config)}", file=sys.stderr)
    metrics_server = start_metrics_server(app, config)
    try:
        serve_on(app, listener, log_config, args.host, args.port)
    finally:
        if metrics_server is not None:
            metrics_server.should_exit = True
    return 0


def start_metrics_server(app, config):
    """/metrics alone on `metrics.listen`, in a thread beside the gateway (signals stay the gateway's)."""
    if config.metrics.listen is None:
        return None
    import uvicorn
    from starlette.applications import Starlette

    from gateway.infra.observability import metrics_routes

    host, port = config.metrics.listen
    metrics_app = Starlette(routes=metrics_routes(app.state.runtime.metrics, config.metrics.token))
    server = uvicorn.Server(uvicorn.Config(metrics_app, host=host, port=port, log_config=None,
                                           access_log=False, proxy_headers=False))
    threading.Thread(target=server.run, name="metrics", daemon=True).start()
    log.info("metrics on http://%s:%s/metrics", host, port)
    return server


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, taken now so that a busy port fails before start-up."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind(address)
        listener.listen(2048)
    except OSError:
        listener.close()
        raise
    listener.set_inheritable(True)
    return listener


def serve_on(app, listener: socket.socket, log_config: dict, host: str, port: int) -> None:
    import uvicorn

    # proxy_headers stays off: which peers may set X-Forwarded-* is the config's business.
    # host and port only name the listener in uvicorn's start-up line; the socket is bound already.
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=log_config, proxy_headers=False))
    server.run(sockets=[listener])


def _in_use(exc: OSError) -> bool:
    import errno

    return exc.errno == errno.EADDRINUSE


def embedded_default(config, host: str, port: int):
    """The embedded default as served here: its URLs follow --host and --port, and its zone
    directory gets example.com the first time it runs."""
    directory = Path(config.backends[0].options["directory"])
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "example.com.zone"
    if not target.exists():
        shutil.copyfile(EXAMPLES / "example.com.zone", target)
    gateway = config.gateway.model_copy(update={"base_url": f"http://{host}:{port}"})
    return config.model_copy(update={"gateway": gateway})


def example_apply_url(config) -> str:
    query = urlencode({"domain": "example.com", "var1": "192.0.2.10", "var2": "192.0.2.11",
                       "var3": "mail.example.net", "var4": "verify-123"})
    return f"{config.gateway.base_url}/v2/domainTemplates/providers/example.com/services/hosting/apply?{query}"
