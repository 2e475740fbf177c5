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
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import dns.rdatatype

# The core and optional types whose fields the spec defines one by one.
FIELD_TYPES = frozenset({"A", "AAAA", "CNAME", "NS", "MX", "TXT", "SRV", "SPFM"})
# Spec "Extensions/Exclusions": not DNS records a zone can hold; a backend may
# implement them or refuse them.
EXTENSION_TYPES = frozenset({"APEXCNAME", "REDIR301", "REDIR302", "NS1", "NS2", "DS"})
# Types that only DNSSEC signing or the server itself may write.
FORBIDDEN_TYPES = frozenset({"SOA", "RRSIG", "NSEC", "NSEC3", "NSEC3PARAM", "DNSKEY", "CDS", "CDNSKEY"})

VARIABLE = re.compile(r"%([A-Za-z0-9_.\-]+)%")
WHOLE_VARIABLE = re.compile(r"%([A-Za-z0-9_.\-]+)%")
_LDH_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)
# Names that are only looked up, never browsed to, may carry underscore labels (RFC 2181
# section 11), as `_domainconnect.example.com` for a TXT key does.
_LOOKUP_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE)


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


@dataclass(frozen=True)
class TemplateRecord:
    """One record of a template, as written by the service provider (unrendered)."""

    index: int
    type: str
    host: str = "@"
    points_to: str | None = None
    data: str | None = None
    ttl: int | str | None = None
    priority: int | str | None = None
    weight: int | str | None = None
    port: int | str | None = None
    service: str | None = None
    protocol: str | None = None
    target: str | None = None
    spf_rules: str | None = None
    group_id: str | None = None
    essential: Essential = Essential.ALWAYS
    txt_conflict_mode: TxtConflictMode = TxtConflictMode.NONE
    txt_conflict_prefix: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()  # extension fields, e.g. DS keyTag

    @property
    def is_extension(self) -> bool:
        return self.type in EXTENSION_TYPES


@dataclass(frozen=True)
class Template:
    provider_id: str
    provider_name: str
    service_id: str
    service_name: str
    records: tuple[TemplateRecord, ...]
    version: int | None = None
    logo_url: str | None = None
    description: str | None = None
    sync_block: bool = False
    shared_provider_name: bool = False
    shared_service_name: bool = False
    sync_pub_key_domain: str | None = None
    sync_redirect_domains: tuple[str, ...] = ()
    multi_instance: bool = False
    warn_phishing: bool = False
    host_required: bool = False
    source: str = ""

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

