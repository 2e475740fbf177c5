"""`dcgw apply`: apply a template to a domain through the configured backend.

    dcgw apply [--config FILE] --domain DOMAIN [--host HOST] --template FILE.json
               [--group ID]... [--param NAME=VALUE]... [--yes] [--json]

Prints the plan as `dcgw preview` does (`zone` lists only the touched names), asks for
confirmation on a terminal, and applies. Exit status: 0 applied or nothing to do,
1 not confirmed, 2 invalid input (template, variables, domain, config), 3 refused because
the zone changed since it was read, 4 the backend failed.
"""

from __future__ import annotations

import argparse
import sys

from gateway.commands.common import add_command, add_config_option, load_config_from
from gateway.commands.preview import InvalidInput, add_apply_arguments

EXIT_APPLIED = 0
EXIT_NOT_CONFIRMED = 1
EXIT_INVALID = 2
EXIT_ZONE_CHANGED = 3
EXIT_BACKEND_FAILED = 4


class CommandFailed(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "apply", __doc__, help="apply a template to a domain through its backend")
    add_config_option(parser)
    add_apply_arguments(parser)
    parser.add_argument("--yes", action="store_true", help="apply without asking")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gateway.commands.preview import context_from_args
    from gateway.config import ConfigError
    from gateway.registry import BackendRouter

    router: BackendRouter | None = None
    try:
        config = load_config_from(args)
        template, context = context_from_args(args, ttl_policy=config.ttl.policy())
        router = BackendRouter.from_config(config)
        prepared = _prepare(router, template, context)
        return _confirm_and_apply(prepared, args)
    except (ConfigError, InvalidInput) as exc:
        return _fail(str(exc), EXIT_INVALID)
    except CommandFailed as exc:
        return _fail(str(exc), exc.status)
    finally:
        if router is not None:
            router.close()


def _prepare(router, template, context):
    from backends.base import BackendError
    from gateway.apply import ZoneNotHosted, prepare_apply
    from gateway.plan import PlanError
    from gateway.render import RenderError

    domain = context.domain_name
    try:
        route = router.backend_for(domain)
    except BackendError as exc:
        raise CommandFailed(f"cannot find the zone of {context.domain}: {exc}", EXIT_BACKEND_FAILED) from None
    if route is None:
        raise CommandFailed(f"no configured backend hosts a zone for {context.domain}", EXIT_INVALID)
    backend, zone = route
    try:
        return prepare_apply(backend, template, context)
    except ZoneNotHosted as exc:
        raise CommandFailed(str(exc), EXIT_INVALID) from None
    except (RenderError, PlanError) as exc:
        raise CommandFailed(_where(backend, zone, exc), EXIT_INVALID) from None
    except BackendError as exc:
        raise CommandFailed(_where(backend, zone, exc), EXIT_BACKEND_FAILED) from None


def _confirm_and_apply(prepared, args: argparse.Namespace) -> int:
    from backends.base import BackendError, ZoneChanged
    from gateway.apply import execute_apply
    from gateway.commands.preview import print_plan
    from gateway.plan import apply_changes_to_rrsets

    backend, zone = prepared.backend, prepared.zone
    zone_text = zone.to_text(omit_final_dot=True)
    print_plan(prepared.plan, apply_changes_to_rrsets(prepared.current, prepared.plan.changes), as_json=args.json)
    if prepared.plan.is_empty:
        return EXIT_APPLIED
    if not args.yes:
        if not sys.stdin.isatty():
            return _fail(f"not applied to {zone_text} on backend {backend.name!r}: no terminal to confirm on; "
                         "pass --yes to apply without asking", EXIT_NOT_CONFIRMED)
        print(f"Apply these changes to {zone_text} on backend {backend.name}? [y/N] ", end="", file=sys.stderr,
              flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return _fail(f"not applied to {zone_text} on backend {backend.name!r}", EXIT_NOT_CONFIRMED)
    try:
        execute_apply(prepared)
    except ZoneChanged as exc:
        raise CommandFailed(_where(backend, zone, exc) + "; run the command again to plan afresh",
                            EXIT_ZONE_CHANGED) from None
    except BackendError as exc:
        raise CommandFailed(_where(backend, zone, exc), EXIT_BACKEND_FAILED) from None
    print(f"applied {len(prepared.plan.changes)} RRset change(s) to {zone_text} on backend {backend.name!r}",
          file=sys.stderr)
    return EXIT_APPLIED


def _where(backend, zone, exc: Exception) -> str:
    """The message, prefixed with the backend and zone unless it names them already."""
    message = str(exc)
    if repr(backend.name) in message:
        return message
    return f"backend {backend.name!r}: zone {zone.to_text(omit_final_dot=True)}: {message}"


def _fail(message: str, status: int) -> int:
    print(f"dcgw apply: {message}", file=sys.stderr)
    return status
