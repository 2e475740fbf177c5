"""Where the synchronous flow may send the browser back to: `redirect_uri` against `syncRedirectDomain`.

The checks are strict on purpose. Browsers parse URLs more leniently than Python's urllib
(backslashes as slashes, tabs and newlines dropped, Unicode hosts folded, numeric hosts
read as IP addresses), so anything where the two could disagree about the host is
refused rather than normalised: only `https://HOST[:PORT]` followed by a path, query or
fragment, with HOST a plain ASCII host name, passes.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlencode

import dns.exception
import dns.name
from starlette.responses import RedirectResponse

SCHEME_AND_AUTHORITY = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):(?P<rest>.*)$", re.DOTALL)
# What may stand between `//` and the path: a host name or a bracketed IPv6 address, then
# an optional port. Everything else there (`@`, `%`, `\`, spaces) is how open redirects start.
AUTHORITY = re.compile(r"(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?")
HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
LOOPBACK_NAMES = {"localhost"}


class RedirectError(ValueError):
    """A redirect_uri that may not be used; the message says why."""


def check_redirect_uri(uri: str, sync_redirect_domain: str | Iterable[str] | None, *, signed: bool,
                       development: bool = False) -> str:
    """`uri` when the browser may be sent there, else RedirectError.

    `sync_redirect_domain` is the template's comma-separated list (or the entries already
    split). A signed request may name any https host; an unsigned one only a host equal to
    or below one of the entries. Plain http is for loopback hosts in development only, and
    such a host still has to be within syncRedirectDomain when the request is unsigned.
    """
    host = _checked_host(uri, development=development)
    if signed:
        return uri
    domains = _redirect_domains(sync_redirect_domain)
    if not domains:
        raise RedirectError("redirect_uri is not allowed: the template has no syncRedirectDomain and the request "
                            "is not signed (leave redirect_uri out or sign the request)")
    if not any(_within(host, domain) for domain in domains):
        raise RedirectError(f"redirect_uri host {host!r} is not within the template's syncRedirectDomain "
                            f"({', '.join(domains)})")
    return uri


def check_client_redirect_uri(uri: str, *, development: bool = False) -> str:
    """`uri` when an OAuth client may register it, else RedirectError: https (or loopback http
    in development) and no fragment (RFC 6749 3.1.2), the answer is added to its query."""
    _checked_host(uri, development=development)
    if "#" in uri:
        raise RedirectError("redirect_uri must not have a fragment (#...): the code is added to its query")
    return uri


def redirect_with(uri: str, params: Mapping[str, str]) -> str:
    """`uri` with `params` added to its query string, before any #fragment; its own query is kept."""
    if not params:
        return uri
    base, hash_mark, fragment = uri.partition("#")
    if "?" not in base:
        separator = "?"
    elif base.endswith(("?", "&")):
        separator = ""
    else:
        separator = "&"
    return f"{base}{separator}{urlencode(params)}{hash_mark}{fragment}"


def _checked_host(uri: str, *, development: bool) -> str:
    """The lower-case host of a well-formed absolute https (or development loopback http) URI."""
    if not uri:
        raise RedirectError("redirect_uri is empty")
    if not uri.isascii():
        raise RedirectError("redirect_uri has non-ASCII characters: percent-encode them, and give an "
                            "internationalised host in its xn-- form")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in uri):
        raise RedirectError("redirect_uri has spaces or control characters")
    if "\\" in uri:
        raise RedirectError("redirect_uri has a backslash (browsers read it as '/')")
    match = SCHEME_AND_AUTHORITY.match(uri)
    if match is None:
        raise RedirectError("redirect_uri must be an absolute https URL (https://host/...)")
    scheme = match["scheme"].lower()
    if scheme not in ("https", "http"):
        raise RedirectError(f"redirect_uri scheme {scheme!r} is not allowed: use https")
    rest = match["rest"]
    if not rest.startswith("//"):
        raise RedirectError("redirect_uri must be an absolute https URL (https://host/...)")
    authority = re.split(r"[/?#]", rest[2:], maxsplit=1)[0]
    if not authority:
        raise RedirectError("redirect_uri has no host")
    if "@" in authority:
        raise RedirectError("redirect_uri must not carry a user name or password (an '@' before the host)")
    parts = AUTHORITY.fullmatch(authority)
    if parts is None:
        raise RedirectError(f"redirect_uri host and port {authority!r} are not a host name and optional port")
    port = parts["port"]
    if port is not None and not 0 < int(port) < 65536:
        raise RedirectError(f"redirect_uri port {port} is out of range")
    host = parts["host"].lower()
    _check_host(host)
    if scheme == "http":
        if not development:
            raise RedirectError("redirect_uri must use https")
        if not _is_loopback(host):
            raise RedirectError("redirect_uri may use plain http only for a loopback host (127.0.0.1, [::1], "
                                "localhost); use https")
    return host


def _check_host(host: str) -> None:
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise RedirectError(f"redirect_uri host {host} is not an IPv6 address") from None
        return
    if _is_ipv4(host):
        return
    if host.endswith("."):
        raise RedirectError(f"redirect_uri host {host!r} ends with a dot: give the host name without it")
    labels = host.split(".")
    if len(host) > 253 or not all(HOST_LABEL.fullmatch(label) for label in labels):
        raise RedirectError(f"redirect_uri host {host!r} is not a valid host name")
    # Browsers read a host whose last label is a number as an IPv4 address (0x7f.1, 2130706433).
    if re.fullmatch(r"[0-9]+|0x[0-9a-f]*", labels[-1]):
        raise RedirectError(f"redirect_uri host {host!r} is neither a host name nor a dotted IPv4 address")


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _redirect_domains(sync_redirect_domain: str | Iterable[str] | None) -> list[str]:
    if sync_redirect_domain is None:
        return []
    entries = sync_redirect_domain.split(",") if isinstance(sync_redirect_domain, str) else sync_redirect_domain
    domains = []
    for entry in entries:
        domain = _ascii_domain(entry.strip().rstrip("."))
        if domain:
            domains.append(domain)
    return domains


def _ascii_domain(entry: str) -> str:
    """The entry as a browser sends the host: lower case, internationalised labels in xn-- form."""
    if entry.isascii():
        return entry.lower()
    try:
        return dns.name.from_unicode(entry).to_text(omit_final_dot=True).lower()
    except (dns.exception.DNSException, UnicodeError):
        return ""  # matches no host


def _within(host: str, domain: str) -> bool:
    """`host` is `domain` or below it, on a label boundary; IP addresses only match exactly."""
    if host == domain:
        return True
    if host.startswith("[") or _is_ipv4(host):
        return False
    return host.endswith("." + domain)


def redirect_back(redirect_uri: str, params: Mapping[str, str], state: str | None) -> RedirectResponse:
    """The 303 that returns the user to the service provider, with `state` exactly as it came.
    Never cached, and no Referer: the URL may carry a code."""
    if state is not None:
        params = {**params, "state": state}
    return RedirectResponse(redirect_with(redirect_uri, params), 303,
                            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
