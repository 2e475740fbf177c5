"""Domain Connect templates: the typed model, loading and validation.

A template is validated once, when it is loaded. Every problem found is reported as
a `TemplateError` that names the file, the record index and the field, so a DNS host
onboarding a template knows exactly what to fix.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import dns.rdatatype
from pydantic import (
    AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
    model_validator,
)

from gateway.engine.domains import HOST_LABEL, LOOKUP_LABEL
from gateway.engine.validation import Flag, KeyProblem, Text, Whole, describe, kind_of, must

# The core and optional types whose fields the spec defines one by one.
FIELD_TYPES = frozenset({"A", "AAAA", "CNAME", "NS", "MX", "TXT", "SRV", "SPFM"})
# Spec "Extensions/Exclusions": not DNS records a zone can hold; a backend may
# implement them or refuse them.
EXTENSION_TYPES = frozenset({"APEXCNAME", "REDIR301", "REDIR302", "NS1", "NS2", "DS"})
# Types that only DNSSEC signing or the server itself may write.
FORBIDDEN_TYPES = frozenset({"SOA", "RRSIG", "NSEC", "NSEC3", "NSEC3PARAM", "DNSKEY", "CDS", "CDNSKEY"})

VARIABLE = re.compile(r"%([A-Za-z0-9_.\-]+)%")
WHOLE_VARIABLE = re.compile(r"%([A-Za-z0-9_.\-]+)%")


class TemplateError(ValueError):
    """A template that cannot be used, with where the problem is."""

    def __init__(self, message: str, *, source: str = "", record: int | None = None,
                 field: str | None = None) -> None:
        self.message = message
        self.source = source
        self.record = record
        self.field = field
        super().__init__(self.location() + message)

    def location(self) -> str:
        parts = [self.source] if self.source else []
        if self.record is not None:
            parts.append(f"records[{self.record}]")
        if self.field:
            parts.append(self.field)
        return (": ".join(parts) + ": ") if parts else ""


class Essential(str, Enum):
    ALWAYS = "Always"
    ON_APPLY = "OnApply"


class TxtConflictMode(str, Enum):
    NONE = "None"
    ALL = "All"
    PREFIX = "Prefix"


# Fields each type needs, beyond `type` (spec "Template Record").
_REQUIRED_RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    "A": ("host", "pointsTo", "ttl"),
    "AAAA": ("host", "pointsTo", "ttl"),
    "CNAME": ("host", "pointsTo", "ttl"),
    "NS": ("host", "pointsTo", "ttl"),
    "MX": ("host", "pointsTo", "ttl", "priority"),
    "TXT": ("host", "data", "ttl"),
    "SRV": ("name", "target", "ttl", "priority", "protocol", "service", "weight", "port"),
    "SPFM": ("host", "spfRules"),
}
# The spec's record fields; any other is an extension field, kept in `extra`.
RECORD_FIELDS = frozenset({"type", "host", "name", "pointsTo", "data", "rdata", "ttl", "priority", "weight", "port",
                           "service", "protocol", "target", "spfRules", "groupId", "essential",
                           "txtConflictMatchingMode", "txtConflictMatchingPrefix"})
RECORD_INDEX = "\0index"  # where a record's position rides into its validation: no JSON key collides


def _number(limit: int) -> BeforeValidator:
    """An int, a string of an int, or a string that is exactly one variable."""
    def parse(value: Any) -> int | str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"must be an integer, not {value!r}")
        number = value
        if isinstance(value, str):
            text = value.strip()
            if WHOLE_VARIABLE.fullmatch(text):
                return text
            if VARIABLE.search(text):
                raise ValueError("a variable must be the whole value, without prefix or suffix")
            if not re.fullmatch(r"\d+", text):
                raise ValueError(f"must be an integer or a string of an integer, not {value!r}")
            number = int(text)
        if not 0 <= number <= limit:
            raise ValueError(f"{number} is out of range 0..{limit}")
        return number
    return BeforeValidator(parse)


Number = Annotated[int | str | None, _number(65535)]
TtlNumber = Annotated[int | str | None, _number(2**31 - 1)]
Identifier = Annotated[Text, must(lambda v: bool(v.strip()), "is required and must be a non-empty string")]


def _no_variables(value: str) -> str:
    if VARIABLE.search(value):
        raise ValueError("must not contain variables")
    return value


def _one_of(kind: type[Enum], value: Any) -> Enum:
    if value is None:
        return next(iter(kind))
    match = {choice.value.lower(): choice for choice in kind}.get(str(value).lower())
    if match is None:
        choices = [repr(choice.value) for choice in kind]
        raise ValueError(f"must be {', '.join(choices[:-1])} or {choices[-1]}, not {value!r}")
    return match


def _spec_record(raw: dict[str, Any], index: int) -> dict[str, Any]:
    """A record as the spec writes it, as the model's fields: the type's own checks, SRV's
    `name` as its host, `rdata` as the data of other types, extension fields in `extra`."""
    def at(key: str) -> tuple[str, int, str]:
        return ("records", index, key)

    rtype = raw.get("type")
    if not isinstance(rtype, str) or not rtype:
        raise KeyProblem(at("type"), "is required")
    rtype = rtype.upper()
    if rtype not in FIELD_TYPES and rtype not in EXTENSION_TYPES:
        if rtype in FORBIDDEN_TYPES:
            raise KeyProblem(at("type"), f"{rtype} records are managed by the DNS server, not by templates")
        try:
            dns.rdatatype.from_text(rtype)
        except dns.rdatatype.UnknownRdatatype:
            raise KeyProblem(at("type"), f"unknown record type {raw['type']!r} "
                                         "(use an IANA type name or TYPEnnn)") from None
        required: tuple[str, ...] = ("host", "data", "ttl")
    else:
        required = _REQUIRED_RECORD_FIELDS.get(rtype, ())
    for key in required:
        if raw.get(key) is None:
            # The spec lets an empty host mean the apex; only a missing one is an error.
            raise KeyProblem(at(key), f"is required for {rtype} records")
    for key in ("host", "name", "pointsTo", "target"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise KeyProblem(at(key), f"must be a string, not {kind_of(value)}")
        if value is not None and "@" in value and value.strip() != "@":
            raise KeyProblem(at(key), f"'@' may only stand alone (use %fqdn% inside a longer name), not {value!r}")

    fields = {key: value for key, value in raw.items()
              if key in RECORD_FIELDS and value is not None and key not in ("name", "rdata")}
    host = raw.get("name") if rtype == "SRV" else raw.get("host")
    fields.update(index=index, type=rtype, host=host if host is not None else "@",
                  extra=tuple(sorted((k, v) for k, v in raw.items() if k not in RECORD_FIELDS)))
    if raw.get("data") is None and isinstance(raw.get("rdata"), str) and rtype not in FIELD_TYPES:
        fields["data"] = raw["rdata"]
    prefix = raw.get("txtConflictMatchingPrefix")
    if prefix is not None and not isinstance(prefix, str):
        raise KeyProblem(at("txtConflictMatchingPrefix"), f"must be a string, not {kind_of(prefix)}")
    if str(raw.get("txtConflictMatchingMode")).lower() != "prefix":
        fields.pop("txtConflictMatchingPrefix", None)  # only a Prefix mode uses it (lint says so)
    return fields


def _not_an_object(index: int) -> Any:
    raise KeyProblem(("records", index), "must be a JSON object")


class TemplateRecord(BaseModel):
    """One record of a template, as written by the service provider (unrendered). Fields
    carry the spec's names as aliases; `extra` keeps the fields of extension types (DS
    keyTag, ...), which the spec leaves open."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int
    type: str
    host: Text = "@"
    points_to: Text | None = Field(None, alias="pointsTo")
    data: Text | None = None
    ttl: TtlNumber = None
    priority: Number = None
    weight: Number = None
    port: Number = None
    service: Text | None = None
    protocol: Text | None = None
    target: Text | None = None
    spf_rules: Text | None = Field(None, alias="spfRules")
    group_id: Annotated[Text, AfterValidator(_no_variables)] | None = Field(None, alias="groupId")
    essential: Essential = Essential.ALWAYS
    txt_conflict_mode: TxtConflictMode = Field(TxtConflictMode.NONE, alias="txtConflictMatchingMode")
    txt_conflict_prefix: Text | None = Field(None, alias="txtConflictMatchingPrefix")
    extra: tuple[tuple[str, Any], ...] = ()  # extension fields, e.g. DS keyTag

    @model_validator(mode="before")
    @classmethod
    def _from_spec(cls, raw: Any) -> Any:
        if not isinstance(raw, dict) or RECORD_INDEX not in raw:
            return raw  # built in code, by field name
        index = raw.pop(RECORD_INDEX)
        return _spec_record(raw, index)

    @field_validator("essential", "txt_conflict_mode", mode="before")
    @classmethod
    def _any_case(cls, value: Any, info: ValidationInfo) -> Any:
        return _one_of(Essential if info.field_name == "essential" else TxtConflictMode, value)

    @model_validator(mode="after")
    def _prefix(self) -> TemplateRecord:
        where = ("records", self.index, "txtConflictMatchingPrefix")
        if self.txt_conflict_mode is TxtConflictMode.PREFIX:
            if not self.txt_conflict_prefix:
                raise KeyProblem(where, "is required when txtConflictMatchingMode is Prefix")
            if VARIABLE.search(self.txt_conflict_prefix):
                raise KeyProblem(where, "must not contain variables")
        return self

    @property
    def is_extension(self) -> bool:
        return self.type in EXTENSION_TYPES


