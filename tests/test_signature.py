"""Signed synchronous requests: keys published on a real PowerDNS server, signatures made the
ways real clients make them."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from urllib.parse import quote, quote_plus, urlencode

import dns.name
import dns.resolver
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from gateway.infra.config import DnsSettings
from gateway.web.signature import (
    MAX_KEY_TTL, NEGATIVE_TTL, KeyResolver, SignatureError, decode_sig, key_name, parse_public_key, verify_query,
)
from tests.servers.common import free_port
from tests.servers.pdns import PdnsServer
from tests.signing import KEY_LABEL, Publisher, public_key_base64, sign, split_parts, txt_content

PARAMS = {
    "domain": "example.com",
    "IP": "192.0.2.42",
    "RANDOMTEXT": "shm:1542108821:Hello World/ü!'()*~",
    "redirect_uri": "https://service.example/done?x=1&y=2",
}


# The example of the specification ("Digitally Sign Requests"): its key records, and its signature of
# "a=1&b=2&ip=10.10.10.10&domain=example.net".
SPEC_KEY_RECORDS = [
    ("p=1,a=RS256,d=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA18SgvpmeasN4BHkkv0SBjAzIc4grYLjiAXRtNiBUiG"
     "UDMeTzQrKTsWvy9NuxU1dIHCZy9o1CrKNg5EzLIZLNyMfI6qiXnM+HMd4byp97zs/3D39Q8iR5poubQcRaGozWx8yQpG0OcVdmEV"
     "cTfy"),
    ("p=2,a=RS256,d=R/XSEWC5u16EBNvRnNAOAvZYUdWqVyQvXsjnxQot8KcK0QP8iHpoL/1dbdRy2opRPQ2FdZpovUgknybq/6FkeD"
     "tW7uCQ6Mvu4QxcUa3+WP9nYHKtgWip/eFxpeb+qLvcLHf1h0JXtxLVdyy6OLk3f2JRYUX2ZZVDvG3biTpeJz6iRzjGg6MfGxXZHj"
     "I8"),
    ("p=3,a=RS256,d=weDjXrJwIDAQAB"),
]
SPEC_SIG = (
    "V2te9zWMU7G3plxBTsmYSJTvn2vzMvNwAjWQ%2BwTe91DxuJhdVf4cVc4vZBYfEYV7u5d7PzTO7se7OrkhyiB7TpoJJW1yB5qHR7"
    "HKM5SZldUsdtg5%2B1SzEtIX0Uq8b2mCmQF%2FuJGXpqCyFrEajvpTM7fFKPk1kuctmtkjV7%2BATcvNPLWY7KyE4%2Bqc8jpfN6"
    "1cP5l8iA4krAa3%2BfTro5cmWR8YUJ5yrnRs6KT4b5D71HFvOUk0sGEUddUUlsyRQKRHUFN6HjEya50YDHfZJlYHkHlK0xX6Yqei"
    "i9QZ2I35U9eJbSvZGQko5beqviWFXdsVDbvd3DYcbSHgJq9%2FXoMTTw%3D%3D"
)
SPEC_QUERY = "a=1&b=2&ip=10.10.10.10&domain=example.net"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def private_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_private_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def encode_uri_component(value: str) -> str:
    """JavaScript's encodeURIComponent."""
    return quote(value, safe="!~*'()")


def encoded_query(params: dict[str, str], quote_via: Callable[..., str]) -> str:
    return "&".join(f"{quote_via(k, safe='')}={quote_via(v, safe='')}" for k, v in params.items())


def signed_query(key: RSAPrivateKey, query: str, label: str = KEY_LABEL) -> str:
    """The query as the reference clients send it: signed, then `&key=...&sig=...` appended."""
    return f"{query}&key={label}&sig={quote_plus(sign(key, query))}"


@pytest.fixture
def publisher(pdns: PdnsServer) -> Publisher:
    return Publisher(pdns)


@pytest.fixture
def published(publisher: Publisher, private_key: RSAPrivateKey) -> Publisher:
    publisher.publish_key(private_key)
    return publisher


def refusal(query: str, publisher: Publisher, resolver: KeyResolver | None = None) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verify_query(query, publisher.domain, resolver or publisher.resolver())
    return caught.value


# Good signatures, against the real server.

