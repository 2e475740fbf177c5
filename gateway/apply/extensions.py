"""Extension record types (spec "Extensions/Exclusions"): which ones an apply can honour on a
backend, and how the gateway itself carries out the ones it implements for every backend.

- `REDIR301` / `REDIR302`: the gateway's own web redirect service, when `[redirects]` lists
  the addresses of its HTTP listener. At the redirected host they become A/AAAA records
  pointing there (so they conflict exactly like A/AAAA records), and a redirect row that
  the instance owns tells the listener where to send browsers.
- `APEXCNAME`: a backend that writes aliases itself declares it in `supported_extensions`
  and gets it through `apply(..., extensions=...)` (PowerDNS's ALIAS). A backend configured
  with `apex_alias = "flatten"` gets the A/AAAA records the target resolves to, looked up
  through the `[dns]` resolver when the template is applied; the instance remembers the
  alias so `dcgw aliases refresh` can follow the target later.
- Anything else only on a backend that declares it.

Templates are checked against this before anyone signs in: the template query, the sync
apply URL and the OAuth consent refuse what the domain's backend cannot apply, naming the
record type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver

from backends.base import Backend
from backends.records import ExtensionRecord
from gateway.engine.plan import APEX_ALIAS, PlanError
from gateway.engine.records import RenderedRecord
from gateway.engine.render import REDIRECT_TYPES, RenderedTemplate
from gateway.engine.template import Template, TemplateRecord
from gateway.infra.config import Config, DnsSettings


class AliasResolutionError(PlanError):
    """The target of an APEXCNAME to flatten has no addresses (or DNS did not answer)."""


@dataclass(frozen=True)
class WebRedirect:
    """Browsers asking for `name` are sent to `target` with status `code`."""

    name: dns.name.Name
    target: str
    code: int
    group: str | None = None  # the template record's groupId


@dataclass(frozen=True)
class FlattenedAlias:
    """An APEXCNAME written as the A/AAAA records its target resolved to."""

    name: dns.name.Name
    target: dns.name.Name
    ttl: int
    group: str | None = None


class AddressResolver:
    """A and AAAA lookups through the `[dns]` resolver, for flattening aliases."""

    def __init__(self, settings: DnsSettings) -> None:
        if settings.nameservers:
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = list(settings.nameservers)
        else:
            try:
                self._resolver = dns.resolver.Resolver(configure=True)
            except dns.exception.DNSException:
                self._resolver = dns.resolver.Resolver(configure=False)
        self._resolver.port = settings.port
        self._resolver.timeout = settings.timeout
        self._resolver.lifetime = settings.timeout

    def addresses(self, target: dns.name.Name) -> list[dns.rdata.Rdata]:
        """The A and AAAA records `target` resolves to (CNAMEs followed); AliasResolutionError when none."""
        found: list[dns.rdata.Rdata] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                answer = self._resolver.resolve(target, rdtype, raise_on_no_answer=False, search=False)
            except dns.resolver.NXDOMAIN:
                raise AliasResolutionError(f"APEXCNAME target {target.to_text()} does not exist in DNS") from None
            except dns.exception.DNSException as exc:
                raise AliasResolutionError(f"APEXCNAME target {target.to_text()} could not be resolved: "
                                           f"{exc or type(exc).__name__}") from None
            if answer.rrset is not None:
                found.extend(answer.rrset)
        if not found:
            raise AliasResolutionError(f"APEXCNAME target {target.to_text()} has no A or AAAA records")
        return found


@dataclass(frozen=True)
class GatewayExtensions:
    """What this gateway adds to its backends: the redirect listener's addresses (none:
    REDIR types are unsupported) and the resolver that flattens aliases."""

    redirect_addresses: tuple[str, ...] = ()
    resolver: AddressResolver | None = None

    def why_unsupported(self, backend: Backend, rtype: str) -> str | None:
        """None when `backend` can apply records of extension type `rtype` here, else why not."""
        if rtype in backend.supported_extensions:
            return None
        if rtype in REDIRECT_TYPES:
            if self.redirect_addresses:
                return None
            return f"{rtype}: web redirects are not enabled on this gateway (its config has no [redirects])"
        if rtype == APEX_ALIAS:
            if backend.flattens_apex_alias and self.resolver is not None:
                return None
            hint = ' (set apex_alias = "flatten" in its [[backends]] table)' \
                if "apex_alias" in (backend.known_options or ()) else ""
            return f"{rtype}: backend {backend.name!r} cannot write apex aliases{hint}"
        return f"{rtype}: backend {backend.name!r} does not support this extension"


NO_EXTENSIONS = GatewayExtensions()


def gateway_extensions(config: Config) -> GatewayExtensions:
    """What `config` enables: redirects with `[redirects]`, alias flattening through `[dns]`."""
    addresses = config.redirects.addresses if config.redirects is not None else ()
    return GatewayExtensions(redirect_addresses=addresses, resolver=AddressResolver(config.dns))


def unsupported_records(template: Template, backend: Backend, extensions: GatewayExtensions,
                        group_ids: frozenset[str] | None = None) -> list[tuple[TemplateRecord, str]]:
    """The records of `template` (those `group_ids` selects) that `backend` cannot apply, with why."""
    found = []
    for record in template.records:
        if group_ids is not None and record.group_id not in group_ids:
            continue
        if record.is_extension:
            reason = extensions.why_unsupported(backend, record.type)
            if reason is not None:
                found.append((record, reason))
    return found


def refusal(template: Template, backend: Backend, extensions: GatewayExtensions,
            group_ids: frozenset[str] | None = None) -> str | None:
    """Why `backend` cannot apply `template` with `group_ids`, naming the record types; None when it can."""
    problems = unsupported_records(template, backend, extensions, group_ids)
    if not problems:
        return None
    reasons = list(dict.fromkeys(reason for _, reason in problems))
    text = f"the template uses {', '.join(sorted({r.type for r, _ in problems}))}, which this DNS provider " \
           f"cannot apply here: {'; '.join(reasons)}"
    usable = sorted(g for g in template.group_ids
                    if not unsupported_records(template, backend, extensions, frozenset([g])))
    if group_ids is None and usable:
        text += f" (groupId {', '.join(usable)} can be applied)"
    return text


def applicable(template: Template, backend: Backend, extensions: GatewayExtensions) -> bool:
    """Whether some apply of `template` works on `backend`: the whole template, or one of its groups."""
    if not unsupported_records(template, backend, extensions):
        return True
    return any(not unsupported_records(template, backend, extensions, frozenset([g])) for g in template.group_ids)


def expand_extensions(rendered: RenderedTemplate, backend: Backend,
                      extensions: GatewayExtensions) -> RenderedTemplate:
    """`rendered` with the extensions the gateway carries out turned into DNS records (and
    redirect and alias rows); what remains in `extensions` is for the backend itself."""
    if not rendered.extensions:
        return rendered
    records = list(rendered.records)
    redirects: list[WebRedirect] = []
    aliases: list[FlattenedAlias] = []
    native: list[ExtensionRecord] = []
    for extension in rendered.extensions:
        if extension.type in backend.supported_extensions:
            native.append(extension)
        elif extension.type in REDIRECT_TYPES and extensions.redirect_addresses:
            redirects.append(WebRedirect(extension.name, extension.get("target"), REDIRECT_TYPES[extension.type],
                                         _group(extension)))
            records += _records_at(extension, (dns.rdata.from_text(dns.rdataclass.IN, _address_type(a), a)
                                               for a in extensions.redirect_addresses))
        elif extension.type == APEX_ALIAS and backend.flattens_apex_alias and extensions.resolver is not None:
            target = dns.name.from_text(extension.get("pointsTo"))
            aliases.append(FlattenedAlias(extension.name, target, extension.get("ttl"), _group(extension)))
            records += _records_at(extension, extensions.resolver.addresses(target))
        else:
            native.append(extension)  # refused by the planner, naming the type
    return dataclasses.replace(rendered, records=records, extensions=native, redirects=redirects, aliases=aliases)


def _records_at(extension: ExtensionRecord, rdatas: Iterable[dns.rdata.Rdata]) -> list[RenderedRecord]:
    # Provenance stays the template's record: groupId and essential apply to what it became.
    return [RenderedRecord(name=extension.name, ttl=extension.get("ttl"), rdata=rdata, source=extension.source)
            for rdata in rdatas]


def _group(extension: ExtensionRecord) -> str | None:
    return extension.source.group_id if extension.source is not None else None


def _address_type(address: str) -> str:
    return "AAAA" if ":" in address else "A"
