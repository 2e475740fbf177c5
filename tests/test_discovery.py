"""Discovery settings and the template query (spec "DNS Provider Discovery")."""

import pytest

from tests.gateway_app import build_gateway


@pytest.fixture
def gateway(tmp_path):
    return build_gateway(tmp_path, zones=("example.com", "xn--bcher-kva.example"))


def test_settings_of_a_hosted_zone(gateway):
    with gateway.client() as client:
        response = client.get("/v2/example.com/settings")
    assert response.status_code == 200
    assert response.json() == {
        "providerId": "dns.test", "providerName": "Test DNS", "providerDisplayName": "Test DNS",
        "urlSyncUX": "https://dc.test", "urlAsyncUX": "https://dc.test", "urlAPI": "https://dc.test",
        "width": 750, "height": 750, "urlControlPanel": "https://panel.dns.test/domains/example.com",
        "nameServers": ["ns1.example.net", "ns2.example.net"],
    }


def test_settings_accept_unicode_and_upper_case(gateway):
    with gateway.client() as client:
        unicode = client.get("/v2/bücher.example/settings")
        upper = client.get("/v2/EXAMPLE.COM/settings")
    assert unicode.status_code == 200
    assert unicode.json()["urlControlPanel"].endswith("/xn--bcher-kva.example")
    assert upper.status_code == 200


@pytest.mark.parametrize("domain", ["unknown.example", "www.example.com", "com"])
def test_settings_only_for_a_hosted_zone_apex(gateway, domain):
    with gateway.client() as client:
        assert client.get(f"/v2/{domain}/settings").status_code in (400, 404)


def test_settings_refuse_an_invalid_domain_by_name(gateway):
    with gateway.client() as client:
        response = client.get("/v2/exa_mple.com/settings")
    assert response.status_code == 400 and "domain" in response.json()["error_description"]


def test_template_query(gateway):
    with gateway.client() as client:
        found = client.get("/v2/domainTemplates/providers/provider.example/services/hosting")
        missing = client.get("/v2/domainTemplates/providers/provider.example/services/mail")
        wrong_case = client.get("/v2/domainTemplates/providers/Provider.example/services/hosting")
    assert found.status_code == 200 and found.json() == {"version": 3}
    assert missing.status_code == 404 and missing.content
    assert wrong_case.status_code == 404


def test_settings_answers_are_cached_briefly(gateway):
    from gateway.web.discovery import SettingsCache

    now = [0.0]
    gateway.app.state.runtime.settings_cache = SettingsCache(ttl=60, not_found_ttl=10, timer=lambda: now[0])
    with gateway.client() as client:
        assert client.get("/v2/example.com/settings").status_code == 200
        assert client.get("/v2/new.example/settings").status_code == 404
        (gateway.zones / "example.com.zone").unlink()
        (gateway.zones / "new.example.zone").write_text((gateway.zones / "xn--bcher-kva.example.zone").read_text()
                                                        .replace("xn--bcher-kva.example", "new.example"))
        assert client.get("/v2/example.com/settings").status_code == 200
        assert client.get("/v2/new.example/settings").status_code == 404
        now[0] = 11
        assert client.get("/v2/new.example/settings").status_code == 200
        now[0] = 61
        assert client.get("/v2/example.com/settings").status_code == 404


def test_settings_cache_stays_within_its_bound():
    from gateway.web.discovery import SettingsCache

    now = [0.0]
    cache = SettingsCache(ttl=60, not_found_ttl=10, maxsize=2, timer=lambda: now[0])
    cache.put("gone.example", (404, b"{}"))
    cache.put("a.example", (200, b"a"))
    now[0] = 11  # gone.example has expired: it makes room, not a live answer
    cache.put("b.example", (200, b"b"))
    assert cache.get("a.example") == (200, b"a") and cache.get("b.example") == (200, b"b")
    cache.put("c.example", (200, b"c"))  # full of live answers: the oldest goes
    assert cache.get("a.example") is None
    assert cache.get("b.example") == (200, b"b") and cache.get("c.example") == (200, b"c")
    cache.put("broken.example", (502, b"{}"))  # a failure is never kept
    assert cache.get("broken.example") is None and cache.get("c.example") == (200, b"c")
