"""Secrets kept out of the config file: `"env:NAME"` reads the environment variable NAME and
`"file:/PATH"` the file PATH (one trailing newline stripped: Docker and Kubernetes secrets)."""

from __future__ import annotations

import os
from typing import Any

ENV_PREFIX = "env:"
FILE_PREFIX = "file:"
MAX_SECRET_FILE_BYTES = 64 * 1024


class SecretUnavailable(ValueError):
    """A reference whose variable or file is missing; `key` says where it was written."""

    key = ""


def secret_value(value: str) -> str:
    """`value`, or what an `"env:NAME"` or `"file:/PATH"` reference in it names; `SecretUnavailable`
    when the variable or file is missing."""
    if value.startswith(ENV_PREFIX):
        variable = value[len(ENV_PREFIX):]
        if not variable:
            raise SecretUnavailable("'env:' needs a variable name, as in 'env:PDNS_API_KEY'")
        if variable not in os.environ:
            raise SecretUnavailable(f"environment variable {variable} is not set")
        return os.environ[variable]
    if value.startswith(FILE_PREFIX):
        name = value[len(FILE_PREFIX):]
        if not name:
            raise SecretUnavailable("'file:' needs a path, as in 'file:/run/secrets/pdns_api_key'")
        try:
            with open(name, "rb") as file:
                data = file.read(MAX_SECRET_FILE_BYTES + 1)
        except OSError as exc:
            raise SecretUnavailable(f"cannot read secret file {name}: {exc.strerror or exc}") from None
        if len(data) > MAX_SECRET_FILE_BYTES:
            raise SecretUnavailable(f"secret file {name} is larger than {MAX_SECRET_FILE_BYTES} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SecretUnavailable(f"secret file {name} is not UTF-8 text") from None
        # Files written by `echo` or an editor end in a newline that is no part of the secret.
        return text.removesuffix("\n").removesuffix("\r")
    return value


def resolve_references(value: Any, key: str) -> Any:
    """`value` with every reference string in it (also inside tables and arrays) replaced by
    what it names; `SecretUnavailable` with the key of the first that cannot be resolved."""
    if isinstance(value, str):
        try:
            return secret_value(value)
        except SecretUnavailable as exc:
            exc.key = key
            raise
    if isinstance(value, dict):
        return {k: resolve_references(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_references(v, f"{key}[{i}]") for i, v in enumerate(value)]
    return value
