"""Nonces: parsed as decimal numbers, strictly increasing, advanced atomically.

Nonces in the wild are small counters, millisecond timestamps, float-second strings
and nanosecond integers (Aquarius, ~1.7e18, above 2**53): they are compared as exact
decimals, never floats. The store compares a fixed-width text key, so the same
comparison runs inside SQLite and PostgreSQL in one atomic statement.
"""

from __future__ import annotations

from decimal import Context, Decimal

from tidegate.errors import UnauthorizedError
from tidegate.stores.base import Store
from tidegate.types import MAX_NONCE, Nonce

__all__ = ["MAX_NONCE", "Nonce", "NonceReusedError", "check_nonce", "consume_nonce",
           "nonce_as_int", "parse_nonce", "reported_nonce", "sort_key"]

_INT_DIGITS = 40
_FRAC_DIGITS = 18
# Enough precision for 40 integer digits and 18 fractional ones, exactly.
_CONTEXT = Context(prec=_INT_DIGITS + _FRAC_DIGITS + 4)


class NonceReusedError(UnauthorizedError):
    code = "nonce_too_low"


def parse_nonce(raw: str) -> Decimal:
    """The value of nonce text (:class:`tidegate.types.Nonce`'s rule); 400 ``invalid_nonce``."""
    return Nonce.parse(raw).value


def sort_key(value: Decimal) -> str:
    """Fixed-width text whose lexicographic order is the numeric order of ``value``."""
    quantized = value.quantize(Decimal(1).scaleb(-_FRAC_DIGITS), context=_CONTEXT)
    integer, _, fraction = f"{quantized:f}".partition(".")
    return f"{int(integer):0{_INT_DIGITS}d}.{fraction.ljust(_FRAC_DIGITS, '0')}"


def reported_nonce(stored: str | None) -> int:
    """What ``GET /nonce`` reports: the integer part of the stored nonce, 1 if none.

    1 for an address never seen, as the reference answers (its GET stores 1; ours
    stores nothing, so the first signed request may use any positive nonce). ocean.js's
    own tests assert a non-zero nonce.
    """
    return 1 if stored is None else nonce_as_int(stored)


def nonce_as_int(stored: str | None) -> int:
    """What ``GET /nonce`` reports: the integer part of the stored nonce, 0 if none.

    Clients send ``reported + 1``, which is strictly greater than any fractional
    stored value with that integer part.
    """
    if stored is None:
        return 0
    if stored.isascii() and stored.isdigit():  # the common case, without a Decimal
        return min(int(stored), MAX_NONCE)
    # Clamped: a row stored before MAX_NONCE existed must not break the JSON answer.
    return min(int(Decimal(stored)), MAX_NONCE)


def _reused(nonce: Nonce, current: str | None) -> NonceReusedError:
    return NonceReusedError(
        f"Invalid nonce: {nonce.text} is not greater than the last used nonce "
        f"({current}). Use GET /api/services/nonce and add 1."
    )


async def check_nonce(store: Store, address: str, nonce: Nonce) -> None:
    """Refuse ``nonce`` unless strictly greater than the stored nonce; store nothing.

    For token-authenticated requests: a token is a bearer credential, so its holder
    must not be able to move the nonce that guards the owner's signed requests.
    """
    current = await store.get_nonce(address)
    if current is not None and sort_key(Decimal(current)) >= sort_key(nonce.value):
        raise _reused(nonce, current)


async def consume_nonce(store: Store, address: str, nonce: Nonce) -> None:
    """Accept ``nonce`` for ``address`` only if strictly greater than the stored nonce."""
    if not await store.advance_nonce(address, sort_key(nonce.value), nonce.text):
        raise _reused(nonce, await store.get_nonce(address))
