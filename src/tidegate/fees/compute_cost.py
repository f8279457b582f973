"""What a paid compute job costs: C2D v2 arithmetic, exact, no network.

Ocean Node prices a job per resource and per started minute::

    cost = Σ price(resource) × amount(resource) × ceil(seconds / 60)

in fee-token units (``price`` is per unit of the resource per minute; ``amount`` is
how many units the job asked for: CPUs, GB of RAM or disk, GPUs). A resource the
environment gives no price for costs nothing. The seconds are:

- at **lock** (job start): the job's requested ``maxJobDuration``, raised to the
  environment's ``minJobDuration``;
- at **claim** (job end): the seconds it used (the algorithm's run plus its image
  build), clamped to ``[minJobDuration, maxJobDuration]`` -- a job never pays more
  than was locked for it, and never less than the environment's minimum.

Amounts on chain are integers in the token's base units. Ocean Node computes in
binary floating point and rounds with ``toFixed(decimals)``; here every step is a
``Decimal`` (prices and amounts are read from their decimal text), and the result is
rounded half-up to the token's decimals once, at the end. The two agree except for
Ocean Node's float noise (about 1e-16 of the amount).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

# Enough significant digits that no product or scaling here is ever rounded
# (uint256 has 78 digits).
_PRECISION = 100


@dataclass(frozen=True)
class ResourceRequest:
    """``amount`` units of resource ``id`` (``cpu``, ``ram``, ``disk``, ``gpu``…)."""

    id: str
    amount: Decimal

    def __post_init__(self) -> None:
        if not self.amount.is_finite() or self.amount < 0:
            raise ValueError(f"resource {self.id!r}: amount must be a finite number >= 0")


@dataclass(frozen=True)
class Pricing:
    """One environment's prices for one fee token on one chain.

    ``prices`` maps a resource id to its price per unit per minute (token units);
    ``min_job_duration`` is the fewest seconds a job pays for.
    """

    chain_id: int
    token: str
    prices: Mapping[str, Decimal]
    min_job_duration: int = 0

    def __post_init__(self) -> None:
        for resource, price in self.prices.items():
            if not price.is_finite() or price < 0:
                raise ValueError(f"price of {resource!r} must be a finite number >= 0")
        if self.min_job_duration < 0:
            raise ValueError("min_job_duration must be >= 0")


def decimal_of(value: object, what: str) -> Decimal:
    """A JSON number or numeric string as an exact ``Decimal`` (via its text for floats)."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number")
    try:
        result = Decimal(str(value)) if isinstance(value, float | int | str) else None
    except InvalidOperation:
        result = None
    if result is None or not result.is_finite():
        raise ValueError(f"{what} must be a number")
    return result


def pricing_from_fees(fees: Mapping[str, Any], chain_id: int, token: str,
                      min_job_duration: int = 0) -> Pricing | None:
    """An environment's prices for ``token`` on ``chain_id`` from its C2D v2 ``fees``.

    ``fees`` is Ocean Node's shape, ``{"<chainId>": [{"feeToken": "0x..", "prices":
    [{"id": "cpu", "price": 1}, ...]}, ...]}``; None when the environment takes no
    payment in that token on that chain. Token addresses compare case-insensitively.
    Raises ``ValueError`` for a malformed price.
    """
    for fee in fees.get(str(chain_id)) or ():
        if str(fee.get("feeToken", "")).lower() == token.lower():
            prices = {str(p["id"]): decimal_of(p.get("price"), f"price of {p['id']}")
                      for p in fee.get("prices") or ()}
            return Pricing(chain_id, str(fee["feeToken"]), prices, min_job_duration)
    return None


def resources_of(requested: Iterable[Mapping[str, Any]]) -> tuple[ResourceRequest, ...]:
    """A job's ``resources`` (``[{"id": "cpu", "amount": 2}, ...]``) as requests."""
    return tuple(ResourceRequest(str(r["id"]), decimal_of(r.get("amount"), f"amount of {r['id']}"))
                 for r in requested)


def billable_minutes(seconds: float) -> int:
    """Started minutes: ``ceil(seconds / 60)`` (0 for 0 seconds)."""
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError("seconds must be a finite number >= 0")
    return math.ceil(Decimal(str(seconds)) / 60)


def cost(pricing: Pricing, resources: Iterable[ResourceRequest], seconds: float) -> Decimal:
    """Σ price × amount × ceil(seconds / 60), in token units (exact)."""
    minutes = billable_minutes(seconds)
    with localcontext(prec=_PRECISION):
        return sum((pricing.prices.get(r.id, Decimal(0)) * r.amount * minutes
                    for r in resources), Decimal(0))


def lock_seconds(pricing: Pricing, max_job_duration: float) -> float:
    """The seconds a job is charged for when its funds are locked."""
    return max(float(max_job_duration), float(pricing.min_job_duration))


def claim_seconds(pricing: Pricing, used_seconds: float, max_job_duration: float) -> float:
    """The seconds a finished job is charged for: clamped to [min, max] duration."""
    used = min(max(float(used_seconds), 0.0), float(max_job_duration))
    return max(used, float(pricing.min_job_duration))


def to_base_units(amount: Decimal, decimals: int) -> int:
    """``amount`` token units as an integer of base units (half-up at ``decimals``)."""
    if decimals < 0:
        raise ValueError("decimals must be >= 0")
    with localcontext(prec=_PRECISION):
        return int((amount * (Decimal(10) ** decimals)).quantize(
            Decimal(1), rounding=ROUND_HALF_UP))


def from_base_units(amount: int, decimals: int) -> Decimal:
    """Base units as token units (exact)."""
    with localcontext(prec=_PRECISION):
        return Decimal(amount) / (Decimal(10) ** decimals)
