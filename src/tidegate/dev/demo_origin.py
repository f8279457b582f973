"""The demo asset's origin for ``tidegate dev``: static files on loopback, with ranges."""

from __future__ import annotations

import functools
import http.server
import io
import re
import sys
import threading
from pathlib import Path
from typing import Any

_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single-range support (like any real origin)."""

    def log_message(self, format: str, *args: object) -> None:
        return

    def send_head(self) -> Any:
        spec = self.headers.get("Range")
        path = Path(self.translate_path(self.path))
        if not spec or not path.is_file():
            return super().send_head()
        size = path.stat().st_size
        match = _RANGE.match(spec.strip())
        start = end = -1
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = int(match.group(2)) if match.group(2) else size - 1
            else:
                start, end = max(size - int(match.group(2)), 0), size - 1
        if start < 0 or start >= size or end < start:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        end = min(end, size - 1)
        with path.open("rb") as handle:
            handle.seek(start)
            body = handle.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(body)


class _OriginServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-download (a range probe, a cancelled fetch) is normal.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve_directory(
    directory: Path, port: int = 0
) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``directory`` on loopback (port 0: a free one): the demo asset's origin."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = _OriginServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="tidegate-demo-files").start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
