"""Hostile input against the whole app (a real config, zone files, the state store): each attack
is performed, and each test checks the refusal and that nothing was written or leaked."""

from __future__ import annotations

import io
import json
import logging
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from backends.records import RRsetChange
from gateway.engine.safety import SafetyPolicy, UnsafeChange, check_changes
from gateway.infra.observability import configure_logging
from gateway.web.signature import SignatureError, key_name, verify_query
from tests.gateway_app import HOSTING, METRICS_AUTH, build_gateway, consent_form, csrf_of, sign_in
from tests.test_observability import restore_logging  # noqa: F401  (a fixture)

PROVIDER, REDIRECT = "provider.example", "https://provider.example/cb"
ZONE = dns.name.from_text("example.com")


def template(service_id: str, records: list[dict]) -> dict:
    return {"providerId": PROVIDER, "providerName": "Example Hosting", "serviceId": service_id,
            "serviceName": service_id.title(), "version": 1, "syncRedirectDomain": "provider.example",
            "records": records}


TEMPLATES = [
    HOSTING,
    template("txt", [{"type": "TXT", "host": "@", "data": "%value%", "ttl": 600}]),
    template("name", [{"type": "CNAME", "host": "%sub%", "pointsTo": "target.example.net", "ttl": 600}]),
    template("spf", [{"type": "SPFM", "host": "@", "spfRules": "include:spf.provider.example %rules%"}]),
    template("delegate", [{"type": "NS", "host": "%sub%", "pointsTo": "ns.provider.example", "ttl": 600}]),
    template("wild", [{"type": "A", "host": "*", "pointsTo": "%ip%", "ttl": 600}]),
    template("raw", [{"type": "TXT", "host": "@", "data": "x" * 5000, "ttl": 600}]),
]


def apply_path(service: str) -> str:
    return f"/v2/domainTemplates/providers/{PROVIDER}/services/{service}/apply"


@pytest.fixture
def gateway(tmp_path):
    return build_gateway(tmp_path, TEMPLATES)


@pytest.fixture
def alice(gateway):
    with gateway.client() as client:
        assert sign_in(client).status_code == 303
        yield client


@pytest.fixture
def secret(gateway):
    return gateway.app.state.runtime.store.add_client(PROVIDER, [REDIRECT])


def store_of(gateway):
    return gateway.app.state.runtime.store


def access_token(gateway, secret: str, services: list[str], hosts: list[str] = ("",)) -> str:
    code = store_of(gateway).create_grant(PROVIDER, "alice", "example.com", list(hosts), services, REDIRECT)
    with gateway.client() as client:
        response = client.post("/v2/oauth/access_token",
                               params={"code": code, "grant_type": "authorization_code", "redirect_uri": REDIRECT},
                               json={"client_id": PROVIDER, "client_secret": secret})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def api_apply(gateway, token: str, service: str, **params):
    with gateway.client() as client:
        return client.post(apply_path(service), params={"domain": "example.com", **params},
                           headers={"Authorization": f"Bearer {token}"})


def sync_page(client, service: str, **params):
    return client.get(apply_path(service), params={"domain": "example.com", **params})


def error_of(response) -> dict[str, list[str]]:
    return parse_qs(urlsplit(response.headers["location"]).query)


# --- 1. form bodies are bounded before the CSRF check ---------------------------------------------

FORM_ENDPOINTS = ["/v2/sync/consent", "/v2/oauth/consent", "/authorizations/{grant}/revoke", "/login", "/logout"]


def live_form(gateway, alice) -> tuple[dict[str, str], int]:
    """A consent form that would apply the hosting template if posted as is, and a live grant."""
    page = alice.get(apply_path("hosting"), params={"domain": "example.com", "ip": "192.0.2.80", "token": "t"})
    grant = store_of(gateway).create_grant(PROVIDER, "alice", "example.com", [""], ["txt"], REDIRECT)
    assert page.status_code == 200 and grant
    return consent_form(page.text), store_of(gateway).grants_of("alice")[0].id


