"""Errors a consumer can act on: one line each, never a key, a raw address or a traceback."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what an error may name (no path, query, user)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or 'http'}://{host}{port}"


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class ConsumerError(Exception):
    """A failure the user can act on; ``str()`` is the one-line message."""

    exit_code = 1


class UsageProblem(ConsumerError):
    """A bad option value (exit code 2, as click's own usage errors)."""

    exit_code = 2


class ServiceUnreachableError(ConsumerError):
    """A provider or metadata cache did not answer at all."""

    def __init__(self, what: str, url: str, exc: BaseException) -> None:
        super().__init__(f"the {what} at {origin(url)} did not answer ({type(exc).__name__})")


class ProviderRefusedError(ConsumerError):
    """The provider answered with an error."""

    def __init__(self, what: str, status: int, body: bytes, *, who: str = "provider") -> None:
        self.status = status
        self.detail = error_text(body)
        super().__init__(f"the {who} refused {what} (HTTP {status}): {self.detail}")


class ChainError(ConsumerError):
    """The chain RPC failed, or a transaction did."""


def _flatten(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_flatten(v) for v in value)
    return str(value)


def error_text(body: bytes) -> str:
    """The provider's own words from an error body: ``error``, else ``errors``, else text."""
    try:
        data = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return one_line(text) if text else "no details given"
    if isinstance(data, dict):
        if data.get("error"):
            return one_line(_flatten(data["error"]))
        if data.get("errors"):
            return one_line(_flatten(data["errors"]))
    return one_line(_flatten(data))
