"""The `dcgw` command line: one sub-command per module under `gateway.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Command name -> the module that registers it (its `register(subparsers)` adds the parser and
# sets `func`) and its one-line help. Only the module of the command being run is imported:
# `dcgw --help` imports none, so it starts as fast as the interpreter does.
COMMANDS = {
    "aliases": ("gateway.commands.aliases", "flattened apex aliases (APEXCNAME): re-resolve and apply what changed"),
    "apply": ("gateway.commands.apply", "apply a template to a domain through its backend"),
    "audit": ("gateway.commands.audit", "read the audit log: every apply, revert, grant, revocation and refusal"),
    "clients": ("gateway.commands.clients", "manage OAuth clients"),
    "discovery-record": ("gateway.commands.discovery_record",
                         "print (or write) the _domainconnect TXT record of a zone"),
    "instances": ("gateway.commands.instances", "list or verify the recorded template instances"),
    "preview": ("gateway.commands.preview", "show what a template would change in a zone file, without changing it"),
    "revert": ("gateway.commands.instances", "remove what a template instance wrote"),
    "serve": ("gateway.commands.serve", "run the gateway under uvicorn"),
    "templates": ("gateway.commands.templates", "work with Domain Connect templates"),
    "users": ("gateway.commands.users", "manage local users"),
}

EXIT_OK = 0
EXIT_INVALID = 2
DISTRIBUTION = "domainconnect-gateway"


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown (not installed)"


class VersionAction(argparse.Action):
    """`--version`, looked up only when asked for (package metadata is slow to scan)."""

    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"dcgw {version()}")
        parser.exit()


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser for `argv`: the command it names fully, every other one by its help line."""
    parser = argparse.ArgumentParser(prog="dcgw", description="Domain Connect gateway")
    parser.add_argument("--version", action=VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    if chosen in COMMANDS:
        importlib.import_module(COMMANDS[chosen][0]).register(subparsers)
    for name, (_module, help_text) in COMMANDS.items():
        if name not in subparsers.choices:
            subparsers.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
