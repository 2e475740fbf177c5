"""`dcgw clients`: register, list and remove the OAuth clients (service providers).

    dcgw clients add [--config FILE] --client-id ID --redirect-uri URI [--redirect-uri URI...]
                     [--secret SECRET | --secret -] [--json]
    dcgw clients list [--config FILE] [--json]
    dcgw clients remove [--config FILE] --client-id ID

The client id is the template providerId. `add` generates a secret and prints it once, or
takes the one the service provider already uses with --secret (`--secret -` reads it from
standard input, so it stays out of the shell history); only its hash is kept. `--json`
prints {"client_id", "client_secret"}. A redirect URI must be https (plain http only for a
loopback host with gateway.development) and have no fragment.
"""

from __future__ import annotations

import argparse
import json
import sys

from gateway.commands.common import add_command, add_config_option, load_config_from
from gateway.commands.state import open_store as open_config_store
from gateway.infra.config import ConfigError
from gateway.state import StateError, StateStore
from gateway.web.redirects import RedirectError, check_client_redirect_uri

EXIT_INVALID = 2
SHORT_SECRET = 16  # characters; a shorter chosen secret is accepted with a warning


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "clients", __doc__, help="manage OAuth clients")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser("add", help="register a client and print its secret once")
    add.add_argument("--client-id", required=True, help="the providerId of the client's templates")
    add.add_argument("--redirect-uri", required=True, action="append", metavar="URI",
                     help="an allowed redirect_uri, matched exactly (repeatable)")
    add.add_argument("--secret", metavar="SECRET",
                     help="the client's existing secret instead of a generated one; '-' reads it from stdin")
    add.add_argument("--json", action="store_true", help="print {client_id, client_secret}")
    add.set_defaults(func=run_add)

    listing = actions.add_parser("list", help="list registered clients")
    listing.add_argument("--json", action="store_true", help="print a JSON list")
    listing.set_defaults(func=run_list)

    remove = actions.add_parser("remove", help="remove a client and every authorization it holds")
    remove.add_argument("--client-id", required=True)
    remove.set_defaults(func=run_remove)

    for action in (add, listing, remove):
        add_config_option(action)


def open_store(args: argparse.Namespace) -> StateStore:
    return open_config_store(load_config_from(args))


def chosen_secret(value: str | None) -> str | None:
    """The --secret value (read from stdin for '-'), None for a generated one."""
    if value is None:
        return None
    secret = sys.stdin.readline().rstrip("\r\n") if value == "-" else value
    if not secret:
        raise StateError("secret: empty" + (" (nothing was read from standard input)" if value == "-" else ""))
    if len(secret) < SHORT_SECRET:
        print(f"dcgw clients: warning: the secret is shorter than {SHORT_SECRET} characters; "
              "anyone who guesses it can act as this client", file=sys.stderr)
    return secret


def run_add(args: argparse.Namespace) -> int:
    def action(store: StateStore) -> None:
        development = load_config_from(args).gateway.development
        try:
            for uri in args.redirect_uri:
                check_client_redirect_uri(uri, development=development)
        except RedirectError as exc:
            raise StateError(f"{exc} (in {uri!r})") from None
        secret = store.add_client(args.client_id, args.redirect_uri, chosen_secret(args.secret))
        if args.json:
            print(json.dumps({"client_id": args.client_id, "client_secret": secret}))
        else:
            print(f"client_id:     {args.client_id}\nclient_secret: {secret}\n"
                  "The secret is shown only now; store it with the service provider.")
    return guarded(args, action)


def run_list(args: argparse.Namespace) -> int:
    def action(store: StateStore) -> None:
        clients = [{"client_id": c.client_id, "redirect_uris": c.redirect_uris} for c in store.clients()]
        if args.json:
            print(json.dumps(clients))
        for client in [] if args.json else clients:
            print(f"{client['client_id']}\t{' '.join(client['redirect_uris'])}")
    return guarded(args, action)


def run_remove(args: argparse.Namespace) -> int:
    return guarded(args, lambda store: store.remove_client(args.client_id))


def guarded(args: argparse.Namespace, action) -> int:
    """Run `action` on the store; configuration and input errors become one line and exit 2."""
    try:
        store = open_store(args)
    except ConfigError as exc:
        print(f"dcgw clients: {exc}", file=sys.stderr)
        return EXIT_INVALID
    try:
        action(store)
    except StateError as exc:
        print(f"dcgw clients: {exc}", file=sys.stderr)
        return EXIT_INVALID
    finally:
        store.close()
    return 0
