"""Render a template for one apply context into concrete records.

Rendering is where untrusted input (the variables of a URL) meets DNS syntax, so every
value is checked for the context it lands in and then parsed by dnspython for its type:
a variable can change a value, never the shape of a record, its type or its zone.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV

from backends.records import ExtensionRecord, hashed_rdata, name_key
from gateway.engine.records import RenderedRecord, SpfRules
from gateway.engine.safety import SafetyPolicy
from gateway.engine.spf import rule_problem, rule_tokens
from gateway.engine.template import (
    BUILTIN_VARIABLES, VARIABLE, WHOLE_VARIABLE, Template, TemplateRecord, is_apex_placeholder,
    public_domain_problem,
)

IN = dns.rdataclass.IN
T = dns.rdatatype.RdataType

# Characters that could end a token, start a comment or a new record in presentation
# format. A variable value in a name, number or generic rdata must not carry any.
_TOKEN_BREAKERS = re.compile(r'[\s"\\;()]')
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# A whole name as written in the template (a wildcard label is the template's to write), and
# a value from the caller (host, a variable): the same without '*'. Always fullmatch: `$`
# would also match before a trailing newline.
_NAME_TEXT = re.compile(r"[A-Za-z0-9_*\-]+(\.[A-Za-z0-9_*\-]+)*\.?")
_NAME_VALUE = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*\.?")
MAX_RDATA_BYTES = 65535  # what the DNS wire format holds; zone tools refuse more
_BOUNDED_RDATA = (dns.rdtypes.IN.A.A, dns.rdtypes.IN.AAAA.AAAA, dns.rdtypes.ANY.CNAME.CNAME, dns.rdtypes.ANY.NS.NS,
                  dns.rdtypes.ANY.MX.MX, dns.rdtypes.IN.SRV.SRV)


class RenderError(ValueError):
    """The template cannot be rendered for this context; the message says why."""

    def __init__(self, message: str, record: TemplateRecord | None = None, field_name: str | None = None):
        where = ""
        if record is not None:
            where = f"records[{record.index}] ({record.type})"
            if field_name:
                where += f" {field_name}"
            where += ": "
        super().__init__(where + message)
        self.record = record
        self.field = field_name


class VariableError(RenderError):
    """A variable is missing or its value is not allowed where it is used."""


class _Deferred(Exception):
    """A field needs a variable the caller has not given yet (consent renders without them)."""


@dataclass(frozen=True)
class TtlPolicy:
    """The DNS host's TTL policy; the spec makes template TTLs best effort, never a rejection."""

    minimum: int = 60
    maximum: int = 86400
    default: int = 3600

    def apply(self, ttl: int | None) -> int:
        if ttl is None:
            return self.default
        return max(self.minimum, min(self.maximum, ttl))


@dataclass(frozen=True)
class RenderLimits:
    """`[limits]`: how large a rendered record may be. A TXT record bigger than resolvers and
    zone tools handle would make the whole zone unloadable."""

    max_txt_bytes: int = 4096


@dataclass(frozen=True)
class ApplyContext:
    """Where and with what a template is applied."""

    domain: str
    host: str = ""
    params: Mapping[str, str] = field(default_factory=dict)
    group_ids: frozenset[str] | None = None  # None: every record
    ttl_policy: TtlPolicy = TtlPolicy()
    limits: RenderLimits = RenderLimits()
    safety: SafetyPolicy = SafetyPolicy()

    @property
    def domain_name(self) -> dns.name.Name:
        return name_from_text(self.domain)

    @property
    def fqdn(self) -> str:
        return f"{self.host}.{self.domain}" if self.host else self.domain

    @property
    def fqdn_name(self) -> dns.name.Name:
        return name_from_text(self.fqdn)


def name_from_text(text: str, origin: dns.name.Name | None = dns.name.root) -> dns.name.Name:
    """`dns.name.from_text`, remembered: names are immutable values, and the same few (the
    domain, its hosts, the targets of a template) are parsed again on every apply."""
    return _parse_name(text, origin.labels if origin is not None else None)


