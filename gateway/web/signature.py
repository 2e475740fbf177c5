"""Signed synchronous apply requests: the service provider's public key from DNS and the check of `sig`.

A template with `syncPubKeyDomain` wants its synchronous apply URLs signed. The service
provider signs the query string (without `sig` and `key`) with RSA-SHA256, PKCS#1 v1.5,
and publishes the public key as TXT records at `{key}.{syncPubKeyDomain}`, split into
parts `p=1,a=RS256,d=BASE64`, `p=2,...` because one TXT string holds 255 bytes at most.

The signature covers the bytes the client sent, so nothing here decodes and re-encodes the
query string: clients encode spaces as `+`, `%20` or leave other characters as
`encodeURIComponent` does, and any re-encoding would break one of them.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

import dns.exception
import dns.name
import dns.resolver
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_der_public_key

from gateway.infra.config import DnsSettings

# Bounds on how long an answer is trusted: a key lives for its TTL but never longer than
# MAX_KEY_TTL (a rotated key must be picked up); a missing key is remembered only briefly
# (a provider publishing a key should not wait long, a flood of bad requests should not
# reach DNS each time).
MAX_KEY_TTL = 3600.0
NEGATIVE_TTL = 30.0
# Names in the cache come partly from the request (`key`), so the cache has a size limit.
MAX_CACHED_NAMES = 1024

_KEY_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
# A TXT string that starts a part (`p=2,...`); base64 data never has a digit after `=`,
# so a continuation string cannot look like this.
_PART_START = re.compile(r"^\s*p\s*=\s*\d+\s*(?:,|$)", re.IGNORECASE)
_SUPPORTED_ALGORITHMS = {"rs256"}
_SUPPORTED_KEY_TYPES = {"x509"}


log = logging.getLogger(__name__)


class SignatureError(Exception):
    """A signed request that cannot be accepted; `reason` is a short label for metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class _CachedAnswer:
    expires_at: float
    key: RSAPublicKey | None
    error: SignatureError | None


