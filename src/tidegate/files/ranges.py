"""The client's ``Range`` header, read strictly before it is sent to an origin.

A download passes the client's ``Range`` upstream (the origin serves the slice). The
header is parsed here first, so that an origin never sees what a client wrote
verbatim: only ``bytes=`` range sets of ASCII digits, normalized (no whitespace),
with at most :data:`MAX_RANGES` ranges. What does not parse is ignored, as RFC 9110
§14.2 lets a server do (the whole file is served, 200); a position longer than any
file can be (more than 19 digits) is unsatisfiable (416).
"""

from __future__ import annotations

import re
from typing import Final

from tidegate.errors import TidegateError

__all__ = ["MAX_RANGES", "RangeNotSatisfiableError", "client_range"]

MAX_RANGES: Final = 16
_SPEC: Final = re.compile(r"([0-9]*)-([0-9]*)")
_POSITION_DIGITS: Final = 19  # 10**19 > 2**63: no file is that large


class RangeNotSatisfiableError(TidegateError):
    """The client's ``Range`` cannot be served (416): the client's request is at fault."""

    status = 416
    code = "range_not_satisfiable"


def client_range(header: str | None) -> str | None:
    """The normalized ``Range`` to send upstream, or ``None`` to serve the whole file.

    Raises :class:`RangeNotSatisfiableError` for a position of more than 19 digits.
    """
    if not header or not header.isascii():
        return None
    unit, _, ranges = header.strip().partition("=")
    if unit.strip().lower() != "bytes":
        return None
    specs = [spec.strip() for spec in ranges.split(",")]
    if not 1 <= len(specs) <= MAX_RANGES:
        return None
    normalized = []
    for spec in specs:
        match = _SPEC.fullmatch(spec)
        if match is None:
            return None
        first, last = match.groups()
        if not first and not last:
            return None
        if len(first) > _POSITION_DIGITS or len(last) > _POSITION_DIGITS:
            raise RangeNotSatisfiableError("The requested range is not satisfiable.")
        if first and last and int(last) < int(first):
            return None  # an invalid range set: ignored as a whole
        normalized.append(f"{first}-{last}")
    return "bytes=" + ",".join(normalized)