@functools.lru_cache(maxsize=8192)
def _parse_name(text: str, origin_labels: tuple[bytes, ...] | None) -> dns.name.Name:
    return dns.name.from_text(text, origin=dns.name.Name(origin_labels) if origin_labels is not None else None)


def group_ids(values: Iterable[str]) -> frozenset[str] | None:
    """groupId parameters, repeated or comma-separated; None (every group) when there are none."""
    groups = {g.strip() for value in values for g in value.split(",") if g.strip()}
    return frozenset(groups) if groups else None


@dataclass(frozen=True)
class PendingRecord:
    """A record that needs variables given only at apply time: what is known of it now.

    `name` is None when its host needs one, so it cannot be placed (nor its conflicts
    found) before the apply; `ttl` is None when the TTL needs one."""

    source: TemplateRecord
    name: dns.name.Name | None
    ttl: int | None

    @property
    def rdtype(self) -> dns.rdatatype.RdataType | None:
        """The DNS type it will have; None for SPF rules and extensions, which are no plain record."""
        if self.source.type == "SPFM" or self.source.is_extension:
            return None
        return dns.rdatatype.from_text(self.source.type)

    def host_as_written(self) -> str:
        record = self.source
        if record.type == "SRV":
            return f"{record.service or ''}.{record.protocol or ''}.{record.host}"
        return record.host

    def value_as_written(self) -> str:
        """The value as the template writes it, variables and all."""
        record = self.source
        parts: tuple = {
            "MX": (record.priority, record.points_to),
            "SRV": (record.priority, record.weight, record.port, record.target),
            "SPFM": (record.spf_rules,),
        }.get(record.type, (record.points_to if record.points_to is not None else
                            record.target if record.target is not None else record.data,))
        return " ".join(str(part) for part in parts if part is not None)


@dataclass
class RenderedTemplate:
    """The outcome of rendering: records, SPF rules to merge, extensions and warnings."""

    template: Template
    context: ApplyContext
    records: list[RenderedRecord]
    spf: list[SpfRules]
    extensions: list[ExtensionRecord]
    warnings: list[str]
    pending: list[PendingRecord] = field(default_factory=list)  # only when rendering with defer_missing
    # Filled in by gateway.apply.extensions for the extensions the gateway itself carries out.
    redirects: list = field(default_factory=list)  # [WebRedirect]
    aliases: list = field(default_factory=list)  # [FlattenedAlias]
    # read_scope's answer per zone (and the planner's keys of it), worked out once: rendered
    # records are not changed afterwards.
    scopes: dict = field(default_factory=dict, init=False, repr=False, compare=False)


def render_template(template: Template, context: ApplyContext, *, defer_missing: bool = False) -> RenderedTemplate:
    """Render every record of `template` selected by the context's group ids.

    With `defer_missing` (consent, where variables may come only at apply time) a record
    needing a variable not given is kept as a PendingRecord instead of refused; a given
    value that is not allowed is still a RenderError."""
    _check_context(template, context)
    renderer = _Renderer(template, context, defer=defer_missing)
    rendered = RenderedTemplate(template, context, [], [], [], renderer.warnings)
    for record in template.records:
        if context.group_ids is not None and record.group_id not in context.group_ids:
            continue
        try:
            if record.type == "SPFM":
                rendered.spf.append(renderer.spf_rules(record))
            elif record.is_extension:
                rendered.extensions.append(renderer.extension(record))
            else:
                rendered.records.append(renderer.record(record))
        except _Deferred:
            rendered.pending.append(renderer.pending(record))
    return rendered