class Template(BaseModel):
    """A template as onboarded. Keys the spec does not define are left out (the spec's
    schema allows them; `dcgw templates lint` names each)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    provider_id: Identifier = Field(alias="providerId")
    provider_name: Identifier = Field(alias="providerName")
    service_id: Annotated[Identifier, must(lambda v: not any(ch.isspace() for ch in v),
                                            "must not contain spaces (it is used in URLs and OAuth scopes)")] \
        = Field(alias="serviceId")
    service_name: Identifier = Field(alias="serviceName")
    records: tuple[TemplateRecord, ...]
    version: Whole | None = None
    logo_url: Text | None = Field(None, alias="logoUrl")
    description: Text | None = None
    variable_description: Text | None = Field(None, alias="variableDescription")
    sync_block: Flag = Field(False, alias="syncBlock")
    shared: Flag = False
    shared_provider_name: Flag = Field(False, alias="sharedProviderName")
    shared_service_name: Flag = Field(False, alias="sharedServiceName")
    sync_pub_key_domain: Text | None = Field(None, alias="syncPubKeyDomain")
    sync_redirect_domains: tuple[str, ...] = Field((), alias="syncRedirectDomain")
    multi_instance: Flag = Field(False, alias="multiInstance")
    warn_phishing: Flag = Field(False, alias="warnPhishing")
    host_required: Flag = Field(False, alias="hostRequired")
    source: str = ""

    @field_validator("records", mode="before")
    @classmethod
    def _indexed(cls, value: Any) -> Any:
        if not isinstance(value, list) or not value:
            raise ValueError("is required and must be a non-empty list")
        return [{**raw, RECORD_INDEX: index} if isinstance(raw, dict) else _not_an_object(index)
                for index, raw in enumerate(value)]

    @field_validator("logo_url", "sync_pub_key_domain")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("sync_pub_key_domain")
    @classmethod
    def _key_domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = public_domain_problem(value, underscores=True)
        if problem:
            raise ValueError(f"{value!r} is not a public domain name: {problem}")
        return value.lower().rstrip(".")

    @field_validator("sync_redirect_domains", mode="before")
    @classmethod
    def _redirect_domains(cls, value: Any) -> Any:
        if value is None:
            return ()
        if not isinstance(value, str):
            raise ValueError(f"must be a string, not {value!r}")
        return tuple(d.strip().lower().rstrip(".") for d in value.split(",") if d.strip())

    @property
    def key(self) -> tuple[str, str]:
        return (self.provider_id, self.service_id)

    @property
    def group_ids(self) -> frozenset[str]:
        return frozenset(r.group_id for r in self.records if r.group_id is not None)

    def variables(self) -> list[str]:
        """Names of the caller-supplied variables, in order of first use."""
        seen: dict[str, None] = {}
        for record in self.records:
            for value in _string_fields(record):
                for name in VARIABLE.findall(value):
                    if name not in BUILTIN_VARIABLES:
                        seen.setdefault(name)
        return list(seen)


BUILTIN_VARIABLES = frozenset({"domain", "host", "fqdn"})


def _string_fields(record: TemplateRecord) -> Iterator[str]:
    for value in (record.host, record.points_to, record.data, record.ttl, record.priority,
                  record.weight, record.port, record.service, record.protocol, record.target,
                  record.spf_rules):
        if isinstance(value, str):
            yield value


# --- loading -----------------------------------------------------------------------------

def load_template(path: str | Path) -> Template:
    """Load and validate one template file."""
    path = Path(path)
    source = str(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise TemplateError(f"cannot read file: {exc.strerror or exc}", source=source) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TemplateError(f"not valid JSON: {exc}", source=source) from exc
    return parse_template(document, source=source)


def iter_template_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Expand files and directories (recursively, `*.json`) into template files, sorted."""
    for entry in paths:
        entry = Path(entry)
        if entry.is_dir():
            yield from sorted(p for p in entry.rglob("*.json") if p.is_file())
        else:
            yield entry


