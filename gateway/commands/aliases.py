"""`dcgw aliases refresh --config FILE [--domain DOMAIN]`: follow flattened apex aliases.

An APEXCNAME on a backend with `apex_alias = "flatten"` is written as the A/AAAA records its
target resolved to when the template was applied. This re-resolves every such alias
(through `[dns]`) and applies the differences. Idempotent, so run it from a timer (every
few minutes, well under the records' TTL). One line per alias; exit status 0 when every
alias is current, 1 when one could not be refreshed, 2 for a bad config.
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.exc import SQLAlchemyError

from gateway.apply.aliases import refresh_aliases
from gateway.apply.extensions import gateway_extensions
from gateway.commands.state import open_store
from gateway.engine.domains import DomainError, idna_domain
from gateway.infra.config import ConfigError, load_config
from gateway.infra.registry import BackendRouter
from gateway.web.runtime import load_catalog

EXIT_INVALID = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("aliases", help="flattened apex aliases (APEXCNAME)")
    commands = parser.add_subparsers(dest="aliases_command", metavar="COMMAND", required=True)
    refresh = commands.add_parser("refresh", help="re-resolve flattened aliases and apply what changed",
                                  description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    refresh.add_argument("--config", required=True, metavar="FILE", help="gateway config (TOML)")
    refresh.add_argument("--domain", help="only this domain's aliases")
    refresh.set_defaults(func=run_refresh)


def run_refresh(args: argparse.Namespace) -> int:
    router = store = None
    try:
        config = load_config(args.config)
        domain = idna_domain(args.domain) if args.domain else None
        templates = load_catalog(config.gateway.templates)
        router = BackendRouter.from_config(config)
        store = open_store(config)
        router.use_zone_locks(store.zone_locks)  # the lock the running gateways take too
        outcomes = refresh_aliases(store, router, templates, gateway_extensions(config), config.ttl.policy(),
                                   domain)
    except (ConfigError, DomainError) as exc:
        print(f"dcgw aliases refresh: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except SQLAlchemyError as exc:
        print(f"dcgw aliases refresh: the state database failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if router is not None:
            router.close()
        if store is not None:
            store.close()
    for outcome in outcomes:
        print(f"{outcome.status}: {outcome.where}" + (f": {outcome.detail}" if outcome.detail else ""))
    if not outcomes:
        print("no flattened aliases" + (f" in {domain}" if domain else ""))
    return 1 if any(o.status == "failed" for o in outcomes) else 0