def _check_context(template: Template, context: ApplyContext) -> None:
    problem = public_domain_problem(context.domain)
    if problem:
        raise RenderError(f"domain {context.domain!r} is not a valid domain name: {problem}")
    try:
        domain = context.domain_name
    except dns.exception.DNSException as exc:
        raise RenderError(f"domain {context.domain!r} is not a valid domain name: {exc}") from None
    if len(domain.labels) < 3:  # root plus at least two labels
        raise RenderError(f"domain {context.domain!r} must be a registered domain such as example.com")
    if context.host:
        if not _NAME_VALUE.fullmatch(context.host) or context.host.endswith("."):
            raise RenderError(f"host {context.host!r} is not a valid host name relative to the domain "
                              "(letters, digits, '-' and '_'; no wildcard)")
        try:
            context.fqdn_name
        except dns.exception.DNSException as exc:
            raise RenderError(f"host {context.host!r} is not valid: {exc}") from None
    elif template.host_required:
        raise RenderError(f"template {template.provider_id}/{template.service_id} requires a host "
                          "(hostRequired), but none was given")
    if context.group_ids is not None:
        unknown = sorted(set(context.group_ids) - template.group_ids)
        if unknown:
            known = ", ".join(sorted(template.group_ids)) or "none"
            raise RenderError(f"groupId {', '.join(unknown)} is not in the template (its groups: {known})")


