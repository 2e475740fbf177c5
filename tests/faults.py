"""Faults the tests inject between the gateway and a real server.

`LossyProxy` is a loopback TCP proxy: it pipes every connection to the server, and when
told to, it forwards the next write whole, waits for the server's answer (so the server
has committed the write), throws the answer away and cuts the connection: the client
cannot know whether its write was made.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

WriteMatcher = Callable[[bytes], bool]


def http_method(method: str, path_part: str = "") -> WriteMatcher:
    """An HTTP request with this method (and `path_part` in its request line)."""
    def matches(data: bytes) -> bool:
        line = data.split(b"\r\n", 1)[0]
        return line.startswith(method.encode() + b" ") and path_part.encode() in line
    return matches


def dns_update(data: bytes) -> bool:
    """A length-prefixed DNS message (TCP) whose opcode is UPDATE."""
    return len(data) >= 5 and (data[4] >> 3) & 0x0F == 5


class LossyProxy:
    def __init__(self, target_port: int, is_write: WriteMatcher, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.is_write = is_write
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._to_lose = 0
        self._then: Callable[[], object] | None = None
        self.lost = 0  # answers thrown away so far
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def lose_next_answers(self, count: int = 1, then: Callable[[], object] | None = None) -> None:
        """Lose the answers to the next `count` writes; call `then` after each is lost."""
        with self._lock:
            self._to_lose, self._then = count, then

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.target, timeout=30)
        except OSError:
            client.close()
            return
        losing = threading.Event()
        threading.Thread(target=self._answers, args=(server, client, losing), daemon=True).start()
        try:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                with self._lock:
                    if self._to_lose and self.is_write(data):
                        self._to_lose -= 1
                        losing.set()
                server.sendall(data)
        except OSError:
            pass
        finally:
            _shut(server)

    def _answers(self, server: socket.socket, client: socket.socket, losing: threading.Event) -> None:
        try:
            while True:
                data = server.recv(65536)
                if not data:
                    break
                if losing.is_set():
                    # The server has answered, so it has committed: cut the client off unanswered.
                    with self._lock:
                        self.lost += 1
                        then = self._then
                    _shut(client)
                    _shut(server)
                    if then is not None:
                        then()
                    return
                client.sendall(data)
        except OSError:
            pass
        finally:
            _shut(client)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
