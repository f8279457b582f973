"""Which DDO layout a document has, and where its fields live.

ocean.js 8 publishes DDOs through ``@oceanprotocol/ddo-js`` (0.2.0 knows 4.1.0, 4.3.0,
4.5.0, 4.7.0 and 5.0.0; its ``DDOManager.getDDOClass`` picks the class by
``version`` and the DID's method). Tidegate serves three layouts:

- :attr:`Layout.CLASSIC`: 4.x below 4.7.0 (and anything that is not 5.x), the
  versions Aquarius v4 indexed and ocean.py 3.1.2 / ocean.js 3.x publish. Served
  exactly as before: the document plus Aquarius' top-level ``nft``, ``event``,
  ``purgatory``, ``datatokens``, ``stats``. Nothing of Ocean Node's is added, so
  every byte a classic client reads stays as it was.
- :attr:`Layout.V4_INDEXED`: 4.7.0 and later 4.x, which only ddo-js knows. The same
  document layout, served with Aquarius' fields (a classic reader still finds them)
  *and* Ocean Node's ``indexedMetadata`` (``nft``, ``event`` with ``txid``,
  ``purgatory``, ``stats`` as a list), which ocean.js 8 reads.
- :attr:`Layout.V5`: 5.x, a verifiable credential: ``id`` is ``did:ope:…``, the asset's
  fields are in ``credentialSubject``. Served as Ocean Node serves it:
  ``indexedMetadata`` at the top, ``credentialSubject.datatokens``.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

V4_DID_PREFIX: Final = "did:op:"
V5_DID_PREFIX: Final = "did:ope:"
FIRST_INDEXED_V4: Final = (4, 7, 0)
"""The first 4.x version served with ``indexedMetadata`` (new in ddo-js; no classic
client publishes it)."""

_VERSION: Final = re.compile(r"(\d+)\.(\d+)\.(\d+)")


class Layout(enum.Enum):
    CLASSIC = "classic"
    V4_INDEXED = "v4-indexed"
    V5 = "v5"

    @property
    def indexed_metadata(self) -> bool:
        """Whether the indexer writes Ocean Node's ``indexedMetadata``."""
        return self is not Layout.CLASSIC

    @property
    def aquarius_fields(self) -> bool:
        """Whether the indexer writes Aquarius v4's top-level fields."""
        return self is not Layout.V5

    @property
    def did_prefix(self) -> str:
        return V5_DID_PREFIX if self is Layout.V5 else V4_DID_PREFIX


def layout(ddo: Mapping[str, Any]) -> Layout:
    """The layout of a DDO, from its ``version`` alone (as ddo-js chooses its class)."""
    version = ddo.get("version")
    if not isinstance(version, str):
        return Layout.CLASSIC
    if version.startswith("5"):
        return Layout.V5
    match = _VERSION.match(version)
    if match and version.startswith("4") and tuple(
            int(g) for g in match.groups()) >= FIRST_INDEXED_V4:
        return Layout.V4_INDEXED
    return Layout.CLASSIC


def subject(ddo: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object that holds ``chainId``, ``nftAddress``, ``metadata``, ``services``,
    ``credentials`` and ``datatokens``: ``credentialSubject`` for 5.x, else the DDO."""
    if layout(ddo) is Layout.V5:
        inner = ddo.get("credentialSubject")
        return inner if isinstance(inner, Mapping) else {}
    return ddo


def _js_number(value: float) -> str:
    """ECMAScript's ``Number::toString`` for a finite float: the shortest digits that
    read back (Python's ``repr`` finds the same), placed by ECMAScript's rules
    (exponent form below 1e-6 and from 1e21, written ``1e+21``, ``1.5e-7``)."""
    if value == 0:
        return "0"
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    digits = stripped
    k = len(digits)
    n = k + exponent  # the decimal point sits after the n-th digit
    prefix = "-" if value < 0 else ""
    if k <= n <= 21:
        return prefix + digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{prefix}{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return f"{prefix}0.{'0' * -n}{digits}"
    e = n - 1
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{prefix}{head}e{'+' if e > 0 else '-'}{abs(e)}"


_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                   "\r": "\\r", "\t": "\\t"}


def _js_string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or 0xD800 <= ord(char) <= 0xDFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def js_stringify(value: Any) -> str:
    """``JSON.stringify(value)`` as JavaScript writes it, for a value parsed from JSON.

    ocean.js 8 encrypts ``JSON.stringify(ddo)`` and Ocean Node's ``ddo/validate`` answers
    the sha256 of ``JSON.stringify`` of the DDO it parsed; ``setMetaData`` stores that
    hash, which the indexer then checks against the decrypted bytes. So the hash must
    be of exactly JavaScript's text: keys in their order, no spaces, numbers as
    JavaScript prints them, non-ASCII kept.
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _js_number(value) if math.isfinite(value) else "null"
    if isinstance(value, str):
        return _js_string(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(js_stringify(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(_js_string(str(k)) + ":" + js_stringify(v)
                              for k, v in value.items()) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")
