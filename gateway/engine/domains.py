"""Domain names as they arrive from callers: Unicode or punycode, any case, maybe a final dot."""

from __future__ import annotations

import functools
import re

import dns.exception
import dns.name


class DomainError(ValueError):
    """Not a usable domain name. `problem` says why in words that follow the quoted value
    ("has an invalid label '*'"), for callers that name the value their own way."""

    def __init__(self, message: str, problem: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem or message

    def of(self, field: str, value: str, separator: str = ": ") -> DomainError:
        """This error told of `field`: "domain: 'com' is not a domain with a public suffix"."""
        if self.problem == "required":
            return DomainError(f"{field}: required", self.problem)
        return DomainError(f"{field}{separator}{value!r} {self.problem}", self.problem)


# Host-name labels; with underscores also the labels of names only looked up (`_dmarc`,
# RFC 2181 section 11).
HOST_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.IGNORECASE)
LOOKUP_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE)


def domain_labels(value: str, *, underscores: bool = False) -> list[str]:
    """The labels of a domain name a caller sent, in IDNA lower case, root excluded;
    `DomainError` whose `problem` reads after the quoted value."""
    text = (value or "").strip()
    if not text:
        raise DomainError("required")
    # Control characters anywhere, a final newline included: no DNS name holds one.
    if _has_control(value):
        raise DomainError("contains control characters")
    try:
        name = dns.name.from_unicode(text.rstrip("."), idna_codec=dns.name.IDNA_2008_Practical)
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise DomainError(f"is not a valid domain name ({exc})") from None
    labels = [label.decode("ascii").lower() for label in name.labels[:-1]]
    if len(labels) < 2:
        raise DomainError("is not a domain with a public suffix, such as example.com")
    pattern = LOOKUP_LABEL if underscores else HOST_LABEL
    bad = next((label for label in labels if not pattern.fullmatch(label)), None)
    if bad is not None:
        raise DomainError(f"has an invalid label {bad!r}")
    return labels


@functools.lru_cache(maxsize=4096)  # every request names a domain, and the same few again and again
def idna_domain(value: str, field: str = "domain") -> str:
    """`value` as an IDNA (punycode) name in lower case without the final dot."""
    try:
        return ".".join(domain_labels(value))
    except DomainError as exc:
        raise exc.of(field, value) from None


def idna_host(value: str | None) -> str:
    """A `host` parameter (labels below the domain; empty for the apex) in IDNA lower case."""
    if _has_control(value or ""):
        raise DomainError(f"host: {value!r} contains control characters")
    text = (value or "").strip().rstrip(".")
    if not text or text == "@":
        return ""
    try:
        name = dns.name.from_unicode(text, origin=None, idna_codec=dns.name.IDNA_2008_Practical)
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise DomainError(f"host: {value!r} is not a valid host name ({exc})") from None
    return name.to_text().lower()


def _has_control(value: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def zone_text(value: str) -> str:
    """A zone name as configs and grants hold it: lower case, no final dot."""
    try:
        name = dns.name.from_text(value.strip())
    except dns.exception.DNSException as exc:
        raise DomainError(f"{value!r} is not a valid zone name: {exc}") from None
    if name == dns.name.root or not value.strip():
        raise DomainError(f"{value!r} is not a valid zone name")
    return name.to_text(omit_final_dot=True).lower()