def test_example_of_the_specification_verifies(publisher: Publisher) -> None:
    publisher.publish(*(txt_content(record) for record in SPEC_KEY_RECORDS), label="_dcpubkeyv1")
    verify_query(f"{SPEC_QUERY}&key=_dcpubkeyv1&sig={SPEC_SIG}", publisher.domain, publisher.resolver())


def test_example_of_the_specification_tampered_is_refused(publisher: Publisher) -> None:
    publisher.publish(*(txt_content(record) for record in SPEC_KEY_RECORDS), label="_dcpubkeyv1")
    tampered = SPEC_QUERY.replace("10.10.10.10", "10.10.10.11")
    error = refusal(f"{tampered}&key=_dcpubkeyv1&sig={SPEC_SIG}", publisher)
    assert error.reason == "bad_signature"


@pytest.mark.parametrize("quote_via", [quote_plus, quote, lambda value, safe: encode_uri_component(value)],
                         ids=["quote_plus", "percent20", "encodeURIComponent"])
def test_signature_over_each_client_encoding_verifies(published: Publisher, private_key: RSAPrivateKey,
                                                       quote_via: Callable[..., str]) -> None:
    query = encoded_query(PARAMS, quote_via)
    verify_query(signed_query(private_key, query), published.domain, published.resolver())


def test_encodings_differ_so_no_reencoding_could_serve_all() -> None:
    encodings = {encoded_query(PARAMS, quote_plus), encoded_query(PARAMS, quote),
                 encoded_query(PARAMS, lambda value, safe: encode_uri_component(value))}
    assert len(encodings) == 3


def test_urlencode_query_verifies(published: Publisher, private_key: RSAPrivateKey) -> None:
    query = urlencode(PARAMS)
    verify_query(signed_query(private_key, query), published.domain, published.resolver())


def test_sig_and_key_anywhere_in_the_query(published: Publisher, private_key: RSAPrivateKey) -> None:
    query = urlencode(PARAMS)
    signature = quote_plus(sign(private_key, query))
    first, rest = query.split("&", 1)
    moved = f"sig={signature}&{first}&key={KEY_LABEL}&{rest}"
    verify_query(moved, published.domain, published.resolver())


def test_signature_over_prefix_including_key_verifies(published: Publisher, private_key: RSAPrivateKey) -> None:
    prefix = f"{urlencode(PARAMS)}&key={KEY_LABEL}"
    query = f"{prefix}&sig={quote_plus(sign(private_key, prefix))}"
    verify_query(query, published.domain, published.resolver())


@pytest.mark.parametrize("form", ["base64url", "unpadded", "base64url-unpadded", "raw-plus", "plus-as-space",
                                  "percent-encoded-base64url"])
def test_sig_forms_verify(published: Publisher, private_key: RSAPrivateKey, form: str) -> None:
    query = urlencode(PARAMS)
    standard = sign(private_key, query)
    url_safe = standard.replace("+", "-").replace("/", "_")
    sig = {
        "base64url": url_safe,
        "unpadded": quote_plus(standard.rstrip("=")),
        "base64url-unpadded": url_safe.rstrip("="),
        "raw-plus": standard.replace("/", "%2F").replace("=", "%3D"),
        "plus-as-space": quote(standard.replace("+", " "), safe=""),
        "percent-encoded-base64url": quote(url_safe, safe=""),
    }[form]
    verify_query(f"{query}&key={KEY_LABEL}&sig={sig}", published.domain, published.resolver())


def test_key_label_is_case_insensitive(published: Publisher, private_key: RSAPrivateKey) -> None:
    query = urlencode(PARAMS)
    verify_query(signed_query(private_key, query, label="_DCK1"), published.domain, published.resolver())


def test_key_split_over_several_records_out_of_order(publisher: Publisher, private_key: RSAPrivateKey) -> None:
    parts = split_parts(public_key_base64(private_key), 4)
    publisher.publish(*(txt_content(part) for part in reversed(parts)))
    verify_query(signed_query(private_key, urlencode(PARAMS)), publisher.domain, publisher.resolver())


def test_key_split_over_several_strings_of_one_record(publisher: Publisher, private_key: RSAPrivateKey) -> None:
    parts = split_parts(public_key_base64(private_key), 3)
    publisher.publish(txt_content(parts[2], parts[0], parts[1]))
    verify_query(signed_query(private_key, urlencode(PARAMS)), publisher.domain, publisher.resolver())


