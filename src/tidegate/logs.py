"""Logging set-up: one JSON line per record on stderr."""

from __future__ import annotations

import logging
import sys

import orjson


class JsonFormatter(logging.Formatter):
    """Render records as compact JSON (message already free of secrets by policy)."""

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps({
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }).decode()


def configure_logging(level: str) -> None:
    """Send every logger to stderr as JSON at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries that would log URLs (RPC endpoints, origins) stay at WARNING.
    for noisy in ("httpx", "httpcore", "web3", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