_REQUIRED_STRINGS = ("providerId", "providerName", "serviceId", "serviceName")
_BOOLEAN_FIELDS = {
    "syncBlock": "sync_block",
    "shared": None,
    "sharedProviderName": "shared_provider_name",
    "sharedServiceName": "shared_service_name",
    "multiInstance": "multi_instance",
    "warnPhishing": "warn_phishing",
    "hostRequired": "host_required",
}
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
_NUMERIC_FIELDS = ("ttl", "priority", "weight", "port")
_NUMERIC_LIMITS = {"priority": 65535, "weight": 65535, "port": 65535, "ttl": 2**31 - 1}


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

    def fail(message: str, field: str | None = None, record: int | None = None) -> TemplateError:
        return TemplateError(message, source=source, record=record, field=field)

    for key in _REQUIRED_STRINGS:
        value = document.get(key)
        if not isinstance(value, str) or not value.strip():
            raise fail("is required and must be a non-empty string", key)
    if any(ch.isspace() for ch in document["serviceId"]):
        raise fail("must not contain spaces (it is used in URLs and OAuth scopes)", "serviceId")
    flags: dict[str, bool] = {}
    for key, attribute in _BOOLEAN_FIELDS.items():
        if key in document:
            value = document[key]
            if not isinstance(value, bool):
                raise fail(f"must be true or false, not {value!r}", key)
            if attribute:
                flags[attribute] = value
    version = document.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise fail(f"must be an integer, not {version!r}", "version")
    for key in ("logoUrl", "description", "syncPubKeyDomain", "syncRedirectDomain", "variableDescription"):
        if key in document and document[key] is not None and not isinstance(document[key], str):
            raise fail(f"must be a string, not {document[key]!r}", key)

    sync_pub_key_domain = document.get("syncPubKeyDomain") or None
    if sync_pub_key_domain is not None:
        problem = public_domain_problem(sync_pub_key_domain, underscores=True)
        if problem:
            raise fail(f"{sync_pub_key_domain!r} is not a public domain name: {problem}", "syncPubKeyDomain")
    redirect_domains = tuple(
        d.strip().lower().rstrip(".") for d in (document.get("syncRedirectDomain") or "").split(",") if d.strip())

    raw_records = document.get("records")
    if not isinstance(raw_records, list) or not raw_records:
        raise fail("is required and must be a non-empty list", "records")
    records = tuple(_parse_record(raw, index, fail) for index, raw in enumerate(raw_records))

    return Template(
        provider_id=document["providerId"],
        provider_name=document["providerName"],
        service_id=document["serviceId"],
        service_name=document["serviceName"],
        records=records,
        version=version,
        logo_url=document.get("logoUrl") or None,
        description=document.get("description"),
        sync_pub_key_domain=sync_pub_key_domain.lower().rstrip(".") if sync_pub_key_domain else None,
        sync_redirect_domains=redirect_domains,
        source=source,
        **flags,
    )


@functools.lru_cache(maxsize=4096)
def public_domain_problem(value: str, *, underscores: bool = False) -> str | None:
    """Why `value` is not a registrable-looking public host name, or None when it is.
    With `underscores`, labels may also hold '_' (a name only looked up in DNS)."""
    name = value.rstrip(".")
    labels = name.split(".")
    if "://" in name or "/" in name:
        return "give a bare domain name, not a URL"
    if len(labels) < 2:
        return "it has a single label"
    label_pattern, allowed = (_LOOKUP_LABEL, "letters, digits, hyphens, underscores") if underscores \
        else (_LDH_LABEL, "letters, digits, hyphens")
    for label in labels:
        if not label_pattern.fullmatch(label):
            return f"label {label!r} is not a host name label ({allowed})"
    if labels[-1].isdigit():
        return "it is an IP address"
    return None


