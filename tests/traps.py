"""A listener that proves nothing arrived: it counts every connection and byte.

An SSRF test points a hostile URL at a :class:`ByteTrap` and asserts afterwards that
``trap.connections == 0`` and ``trap.bytes == 0``: not only that no request was
parsed, but that no TCP connection was ever opened to it.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

from tests.local_http import LocalServer, QuietHandler


class ByteTrap:
    """A TCP listener on ``host`` (port chosen by the kernel, or ``port``) in a thread.

    Accepts every connection, reads whatever is sent (answering nothing) and counts.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(64)
        self.host = host
        self.port = int(self._listener.getsockname()[1])
        self.connections = 0
        self.bytes = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def untouched(self) -> bool:
        """No connection was accepted and no byte received."""
        with self._lock:
            return self.connections == 0 and self.bytes == 0

    def _serve(self) -> None:
        peers: list[socket.socket] = []
        while not self._stop.is_set():
            readable, _, _ = select.select([self._listener, *peers], [], [], 0.02)
            for sock in readable:
                if sock is self._listener:
                    peer, _ = self._listener.accept()
                    with self._lock:
                        self.connections += 1
                    peers.append(peer)
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if data:
                    with self._lock:
                        self.bytes += len(data)
                else:
                    peers.remove(sock)
                    sock.close()
        for peer in peers:
            peer.close()

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._listener.close()

    @contextmanager
    def running(self) -> Iterator[Self]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


class _OriginHandler(QuietHandler):
    server: Origin

    def do_GET(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))  # keep-alive framing
        self.server.paths.append(self.path)
        if self.path.startswith("/hop/"):
            hops, _, target = self.path.removeprefix("/hop/").partition("?to=")
            left = int(hops)
            location = f"/hop/{left - 1}?to={target}" if left > 0 else target
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    do_POST = do_GET


class Origin(LocalServer):
    """A file origin (or gateway) that records each request's path and answers ``body``,
    or, for ``/hop/N?to=URL``, redirects N more times through itself and then to ``URL``."""

    def __init__(self, host: str = "127.0.0.1", body: bytes = b"ok") -> None:
        super().__init__(_OriginHandler, host)
        self.paths: list[str] = []
        self.body = body
