"""The `dcgw` command line: one sub-command per module under `gateway.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module defines `register(subparsers)`, which adds its parser and sets `func`. The
# modules import only the standard library at the top, so building the parser is cheap.
COMMAND_MODULES = (
    "gateway.commands.apply",
    "gateway.commands.audit",
    "gateway.commands.clients",
    "gateway.commands.discovery_record",
    "gateway.commands.preview",
    "gateway.commands.serve",
    "gateway.commands.templates",
    "gateway.commands.users",
)

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dcgw", description="Domain Connect gateway")
    parser.add_argument("--version", action=VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