class _Renderer:
    def __init__(self, template: Template, context: ApplyContext, defer: bool = False) -> None:
        self.template = template
        self.context = context
        self.defer = defer
        self.domain = context.domain_name
        self.domain_key = name_key(self.domain)
        self.fqdn = context.fqdn_name
        self.warnings: list[str] = []
        self.builtins = {"domain": context.domain, "host": context.host, "fqdn": context.fqdn}

    # -- variables --------------------------------------------------------------------
    def variable(self, name: str, record: TemplateRecord, field_name: str) -> str:
        if name in BUILTIN_VARIABLES:
            return self.builtins[name]
        if name in self.context.params:
            value = self.context.params[name]
            if _SURROGATE.search(value):
                raise VariableError(f"value of variable %{name}% is not valid Unicode (a lone surrogate)",
                                    record, field_name)
            return value
        if self.defer:
            raise _Deferred(name)
        hint = ""
        others = [p for p in self.context.params if p.lower() == name.lower()]
        if others:
            hint = f" (a parameter {others[0]!r} was given; variable names are case-sensitive)"
        raise VariableError(f"variable %{name}% is missing{hint}", record, field_name)

    def substitute(self, text: str, record: TemplateRecord, field_name: str, check) -> str:
        if "%" not in text:
            return text  # no variable: most fields of most templates
        deferred: list[_Deferred] = []

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            try:
                value = self.variable(name, record, field_name)
            except _Deferred as later:
                deferred.append(later)  # the given variables of the field are still checked
                return match.group(0)
            if name not in BUILTIN_VARIABLES:
                problem = check(value)
                if problem:
                    raise VariableError(f"value {value!r} of variable %{name}% {problem}", record, field_name)
            return value
        text = VARIABLE.sub(replace, text)
        if deferred:
            raise deferred[0]
        return text

    def known(self, part):
        """part(), or None when it needs a variable given later."""
        try:
            return part()
        except _Deferred:
            return None

    def all_known(self, *parts) -> list:
        """Every part evaluated, so each given value is checked, before deferring for any."""
        if not self.defer:
            return [part() for part in parts]  # only a deferring render defers a part
        values = [self.known(part) for part in parts]
        if any(value is None for value in values):
            raise _Deferred()
        return values

    def pending(self, record: TemplateRecord) -> PendingRecord:
        """What a record deferred for a missing variable is known to be, once every value it
        was given has passed the same checks as at apply."""
        if record.type == "SPFM" or record.is_extension:
            name = self.known(lambda: self.owner(record.host, record, "host"))
            self.known(lambda: self.spf_text(record) if record.type == "SPFM" else self.extension_fields(record))
        else:
            name = self.known(lambda: self.record_name(record))
            self.known(lambda: self.rdata(record))
        ttl = self.known(lambda: self.ttl(record)) if record.ttl is not None or record.type != "SPFM" else None
        return PendingRecord(record, name, ttl)

    # -- names ------------------------------------------------------------------------
    def owner(self, host: str, record: TemplateRecord, field_name: str) -> dns.name.Name:
        """Owner name from a host/name field: relative to [host.]domain unless it ends with '.'."""
        host = host.strip()
        if is_apex_placeholder(host):
            return self.fqdn
        text = self.substitute(host, record, field_name, _name_value_problem) if "%" in host else host
        absolute = host.endswith(".")
        if not absolute and text in ("", "@"):
            return self.fqdn
        name = self.parse_name(text, record, field_name, None if absolute else self.fqdn)
        if name_key(name)[:len(self.domain_key)] != self.domain_key:  # not name.is_subdomain(domain)
            raise RenderError(f"{name.to_text()} lies outside the domain {self.domain.to_text()}",
                              record, field_name)
        return name

    def target(self, value: str | None, record: TemplateRecord, field_name: str) -> dns.name.Name:
        """A name in rdata (pointsTo, target): absolute, `@` or empty meaning [host.]domain."""
        value = (value or "").strip()
        if value in ("", "@"):
            return self.fqdn
        text = self.substitute(value, record, field_name, _name_value_problem)
        if text in ("", "@"):
            return self.fqdn
        if text == ".":
            return dns.name.root
        return self.parse_name(text.rstrip(".") + ".", record, field_name, None)

    def parse_name(self, text: str, record: TemplateRecord, field_name: str,
                   origin: dns.name.Name | None) -> dns.name.Name:
        name, problem = _parsed_name(text, origin.labels if origin is not None else None)
        if problem is not None:
            raise RenderError(problem, record, field_name)
        return name

    # -- numbers ----------------------------------------------------------------------
    def number(self, value: int | str | None, record: TemplateRecord, field_name: str) -> int:
        if isinstance(value, int):
            return value
        if value is None:
            raise RenderError("is required", record, field_name)
        whole = WHOLE_VARIABLE.fullmatch(value)
        text = self.variable(whole.group(1), record, field_name) if whole else value
        if not re.fullmatch(r"\s*\d{1,5}\s*", text) or int(text) > 65535:
            raise VariableError(f"value {text!r} must be an integer between 0 and 65535", record, field_name)
        return int(text)

    def ttl(self, record: TemplateRecord) -> int:
        value = record.ttl
        if isinstance(value, str):
            whole = WHOLE_VARIABLE.fullmatch(value)
            text = self.variable(whole.group(1), record, "ttl") if whole else value
            if re.fullmatch(r"\s*\d{1,10}\s*", text):
                value = int(text)
            else:
                self.warnings.append(f"records[{record.index}] ttl {text!r} is not a number; "
                                     f"using the default {self.context.ttl_policy.default}")
                value = None
        return self.context.ttl_policy.apply(value)

    # -- records ----------------------------------------------------------------------
    def record(self, record: TemplateRecord) -> RenderedRecord:
        name = self.record_name(record)
        rdata = self.rdata(record)
        # Addresses, and numbers with one name (at most 255 bytes), are far below any limit.
        if type(rdata) not in _BOUNDED_RDATA:
            self.check_size(record, rdata)
        return RenderedRecord(name, self.ttl(record), rdata, record)

    def record_name(self, record: TemplateRecord) -> dns.name.Name:
        rtype = record.type
        if rtype == "SRV":
            service, protocol, base = self.all_known(
                lambda: self.srv_label(record.service, record, "service"),
                lambda: self.srv_label(record.protocol, record, "protocol"),
                lambda: self.owner(record.host, record, "name"))
            name = dns.name.Name((service, protocol) + base.labels)
        else:
            name = self.owner(record.host, record, "host")
        if rtype in ("CNAME", "NS") and name_key(name) == self.domain_key:
            raise RenderError(f"a {rtype} record cannot be at the zone apex {name.to_text()}", record, "host")
        return name

    def check_size(self, record: TemplateRecord, rdata: dns.rdata.Rdata) -> None:
        """Refuse rdata larger than `limits.max_txt_bytes` (TXT) or the wire format's 65535 bytes,
        naming the variables that made it so. `record` skips the kinds in `_BOUNDED_RDATA`."""
        kind = type(rdata)
        # A TXT record's wire form is each string with its length byte: counted, not encoded.
        size = len(rdata.strings) + sum(map(len, rdata.strings)) if kind is dns.rdtypes.ANY.TXT.TXT \
            else len(rdata.to_wire())
        if record.type == "TXT":
            limit, what = self.context.limits.max_txt_bytes, f"limits.max_txt_bytes ({self.context.limits.max_txt_bytes})"
        else:
            limit, what = MAX_RDATA_BYTES, f"the {MAX_RDATA_BYTES} bytes a DNS record holds"
        if size <= limit:
            return
        variables = [f"%{name}%" for name in self.variables_in(record.data or "")]
        if variables:
            raise VariableError(f"is {size} bytes with variable {', '.join(variables)}, more than {what}",
                                record, "data")
        raise RenderError(f"is {size} bytes, more than {what}", record, "data")

    def variables_in(self, text: str) -> list[str]:
        """The caller's variables (not domain, host, fqdn) that `text` uses, in order, once each."""
        return list(dict.fromkeys(name for name in VARIABLE.findall(text) if name not in BUILTIN_VARIABLES))

    def rdata(self, record: TemplateRecord) -> dns.rdata.Rdata:
        rtype = record.type
        if rtype in ("A", "AAAA"):
            text = self.substitute((record.points_to or "").strip(), record, "pointsTo", _token_problem)
            cls, rdtype = (dns.rdtypes.IN.A.A, T.A) if rtype == "A" else (dns.rdtypes.IN.AAAA.AAAA, T.AAAA)
            try:
                return _address_rdata(cls, rdtype, text)
            except (ValueError, dns.exception.DNSException):
                kind = "IPv4" if rtype == "A" else "IPv6"
                raise RenderError(f"{text!r} is not an {kind} address", record, "pointsTo") from None
        if rtype == "CNAME":
            return _name_rdata(dns.rdtypes.ANY.CNAME.CNAME, T.CNAME, (),
                               self.target(record.points_to, record, "pointsTo").labels)
        if rtype == "NS":
            return _name_rdata(dns.rdtypes.ANY.NS.NS, T.NS, (), self.target(record.points_to, record, "pointsTo").labels)
        if rtype == "MX":
            preference, exchange = self.all_known(
                lambda: self.number(record.priority, record, "priority"),
                lambda: self.target(record.points_to, record, "pointsTo"))
            return _name_rdata(dns.rdtypes.ANY.MX.MX, T.MX, (preference,), exchange.labels)
        if rtype == "SRV":
            priority, weight, port, target = self.all_known(
                lambda: self.number(record.priority, record, "priority"),
                lambda: self.number(record.weight, record, "weight"),
                lambda: self.number(record.port, record, "port"),
                lambda: self.target(record.target, record, "target"))
            return _name_rdata(dns.rdtypes.IN.SRV.SRV, T.SRV, (priority, weight, port), target.labels)
        if rtype == "TXT":
            return txt_rdata(self.txt_value(record))
        return self.generic(record)

    def txt_value(self, record: TemplateRecord) -> str:
        data = record.data or ""
        if data.strip() == "@":
            return self.context.fqdn
        return self.substitute(data, record, "data", _text_problem)

    def generic(self, record: TemplateRecord) -> dns.rdata.Rdata:
        """Any other IANA type or TYPEnnn: `data` in presentation (or RFC 3597) form."""
        text = self.substitute((record.data or "").strip(), record, "data", _token_problem)
        if _CONTROL.search(text):
            raise RenderError("must be on one line", record, "data")
        try:
            return _generic_rdata(dns.rdatatype.from_text(record.type), text)
        except (ValueError, dns.exception.DNSException) as exc:
            raise RenderError(f"{text!r} is not valid {record.type} data: {exc}", record, "data") from None

    def srv_label(self, value: str | None, record: TemplateRecord, field_name: str) -> bytes:
        text = self.substitute((value or "").strip(), record, field_name, _token_problem)
        if not text.startswith("_"):
            text = "_" + text
        if not re.fullmatch(r"_[A-Za-z0-9][A-Za-z0-9\-]{0,61}", text):
            raise RenderError(f"{text!r} is not a valid SRV {field_name} label", record, field_name)
        return text.lower().encode() if field_name == "protocol" else text.encode()

    def spf_rules(self, record: TemplateRecord) -> SpfRules:
        name = self.owner(record.host, record, "host")
        rules = self.spf_text(record)
        ttl = self.ttl(record) if record.ttl is not None else None
        return SpfRules(name=name, rules=rules, ttl=ttl, source=record)

    def spf_text(self, record: TemplateRecord) -> str:
        template_rules = (record.spf_rules or "").strip()
        rules = self.substitute(template_rules, record, "spfRules", _token_problem)
        for token in rule_tokens(rules):
            problem = rule_problem(token)
            if problem:
                # Name the variable whose value brought the term in; else the template wrote it.
                culprits = [f"%{name}%" for name in self.variables_in(template_rules)
                            if token in self.context.params.get(name, "")]
                if culprits:
                    raise VariableError(f"variable {', '.join(culprits)}: {problem}", record, "spfRules")
                raise RenderError(problem, record, "spfRules")
        return rules

    def extension(self, record: TemplateRecord) -> ExtensionRecord:
        name = self.owner(record.host, record, "host")
        if record.type == "APEXCNAME":
            # The alias target is a DNS name like a CNAME's; canonical and absolute, so a
            # backend's stored value compares equal to the rendered one.
            target = self.target(record.points_to, record, "pointsTo")
            return ExtensionRecord.of("APEXCNAME", name, {"pointsTo": target.to_text(), "ttl": self.ttl(record)},
                                      source=record)
        if record.type in REDIRECT_TYPES:
            target = web_redirect_target(self.substitute((record.target or "").strip(), record, "target",
                                                         _text_problem), record)
            return ExtensionRecord.of(record.type, name, {"target": target, "ttl": self.ttl(record)}, source=record)
        fields = dict(self.extension_fields(record))
        if record.ttl is not None:
            fields["ttl"] = self.ttl(record)
        return ExtensionRecord.of(record.type, name, fields, source=record)

    def extension_fields(self, record: TemplateRecord) -> list[tuple[str, object]]:
        given = [(key, value) for key, value in (("pointsTo", record.points_to), ("target", record.target),
                                                 ("data", record.data), *record.extra) if value is not None]
        values = self.all_known(*(
            (lambda v=value, k=key: self.substitute(v, record, k, _token_problem)) if isinstance(value, str)
            else (lambda v=value: v) for key, value in given))
        return [(key, value) for (key, _), value in zip(given, values)]


