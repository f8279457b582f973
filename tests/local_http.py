"""Local HTTP servers for tests: threaded HTTP/1.1 on a free loopback port.

Subclass :class:`LocalServer` with the state a test inspects and give it a handler
derived from :class:`QuietHandler`; use ``with Server().running() as server`` in a
fixture. :func:`local_fetcher` is the file client the tests point at such servers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from tidegate.files.safe_fetch import FetchPolicy, PinnedAsyncClient, SafeFetcher


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no access log on stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return


class LocalServer(ThreadingHTTPServer):
    """A server on ``host`` (127.0.0.1 or ::1), port chosen by the kernel."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1") -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, 0), handler)
        self._thread = threading.Thread(target=self.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = str(self.server_address[0])
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()  # joins the handler threads (block_on_close)
        self._thread.join()

    @contextlib.contextmanager
    def running(self) -> Iterator[Self]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def local_fetcher(allow_private: bool = True, *, connect_timeout: float = 2,
                  read_timeout: float = 5) -> tuple[SafeFetcher, PinnedAsyncClient]:
    """A SafeFetcher (and its client, to close) that may reach loopback servers."""
    client = PinnedAsyncClient()
    policy = FetchPolicy(allow_private_addresses=allow_private,
                         connect_timeout=connect_timeout, read_timeout=read_timeout)
    return SafeFetcher(client, policy), client
