from decimal import Decimal

import pytest

from tidegate.auth.nonces import nonce_as_int, parse_nonce, reported_nonce, sort_key
from tidegate.errors import BadRequestError

VALUES = [
    "0", "1", "2", "10", "10.5", "1684325597.242274", "1684325597242.274",
    "1700000000000", "1795533623683040263", "1795533623683040264",
]


def test_sort_key_orders_like_numbers() -> None:
    keys = [sort_key(parse_nonce(v)) for v in VALUES]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


def test_equal_numbers_have_equal_keys() -> None:
    assert sort_key(parse_nonce("10")) == sort_key(parse_nonce("10.0"))


def test_nanosecond_nonces_are_exact() -> None:
    # 2**53 < these values: a float comparison would call them equal.
    a, b = parse_nonce("1795533623683040263"), parse_nonce("1795533623683040264")
    assert float(a) == float(b)
    assert sort_key(a) < sort_key(b)


@pytest.mark.parametrize("bad", ["abc", "", "-1", "nan", "inf", "1e50"])
def test_bad_nonces(bad: str) -> None:
    with pytest.raises(BadRequestError):
        parse_nonce(bad)


def test_reported_nonce_is_an_integer() -> None:
    assert nonce_as_int(None) == 0
    assert nonce_as_int("1684325597.242274") == 1684325597
    assert nonce_as_int("1795533623683040263") == 1795533623683040263
    assert Decimal(nonce_as_int("7") + 1) > Decimal("7")


def test_get_nonce_reports_one_for_an_unknown_address() -> None:
    assert reported_nonce(None) == 1
    assert reported_nonce("0") == 0
    assert reported_nonce("1684325597.242274") == 1684325597