def test_part_continued_in_the_next_string(publisher: Publisher, private_key: RSAPrivateKey) -> None:
    data = public_key_base64(private_key)
    publisher.publish(txt_content(f"p=1,a=RS256,d={data[:200]}", data[200:]))
    verify_query(signed_query(private_key, urlencode(PARAMS)), publisher.domain, publisher.resolver())


def test_parts_with_spaces_and_without_algorithm(publisher: Publisher, private_key: RSAPrivateKey) -> None:
    data = public_key_base64(private_key)
    publisher.publish(txt_content(f"p = 2 , d = {data[200:]}"), txt_content(f" p=1, a=RS256, t=x509, d={data[:200]}"))
    verify_query(signed_query(private_key, urlencode(PARAMS)), publisher.domain, publisher.resolver())


def test_4096_bit_key_over_three_records(publisher: Publisher) -> None:
    big = rsa.generate_private_key(public_exponent=65537, key_size=4096)
    publisher.publish_key(big, parts=3)
    verify_query(signed_query(big, urlencode(PARAMS)), publisher.domain, publisher.resolver())


# Refusals, against the real server.

def test_missing_key_record_is_refused(publisher: Publisher, private_key: RSAPrivateKey) -> None:
    error = refusal(signed_query(private_key, urlencode(PARAMS)), publisher)
    assert error.reason == "no_key"
    assert f"no public key is published at {KEY_LABEL}.{publisher.domain}." in str(error)


def test_other_record_type_only_is_no_key(publisher: Publisher, private_key: RSAPrivateKey) -> None:
    publisher.pdns.patch(publisher.zone, [{
        "name": f"{KEY_LABEL}.{publisher.zone}", "type": "A", "ttl": 300, "changetype": "REPLACE",
        "records": [{"content": "192.0.2.1", "disabled": False}]}])
    assert refusal(signed_query(private_key, urlencode(PARAMS)), publisher).reason == "no_key"


@pytest.mark.parametrize("records, detail", [
    ([txt_content("p=1,a=RS256,d=!!!not-base64!!!")], "is not a valid RSA public key"),
    ([txt_content("p=1,a=RS256,d=" + base64.b64encode(b"just some bytes").decode())],
     "is not a valid RSA public key"),
    ([txt_content("v=spf1 -all")], "a part without d="),
    ([txt_content("hello world")], "where name=value is expected"),
    ([txt_content("p=1,a=RS256")], "without d="),
    ([txt_content("p=1,a=ES256,d=AAAA")], "only RS256 is supported"),
    ([txt_content("p=1,t=pgp,d=AAAA")], "only x509 is supported"),
    ([txt_content("p=x,d=AAAA")], "part number p='x'"),
    ([txt_content("p=0,d=AAAA")], "part number p='0'"),
    ([txt_content("p=1,d=AAAA"), txt_content("p=1,d=BBBB")], "part p=1 more than once"),
    ([txt_content("p=1,d=AAAA"), txt_content("p=3,d=BBBB")], "lacks part p=2"),
], ids=["not-base64", "not-a-key", "not-key-parts", "not-name-value", "no-data", "algorithm", "key-type", "part-number",
        "part-zero", "duplicate-part", "gap"])
def test_malformed_key_is_refused(publisher: Publisher, private_key: RSAPrivateKey, records: list[str],
                                  detail: str) -> None:
    publisher.publish(*records)
    error = refusal(signed_query(private_key, urlencode(PARAMS)), publisher)
    assert error.reason == "bad_key"
    assert detail in str(error)
    assert f"{KEY_LABEL}.{publisher.domain}." in str(error)


def test_key_missing_one_part_is_refused(publisher: Publisher, private_key: RSAPrivateKey) -> None:
    parts = split_parts(public_key_base64(private_key), 3)
    publisher.publish(txt_content(parts[0]), txt_content(parts[1]))
    error = refusal(signed_query(private_key, urlencode(PARAMS)), publisher)
    assert error.reason == "bad_key"
    assert "not a valid RSA public key" in str(error)


def test_ec_key_is_refused(publisher: Publisher, private_key: RSAPrivateKey) -> None:
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = ec_public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    publisher.publish(txt_content(f"p=1,a=RS256,d={base64.b64encode(der).decode()}"))
    error = refusal(signed_query(private_key, urlencode(PARAMS)), publisher)
    assert error.reason == "bad_key"
    assert "not a valid RSA public key (found a key of type EC" in str(error)