def nothing_happened(gateway, before: str) -> None:
    assert gateway.zone_text() == before and "192.0.2.80" not in gateway.zone_text()
    assert len(store_of(gateway).grants_of("alice")) == 1  # neither revoked nor a new one


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
def test_a_body_past_64_kib_is_refused_with_413_before_parsing(gateway, alice, secret, path):
    form, grant = live_form(gateway, alice)
    before = gateway.zone_text()
    url = path.format(grant=grant)
    # The valid CSRF token and nonce come first: only the size can be why nothing happens.
    padded = urlencode(form) + "&" + urlencode({f"pad{i}": "x" * (1 << 20) for i in range(2)})
    declared = alice.post(url, content=padded, headers={"content-type": "application/x-www-form-urlencoded"})
    assert declared.status_code == 413 and "body: larger than 65536 bytes" in declared.text

    def chunked():  # no Content-Length: the limit holds while the body streams in
        yield (urlencode(form) + "&pad=").encode()
        for _ in range(40):
            yield b"x" * 4096

    streamed = alice.post(url, content=chunked(), headers={"content-type": "application/x-www-form-urlencoded"})
    assert streamed.status_code == 413
    nothing_happened(gateway, before)


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
def test_many_fields_and_multipart_are_refused_before_parsing(gateway, alice, secret, path):
    form, grant = live_form(gateway, alice)
    before = gateway.zone_text()
    url = path.format(grant=grant)
    many = urlencode(form) + "&" + "&".join(f"f{i}=v" for i in range(1000))
    fields = alice.post(url, content=many, headers={"content-type": "application/x-www-form-urlencoded"})
    assert fields.status_code == 413 and "body: more than 20 fields" in fields.text
    upload = alice.post(url, data=form, files={"file": ("big.bin", b"\0" * 300_000)})
    assert upload.status_code == 415 and "application/x-www-form-urlencoded" in upload.text
    as_json = alice.post(url, json=form)
    assert as_json.status_code == 415
    nothing_happened(gateway, before)


def test_an_ordinary_form_still_works(gateway, alice):
    page = sync_page(alice, "hosting", ip="192.0.2.80", token="t")
    assert alice.post("/v2/sync/consent", data=consent_form(page.text)).status_code == 200
    assert "192.0.2.80" in gateway.zone_text()


# --- 2. consent URLs: bounded, off the loop, a small cookie -----------------------------------------

def consent_query(**changes) -> dict[str, str]:
    return {"client_id": PROVIDER, "redirect_uri": REDIRECT, "response_type": "code", "scope": "name",
            "domain": "example.com", "host": "", "state": "st", "sub": "mail", **changes}


CONSENT = f"/v2/domainTemplates/providers/{PROVIDER}"


def test_more_than_20_hosts_or_templates_is_invalid_request(gateway, alice, secret):
    hosts = alice.get(CONSENT, params=consent_query(host=",".join(f"h{i}" for i in range(2000))))
    assert hosts.status_code == 303
    error = error_of(hosts)
    assert error["error"] == ["invalid_request"] and "host: more than the 20 hosts" in error["error_description"][0]
    scope = alice.get(CONSENT, params=consent_query(scope=" ".join(["name"] + [f"s{i}" for i in range(20)])))
    assert error_of(scope)["error"] == ["invalid_request"]
    assert "more than the 20 one request may name" in error_of(scope)["error_description"][0]
    assert store_of(gateway).grants_of("alice") == []


def test_the_session_cookie_stays_under_4_kb_with_the_largest_consent_pages(gateway, alice, secret):
    hosts = ",".join(f"{'h' * 60}{i}.{'l' * 60}.{'m' * 60}" for i in range(20))
    for _ in range(5):
        page = alice.get(CONSENT, params=consent_query(host=hosts, state="s" * 400, scope="name txt",
                                                       value="v" * 200))
        assert page.status_code == 200, page.text
    # Open pages live in the state store: the cookie (set at sign-in, or again now) stays small.
    cookie = page.headers.get("set-cookie") or "; ".join(f"{k}={v}" for k, v in alice.cookies.items())
    assert len(cookie) < 4096
    # And the page answered last can still be allowed for exactly what it showed.
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    fields = {name: value.replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&")
              for name, value in fields.items()}
    answer = alice.post("/v2/oauth/consent", data={**fields, "decision": "allow"})
    assert answer.status_code == 303 and "code" in error_of(answer)
    (grant,) = store_of(gateway).grants_of("alice")
    assert len(grant.hosts) == 20 and grant.services == ["name", "txt"]


