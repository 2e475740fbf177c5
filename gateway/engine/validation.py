"""Validation errors of the declarative models (config sections, templates) as the plain
messages the gateway reports: where, and what is wrong, in the words of the file's author.

    except ValidationError as exc:
        where, message = describe(exc, Config)   # (("backends", 1, "driver"), "no backend driver 'pdsn' ...")

A check that knows better where its problem is (a field compared with another, an item of a
list) raises `KeyProblem(key, message)`; its key is reported as given.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Union

from pydantic import AfterValidator, BaseModel, Strict, ValidationError

Location = tuple[str | int, ...]

# Scalars as they are written: no "5" for 5, no 1 for true.
Text = Annotated[str, Strict()]
Whole = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]
Seconds = Annotated[float, Strict()]  # an integer is a number of seconds too


def must(test: Callable[[Any], bool], message: str) -> AfterValidator:
    """A check of one value; `message` may show it as {value}."""
    def check(value: Any) -> Any:
        if not test(value):
            raise ValueError(message.format(value=value))
        return value
    return AfterValidator(check)


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean (true or false)",
    "list_type": "an array",
    "tuple_type": "an array",
    "dict_type": "a table",
    "mapping_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
}


class KeyProblem(ValueError):
    """A problem whose key the check names itself (`ttl.minimum`, `backends[1].name`)."""

    def __init__(self, key: str | Location, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


def describe(error: ValidationError, root: type[BaseModel], *, toml: bool = False) -> tuple[str | Location, str]:
    """The first problem of `error`: its location (a `KeyProblem`'s key, or the path of
    aliases into `root`) and a message. With `toml`, type errors name tables as TOML writes
    them (`[gateway]`, `[[backends]]`) and a top-level unknown key is an unknown section."""
    details = error.errors(include_url=False)[0]
    cause = (details.get("ctx") or {}).get("error")
    if isinstance(cause, KeyProblem):
        return cause.key, cause.message
    location: Location = tuple(details["loc"])
    kind = details["type"]
    if kind == "extra_forbidden":
        model = model_at(root, location[:-1])
        what = "unknown section" if len(location) == 1 and toml else "unknown key"
        return location, f"{what} (expected one of: {', '.join(sorted(field_names(model)))})"
    if kind == "missing":
        return location, "is required"
    if kind in _EXPECTED:
        return location, f"must be {_expected(root, location, kind, toml)}, not {kind_of(details['input'])}"
    if cause is not None:
        return location, str(cause)
    return location, details["msg"]


def key_text(location: str | Location) -> str:
    """`backends[1].driver` for ("backends", 1, "driver")."""
    if isinstance(location, str):
        return location
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def kind_of(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
             dict: "a table", type(None): "null"}
    return kinds.get(type(value), type(value).__name__)


def field_names(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def model_at(root: type[BaseModel], location: Sequence[str | int]) -> type[BaseModel]:
    """The model that validates the value at `location` (list indexes step into items)."""
    model = root
    for part in location:
        if isinstance(part, int):
            continue
        annotation = _field(model, part)
        inner = _models_in(annotation)
        if not inner:
            break
        model = inner[0]
    return model


def _expected(root: type[BaseModel], location: Location, kind: str, toml: bool) -> str:
    named = [index for index, part in enumerate(location) if isinstance(part, str)]
    if not toml or kind not in ("model_type", "dict_type", "list_type", "tuple_type") or not named:
        return _EXPECTED[kind]
    # The field holding the value: its model, and the table's dotted name (`auth.users`).
    last = named[-1]
    annotation = _field(model_at(root, location[:last]), location[last])
    if not _models_in(annotation):
        return _EXPECTED[kind]
    table = ".".join(part for part in location[:last + 1] if isinstance(part, str))
    if kind in ("list_type", "tuple_type"):
        return f"an array of tables ([[{table}]])"
    repeated = typing.get_origin(annotation) in (tuple, list)
    return f"a table ([[{table}]])" if repeated else f"a table ([{table}])"


def _field(model: type[BaseModel], name: str | int) -> Any:
    for attribute, field in model.model_fields.items():
        if name in (attribute, field.alias):
            return field.annotation
    return None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, tuple, list, typing.Annotated):
        return [model for argument in typing.get_args(annotation) for model in _models_in(argument)]
    return []