def test_signature_with_another_key_is_refused(published: Publisher, other_private_key: RSAPrivateKey) -> None:
    error = refusal(signed_query(other_private_key, urlencode(PARAMS)), published)
    assert error.reason == "bad_signature"
    assert "parameters were changed after signing or they were signed with another key" in str(error)


@pytest.mark.parametrize("tamper", [
    lambda q: q.replace("192.0.2.42", "192.0.2.43"),
    lambda q: q.replace("domain=example.com", "domain=example.org"),
    lambda q: q + "&extra=1",
    lambda q: "extra=1&" + q,
    lambda q: q.replace("RANDOMTEXT=", "randomtext="),
    lambda q: q.replace("redirect_uri=https%3A%2F%2Fservice.example", "redirect_uri=https%3A%2F%2Fevil.example"),
], ids=["value", "domain", "appended", "prepended", "name-case", "redirect"])
def test_tampered_parameters_are_refused(published: Publisher, private_key: RSAPrivateKey,
                                         tamper: Callable[[str], str]) -> None:
    query = urlencode(PARAMS)
    tampered = tamper(query)
    assert tampered != query
    sent = f"{tampered}&key={KEY_LABEL}&sig={quote_plus(sign(private_key, query))}"
    assert refusal(sent, published).reason == "bad_signature"


def test_reencoded_query_is_refused(published: Publisher, private_key: RSAPrivateKey) -> None:
    """The signature covers the bytes sent: the same values encoded another way are another message."""
    signature = quote_plus(sign(private_key, encoded_query(PARAMS, quote_plus)))
    sent = f"{encoded_query(PARAMS, quote)}&key={KEY_LABEL}&sig={signature}"
    assert refusal(sent, published).reason == "bad_signature"


@pytest.mark.parametrize("appended", ["domain=evil.example", "redirect_uri=https%3A%2F%2Fevil.example%2F", "x=1"])
def test_parameters_after_a_prefix_signature_are_refused(published: Publisher, private_key: RSAPrivateKey,
                                                         appended: str) -> None:
    prefix = f"{urlencode(PARAMS)}&key={KEY_LABEL}"
    sent = f"{prefix}&sig={quote_plus(sign(private_key, prefix))}&{appended}"
    assert refusal(sent, published).reason == "bad_signature"


def test_prefix_signed_with_sig_first_is_refused(published: Publisher, private_key: RSAPrivateKey) -> None:
    query = urlencode(PARAMS)
    sent = f"sig={quote_plus(sign(private_key, f'key={KEY_LABEL}'))}&key={KEY_LABEL}&{query}"
    assert refusal(sent, published).reason == "bad_signature"


def test_truncated_signature_is_refused(published: Publisher, private_key: RSAPrivateKey) -> None:
    query = urlencode(PARAMS)
    sent = f"{query}&key={KEY_LABEL}&sig={quote_plus(sign(private_key, query)[:-8])}"
    assert refusal(sent, published).reason == "bad_signature"


# Refusals that need no DNS: the resolver must not even be asked.

class NoLookups:
    def public_key(self, key: str, pub_key_domain: str) -> RSAPublicKey:
        raise AssertionError(f"unexpected key lookup for {key}.{pub_key_domain}")


def refused_without_lookup(query: str) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verify_query(query, "keys.example", NoLookups())  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize("query, detail", [
    ("domain=example.com&key=_dck1", "sig is missing"),
    ("domain=example.com&sig=AAAA", "key is missing"),
    ("domain=example.com", "sig is missing"),
    ("", "sig is missing"),
    ("domain=example.com&key=_dck1&sig=", "sig is empty"),
    ("domain=example.com&key=_dck1&sig", "sig is empty"),
    ("domain=example.com&key=_dck1&sig=AAAA&sig=BBBB", "sig appears 2 times"),
    ("domain=example.com&key=_dck1&key=_dck2&sig=AAAA", "key appears 2 times"),
], ids=["no-sig", "no-key", "neither", "empty-query", "empty-sig", "bare-sig", "two-sigs", "two-keys"])
def test_missing_or_repeated_sig_and_key_are_refused(query: str, detail: str) -> None:
    error = refused_without_lookup(query)
    assert error.reason == "missing"
    assert detail in str(error)


