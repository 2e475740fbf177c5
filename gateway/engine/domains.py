"""Domain names as they arrive from callers: Unicode or punycode, any case, maybe a final dot."""

from __future__ import annotations

import functools

import dns.exception
import dns.name


class DomainError(ValueError):
    """Not a usable domain name; the message says why."""


@functools.lru_cache(maxsize=4096)  # every request names a domain, and the same few again and again
def idna_domain(value: str, field: str = "domain") -> str:
    """`value` as an IDNA (punycode) name in lower case without the final dot."""
    text = (value or "").strip()
    if not text:
        raise DomainError(f"{field}: required")
    # Control characters anywhere, a final newline included: no DNS name holds one.
    if _has_control(value) or any(c.isspace() for c in text):
        raise DomainError(f"{field}: {value!r} contains whitespace or control characters")
    try:
        name = dns.name.from_unicode(text.rstrip("."), idna_codec=dns.name.IDNA_2008_Practical)
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise DomainError(f"{field}: {value!r} is not a valid domain name ({exc})") from None
    if len(name.labels) < 3:  # at least two labels besides the root
        raise DomainError(f"{field}: {value!r} is not a domain name with a public suffix")
    labels = [label.decode("ascii") for label in name.labels[:-1]]
    for label in labels:
        if not all(c.isalnum() or c == "-" for c in label) or label.startswith("-") or label.endswith("-"):
            raise DomainError(f"{field}: {value!r} has an invalid label {label!r}")
    return ".".join(labels).lower()


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
