"""The `dcgw` command line: one sub-command per module under `gateway.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module defines `register(subparsers)`, which adds its parser and sets `func`.
COMMAND_MODULES = (
    "gateway.commands.aliases",
    "gateway.commands.apply",
    "gateway.commands.clients",
    "gateway.commands.discovery_record",
    "gateway.commands.instances",
    "gateway.commands.preview",
    "gateway.commands.serve",
    "gateway.commands.templates",
    "gateway.commands.users",
)

EXIT_OK = 0
EXIT_INVALID = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dcgw", description="Domain Connect gateway")
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
