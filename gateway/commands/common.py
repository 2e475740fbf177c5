"""What every `dcgw` sub-command shares: the `--config` rule and help texts.

Only the standard library is imported here and at the top of each command module, so
`dcgw --help` and the parser start fast; a command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import re

CONFIG_HELP = "gateway config (TOML); default: the embedded default, with its data in ./dcgw-data"
# "`dcgw serve`: run the gateway under uvicorn." -> "Run the gateway under uvicorn."
_COMMAND_PREFIX = re.compile(r"^`dcgw [^`]*`\s*:?\s*")


class CommandFailed(Exception):
    """A command's failure: one line for stderr and the exit status it ends with."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """`--config FILE`, optional for every command: without it the embedded default is used."""
    parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP)


def load_config_from(args: argparse.Namespace):
    """The config `--config` names, or the embedded default; `ConfigError` when it is wrong."""
    from gateway.infra.config import embedded_default_config, load_config

    return load_config(args.config) if args.config else embedded_default_config()


def description(doc: str | None) -> str:
    """A module docstring as help text: its first line as a plain sentence, then the rest."""
    text = (doc or "").strip("\n")
    first, _, rest = text.partition("\n")
    first = _COMMAND_PREFIX.sub("", first.strip())
    first = first[:1].upper() + first[1:]
    return first + ("\n" + rest if rest else "")


def add_command(subparsers: argparse._SubParsersAction, name: str, doc: str | None, **kwargs) -> argparse.ArgumentParser:
    """A sub-command parser whose help is `doc` (a module docstring) in plain form."""
    help_text = description(doc).split("\n", 1)[0].rstrip(".")
    help_text = kwargs.pop("help", help_text[:1].lower() + help_text[1:])
    return subparsers.add_parser(name, help=help_text, description=description(doc),
                                 formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port