#: Extension types that are web redirects (spec "Redirection"), with their HTTP status.
REDIRECT_TYPES = {"REDIR301": 301, "REDIR302": 302}
MAX_REDIRECT_TARGET = 2048  # what browsers and proxies reliably carry in a Location header


def web_redirect_target(url: str, record: TemplateRecord | None = None) -> str:
    """`url` when it may be a redirect's Location: an absolute http(s) URL with a host name,
    no whitespace or control characters; RenderError naming the field otherwise."""
    if not url:
        raise RenderError("is required: the URL to redirect to", record, "target")
    if len(url) > MAX_REDIRECT_TARGET:
        raise RenderError(f"is longer than {MAX_REDIRECT_TARGET} characters", record, "target")
    if _CONTROL.search(url) or re.search(r"\s", url):
        raise RenderError(f"{url!r} contains whitespace or a control character", record, "target")
    try:
        parts = urlsplit(url)
        parts.port  # a port that is not a number raises here
    except ValueError as exc:
        raise RenderError(f"{url!r} is not a valid URL: {exc}", record, "target") from None
    if parts.scheme.lower() not in ("http", "https") or not url.lower().startswith(f"{parts.scheme.lower()}://"):
        raise RenderError(f"{url!r} must be an http:// or https:// URL", record, "target")
    if not parts.hostname or "\\" in url or "@" in parts.netloc:
        raise RenderError(f"{url!r} must name a host (no user name, no backslash)", record, "target")
    return url


