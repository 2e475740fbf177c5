"""Read and check the apply URL of the synchronous flow before anyone signs in.

    {urlSyncUX}/v2/domainTemplates/providers/{providerId}/services/{serviceId}/apply
        ?domain=&host=&redirect_uri=&state=&groupId=&providerName=&serviceName=&sig=&key=&<variables>

Checks run in an order that never trusts what is not yet verified: the template first, then
the signature (it decides whether redirect_uri may go anywhere), then redirect_uri (from then
on errors may go back to the caller), then the domain and the variables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from backends.base import BackendError
from gateway.apply.extensions import refusal
from gateway.engine.domains import DomainError, idna_domain, idna_host
from gateway.engine.render import ApplyContext, RenderedTemplate, RenderError, group_ids, render_template
from gateway.engine.template import Template
from gateway.web.redirects import RedirectError, check_redirect_uri
from gateway.web.signature import SignatureError, verify_query

MAX_QUERY_LENGTH = 8192  # a signed request with long DKIM keys fits; the page repeats it in its form
MAX_STATE_LENGTH = 400

RESERVED = frozenset({"domain", "host", "redirect_uri", "state", "groupId", "providerName", "serviceName",
                      "sig", "key"})


class SyncError(Exception):
    """A request we refuse. `error` is the OAuth error code the spec asks for; `redirect_uri`
    is set once it is known to be safe to send the user back there."""

    def __init__(self, error: str, description: str, status: int = 400, *, redirect_uri: str | None = None,
                 state: str | None = None) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status
        self.redirect_uri, self.state = redirect_uri, state


@dataclass(frozen=True)
class SyncRequest:
    template: Template
    context: ApplyContext
    raw_query: str
    signed: bool
    redirect_uri: str | None = None
    state: str | None = None
    provider_name_extra: str = ""
    service_name_extra: str = ""
    # The check's rendering, which the consent page plans from instead of rendering again.
    rendered: RenderedTemplate | None = field(default=None, compare=False, repr=False)

    @property
    def provider_label(self) -> str:
        return _with_extra(self.template.provider_name, self.provider_name_extra)

    @property
    def service_label(self) -> str:
        return _with_extra(self.template.service_name, self.service_name_extra)

    @property
    def needs_phishing_warning(self) -> bool:
        """warnPhishing, or variables that nobody vouched for with a signature."""
        return self.template.warn_phishing or (bool(self.template.variables()) and not self.signed)

    def refusal(self, error: str, description: str, status: int = 400) -> SyncError:
        return SyncError(error, description, status, redirect_uri=self.redirect_uri, state=self.state)


def _with_extra(name: str, extra: str) -> str:
    # The caller's text only ever adds to the template's name, never replaces it.
    return f"{name} ({extra})" if extra else name


def parse_sync_request(runtime, provider_id: str, service_id: str, raw_query: str) -> SyncRequest:
    """Check everything that needs no sign-in; `SyncError` naming the problem otherwise."""
    if len(raw_query) > MAX_QUERY_LENGTH:
        raise SyncError("invalid_request", f"the request is longer than {MAX_QUERY_LENGTH} characters")
    template = runtime.templates.get((provider_id, service_id))
    if template is None:
        raise SyncError("invalid_request", f"template {provider_id}/{service_id}: not supported here", 404)
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    params: dict[str, str] = {}
    for key, value in pairs:
        params.setdefault(key, value)
    state = params.get("state")
    if state is not None and len(state) > MAX_STATE_LENGTH:
        raise SyncError("invalid_request", f"state: longer than {MAX_STATE_LENGTH} characters")
    if template.sync_block:
        raise SyncError("invalid_request", f"template {provider_id}/{service_id}: the synchronous flow is "
                                           "disabled for this template (syncBlock)", 403)
    signed = False
    if template.sync_pub_key_domain:
        try:
            verify_query(raw_query, template.sync_pub_key_domain, runtime.keys)
        except SignatureError as exc:
            runtime.metrics.signature_failure(exc.reason)
            raise SyncError("invalid_request", f"signature: {exc}", 403) from None
        signed = True
    redirect_uri = None
    if params.get("redirect_uri"):
        try:
            redirect_uri = check_redirect_uri(params["redirect_uri"], template.sync_redirect_domains,
                                              signed=signed, development=runtime.config.gateway.development)
        except RedirectError as exc:
            raise SyncError("invalid_request", str(exc)) from None

    def refuse(description: str) -> SyncError:
        return SyncError("invalid_request", description, redirect_uri=redirect_uri, state=state)

    try:
        domain = idna_domain(params.get("domain", ""))
        host = idna_host(params.get("host"))
    except DomainError as exc:
        raise refuse(str(exc)) from None
    variables = {k: v for k, v in params.items() if k not in RESERVED}
    context = ApplyContext(domain, host, variables, group_ids([v for k, v in pairs if k == "groupId"]),
                           **runtime.config.apply_policies())
    try:
        rendered = render_template(template, context)
    except RenderError as exc:
        raise refuse(str(exc)) from None
    problem = backend_refusal(runtime, template, context)
    if problem:
        raise refuse(problem)
    return SyncRequest(
        template=template, context=context, raw_query=raw_query, signed=signed, redirect_uri=redirect_uri,
        state=state,
        provider_name_extra=params.get("providerName", "").strip() if template.shared_provider_name else "",
        service_name_extra=params.get("serviceName", "").strip() if template.shared_service_name else "",
        rendered=rendered,
    )


def backend_refusal(runtime, template: Template, context: ApplyContext) -> str | None:
    """Why the backend of the domain cannot apply the template (an extension it lacks), or None.
    Asked before sign-in, so nobody signs in for a change that cannot be made."""
    try:
        backend = runtime.router.zone_backend(context.domain_name)
    except BackendError:
        return None  # reported once signed in, like every other backend failure
    if backend is None:
        return None
    return refusal(template, backend, runtime.extensions, context.group_ids)