@pytest.mark.parametrize("sig", ["!!!!", "AAAAA", "%ZZ", "AA*A"], ids=["symbols", "bad-length", "bad-escape", "star"])
def test_sig_that_is_not_base64_is_refused(sig: str) -> None:
    error = refused_without_lookup(f"domain=example.com&key=_dck1&sig={sig}")
    assert error.reason == "bad_signature"
    assert "sig is not base64" in str(error)


@pytest.mark.parametrize("key", [
    "a.b", "_dck1.evil.example", "..", "../_dck1", "%2E%2E%2F_dck1", "_dck1%2Eevil.example", "_dck1.",
    ".", "%20", "-start", "end-", "x" * 64, "k%00", "k/..", "_dck1 ", "ké", "@", "*",
], ids=lambda key: repr(key))
def test_key_that_is_not_one_label_is_refused(key: str) -> None:
    error = refused_without_lookup(f"domain=example.com&key={key}&sig=AAAA")
    assert error.reason == "key_name"
    assert "is not a host label" in str(error)
    assert "keys.example" in str(error)


def test_empty_key_is_refused() -> None:
    error = refused_without_lookup("domain=example.com&key=&sig=AAAA")
    assert error.reason == "key_name"


def test_key_that_is_not_one_label_is_refused_by_the_resolver_itself(publisher: Publisher) -> None:
    with pytest.raises(SignatureError) as caught:
        publisher.resolver().public_key(f"{KEY_LABEL}.{publisher.domain}", "example.net")
    assert caught.value.reason == "key_name"


# The cache, against the real server, with a clock the test moves.

def test_key_is_cached_for_its_ttl(publisher: Publisher, private_key: RSAPrivateKey) -> None:
    publisher.publish_key(private_key, ttl=120)
    clock = FakeClock()
    resolver = publisher.resolver(clock)
    query = signed_query(private_key, urlencode(PARAMS))
    verify_query(query, publisher.domain, resolver)
    publisher.delete()
    clock.now += 119
    verify_query(query, publisher.domain, resolver)
    clock.now += 2
    assert refusal(query, publisher, resolver).reason == "no_key"


def test_key_cache_is_bounded_to_an_hour(publisher: Publisher, private_key: RSAPrivateKey) -> None:
    publisher.publish_key(private_key, ttl=86400)
    clock = FakeClock()
    resolver = publisher.resolver(clock)
    query = signed_query(private_key, urlencode(PARAMS))
    verify_query(query, publisher.domain, resolver)
    publisher.delete()
    clock.now += MAX_KEY_TTL - 1
    verify_query(query, publisher.domain, resolver)
    clock.now += 2
    assert refusal(query, publisher, resolver).reason == "no_key"


def test_missing_key_is_cached_briefly(publisher: Publisher, private_key: RSAPrivateKey) -> None:
    clock = FakeClock()
    resolver = publisher.resolver(clock)
    query = signed_query(private_key, urlencode(PARAMS))
    assert refusal(query, publisher, resolver).reason == "no_key"
    publisher.publish_key(private_key)
    clock.now += NEGATIVE_TTL - 1
    assert refusal(query, publisher, resolver).reason == "no_key"
    clock.now += 2
    verify_query(query, publisher.domain, resolver)


def test_rotated_key_is_used_once_the_old_one_expires(publisher: Publisher, private_key: RSAPrivateKey,
                                                      other_private_key: RSAPrivateKey) -> None:
    publisher.publish_key(private_key, ttl=60)
    clock = FakeClock()
    resolver = publisher.resolver(clock)
    old_query = signed_query(private_key, urlencode(PARAMS))
    new_query = signed_query(other_private_key, urlencode(PARAMS))
    verify_query(old_query, publisher.domain, resolver)
    publisher.publish_key(other_private_key, ttl=60)
    assert refusal(new_query, publisher, resolver).reason == "bad_signature"
    clock.now += 61
    verify_query(new_query, publisher.domain, resolver)
    assert refusal(old_query, publisher, resolver).reason == "bad_signature"