class KeyResolver:
    """Fetches and caches the public keys published in DNS; safe to share between threads."""

    def __init__(self, settings: DnsSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._dns = _stub_resolver(settings)
        if settings.nameservers:
            self._dns.nameservers = list(settings.nameservers)
        self._dns.port = settings.port
        self._dns.timeout = settings.timeout
        self._dns.lifetime = settings.timeout
        self._cache: OrderedDict[dns.name.Name, _CachedAnswer] = OrderedDict()
        self._cache_lock = threading.Lock()
        # One lookup per name at a time: concurrent requests for a key that is not cached
        # yet wait for the first lookup instead of each asking DNS.
        self._name_locks: dict[dns.name.Name, threading.Lock] = {}

    def public_key(self, key: str, pub_key_domain: str) -> RSAPublicKey:
        """The RSA key published at `{key}.{pub_key_domain}`; raises SignatureError."""
        name = key_name(key, pub_key_domain)
        cached = self._cached(name)
        if cached is None:
            with self._name_lock(name):
                cached = self._cached(name)
                if cached is None:
                    try:
                        cached = self._fetch(name)
                    except SignatureError:
                        self._forget_lock(name)
                        raise
                    self._remember(name, cached)
        if cached.error is not None:
            # A fresh exception each time: one raised object shared between threads would share its traceback.
            raise SignatureError(cached.error.reason, cached.error.message)
        assert cached.key is not None
        return cached.key

    def _cached(self, name: dns.name.Name) -> _CachedAnswer | None:
        with self._cache_lock:
            answer = self._cache.get(name)
            if answer is None:
                return None
            if answer.expires_at <= self._clock():
                del self._cache[name]
                return None
            return answer

    def _remember(self, name: dns.name.Name, answer: _CachedAnswer) -> None:
        with self._cache_lock:
            self._cache[name] = answer
            self._cache.move_to_end(name)
            now = self._clock()
            for stale in [n for n, a in self._cache.items() if a.expires_at <= now]:
                del self._cache[stale]
            while len(self._cache) > MAX_CACHED_NAMES:
                self._cache.popitem(last=False)
            self._name_locks.pop(name, None)

    def _name_lock(self, name: dns.name.Name) -> threading.Lock:
        with self._cache_lock:
            return self._name_locks.setdefault(name, threading.Lock())

    def _forget_lock(self, name: dns.name.Name) -> None:
        with self._cache_lock:
            self._name_locks.pop(name, None)

    def _fetch(self, name: dns.name.Name) -> _CachedAnswer:
        now = self._clock()
        try:
            answer = self._dns.resolve(name, "TXT", search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            error = SignatureError("no_key", f"no public key is published at {name}: there is no TXT record")
            return _CachedAnswer(now + NEGATIVE_TTL, None, error)
        except dns.exception.DNSException as failure:
            # Timeouts and server failures are not cached: the next request tries again.
            # The resolver's own words name internal servers: they go to the log, not the caller.
            log.warning("signature key lookup of %s failed: %s", name, failure)
            raise SignatureError("no_key", f"the public key at {name} could not be fetched (the DNS lookup "
                                           "failed); try again later") from None
        assert answer.rrset is not None
        ttl = min(float(answer.rrset.ttl), MAX_KEY_TTL)
        try:
            key = parse_public_key([list(record.strings) for record in answer.rrset], name)
        except SignatureError as error:
            return _CachedAnswer(now + ttl, None, error)
        return _CachedAnswer(now + ttl, key, None)


def _stub_resolver(settings: DnsSettings) -> dns.resolver.Resolver:
    if settings.nameservers:
        return dns.resolver.Resolver(configure=False)
    try:
        return dns.resolver.Resolver(configure=True)
    except dns.exception.DNSException:
        # No resolv.conf: lookups fail (and say so) instead of the gateway failing to start.
        return dns.resolver.Resolver(configure=False)


def key_name(key: str, pub_key_domain: str) -> dns.name.Name:
    """`{key}.{pub_key_domain}` as an absolute name; `key` must be one label, nothing else."""
    if not _KEY_LABEL.fullmatch(key):
        raise SignatureError("key_name", f"key {key!r} is not a host label (letters, digits, '-' and '_', "
                                         "at most 63, no dots): the key must be a host directly below "
                                         f"syncPubKeyDomain {pub_key_domain!r}")
    try:
        domain = dns.name.from_text(pub_key_domain.strip().rstrip("."))
    except dns.exception.DNSException as error:
        raise SignatureError("key_name", f"syncPubKeyDomain {pub_key_domain!r} is not a domain name: {error}") from None
    if len(domain) < 2:
        raise SignatureError("key_name", "syncPubKeyDomain is empty or the root")
    try:
        return dns.name.Name((key.encode("ascii"),) + domain.labels).canonicalize()
    except dns.exception.DNSException:
        raise SignatureError("key_name", f"{key}.{pub_key_domain} is longer than a domain name may be") from None


def parse_public_key(records: Iterable[Iterable[bytes]], name: dns.name.Name | str) -> RSAPublicKey:
    """The RSA key that the TXT records (each a list of strings) at `name` publish.

    Parts may sit in separate records or in separate strings of one record, in any order;
    a string that does not start with `p=N` continues the part before it.
    """
    parts: dict[int, str] = {}
    for text in _part_texts(records):
        number, data = _parse_part(text, name)
        if number in parts:
            raise SignatureError("bad_key", f"the key at {name} has part p={number} more than once")
        parts[number] = data
    if not parts:
        raise SignatureError("bad_key", f"the TXT records at {name} hold no key parts (p=N,a=RS256,d=BASE64)")
    missing = sorted(set(range(1, max(parts) + 1)) - set(parts))
    if missing:
        raise SignatureError("bad_key", f"the key at {name} lacks part p={missing[0]} "
                                        f"(has parts {', '.join(map(str, sorted(parts)))})")
    encoded = "".join(parts[number] for number in sorted(parts))
    try:
        der = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        key = load_der_public_key(der)
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        raise SignatureError("bad_key", f"the key at {name} is not a valid RSA public key "
                                        "(d= must be base64 of a DER SubjectPublicKeyInfo)") from None
    if not isinstance(key, RSAPublicKey):
        raise SignatureError("bad_key", f"the key at {name} is not a valid RSA public key "
                                        f"(found a key of type {type(key).__name__.removesuffix('PublicKey')})")
    return key


def _part_texts(records: Iterable[Iterable[bytes]]) -> Iterator[str]:
    for strings in records:
        current: list[str] = []
        for raw in strings:
            text = raw.decode("ascii", errors="replace")
            if _PART_START.match(text) and current:
                yield "".join(current)
                current = []
            current.append(text)
        if current:
            yield "".join(current)


def _parse_part(text: str, name: dns.name.Name | str) -> tuple[int, str]:
    fields: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        field_name, equals, value = item.partition("=")
        if not equals:
            raise SignatureError("bad_key", f"the key at {name} has {item.strip()!r} where name=value is expected")
        fields[field_name.strip().lower()] = value
    if "d" not in fields:
        raise SignatureError("bad_key", f"the key at {name} has a part without d= (the key data): {text[:60]!r}")
    number_text = fields.get("p", "1").strip()
    if not number_text.isdigit() or int(number_text) < 1:
        raise SignatureError("bad_key", f"the key at {name} has part number p={number_text!r}; expected 1, 2, ...")
    algorithm = fields.get("a", "RS256").strip()
    if algorithm.lower() not in _SUPPORTED_ALGORITHMS:
        raise SignatureError("bad_key", f"the key at {name} uses algorithm a={algorithm}; only RS256 is supported")
    key_type = fields.get("t", "x509").strip()
    if key_type.lower() not in _SUPPORTED_KEY_TYPES:
        raise SignatureError("bad_key", f"the key at {name} has type t={key_type}; only x509 is supported")
    return int(number_text), "".join(fields["d"].split())


def verify_query(raw_query: str, pub_key_domain: str, resolver: KeyResolver) -> None:
    """Check `sig` over the query string exactly as received; raises SignatureError.

    Accepted: the signature over the query without its `sig` and `key` parameters (what the
    specification says) or, when `sig` is the last parameter, over everything before
    `&sig=` (what some clients sign, with `key` in it).
    """
    segments = raw_query.split("&")
    names = [unquote_plus(segment.partition("=")[0]) for segment in segments]
    sig_at = _single(names, "sig")
    key_at = _single(names, "key")
    key = unquote_plus(segments[key_at].partition("=")[2])
    key_name(key, pub_key_domain)  # before any lookup: a key that is not one label is refused outright
    signature = decode_sig(segments[sig_at].partition("=")[2])
    public_key = resolver.public_key(key, pub_key_domain)

    unsigned = "&".join(segment for index, segment in enumerate(segments) if index not in (sig_at, key_at))
    candidates = [unsigned]
    # The prefix form only when `sig` comes last: parameters after it would not be covered.
    prefix = "&".join(segments[:sig_at])
    if sig_at == len(segments) - 1 and prefix and prefix != unsigned:
        candidates.append(prefix)
    for message in candidates:
        try:
            public_key.verify(signature, message.encode("latin-1"), padding.PKCS1v15(), hashes.SHA256())
            return
        except InvalidSignature:
            continue
    raise SignatureError("bad_signature", "the signature does not match: the parameters were changed after "
                                          f"signing or they were signed with another key than {key!r}")


def _single(names: list[str], wanted: str) -> int:
    positions = [index for index, name in enumerate(names) if name == wanted]
    if not positions:
        raise SignatureError("missing", f"{wanted} is missing: the template has syncPubKeyDomain, "
                                        "so the request must be signed (sig and key)")
    if len(positions) > 1:
        raise SignatureError("missing", f"{wanted} appears {len(positions)} times; send it once")
    return positions[0]


def decode_sig(raw_value: str) -> bytes:
    """The signature bytes from the raw `sig` value: base64 or base64url, padded or not,
    percent-encoded or not, with `+` that may have arrived as a space."""
    text = unquote(raw_value).replace(" ", "+")
    text = "".join(text.split()).replace("-", "+").replace("_", "/").rstrip("=")
    if not text:
        raise SignatureError("missing", "sig is empty")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error:
        raise SignatureError("bad_signature", "sig is not base64 (standard or URL-safe alphabet)") from None
