"""Routes of the asynchronous flow, for the app to mount."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.routing import Route

from gateway.oauth import redact
from gateway.oauth.api import api_routes
from gateway.oauth.token import token_endpoint
from gateway.registry import BackendRouter
from gateway.state import StateStore
from gateway.template import Template

SERVICE = "/v2/domainTemplates/providers/{provider_id}/services/{service_id}"


def routes(store: StateStore, router: BackendRouter, templates: Mapping[tuple[str, str], Template]) -> list[Route]:
    redact.install()  # whoever serves these routes must not log the codes and tokens they carry
    apply, revert = api_routes(store, router, templates)
    return [
        Route("/v2/oauth/access_token", token_endpoint(store), methods=["POST"]),
        Route(SERVICE + "/apply", apply, methods=["POST"]),
        Route(SERVICE + "/revert", revert, methods=["POST"]),
    ]
