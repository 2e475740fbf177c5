"""Signature check cost: one `verify_query` with the key cached, with a DNS lookup (a fresh
resolver each time, key fetched from a local PowerDNS server), and with several threads
sharing one resolver as Starlette's thread pool would.

    python bench/signature.py
    python bench/signature.py -n 2000 --bits 4096

PowerDNS runs on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote_plus, urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.infra.config import DnsSettings  # noqa: E402
from gateway.web.signature import KeyResolver, verify_query  # noqa: E402
from tests.servers.pdns import pdns_server  # noqa: E402

PARAMS = {"domain": "example.com", "IP": "192.0.2.42", "RANDOMTEXT": "shm:1542108821:Hello World",
          "redirect_uri": "https://service.example/done", "state": "0123456789abcdef"}


def median_microseconds(run, count: int) -> float:
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        run()
        latencies.append(time.perf_counter() - start)
    return statistics.median(latencies) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="checks per measurement")
    parser.add_argument("--bits", type=int, default=2048, help="RSA key size")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="tiny counts: check that the benchmark runs (figures mean nothing)")
    options = parser.parse_args()
    if options.quick:
        options.n, options.threads = 3, 2

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=options.bits)
    der = private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    data = base64.b64encode(der).decode()
    parts = [data[i:i + 200] for i in range(0, len(data), 200)]
    query = urlencode(PARAMS)
    signature = base64.b64encode(private_key.sign(query.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()
    signed = f"{query}&key=_dck1&sig={quote_plus(signature)}"

    with pdns_server() as pdns:
        zone = pdns.new_zone("bench-sig")
        pdns.patch(zone, [{"name": f"_dck1.{zone}", "type": "TXT", "ttl": 3600, "changetype": "REPLACE",
                           "records": [{"content": f'"p={n + 1},a=RS256,d={part}"', "disabled": False}
                                       for n, part in enumerate(parts)]}])
        domain = zone.to_text(omit_final_dot=True)
        settings = DnsSettings(nameservers=("127.0.0.1",), port=pdns.dns_port, timeout=5.0)

        shared = KeyResolver(settings)
        verify_query(signed, domain, shared)
        cached = median_microseconds(lambda: verify_query(signed, domain, shared), options.n)
        uncached = median_microseconds(lambda: verify_query(signed, domain, KeyResolver(settings)),
                                       max(options.n // 10, 10))

        start = time.perf_counter()
        with ThreadPoolExecutor(options.threads) as pool:
            for future in [pool.submit(verify_query, signed, domain, shared) for _ in range(options.n)]:
                future.result()
        per_second = options.n / (time.perf_counter() - start)

    print(f"RSA-{options.bits}, key in {len(parts)} TXT records")
    print(f"verify_query, key cached:        {cached:9.1f} µs (median)")
    print(f"verify_query, key fetched first: {uncached:9.1f} µs (median)")
    print(f"{options.threads} threads, one resolver:      {per_second:9.0f} checks/s")


if __name__ == "__main__":
    main()