def test_a_changed_consent_form_authorizes_nothing(gateway, alice, secret):
    page = alice.get(CONSENT, params=consent_query())
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    shown = json.loads(fields["request"].replace("&#34;", '"').replace("&quot;", '"'))
    forged = json.dumps({**shown, "hosts": ["", "www"]}, separators=(",", ":"), sort_keys=True)
    answer = alice.post("/v2/oauth/consent", data={**fields, "request": forged, "decision": "allow"})
    assert answer.status_code == 400 and "request: differs from what was shown" in answer.text
    assert store_of(gateway).grants_of("alice") == []


# --- 3. record size ----------------------------------------------------------------------------------

def test_a_txt_value_past_max_txt_bytes_is_refused_naming_the_variable(gateway, alice, secret):
    before = gateway.zone_text()
    token = access_token(gateway, secret, ["txt"])
    response = api_apply(gateway, token, "txt", value="v" * 65_000)
    assert response.status_code == 400
    assert "%value%" in response.json()["message"] and "limits.max_txt_bytes (4096)" in response.json()["message"]
    page = sync_page(alice, "txt", value="v" * 5000)
    assert page.status_code == 400 and "%value%" in page.text and "limits.max_txt_bytes" in page.text
    assert gateway.zone_text() == before


def test_a_template_past_the_limit_is_refused_too_and_the_limit_is_the_operators(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    small = build_gateway(tmp_path / "a", TEMPLATES)
    with small.client() as client:
        sign_in(client)
        refused = sync_page(client, "raw")
        assert refused.status_code == 400 and "more than limits.max_txt_bytes (4096)" in refused.text
    raised = build_gateway(tmp_path / "b", TEMPLATES, sections="[limits]\nmax_txt_bytes = 8000\n")
    with raised.client() as client:
        sign_in(client)
        assert sync_page(client, "raw").status_code == 200


# --- 4 and 6. SPF through a variable -----------------------------------------------------------------

@pytest.mark.parametrize("rules, words", [
    ("+all", "'all' term"), ("-all", "'all' term"), ("redirect=evil.test", "modifier"),
    ("exp=evil.test", "modifier"), ("bogus", "not an SPF mechanism"),
])
def test_spf_rules_from_a_variable_cannot_set_the_policy(gateway, alice, secret, rules, words):
    (gateway.zones / "example.com.zone").write_text(
        gateway.zone_text().replace('"v=spf1 a ~all"', '"v=spf1 include:old.example -all"'))
    before = gateway.zone_text()
    token = access_token(gateway, secret, ["spf"])
    response = api_apply(gateway, token, "spf", rules=rules, force="true")
    assert response.status_code == 400, response.text
    assert "%rules%" in response.json()["message"] and words in response.json()["message"]
    page = sync_page(alice, "spf", rules=rules)
    assert page.status_code == 400 and "%rules%" in page.text
    assert gateway.zone_text() == before


def test_a_merge_keeps_the_existing_all_and_a_new_record_gets_softfail(gateway, secret):
    (gateway.zones / "example.com.zone").write_text(
        gateway.zone_text().replace('"v=spf1 a ~all"', '"v=spf1 include:old.example -all"'))
    token = access_token(gateway, secret, ["spf"], hosts=["", "fresh"])
    assert api_apply(gateway, token, "spf", rules="mx").status_code == 200
    assert '"v=spf1 include:old.example include:spf.provider.example mx -all"' in gateway.zone_text()
    assert api_apply(gateway, token, "spf", host="fresh", rules="mx").status_code == 200
    assert 'fresh 3600 IN TXT "v=spf1 include:spf.provider.example mx ~all"' in gateway.zone_text()


# --- 6. no bare 500s ---------------------------------------------------------------------------------

def test_deeply_nested_json_to_the_token_endpoint_is_a_400(gateway, secret):
    with gateway.client() as client:
        response = client.post("/v2/oauth/access_token", content=b"[" * 60_000,
                               headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error_description"] == "body: JSON nested too deeply"


def test_a_lone_surrogate_is_a_400_naming_the_field(gateway, secret):
    before = gateway.zone_text()
    with gateway.client() as client:
        token_response = client.post("/v2/oauth/access_token", content=b'{"client_id": "\\ud800", "x": 1}',
                                     headers={"content-type": "application/json"})
    assert token_response.status_code == 400 and "client_id: not valid Unicode" in token_response.text
    token = access_token(gateway, secret, ["txt"])
    with gateway.client() as client:
        response = client.post(apply_path("txt"), params={"domain": "example.com"},
                               content=b'{"value": "ok\\udfff"}',
                               headers={"Authorization": f"Bearer {token}", "content-type": "application/json"})
    assert response.status_code == 400 and "value: not valid Unicode" in response.json()["message"]
    assert gateway.zone_text() == before


def test_a_lone_surrogate_in_a_variable_is_refused_by_the_renderer():
    from gateway.engine.render import ApplyContext, VariableError, render_template
    from gateway.engine.template import parse_template

    parsed = parse_template(TEMPLATES[1])
    with pytest.raises(VariableError, match="%value% is not valid Unicode"):
        render_template(parsed, ApplyContext("example.com", "", {"value": "a\ud800"}))


# --- 7. names ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sub", ["foo\n", "*", "a*b", "*.www"])
def test_a_name_from_the_caller_is_fully_matched_and_never_a_wildcard(gateway, alice, secret, sub):
    before = gateway.zone_text()
    token = access_token(gateway, secret, ["name"])
    response = api_apply(gateway, token, "name", sub=sub, force="true")
    assert response.status_code == 400 and "%sub%" in response.json()["message"]
    page = sync_page(alice, "name", sub=sub)
    assert page.status_code == 400 and "sub" in page.text
    assert gateway.zone_text() == before


@pytest.mark.parametrize("host", ["*", "a*b", "*.www", "www\n", "www\r\n"])
def test_a_wildcard_host_gets_no_grant_and_writes_nothing(gateway, alice, secret, host):
    before = gateway.zone_text()
    consent = alice.get(CONSENT, params=consent_query(host=host))
    assert consent.status_code == 303 and error_of(consent)["error"] == ["invalid_request"]
    assert store_of(gateway).grants_of("alice") == []
    page = sync_page(alice, "txt", host=host, value="v")
    assert page.status_code == 400 and "host" in page.text
    assert gateway.zone_text() == before


def test_a_wildcard_the_template_writes_itself_is_allowed(gateway, alice):
    page = sync_page(alice, "wild", ip="192.0.2.9")
    assert alice.post("/v2/sync/consent", data=consent_form(page.text)).status_code == 200
    assert "* 600 IN A 192.0.2.9" in gateway.zone_text()


def test_a_key_label_with_a_trailing_newline_is_refused():
    with pytest.raises(SignatureError, match="key"):
        verify_query("domain=example.com&key=_dck1%0A&sig=AAAA", "provider.example", resolver=None)
    with pytest.raises(SignatureError, match="is not a host label"):
        key_name("_dck1\n", "provider.example")


# --- 8. protected names ----------------------------------------------------------------------------

def test_nothing_is_written_at_domainconnect(gateway, alice, secret):
    zone = gateway.zones / "example.com.zone"
    zone.write_text(gateway.zone_text() + '_domainconnect IN TXT "dc.test/v2"\n')
    before = gateway.zone_text()
    token = access_token(gateway, secret, ["name"], hosts=[""])
    response = api_apply(gateway, token, "name", sub="_domainconnect", force="true")
    assert response.status_code == 400 and "_domainconnect is a protected name" in response.json()["message"]
    page = sync_page(alice, "name", sub="_DomainConnect")
    assert page.status_code == 400 and "protected name" in page.text
    assert gateway.zone_text() == before


def test_operators_add_protected_names(tmp_path):
    gateway = build_gateway(tmp_path, TEMPLATES, sections='[safety]\nprotected_names = ["mail", "_dmarc"]\n')
    before = gateway.zone_text()
    with gateway.client() as client:
        sign_in(client)
        assert "protected name" in sync_page(client, "name", sub="mail").text
        assert sync_page(client, "name", sub="www2").status_code == 200
    assert gateway.zone_text() == before


def test_an_apply_deleting_more_than_max_deletes_is_refused_even_with_force(gateway, alice, secret):
    zone = gateway.zones / "example.com.zone"
    zone.write_text(gateway.zone_text() + "".join(f"h{i}.big IN A 192.0.2.{i}\n" for i in range(30)))
    before = gateway.zone_text()
    token = access_token(gateway, secret, ["delegate"])
    response = api_apply(gateway, token, "delegate", sub="big", force="true")
    assert response.status_code == 400
    assert "would delete 30 records, more than safety.max_deletes (25)" in response.json()["message"]
    page = sync_page(alice, "delegate", sub="big")
    assert page.status_code == 400 and "safety.max_deletes" in page.text
    assert gateway.zone_text() == before


def rrset_change(name: str, rdtype: str, before: list[str], after: list[str]) -> RRsetChange:
    owner = dns.name.from_text(name, ZONE)

    def rrset(texts):
        return dns.rrset.from_text_list(owner, 300, "IN", rdtype, texts) if texts else None

    return RRsetChange(owner, dns.rdatatype.from_text(rdtype), rrset(before), rrset(after))


@pytest.mark.parametrize("change, words", [
    (rrset_change("@", "NS", ["ns1.example.net."], ["ns.evil.test."]), "zone apex"),
    (rrset_change("@", "SOA", [], ["ns.evil.test. h.evil.test. 1 2 3 4 5"]), "zone apex"),
    (rrset_change("www", "DS", [], ["1 8 2 " + "ab" * 32]), "DNSSEC"),
    (rrset_change("@", "DNSKEY", ["257 3 8 AwEAAQ=="], []), "DNSSEC"),
    (rrset_change("_domainconnect", "TXT", ['"dc.test"'], []), "protected name"),
])
def test_protected_types_and_names_are_refused_whatever_the_change(change, words):
    with pytest.raises(UnsafeChange, match=words):
        check_changes([change], ZONE, SafetyPolicy())


# --- 9. headers and pages ----------------------------------------------------------------------------

def test_pages_and_redirects_that_carry_codes_send_nosniff_and_no_referrer(gateway, alice, secret):
    page = alice.get(CONSENT, params=consent_query())
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))
    fields = {k: v.replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&") for k, v in fields.items()}
    redirect = alice.post("/v2/oauth/consent", data={**fields, "decision": "allow"})
    assert "code" in error_of(redirect)
    for response in (page, redirect):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert "form-action 'self' https://provider.example;" in page.headers["content-security-policy"]


def test_form_action_is_self_unless_a_return_address_was_verified(gateway, alice):
    plain = sync_page(alice, "hosting", ip="192.0.2.80", token="t")
    assert "form-action 'self';" in plain.headers["content-security-policy"]
    back = sync_page(alice, "hosting", ip="192.0.2.80", token="t", redirect_uri="https://provider.example/done")
    assert "form-action 'self' https://provider.example;" in back.headers["content-security-policy"]


def test_the_authorizations_page_does_not_reflect_caller_text(gateway, alice, secret):
    grant = store_of(gateway).create_grant(PROVIDER, "alice", "example.com", [""], ["txt"], REDIRECT)
    assert grant
    listing = alice.get("/authorizations", params={"revoked": "<script>alert(1)</script> Call +1 555"})
    assert "alert(1)" not in listing.text and "555" not in listing.text and "was revoked" not in listing.text
    grant_id = store_of(gateway).grants_of("alice")[0].id
    revoked = alice.post(f"/authorizations/{grant_id}/revoke", data={"csrf_token": csrf_of(listing.text)})
    assert revoked.status_code == 303 and urlsplit(revoked.headers["location"]).query == ""
    assert f"Authorization {grant_id} was revoked" in alice.get("/authorizations").text
    assert "was revoked" not in alice.get("/authorizations").text  # once


def test_metrics_need_the_token(gateway, tmp_path):
    with gateway.client() as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        served = client.get("/metrics", headers=METRICS_AUTH)
    assert served.status_code == 200 and "dcgw_request_duration_seconds" in served.text
    (tmp_path / "closed").mkdir()
    closed = build_gateway(tmp_path / "closed", TEMPLATES, metrics="")
    with closed.client() as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/healthz").status_code == 200


# --- 5. secrets with percent-encoded names never reach the log ------------------------------------

SECRETS = ("s3cr3t-value", "c0de-value", "r3fresh-value", "t0ken-value")


def test_percent_encoded_secret_names_are_redacted_in_queries_and_bodies(restore_logging):
    stream = io.StringIO()
    configure_logging("INFO", stream)
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "POST",
        "/v2/oauth/access_token?client%5Fsecret=s3cr3t-value&c%6Fde=c0de-value&refresh%5Ftoken=r3fresh-value"
        "&redirect_uri=https%3A%2F%2Fp.example%2Fcb%3Fc%256Fde%3Dc0de-value&state=kept", "1.1", 400)
    logging.getLogger("gateway.test").warning(
        'refused body %s and %s', "grant_type=refresh_token&refresh%5ftoken=r3fresh-value",
        '{"access\\u005ftoken": "t0ken-value", "client_id": "kept-too"}')
    text = stream.getvalue()
    assert not any(secret in text for secret in SECRETS), text
    assert "state=kept" in text and "kept-too" in text
    assert "client%5Fsecret=[redacted]" in text and "c%6Fde=[redacted]" in text and "c%256Fde%3D[redacted]" in text


