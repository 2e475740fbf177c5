"""Signed synchronous requests through the app, with the key served by a real PowerDNS server."""

from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.gateway_app import HOSTING, METRICS_AUTH, build_gateway, sign_in
from tests.signing import KEY_LABEL, Publisher, sign

APPLY = "/v2/domainTemplates/providers/provider.example/services/hosting/apply"


@pytest.fixture(scope="module")
def key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def signed_gateway(tmp_path, pdns, key):
    publisher = Publisher(pdns)
    publisher.publish_key(key)
    template = {**HOSTING, "syncPubKeyDomain": publisher.domain}
    dns = f'[dns]\nnameservers = ["127.0.0.1"]\nport = {pdns.dns_port}\n'
    gateway = build_gateway(tmp_path, [template], sections=dns)
    with gateway.client() as client:
        sign_in(client)
        yield gateway, client


def signed_url(key, params: dict[str, str]) -> str:
    query = urlencode(params)
    return f"{APPLY}?{query}&key={KEY_LABEL}&sig={quote_plus(sign(key, query))}"


def test_signed_request_shows_consent_without_the_unsigned_warning(signed_gateway, key):
    gateway, client = signed_gateway
    page = client.get(signed_url(key, {"domain": "example.com", "ip": "192.0.2.80", "token": "t"}))
    assert page.status_code == 200 and "192.0.2.80" in page.text and "not signed" not in page.text


def test_signed_request_may_redirect_outside_sync_redirect_domain(signed_gateway, key):
    _, client = signed_gateway
    url = signed_url(key, {"domain": "example.com", "ip": "not-an-ip", "token": "t", "state": "s",
                           "redirect_uri": "https://elsewhere.example/cb"})
    response = client.get(url)
    assert response.status_code == 303
    assert parse_qs(urlsplit(response.headers["location"]).query)["error"] == ["invalid_request"]


def test_unsigned_request_to_a_signed_template_is_refused(signed_gateway):
    _, client = signed_gateway
    response = client.get(APPLY, params={"domain": "example.com", "ip": "192.0.2.80", "token": "t"})
    assert response.status_code == 403 and "signature" in response.text


def test_tampered_parameter_is_refused_and_counted(signed_gateway, key):
    gateway, client = signed_gateway
    url = signed_url(key, {"domain": "example.com", "ip": "192.0.2.80", "token": "t"}).replace("192.0.2.80",
                                                                                              "203.0.113.66")
    response = client.get(url)
    assert response.status_code == 403 and "signature" in response.text
    assert "dcgw_signature_failures_total" in client.get("/metrics", headers=METRICS_AUTH).text


def test_signed_by_another_key_is_refused(signed_gateway):
    _, client = signed_gateway
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = client.get(signed_url(other, {"domain": "example.com", "ip": "192.0.2.80", "token": "t"}))
    assert response.status_code == 403