def load_templates(paths: Iterable[str | Path]) -> tuple[dict[tuple[str, str], Template], list[TemplateError]]:
    """Load every template under `paths`; return the good ones by key and the errors."""
    templates: dict[tuple[str, str], Template] = {}
    errors: list[TemplateError] = []
    for path in iter_template_files(paths):
        try:
            template = load_template(path)
        except TemplateError as exc:
            errors.append(exc)
            continue
        if template.key in templates:
            errors.append(TemplateError(
                f"duplicate template {template.provider_id}/{template.service_id}, "
                f"also defined in {templates[template.key].source}", source=str(path)))
            continue
        templates[template.key] = template
    return templates, errors


def parse_template(document: Any, *, source: str = "") -> Template:
    """Validate a decoded template document and build the typed model."""
    if not isinstance(document, dict):
        raise TemplateError("a template must be a JSON object", source=source)
    try:
        return Template.model_validate({**document, "source": source})
    except ValidationError as exc:
        where, message = describe(exc, Template)
        parts = list(where) if isinstance(where, tuple) else [where]
        record = parts[1] if parts[:1] == ["records"] and len(parts) > 1 and isinstance(parts[1], int) else None
        field = parts[2] if record is not None and len(parts) > 2 else (parts[0] if record is None else None)
        raise TemplateError(message, source=source, record=record, field=str(field) if field is not None else None) \
            from None


