"""Discovery: `GET /v2/{domain}/settings` and the template query
`GET /v2/domainTemplates/providers/{providerId}/services/{serviceId}` (spec "DNS Provider
Discovery", "Query Supported Template")."""

from __future__ import annotations

import dns.name
import dns.rdatatype
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from backends.base import BackendError
from gateway.domains import DomainError, idna_domain

NOT_FOUND = {"error": "not_found"}


def settings_body(runtime, domain: str, name_servers: list[str]) -> dict:
    gateway = runtime.config.gateway
    body = {
        "providerId": gateway.provider_id,
        "providerName": gateway.provider_name,
        "providerDisplayName": gateway.provider_display_name,
        "urlSyncUX": gateway.base_url,
        "urlAsyncUX": gateway.base_url,
        "urlAPI": gateway.base_url,
        "width": gateway.width,
        "height": gateway.height,
    }
    if gateway.control_panel_url:
        body["urlControlPanel"] = gateway.control_panel_url.replace("%domain%", domain)
    if name_servers:
        body["nameServers"] = name_servers
    return body


def settings(request: Request) -> Response:
    runtime = request.app.state.runtime
    try:
        domain = idna_domain(request.path_params["domain"])
    except DomainError as exc:
        return JSONResponse({"error": "invalid_request", "error_description": str(exc)}, 400)
    name = dns.name.from_text(domain)
    try:
        found = runtime.router.backend_for(name)
    except BackendError as exc:
        return JSONResponse({"error": "temporarily_unavailable", "error_description": str(exc)}, 503)
    # Discovery answers for the zone itself only, never for a name inside it.
    if found is None or found[1] != name:
        return JSONResponse(NOT_FOUND, 404)
    backend, zone = found
    try:
        apex = backend.read(zone, {zone}, set())
    except BackendError as exc:
        return JSONResponse({"error": "temporarily_unavailable", "error_description": str(exc)}, 503)
    name_servers = sorted(rd.target.to_text(omit_final_dot=True) for rrset in apex
                          if rrset.rdtype == dns.rdatatype.NS for rd in rrset)
    return JSONResponse(settings_body(runtime, domain, name_servers))


def template_version(request: Request) -> Response:
    """200 with `{"version": N}` for an onboarded template (never an empty body: some clients
    fail on one), 404 otherwise. Ids are case-sensitive, as the spec says."""
    runtime = request.app.state.runtime
    template = runtime.templates.get((request.path_params["provider_id"], request.path_params["service_id"]))
    if template is None:
        return JSONResponse(NOT_FOUND, 404)
    return JSONResponse({"version": template.version if template.version is not None else 0})