def _parse_record(raw: Any, index: int, fail) -> TemplateRecord:
    if not isinstance(raw, dict):
        raise fail("must be a JSON object", record=index)
    rtype = raw.get("type")
    if not isinstance(rtype, str) or not rtype:
        raise fail("is required", "type", index)
    rtype = rtype.upper()
    if rtype not in FIELD_TYPES and rtype not in EXTENSION_TYPES:
        if rtype in FORBIDDEN_TYPES:
            raise fail(f"{rtype} records are managed by the DNS server, not by templates", "type", index)
        try:
            dns.rdatatype.from_text(rtype)
        except dns.rdatatype.UnknownRdatatype:
            raise fail(f"unknown record type {raw['type']!r} (use an IANA type name or TYPEnnn)",
                       "type", index) from None
        required: tuple[str, ...] = ("host", "data", "ttl")
    else:
        required = _REQUIRED_RECORD_FIELDS.get(rtype, ())
    for key in required:
        if key not in raw or raw[key] is None:
            # The spec lets an empty host mean the apex; only a missing one is an error.
            raise fail(f"is required for {rtype} records", key, index)

    for key in ("host", "name", "pointsTo", "data", "service", "protocol", "target", "spfRules",
                "groupId", "txtConflictMatchingPrefix"):
        if key in raw and raw[key] is not None and not isinstance(raw[key], str):
            raise fail(f"must be a string, not {raw[key]!r}", key, index)
    numbers = {key: _parse_number(raw.get(key), key, index, fail) for key in _NUMERIC_FIELDS}

    for key in ("host", "name", "pointsTo", "target"):
        value = raw.get(key)
        if isinstance(value, str) and "@" in value and value.strip() != "@":
            raise fail(f"'@' may only stand alone (use %fqdn% inside a longer name), not {value!r}", key, index)

    group_id = raw.get("groupId")
    if group_id is not None and VARIABLE.search(group_id):
        raise fail("must not contain variables", "groupId", index)

    essential = Essential.ALWAYS
    if raw.get("essential") is not None:
        match = {e.value.lower(): e for e in Essential}.get(str(raw["essential"]).lower())
        if match is None:
            raise fail(f"must be 'Always' or 'OnApply', not {raw['essential']!r}", "essential", index)
        essential = match

    mode = TxtConflictMode.NONE
    if raw.get("txtConflictMatchingMode") is not None:
        match_mode = {m.value.lower(): m for m in TxtConflictMode}.get(str(raw["txtConflictMatchingMode"]).lower())
        if match_mode is None:
            raise fail(f"must be 'None', 'All' or 'Prefix', not {raw['txtConflictMatchingMode']!r}",
                       "txtConflictMatchingMode", index)
        mode = match_mode
    prefix = raw.get("txtConflictMatchingPrefix")
    if mode is TxtConflictMode.PREFIX:
        if not prefix:
            raise fail("is required when txtConflictMatchingMode is Prefix", "txtConflictMatchingPrefix", index)
        if VARIABLE.search(prefix):
            raise fail("must not contain variables", "txtConflictMatchingPrefix", index)

    host = raw.get("name") if rtype == "SRV" else raw.get("host")
    known = {"type", "host", "name", "pointsTo", "data", "rdata", "ttl", "priority", "weight", "port",
             "service", "protocol", "target", "spfRules", "groupId", "essential",
             "txtConflictMatchingMode", "txtConflictMatchingPrefix"}
    extra = tuple(sorted((k, v) for k, v in raw.items() if k not in known))
    data = raw.get("data")
    if data is None and isinstance(raw.get("rdata"), str) and rtype not in FIELD_TYPES:
        data = raw["rdata"]
    return TemplateRecord(
        index=index,
        type=rtype,
        host=host if host is not None else "@",
        points_to=raw.get("pointsTo"),
        data=data,
        service=raw.get("service"),
        protocol=raw.get("protocol"),
        target=raw.get("target"),
        spf_rules=raw.get("spfRules"),
        group_id=group_id,
        essential=essential,
        txt_conflict_mode=mode,
        txt_conflict_prefix=prefix if mode is TxtConflictMode.PREFIX else None,
        extra=extra,
        **numbers,
    )


def _parse_number(value: Any, key: str, index: int, fail) -> int | str | None:
    """An int, a string of an int, or a string that is exactly one variable."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise fail(f"must be an integer, not {value!r}", key, index)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if WHOLE_VARIABLE.fullmatch(text):
            return text
        if VARIABLE.search(text):
            raise fail("a variable must be the whole value, without prefix or suffix", key, index)
        if not re.fullmatch(r"\d+", text):
            raise fail(f"must be an integer or a string of an integer, not {value!r}", key, index)
        number = int(text)
    else:
        raise fail(f"must be an integer, not {value!r}", key, index)
    if not 0 <= number <= _NUMERIC_LIMITS[key]:
        raise fail(f"{number} is out of range 0..{_NUMERIC_LIMITS[key]}", key, index)
    return number


def is_apex_placeholder(host: str) -> bool:
    return host.strip() in ("", "@")


__all__ = [
    "BUILTIN_VARIABLES", "EXTENSION_TYPES", "Essential", "Template", "TemplateError",
    "TemplateRecord", "TxtConflictMode", "VARIABLE", "is_apex_placeholder", "iter_template_files",
    "load_template", "load_templates", "parse_template", "public_domain_problem",
]
