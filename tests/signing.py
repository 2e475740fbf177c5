"""Service-provider signing keys for tests: signatures as the reference clients make them, and
public keys published as TXT records on the test PowerDNS server."""

from __future__ import annotations

import base64
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from gateway.infra.config import DnsSettings
from gateway.web.signature import KeyResolver
from tests.servers.pdns import PdnsServer

KEY_LABEL = "_dck1"


def public_key_base64(key: RSAPrivateKey | RSAPublicKey) -> str:
    public = key.public_key() if isinstance(key, RSAPrivateKey) else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def sign(key: RSAPrivateKey, message: str) -> str:
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def txt_content(*strings: str) -> str:
    return " ".join(f'"{s}"' for s in strings)


def split_parts(data: str, count: int) -> list[str]:
    size = -(-len(data) // count)
    return [f"p={n + 1},a=RS256,d={data[n * size:(n + 1) * size]}" for n in range(count)]


class Publisher:
    """Sets the TXT records of one key name in a zone of its own on the PowerDNS server."""

    def __init__(self, pdns: PdnsServer) -> None:
        self.pdns = pdns
        self.zone = pdns.new_zone("sig")
        self.domain = self.zone.to_text(omit_final_dot=True)

    def publish(self, *records: str, label: str = KEY_LABEL, ttl: int = 300) -> None:
        self.pdns.patch(self.zone, [{
            "name": f"{label}.{self.zone}", "type": "TXT", "ttl": ttl, "changetype": "REPLACE",
            "records": [{"content": content, "disabled": False} for content in records]}])

    def publish_key(self, key: RSAPrivateKey, label: str = KEY_LABEL, parts: int = 2, ttl: int = 300) -> None:
        self.publish(*(txt_content(part) for part in split_parts(public_key_base64(key), parts)),
                     label=label, ttl=ttl)

    def delete(self, label: str = KEY_LABEL) -> None:
        self.pdns.patch(self.zone, [{"name": f"{label}.{self.zone}", "type": "TXT", "changetype": "DELETE"}])

    def resolver(self, clock: Callable[[], float] | None = None) -> KeyResolver:
        settings = DnsSettings(nameservers=("127.0.0.1",), port=self.pdns.dns_port, timeout=5.0)
        return KeyResolver(settings) if clock is None else KeyResolver(settings, clock=clock)