# Rendered rdata, remembered by what they are made of (names by their labels as written, so
# case is kept) and hashed once (`hashed_rdata`): a template's constant records, and the
# same values sent for many domains, come again on every apply. Rdata are immutable values.
_RDATA_CACHE = 4096
_TXT_CACHED_BYTES = 1024  # longer TXT values are rarely sent twice; made afresh


@functools.lru_cache(maxsize=_RDATA_CACHE)
def _address_rdata(cls: type, rdtype: T, text: str) -> dns.rdata.Rdata:
    return hashed_rdata(cls(IN, rdtype, text))


@functools.lru_cache(maxsize=_RDATA_CACHE)
def _name_rdata(cls: type, rdtype: T, numbers: tuple[int, ...], labels: tuple[bytes, ...]) -> dns.rdata.Rdata:
    """CNAME, NS, MX and SRV: their numbers, then the one name."""
    return hashed_rdata(cls(IN, rdtype, *numbers, dns.name.Name(labels)))


@functools.lru_cache(maxsize=_RDATA_CACHE)
def _generic_rdata(rdtype: T, text: str) -> dns.rdata.Rdata:
    return hashed_rdata(dns.rdata.from_text(IN, rdtype, text, origin=dns.name.root, relativize=False))


def txt_rdata(text: str) -> dns.rdtypes.ANY.TXT.TXT:
    """The TXT rdata holding `text` (UTF-8, split into strings of 255 bytes)."""
    if len(text) > _TXT_CACHED_BYTES:
        return dns.rdtypes.ANY.TXT.TXT(IN, T.TXT, split_txt(text))
    return _txt_rdata(text)