@functools.lru_cache(maxsize=4096)  # render checks every domain it is given
def public_domain_problem(value: str, *, underscores: bool = False) -> str | None:
    """Why `value` is not a registrable-looking public host name, or None when it is.
    With `underscores`, labels may also hold '_' (a name only looked up in DNS)."""
    name = value.rstrip(".")
    labels = name.split(".")
    if "://" in name or "/" in name:
        return "give a bare domain name, not a URL"
    if len(labels) < 2:
        return "it has a single label"
    label_pattern, allowed = (LOOKUP_LABEL, "letters, digits, hyphens, underscores") if underscores \
        else (HOST_LABEL, "letters, digits, hyphens")
    for label in labels:
        if not label_pattern.fullmatch(label):
            return f"label {label!r} is not a host name label ({allowed})"
    if labels[-1].isdigit():
        return "it is an IP address"
    return None


def is_apex_placeholder(host: str) -> bool:
    return host.strip() in ("", "@")


__all__ = [
    "BUILTIN_VARIABLES", "EXTENSION_TYPES", "Essential", "Template", "TemplateError",
    "TemplateRecord", "TxtConflictMode", "VARIABLE", "is_apex_placeholder", "iter_template_files",
    "load_template", "load_templates", "parse_template", "public_domain_problem",
]
