"""A loopback TLS front for a plain-HTTP server, as a DNS host's load balancer would be:
clients speak https to 127.0.0.1:port, the bytes go on unchanged to the backend port.

`tls_proxy(backend_port)` makes a self-signed certificate for 127.0.0.1 (and localhost)
with `cryptography`, listens on a free port and yields (port, CA file path). Every
connection gets two threads copying bytes, enough for a test's handful of clients.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.servers.common import free_port


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """(certificate, key) PEM files for 127.0.0.1, ::1 and localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.IPAddress(ipaddress.ip_address("::1")),
            x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "proxy.crt", directory / "proxy.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def _serve_one(accepted: socket.socket, context: ssl.SSLContext, backend_port: int) -> None:
    try:
        client = context.wrap_socket(accepted, server_side=True)
    except (OSError, ssl.SSLError):
        accepted.close()
        return
    try:
        backend = socket.create_connection(("127.0.0.1", backend_port), timeout=30)
    except OSError:
        client.close()
        return
    backend.settimeout(None)
    upstream = threading.Thread(target=_pipe, args=(client, backend), daemon=True)
    upstream.start()
    _pipe(backend, client)
    upstream.join(timeout=30)
    for end in (client, backend):
        end.close()


@contextmanager
def tls_proxy(backend_port: int) -> Iterator[tuple[int, Path]]:
    directory = Path(tempfile.mkdtemp(prefix="dcgw-tls-"))
    cert_path, key_path = self_signed_certificate(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    port = free_port()
    listener = socket.create_server(("127.0.0.1", port))
    stopping = threading.Event()

    def accept_loop() -> None:
        while not stopping.is_set():
            try:
                accepted, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=_serve_one, args=(accepted, context, backend_port), daemon=True).start()

    acceptor = threading.Thread(target=accept_loop, daemon=True)
    acceptor.start()
    try:
        yield port, cert_path
    finally:
        stopping.set()
        with suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
        acceptor.join(timeout=10)
