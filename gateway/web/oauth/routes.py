"""Routes of the asynchronous flow, for the app to mount."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.routing import Route

from gateway.apply.extensions import NO_EXTENSIONS, GatewayExtensions
from gateway.engine.render import RenderLimits, TtlPolicy
from gateway.engine.safety import SafetyPolicy
from gateway.engine.template import Template
from gateway.infra.observability import Metrics, install_redaction
from gateway.infra.registry import BackendRouter
from gateway.state import StateStore
from gateway.web.auth.base import Authenticator
from gateway.web.oauth.api import api_routes
from gateway.web.oauth.authorizations import authorizations_page, revoke
from gateway.web.oauth.consent import CONSENT_PATH, consent_answer, consent_page
from gateway.web.oauth.token import token_endpoint

PROVIDER = "/v2/domainTemplates/providers/{provider_id}"
SERVICE = PROVIDER + "/services/{service_id}"


def routes(store: StateStore, router: BackendRouter, templates: Mapping[tuple[str, str], Template], *,
           authenticator: Authenticator, ttl_policy: TtlPolicy = TtlPolicy(), limits: RenderLimits = RenderLimits(),
           safety: SafetyPolicy = SafetyPolicy(), metrics: Metrics | None = None,
           extensions: GatewayExtensions = NO_EXTENSIONS) -> list[Route]:
    install_redaction()  # whoever serves these routes must not log the codes and tokens they carry
    apply, revert = api_routes(store, router, templates, authenticator=authenticator, ttl_policy=ttl_policy,
                               limits=limits, safety=safety, metrics=metrics, extensions=extensions)
    return [
        Route("/v2/oauth/access_token", token_endpoint(store), methods=["POST"]),
        Route(SERVICE + "/apply", apply, methods=["POST"]),
        Route(SERVICE + "/revert", revert, methods=["POST"]),
        # The consent URL with /services/{serviceId} shares its path with the template query;
        # the app sends it to consent_page when the query string carries client_id or response_type.
        Route(PROVIDER, consent_page, methods=["GET"], name="oauth_consent"),
        Route(CONSENT_PATH, consent_answer, methods=["POST"], name="oauth_consent_answer"),
        Route("/authorizations", authorizations_page, methods=["GET"], name="authorizations"),
        Route("/authorizations/{grant_id:int}/revoke", revoke, methods=["POST"], name="revoke_authorization"),
    ]
