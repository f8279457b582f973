"""C2D v2 cost arithmetic: vectors worked out by hand from Ocean Node's formula."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tidegate.fees import compute_cost
from tidegate.fees.compute_cost import Pricing, ResourceRequest

OCEAN = "0x" + "11" * 20


def pricing(min_job_duration: int = 0, **prices: str) -> Pricing:
    return Pricing(8996, OCEAN, {k: Decimal(v) for k, v in prices.items()}, min_job_duration)


def request(**amounts: str) -> list[ResourceRequest]:
    return [ResourceRequest(k, Decimal(v)) for k, v in amounts.items()]


@pytest.mark.parametrize(("seconds", "minutes"), [
    (0, 0), (0.001, 1), (1, 1), (59.999, 1), (60, 1), (60.0001, 2), (61, 2), (3600, 60),
    (3600.5, 61),
])
def test_billable_minutes_are_started_minutes(seconds: float, minutes: int) -> None:
    assert compute_cost.billable_minutes(seconds) == minutes


@pytest.mark.parametrize("bad", [-1, float("inf"), float("nan")])
def test_billable_minutes_refuse_nonsense(bad: float) -> None:
    with pytest.raises(ValueError):
        compute_cost.billable_minutes(bad)


@pytest.mark.parametrize(("prices", "amounts", "seconds", "expected"), [
    # 2 CPUs at 1/min + 4 GB RAM at 0.5/min = 4/min, for 5 minutes.
    ({"cpu": "1", "ram": "0.5"}, {"cpu": "2", "ram": "4"}, 300, "20"),
    # 61 s is two started minutes.
    ({"cpu": "1", "ram": "0.5"}, {"cpu": "2", "ram": "4"}, 61, "8"),
    # A resource without a price is free; a price without a request costs nothing.
    ({"cpu": "0.1", "gpu": "3"}, {"cpu": "3", "disk": "100"}, 60, "0.3"),
    # Binary floats would give 0.30000000000000004 here; decimals are exact.
    ({"cpu": "0.1"}, {"cpu": "3"}, 1, "0.3"),
    # Fractional amounts, 18-decimal prices.
    ({"ram": "0.000000000000000001"}, {"ram": "1.5"}, 120, "0.000000000000000003"),
    ({}, {"cpu": "8"}, 600, "0"),
    ({"cpu": "2"}, {"cpu": "1"}, 0, "0"),
])
def test_cost_is_price_times_amount_times_started_minutes(
        prices: dict[str, str], amounts: dict[str, str], seconds: float, expected: str) -> None:
    assert compute_cost.cost(pricing(**prices), request(**amounts), seconds) == Decimal(expected)


def test_lock_and_claim_seconds_follow_the_job_limits() -> None:
    p = pricing(min_job_duration=120, cpu="1")
    assert compute_cost.lock_seconds(p, 60) == 120  # raised to the environment minimum
    assert compute_cost.lock_seconds(p, 600) == 600
    assert compute_cost.claim_seconds(p, 30, 600) == 120  # never below the minimum
    assert compute_cost.claim_seconds(p, 301.5, 600) == 301.5
    assert compute_cost.claim_seconds(p, 9999, 600) == 600  # never above the maximum
    assert compute_cost.claim_seconds(p, -5, 600) == 120
    free_minimum = pricing(cpu="1")
    assert compute_cost.claim_seconds(free_minimum, 0, 600) == 0


@pytest.mark.parametrize(("amount", "decimals", "units"), [
    ("20", 18, 20 * 10**18),
    ("0.3", 18, 3 * 10**17),
    ("1.5", 6, 1_500_000),
    ("0.0000005", 6, 1),  # half-up
    ("0.00000049", 6, 0),
    ("123456789.123456789123456789", 18, 123456789123456789123456789),
    ("0", 18, 0),
    ("7", 0, 7),
])
def test_to_base_units_rounds_half_up_at_the_token_decimals(
        amount: str, decimals: int, units: int) -> None:
    assert compute_cost.to_base_units(Decimal(amount), decimals) == units
    if compute_cost.from_base_units(units, decimals) == Decimal(amount):
        assert compute_cost.to_base_units(compute_cost.from_base_units(units, decimals),
                                          decimals) == units


def test_huge_amounts_are_not_rounded() -> None:
    # 1e9 tokens per minute for 10^6 minutes at 18 decimals: 34 digits, exact.
    p = pricing(cpu="1000000000.000000000000000001")
    total = compute_cost.cost(p, request(cpu="1"), 60 * 10**6)
    assert compute_cost.to_base_units(total, 18) == 10**33 + 10**6


@pytest.mark.parametrize(("value", "expected"), [
    (1, Decimal(1)), (0.1, Decimal("0.1")), ("2.50", Decimal("2.50")), (10**20, Decimal(10**20)),
])
def test_decimal_of_reads_json_numbers_through_their_text(value: object, expected: Decimal) -> None:
    assert compute_cost.decimal_of(value, "x") == expected


@pytest.mark.parametrize("bad", [True, None, "abc", float("nan"), float("inf"), [1]])
def test_decimal_of_refuses_what_is_not_a_number(bad: object) -> None:
    with pytest.raises(ValueError):
        compute_cost.decimal_of(bad, "x")


def test_negative_prices_and_amounts_are_refused() -> None:
    with pytest.raises(ValueError):
        pricing(cpu="-1")
    with pytest.raises(ValueError):
        ResourceRequest("cpu", Decimal(-1))
    with pytest.raises(ValueError):
        Pricing(1, OCEAN, {}, -1)


def test_pricing_is_read_from_an_environments_v2_fees() -> None:
    fees = {"8996": [
        {"feeToken": "0x" + "22" * 20, "prices": [{"id": "cpu", "price": 9}]},
        {"feeToken": OCEAN.upper().replace("0X", "0x"),
         "prices": [{"id": "cpu", "price": 1}, {"id": "ram", "price": 0.1}]},
    ], "1": [{"feeToken": OCEAN, "prices": [{"id": "cpu", "price": 5}]}]}
    found = compute_cost.pricing_from_fees(fees, 8996, OCEAN, min_job_duration=60)
    assert found is not None
    assert (found.chain_id, found.min_job_duration) == (8996, 60)
    assert found.prices == {"cpu": Decimal(1), "ram": Decimal("0.1")}
    assert compute_cost.pricing_from_fees(fees, 137, OCEAN) is None
    assert compute_cost.pricing_from_fees(fees, 8996, "0x" + "33" * 20) is None
    resources = compute_cost.resources_of([{"id": "cpu", "amount": 2},
                                           {"id": "ram", "amount": 3}])
    assert compute_cost.cost(found, resources, 90) == Decimal("4.6")  # (2 + 0.3) x 2 min
    with pytest.raises(ValueError):
        compute_cost.pricing_from_fees(
            {"8996": [{"feeToken": OCEAN, "prices": [{"id": "cpu", "price": "x"}]}]}, 8996, OCEAN)
    with pytest.raises(ValueError):
        compute_cost.resources_of([{"id": "cpu", "amount": -1}])
