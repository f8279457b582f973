"""Logging set-up: one JSON line per record on stderr.

A record that carries an exception (``logger.exception``, ``exc_info=``) gets, as
separate fields: ``exc_type`` (qualified class name), ``exc_message`` (scrubbed, see
:func:`scrub`), ``traceback`` (frames, innermost last, as ``{"file", "line",
"function"}``: never local values, source text or arguments) and, for a chained
exception, ``exc_causes`` (type and scrubbed message of each ``__cause__`` /
``__context__``, outermost first).
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import time
import traceback
from types import TracebackType
from typing import Any, Final

import orjson

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "scrub"]

#: Most frames kept per traceback (the innermost: where it failed).
MAX_FRAMES: Final = 40
#: Longest exception message kept, after scrubbing.
MAX_MESSAGE: Final = 500
_MAX_CAUSES: Final = 5

_SCRUBBERS: Final = (
    # Any URL: the scheme stays; host, path, userinfo and query may all be secrets
    # (file URLs are the publisher's, RPC URLs carry API keys in the path).
    (re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]{1,15})://[^\s'\"<>]+"), r"\1://<redacted>"),
    # A query string outside a URL: "?a=1&b=2".
    (re.compile(r"\?[^\s'\"<>=?]+=[^\s'\"<>]*"), "?<redacted>"),
    # "Bearer <token>", "Basic <credentials>" (before the names: "Authorization: Bearer").
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+"), r"\1 <redacted>"),
    # name=value / name: value for credential-like names.
    (re.compile(
        r"(?i)\b([\w-]*(?:password|passwd|secret|token|api[_-]?key|apikey|access[_-]?key"
        r"|private[_-]?key|signature|authorization|cookie|credential)s?[\w-]*)"
        r"(['\"]?\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"),
     r"\1\2<redacted>"),
    # JSON Web Tokens (auth tokens).
    (re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*"), "<jwt redacted>"),
    # Private keys, hashes and signatures: 64 or more hex digits, with or without 0x.
    (re.compile(r"\b(?:0x)?[0-9A-Fa-f]{64,}\b"), "<hex redacted>"),
)


def scrub(text: str) -> str:
    """``text`` without URLs (but their scheme), query strings, long hex, tokens or
    credential values; cut to :data:`MAX_MESSAGE` characters."""
    for pattern, replacement in _SCRUBBERS:
        text = pattern.sub(replacement, text)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE] + "…"


@functools.lru_cache(maxsize=1024)
def _short_path(filename: str) -> str:
    """``filename`` relative to the import root it was loaded from (``aiohttp/client.py``)."""
    best = ""
    for root in sys.path:
        if root and filename.startswith(root.rstrip("/") + "/") and len(root) > len(best):
            best = root.rstrip("/")
    return filename[len(best) + 1:] if best else filename


def _frames(tb: TracebackType | None) -> list[dict[str, Any]]:
    frames = traceback.extract_tb(tb)[-MAX_FRAMES:]
    return [{"file": _short_path(frame.filename), "line": frame.lineno,
             "function": frame.name} for frame in frames]


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else \
        f"{cls.__module__}.{cls.__qualname__}"


def exception_fields(exc: BaseException) -> dict[str, Any]:
    """The scrubbed fields of an exception: type, message, frames, causes."""
    fields: dict[str, Any] = {
        "exc_type": _type_name(exc),
        "exc_message": scrub(str(exc)),
        "traceback": _frames(exc.__traceback__),
    }
    causes: list[dict[str, str]] = []
    seen = {id(exc)}
    inner = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    while inner is not None and id(inner) not in seen and len(causes) < _MAX_CAUSES:
        seen.add(id(inner))
        causes.append({"type": _type_name(inner), "message": scrub(str(inner))})
        inner = inner.__cause__ or (None if inner.__suppress_context__ else inner.__context__)
    if causes:
        fields["exc_causes"] = causes
    return fields


FIELDS_EXTRA = "tidegate_fields"
"""``extra={FIELDS_EXTRA: {...}}``: fields the JSON line carries at its top level (the
access log's method, route, status ...); the text format appends them as key=value."""
EXCEPTION_EXTRA = "tidegate_exception"
"""``extra={EXCEPTION_EXTRA: exc}``: the JSON line carries the scrubbed exception."""


class JsonFormatter(logging.Formatter):
    """Render records as compact JSON.

    The message is taken as written (free of secrets by policy: log types, codes and
    counts, never request data); exception fields are scrubbed here, because a
    third-party exception's text can hold a URL or a key.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, FIELDS_EXTRA, None)
        if isinstance(fields, dict):
            line.update(fields)
        exc = record.exc_info[1] if record.exc_info else None
        attached = getattr(record, EXCEPTION_EXTRA, None)
        if exc is None and isinstance(attached, BaseException):
            # Passed as an extra, not exc_info: handlers other than this one (pytest's,
            # a library's) would print exc_info's text unscrubbed.
            exc = attached
        if exc is not None:
            try:
                line.update(exception_fields(exc))
            except Exception:  # a broken __str__ must not lose the log line
                line["exc_type"] = type(exc).__name__
        return orjson.dumps(line).decode()


class TextFormatter(logging.Formatter):
    """For humans (``LOG_FORMAT=text``): time, level, logger, message, then the fields as
    key=value; exceptions as their scrubbed type and message."""

    def format(self, record: logging.LogRecord) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(record.created))
        text = f"{when} {record.levelname:<7} {record.name}: {record.getMessage()}"
        fields = getattr(record, FIELDS_EXTRA, None)
        if isinstance(fields, dict):
            text += "".join(f" {k}={v}" for k, v in fields.items())
        exc = record.exc_info[1] if record.exc_info else getattr(record, EXCEPTION_EXTRA, None)
        if isinstance(exc, BaseException):
            text += f" [{_type_name(exc)}: {scrub(str(exc))}]"
        return text


LOG_FORMATS = ("json", "text")


def configure_logging(level: str, log_format: str = "json") -> None:
    """Send every logger to stderr, one JSON line per record (or text), at ``level``.

    Called in every process that logs: the CLI, and each ``serve`` worker (uvicorn
    starts workers as new processes, which inherit no logging configuration).
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TextFormatter() if log_format == "text" else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's loggers have handlers of their own when it configured them: use ours.
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers[:] = []
        uvicorn_logger.propagate = True
    # Never uvicorn's access log: its request line carries the query string (signatures,
    # tokens). Tidegate writes its own (tidegate.access), without it.
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers[:] = []
    uvicorn_access.propagate = False
    uvicorn_access.disabled = True
    # Libraries that would log URLs (RPC endpoints, origins) stay at WARNING.
    for noisy in ("httpx", "httpcore", "web3", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