@functools.lru_cache(maxsize=_RDATA_CACHE)
def _txt_rdata(text: str) -> dns.rdtypes.ANY.TXT.TXT:
    return hashed_rdata(dns.rdtypes.ANY.TXT.TXT(IN, T.TXT, split_txt(text)))


@functools.lru_cache(maxsize=8192)
def _parsed_name(text: str, origin_labels: tuple[bytes, ...] | None) -> tuple[dns.name.Name | None, str | None]:
    """The name `text` stands for (relative to `origin_labels`, absolute when None), or why
    it is refused. Remembered: the same owners and targets come again on every apply."""
    if text.endswith(".") and origin_labels is not None:
        return None, f"{text!r} is not a valid relative name"
    if not _NAME_TEXT.fullmatch(text) or ".." in text:
        return None, f"{text!r} is not a valid DNS name"
    try:
        name = name_from_text(text, dns.name.Name(origin_labels) if origin_labels is not None else dns.name.root)
    except dns.exception.DNSException as exc:
        return None, f"{text!r} is not a valid DNS name: {exc}"
    # The text is letters, digits, '-', '_', '*' and dots (no escapes): a label holds a '*'
    # only where the text does.
    for position, label in enumerate(name.labels if "*" in text else ()):
        if b"*" in label and (position != 0 or label != b"*"):
            return None, f"{name.to_text()!r}: '*' may only be a whole leftmost label"
    return name, None


def split_txt(text: str) -> list[bytes]:
    """TXT character-strings hold at most 255 bytes; long values span several."""
    data = text.encode("utf-8")
    if not data:
        return [b""]
    return [data[i:i + 255] for i in range(0, len(data), 255)]


def txt_text(rdata: dns.rdata.Rdata) -> str:
    """The text of a TXT record: its strings joined, as SPF and DKIM readers do."""
    return b"".join(rdata.strings).decode("utf-8", "replace")  # type: ignore[attr-defined]


def _name_value_problem(value: str) -> str | None:
    if value == "":
        return None
    if not _NAME_VALUE.fullmatch(value) or ".." in value or value.endswith("."):
        return "is not a host name (letters, digits, '-', '_' and dots between labels; no wildcard)"
    return None


def _token_problem(value: str) -> str | None:
    if _TOKEN_BREAKERS.search(value) or _CONTROL.search(value):
        return "contains whitespace, quotes, a backslash, ';' or parentheses, which are not allowed here"
    return None


def _text_problem(value: str) -> str | None:
    if _CONTROL.search(value):
        return "contains a line break or another control character"
    return None
