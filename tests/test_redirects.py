"""redirect_uri checks: what syncRedirectDomain allows, and every way of sneaking another host past it."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from gateway.web.redirects import RedirectError, check_redirect_uri, redirect_with

DOMAINS = "example.com, service.example.net ,partner.example"


def refused(uri: str, domains: str | None = DOMAINS, *, signed: bool = False, development: bool = False) -> str:
    with pytest.raises(RedirectError) as caught:
        check_redirect_uri(uri, domains, signed=signed, development=development)
    message = str(caught.value)
    assert "redirect_uri" in message
    return message


# Allowed.

@pytest.mark.parametrize("uri", [
    "https://example.com/",
    "https://example.com",
    "https://example.com/done?x=1&y=2#top",
    "https://www.example.com/done",
    "https://a.b.example.com/done",
    "https://service.example.net/callback",
    "https://partner.example/",
    "https://EXAMPLE.com/Done",
    "https://www.Example.COM/",
    "HTTPS://example.com/",
    "https://example.com:8443/done",
    "https://example.com/path/@evil.com",
    "https://example.com/?next=https://evil.com",
    "https://example.com/#@evil.com",
    "https://example.com?@evil.com",
    "https://example.com/%2e%2e/x",
    "https://_acme.example.com/",
    "https://xn--bcher-kva.example.com/",
], ids=lambda uri: uri)
def test_hosts_within_sync_redirect_domain_are_allowed(uri: str) -> None:
    assert check_redirect_uri(uri, DOMAINS, signed=False) == uri


@pytest.mark.parametrize("domains", [
    "example.com", " example.com ", "other.example,example.com", "other.example , example.com",
    "Example.COM", "example.com.", ",example.com,", ["example.com"], ("other.example", " example.com"),
], ids=repr)
def test_sync_redirect_domain_forms_are_tolerated(domains: str | list[str] | tuple[str, ...]) -> None:
    assert check_redirect_uri("https://app.example.com/x", domains, signed=False) == "https://app.example.com/x"


def test_internationalised_entry_matches_its_xn_form() -> None:
    uri = "https://shop.xn--bcher-kva.example/return"
    assert check_redirect_uri(uri, "bücher.example", signed=False) == uri


def test_signed_request_may_name_any_https_host() -> None:
    assert check_redirect_uri("https://elsewhere.example.org/x", DOMAINS, signed=True) == \
        "https://elsewhere.example.org/x"


def test_signed_request_without_sync_redirect_domain() -> None:
    assert check_redirect_uri("https://elsewhere.example.org/x", None, signed=True) == \
        "https://elsewhere.example.org/x"


@pytest.mark.parametrize("uri", ["http://127.0.0.1:8080/cb", "http://127.1.2.3/cb", "http://[::1]:9000/cb",
                                 "http://localhost:3000/cb", "http://LOCALHOST/cb"])
def test_plain_http_to_loopback_in_development(uri: str) -> None:
    assert check_redirect_uri(uri, None, signed=True, development=True) == uri


def test_plain_http_to_loopback_still_needs_the_domain_when_unsigned() -> None:
    message = refused("http://127.0.0.1:8080/cb", development=True)
    assert "not within the template's syncRedirectDomain" in message
    assert check_redirect_uri("http://localhost:8080/cb", "localhost", signed=False, development=True)


# Refused: no syncRedirectDomain.

@pytest.mark.parametrize("domains", [None, "", " ", " , ", [], "."], ids=repr)
def test_unsigned_without_sync_redirect_domain_is_refused(domains: str | list[str] | None) -> None:
    message = refused("https://example.com/", domains)
    assert "the template has no syncRedirectDomain and the request is not signed" in message


# Refused: another host.

@pytest.mark.parametrize("uri", [
    "https://evil.com/",
    "https://evilexample.com/",
    "https://example.com.evil.com/",
    "https://example.co/",
    "https://xample.com/",
    "https://com/",
    "https://example.net/",
    "https://notservice.example.net/",
    "https://www.example.com.evil.com/",
    "https://partner.example.evil/",
], ids=lambda uri: uri)
def test_other_hosts_are_refused(uri: str) -> None:
    assert "is not within the template's syncRedirectDomain (example.com, service.example.net, " \
           "partner.example)" in refused(uri)


def test_entries_are_matched_on_label_boundaries_only() -> None:
    assert "not within" in refused("https://myexample.com/", "example.com")
    assert "not within" in refused("https://example.com/", "www.example.com")


# Refused: userinfo.

@pytest.mark.parametrize("uri", [
    "https://example.com@evil.com/",
    "https://user:pass@example.com/",
    "https://example.com:443@evil.com/",
    "https://evil.com@example.com/",
    "https://@example.com/",
    "https://example.com%40evil.com/",
    "https://evil.com%40example.com/",
    "https://example.com%2540evil.com/",
], ids=lambda uri: uri)
def test_userinfo_and_encoded_at_signs_are_refused(uri: str) -> None:
    message = refused(uri)
    assert "user name or password" in message or "are not a host name and optional port" in message


def test_userinfo_is_refused_even_when_signed() -> None:
    assert "user name or password" in refused("https://example.com@evil.com/", signed=True)


# Refused: backslashes, encoded dots, odd characters in the host.

@pytest.mark.parametrize("uri", [
    "https://evil.com\\@example.com",
    "https://evil.com\\.example.com/",
    "https:\\\\evil.com/",
    "https:/\\evil.com/",
    "https://example.com\\evil.com/",
    "https://example.com/\\evil.com",
], ids=lambda uri: uri)
def test_backslashes_are_refused(uri: str) -> None:
    assert "backslash" in refused(uri)


@pytest.mark.parametrize("uri", [
    "https://evil.com%2eexample.com/",
    "https://evil%2ecom/.example.com",
    "https://example%2ecom/",
    "https://evil.com%2fexample.com/",
    "https://evil.com%23.example.com/",
    "https://evil.com;.example.com/",
    "https://evil.com,example.com/",
    "https://evil.com&.example.com/",
    "https://evil.com!.example.com/",
    "https://evil.com*.example.com/",
], ids=lambda uri: uri)
def test_encoded_or_odd_characters_in_the_host_are_refused(uri: str) -> None:
    assert "are not a host name and optional port" in refused(uri)


# Refused: case and Unicode.

def test_mixed_case_attacker_host_is_refused() -> None:
    assert "'example.com.evil.com' is not within" in refused("https://ExAmPlE.CoM.EvIl.CoM/")


@pytest.mark.parametrize("uri", [
    "https://exаmple.com/",          # Cyrillic a
    "https://example.com\u3002evil.com/",  # ideographic full stop, which browsers read as a dot
    "https://evil.com\uff0eexample.com/",  # fullwidth full stop
    "https://www.\u212aey.example.com/",   # Kelvin sign, which lower() folds to k
    "https://ｅｘａｍｐｌｅ.com/",          # fullwidth letters, which browsers fold to ASCII
    "https://example.com/ü",
], ids=lambda uri: uri.encode("unicode_escape").decode())
def test_unicode_is_refused(uri: str) -> None:
    assert "non-ASCII" in refused(uri)


@pytest.mark.parametrize("uri", ["https://xn--exmple-cua.com/", "https://xn--example-9c.com/",
                                 "https://example.xn--com-9ma/"])
def test_punycode_lookalikes_are_refused(uri: str) -> None:
    assert "not within" in refused(uri)


# Refused: trailing dots, empty labels, numeric hosts.

@pytest.mark.parametrize("uri", ["https://example.com./", "https://www.example.com../",
                                 "https://evil.com.example.com./"])
def test_trailing_dots_are_refused(uri: str) -> None:
    assert "ends with a dot" in refused(uri)


@pytest.mark.parametrize("uri", ["https://.example.com/", "https://www..example.com/", "https://-x.example.com/",
                                 "https://x-.example.com/", "https://" + "a" * 64 + ".example.com/",
                                 "https://" + "a." * 126 + "example.com/"])
def test_malformed_host_names_are_refused(uri: str) -> None:
    assert "is not a valid host name" in refused(uri)


@pytest.mark.parametrize("uri", ["https://2130706433/", "https://0x7f.1/", "https://127.1/", "https://1.2.3.04/",
                                 "https://a.123/", "https://evil.0x10/"])
def test_numeric_hosts_that_browsers_read_as_addresses_are_refused(uri: str) -> None:
    assert "neither a host name nor a dotted IPv4 address" in refused(uri, signed=True)


def test_ip_addresses_match_only_exactly() -> None:
    assert "not within" in refused("https://10.0.0.1/", "0.0.1")
    assert check_redirect_uri("https://192.0.2.7/", "192.0.2.7", signed=False) == "https://192.0.2.7/"


@pytest.mark.parametrize("uri", ["https://[::1/", "https://[evil.com]/", "https://[::g]/"])
def test_malformed_ipv6_hosts_are_refused(uri: str) -> None:
    refused(uri, signed=True)


# Refused: ports.

@pytest.mark.parametrize("uri", ["https://example.com:/", "https://example.com:0/", "https://example.com:65536/",
                                 "https://example.com:99999/", "https://example.com:80:80/",
                                 "https://example.com:http/", "https://example.com:443:@evil.com/",
                                 "https://example.com:+443/", "https://example.com:123456/"],
                         ids=lambda uri: uri)
def test_malformed_ports_are_refused(uri: str) -> None:
    refused(uri)


def test_port_does_not_change_the_host_check() -> None:
    assert "'evil.com' is not within" in refused("https://evil.com:443/")


# Refused: not an absolute https URL.

@pytest.mark.parametrize("uri", [
    "//evil.com/",
    "///evil.com/",
    "/\\evil.com/",
    "/path/only",
    "evil.com",
    "example.com/done",
    "https:evil.com",
    "https:/evil.com",
    "https:///evil.com",
    "https:",
    "https://",
    "https://?x=1",
    "https://#frag",
    "https:///",
], ids=lambda uri: uri)
def test_relative_or_hostless_uris_are_refused(uri: str) -> None:
    message = refused(uri, signed=True)
    assert "absolute https URL" in message or "no host" in message or "backslash" in message


@pytest.mark.parametrize("uri", [
    "javascript:alert(1)",
    "JavaScript:alert(document.domain)//https://example.com/",
    "javascript://example.com/%0Aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "ftp://example.com/",
    "file://example.com/etc/passwd",
    "wss://example.com/",
    "httpx://example.com/",
    "example.com:443/done",
], ids=lambda uri: uri)
def test_other_schemes_are_refused(uri: str) -> None:
    assert "is not allowed: use https" in refused(uri, signed=True)


@pytest.mark.parametrize("uri", ["http://example.com/", "http://www.example.com/done", "http://127.0.0.1/cb",
                                 "http://localhost/cb", "http://[::1]/cb"])
def test_plain_http_is_refused_outside_development(uri: str) -> None:
    assert "must use https" in refused(uri, signed=True)


@pytest.mark.parametrize("uri", ["http://example.com/", "http://10.0.0.1/cb",
                                 "http://localhost.evil.com/", "http://127.0.0.1.evil.com/", "http://0.0.0.0/"])
def test_plain_http_to_other_hosts_is_refused_in_development(uri: str) -> None:
    assert "plain http only for a loopback host" in refused(uri, signed=True, development=True)


# Refused: whitespace and control characters.

@pytest.mark.parametrize("uri", [
    " https://example.com/",
    "https://example.com/ ",
    "https://exa mple.com/",
    "https://example.com/\t",
    "https://evil.com\t.example.com/",
    "https://evil.com\n.example.com/",
    "https://example.com\r\n/Set-Cookie:x",
    "https://example.com/\x00",
    "https://example.com/\x7f",
    "https://ex\x0bample.com/",
    "\x01https://example.com/",
    "java\tscript:alert(1)",
    "https:\n//evil.com/",
], ids=lambda uri: uri.encode("unicode_escape").decode())
def test_whitespace_and_control_characters_are_refused(uri: str) -> None:
    assert "spaces or control characters" in refused(uri, signed=True)


def test_empty_uri_is_refused() -> None:
    assert "redirect_uri is empty" in refused("", signed=True)


# redirect_with.

def test_redirect_with_adds_a_query() -> None:
    assert redirect_with("https://example.com/done", {"state": "abc"}) == "https://example.com/done?state=abc"


def test_redirect_with_keeps_the_existing_query() -> None:
    result = redirect_with("https://example.com/done?x=1&y=two", {"state": "abc", "error": "access_denied"})
    assert result == "https://example.com/done?x=1&y=two&state=abc&error=access_denied"


def test_redirect_with_puts_params_before_the_fragment() -> None:
    result = redirect_with("https://example.com/done?x=1#section?a=b&c", {"state": "s"})
    assert result == "https://example.com/done?x=1&state=s#section?a=b&c"
    assert redirect_with("https://example.com/#frag", {"state": "s"}) == "https://example.com/?state=s#frag"
    assert redirect_with("https://example.com#", {"state": "s"}) == "https://example.com?state=s#"


@pytest.mark.parametrize("uri", ["https://example.com/done?", "https://example.com/done?x=1&"])
def test_redirect_with_adds_no_empty_parameter(uri: str) -> None:
    assert redirect_with(uri, {"state": "s"}) == uri + "state=s"


def test_redirect_with_encodes_values() -> None:
    params = {"state": "a&b=c#d e+f/ü%", "error": "access_denied", "error_description": "user_cancel: no thanks"}
    result = redirect_with("https://example.com/done?x=1", params)
    parts = urlsplit(result)
    assert parts.fragment == ""
    assert parts.netloc == "example.com"
    assert parse_qsl(parts.query) == [("x", "1"), *params.items()]
    assert "#" not in result and " " not in result


def test_redirect_with_nothing_to_add_returns_the_uri() -> None:
    assert redirect_with("https://example.com/done?x=1#f", {}) == "https://example.com/done?x=1#f"


def test_redirect_with_result_still_passes_the_check() -> None:
    uri = check_redirect_uri("https://www.example.com/done?x=1#f", DOMAINS, signed=False)
    result = redirect_with(uri, {"state": "a@evil.com\\x", "error": "access_denied"})
    assert check_redirect_uri(result, DOMAINS, signed=False) == result