# --- the config keys -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("[limits]\nmax_txt_bytes = 0\n", "limits.max_txt_bytes: must be between 1 and 65535 bytes, not 0"),
    ("[limits]\nmax_txt_bytes = 70000\n", "limits.max_txt_bytes: must be between 1 and 65535"),
    ("[safety]\nmax_deletes = -1\n", "safety.max_deletes: must be 0 or more records, not -1"),
    ("[safety]\nprotected_names = [\"a..b\"]\n", "safety.protected_names[0]: 'a..b' is not a DNS name"),
    ("[safety]\nprotected_names = \"_dmarc\"\n", "safety.protected_names: must be an array"),
    ("[metrics]\nlisten = \"9100\"\n", "metrics.listen: must be host:port"),
    ("[metrics]\ntoken = \"env:DCGW_NO_SUCH_VARIABLE\"\n", "environment variable DCGW_NO_SUCH_VARIABLE is not set"),
    ("[metrics]\nport = 1\n", "metrics.port: unknown key"),
])
def test_the_new_config_keys_are_checked(tmp_path, text, message):
    from gateway.infra.config import ConfigError, load_config

    path = tmp_path / "gateway.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


def test_the_new_config_keys_and_their_defaults(tmp_path, monkeypatch):
    from gateway.infra.config import load_config

    monkeypatch.setenv("DCGW_METRICS_TOKEN", "from-the-environment")
    path = tmp_path / "gateway.toml"
    path.write_text('[limits]\nmax_txt_bytes = 2048\n[safety]\nprotected_names = ["_dmarc", "mail.example.com."]\n'
                    'max_deletes = 3\n[metrics]\ntoken = "env:DCGW_METRICS_TOKEN"\nlisten = "[::1]:9100"\n')
    config = load_config(path)
    assert config.limits.max_txt_bytes == 2048 and config.safety.max_deletes == 3
    assert config.metrics.token == "from-the-environment" and config.metrics.listen == ("::1", 9100)
    assert {n.to_text() for n in config.safety.policy().protected_in(ZONE)} == {
        "_domainconnect.example.com.", "_dmarc.example.com.", "mail.example.com."}
    (tmp_path / "empty.toml").write_text("")
    defaults = load_config(tmp_path / "empty.toml")
    assert defaults.limits.max_txt_bytes == 4096 and defaults.safety.max_deletes == 25
    assert defaults.metrics.token is None and defaults.metrics.listen is None