class CountingLookups:
    """Counts the TXT lookups the resolver sends (dnspython's Resolver.resolve, wrapped)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        self._lock = threading.Lock()
        original = dns.resolver.Resolver.resolve

        def counting(resolver: dns.resolver.Resolver, qname: dns.name.Name | str, *args, **kwargs):
            with self._lock:
                self.names.append(str(qname))
            return original(resolver, qname, *args, **kwargs)

        monkeypatch.setattr(dns.resolver.Resolver, "resolve", counting)


def test_cached_key_sends_no_more_queries(published: Publisher, private_key: RSAPrivateKey,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    lookups = CountingLookups(monkeypatch)
    resolver = published.resolver(FakeClock())
    query = signed_query(private_key, urlencode(PARAMS))
    for _ in range(5):
        verify_query(query, published.domain, resolver)
    assert lookups.names == [f"{KEY_LABEL}.{published.domain}."]


def test_bad_key_is_cached_too(publisher: Publisher, private_key: RSAPrivateKey,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    publisher.publish(txt_content("p=1,d=AAAA"))
    lookups = CountingLookups(monkeypatch)
    resolver = publisher.resolver(FakeClock())
    query = signed_query(private_key, urlencode(PARAMS))
    for _ in range(3):
        assert refusal(query, publisher, resolver).reason == "bad_key"
    assert len(lookups.names) == 1


def test_concurrent_requests_share_one_lookup(published: Publisher, private_key: RSAPrivateKey,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    lookups = CountingLookups(monkeypatch)
    resolver = published.resolver(FakeClock())
    query = signed_query(private_key, urlencode(PARAMS))
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def check() -> None:
        start.wait()
        try:
            verify_query(query, published.domain, resolver)
        except BaseException as error:  # collected: the assertion below names it
            failures.append(error)

    threads = [threading.Thread(target=check) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(lookups.names) == 1


def test_unreachable_server_is_not_cached(private_key: RSAPrivateKey, publisher: Publisher,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    lookups = CountingLookups(monkeypatch)
    resolver = KeyResolver(DnsSettings(nameservers=("127.0.0.1",), port=free_port(), timeout=0.3), clock=FakeClock())
    query = signed_query(private_key, urlencode(PARAMS))
    for _ in range(2):
        with pytest.raises(SignatureError) as caught:
            verify_query(query, publisher.domain, resolver)
        assert caught.value.reason == "no_key"
        assert f"the public key at {KEY_LABEL}.{publisher.domain}. could not be fetched" in str(caught.value)
    assert len(lookups.names) == 2


# Units that need no server.

def test_parse_public_key_accepts_single_unnumbered_part(private_key: RSAPrivateKey) -> None:
    key = parse_public_key([[f"d={public_key_base64(private_key)}".encode()]], "k.example.")
    assert key.public_numbers() == private_key.public_key().public_numbers()


def test_parse_public_key_joins_parts_in_numeric_order(private_key: RSAPrivateKey) -> None:
    data = public_key_base64(private_key)
    chunks = [data[i:i + 30] for i in range(0, len(data), 30)]
    assert len(chunks) > 10
    records = [[f"p={n + 1},d={chunk}".encode()] for n, chunk in enumerate(chunks)]
    records.sort(key=lambda record: record[0])  # p=1, p=10, p=11, p=2, ...: text order is not numeric order
    key = parse_public_key(records, "k.example.")
    assert key.public_numbers() == private_key.public_key().public_numbers()


def test_parse_public_key_without_records_is_refused() -> None:
    with pytest.raises(SignatureError) as caught:
        parse_public_key([], "k.example.")
    assert caught.value.reason == "bad_key"
    assert "hold no key parts" in str(caught.value)


@pytest.mark.parametrize("raw", ["QUJD", "QUJD%3D", "QUI", "QUI%3D", "QUI=", "Q%55I", "QU%0AI", "QU%20I"])
def test_decode_sig_forms(raw: str) -> None:
    assert decode_sig(raw) in (b"ABC", b"AB", base64.b64decode("QU+I"))


def test_decode_sig_plus_and_space_and_url_safe_agree() -> None:
    data = bytes(range(250, 256)) * 3
    standard = base64.b64encode(data).decode()
    assert "+" in standard and "/" in standard
    assert decode_sig(standard) == data
    assert decode_sig(standard.replace("+", " ")) == data
    assert decode_sig(quote_plus(standard)) == data
    assert decode_sig(base64.urlsafe_b64encode(data).decode().rstrip("=")) == data


def test_key_name_is_below_the_domain() -> None:
    assert key_name("_DCK1", "Keys.Example.COM.") == dns.name.from_text("_dck1.keys.example.com.")


@pytest.mark.parametrize("domain", ["", ".", "   "])
def test_key_name_needs_a_domain(domain: str) -> None:
    with pytest.raises(SignatureError) as caught:
        key_name("_dck1", domain)
    assert caught.value.reason == "key_name"
