"""The shared vocabulary: one strict rule per value, the same inside and outside models."""

from __future__ import annotations

import random
import re
from decimal import Decimal
from typing import Any

import pydantic
import pytest

from tidegate.errors import BadRequestError, ValidationError
from tidegate.types import (
    MAX_NONCE,
    NONCE_PATTERN,
    TIMESTAMP_MAX,
    AddressText,
    ChainIdParam,
    ChecksumAddress,
    Did,
    FileIndex,
    Nonce,
    Numeral,
    Userdata,
    ValidUntil,
    digits_pattern,
    digits_value,
    parse_field,
    userdata_object,
)

ADDRESS = "0x" + "ab" * 20
CHECKSUMMED = "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"  # EIP-55 of ADDRESS
# Text that str.isdigit() or int() accepts, but a request number must not be.
NOT_DIGITS = ["²", "١٢", "٣", "1²", " 1", "1 ", "+1", "-1", "1_000", "1e3", "0x10", "1.0",
              "", "NaN", "Infinity", "9" * 21, "9" * 5000]


@pytest.mark.parametrize("raw", [*NOT_DIGITS, True, False, 1.5, -1.0, float("nan"),
                                 float("inf"), None, [], {}])
def test_digits_value_refuses(raw: object) -> None:
    assert digits_value(raw) is None


def test_digits_value_accepts_json_integers_and_ascii_digits() -> None:
    assert [digits_value(v) for v in (0, 7, 2**70, "0", "007", "9" * 20)] == [
        0, 7, 2**70, 0, 7, int("9" * 20)]


def test_an_integral_json_number_is_the_integer_json_schema_says_it_is() -> None:
    assert [digits_value(v) for v in (0.0, 7.0, -0.0, 1e3)] == [0, 7, 0, 1000]
    assert Nonce.parse(5.0) == Nonce("5", Decimal(5))


@pytest.mark.parametrize(("minimum", "maximum"), [
    (0, 9), (1, 9), (0, 10), (0, 255), (1, 1000), (0, 2**31 - 1), (1, 2**63 - 1),
    (1, 253_402_300_799)])
def test_digits_pattern_bounds_the_value_exactly(minimum: int, maximum: int) -> None:
    pattern = re.compile(digits_pattern(minimum, maximum))
    values = {0, 1, 9, 10, maximum - 1, maximum, maximum + 1, maximum * 10, maximum // 10,
              10 ** len(str(maximum)), 10 ** (len(str(maximum)) - 1)}
    rng = random.Random(16)
    values |= {rng.randrange(maximum * 3) for _ in range(500)}
    for value in values:
        for text in (str(value), "0" + str(value), "00" + str(value)):
            assert bool(pattern.fullmatch(text)) == (minimum <= value <= maximum), text
    assert pattern.fullmatch("") is None and pattern.fullmatch("1a") is None


def test_the_nonce_pattern_is_the_nonce_rule() -> None:
    pattern = re.compile(NONCE_PATTERN)
    texts = [str(MAX_NONCE), f"{MAX_NONCE}.0", f"{MAX_NONCE}.01", str(MAX_NONCE + 1),
             f"{MAX_NONCE - 1}.9", "0" * 19, "0" * 20, "1.5", "01.50", "9" * 18, "9" * 19,
             "0" + str(MAX_NONCE), "1.", ".5", "1.0000000000000000001"]
    rng = random.Random(16)
    texts += [str(rng.randrange(MAX_NONCE * 2)) + rng.choice(["", ".0", ".123"])
              for _ in range(500)]
    for text in texts:
        try:
            Nonce.parse(text)
            accepted = True
        except BadRequestError:
            accepted = False
        assert bool(pattern.fullmatch(text)) == accepted, text


class Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)

    index: FileIndex | None = None
    chain: ChainIdParam | None = None
    nonce: Nonce | None = None
    address: ChecksumAddress | None = None
    signer: AddressText | None = None
    did: Did | None = None
    userdata: Userdata = None
    valid_until: ValidUntil | None = None


def codes(**data: Any) -> list[str]:
    try:
        Model.model_validate(data)
    except pydantic.ValidationError as exc:
        return [e["ctx"]["code"] for e in exc.errors()]
    return []


@pytest.mark.parametrize("raw", [*NOT_DIGITS, -1, 2**31, 2**256, 1.5, True, {}, []])
def test_file_index_is_strict(raw: object) -> None:
    assert codes(index=raw) == ["invalid_file_index"]


def test_file_index_bounds() -> None:
    assert Model(index=0).index == 0
    assert Model(index="2147483647").index == 2**31 - 1  # type: ignore[arg-type]


def test_chain_id_keeps_its_text() -> None:
    assert Model(chain="8996").chain == Numeral("8996", 8996)  # type: ignore[arg-type]
    assert Model(chain=8996).chain == Numeral("8996", 8996)  # type: ignore[arg-type]
    for raw in ["0", 0, 2**63, "abc", "²", "9" * 5000]:
        assert codes(chain=raw) == ["invalid_chain_id"], raw


def test_nonce_keeps_text_and_exact_value() -> None:
    nonce = Nonce.parse("1795533623683040263")
    assert (nonce.text, nonce.value) == ("1795533623683040263", Decimal(1795533623683040263))
    assert Nonce.parse(5) == Nonce("5", Decimal(5))
    assert Nonce.parse("1684325597.242274").value == Decimal("1684325597.242274")
    assert Nonce.parse(str(MAX_NONCE)).value == MAX_NONCE
    not_decimal = [raw for raw in NOT_DIGITS if raw != "1.0"]  # a decimal nonce is fine
    for raw in [*not_decimal, str(MAX_NONCE + 1), 2**64, 1.5, True, None, {}, "1.", ".5"]:
        with pytest.raises(BadRequestError) as refused:
            Nonce.parse(raw)
        assert refused.value.code == "invalid_nonce", raw
        assert "nonce" in refused.value.message


def test_addresses() -> None:
    assert Model(address=ADDRESS).address == CHECKSUMMED
    assert Model(address=ADDRESS.upper().replace("0X", "0x")).address == CHECKSUMMED
    assert Model(signer=ADDRESS).signer == ADDRESS  # as sent: it is in the signed message
    # Any letter case is read (eth_utils' rule), even a mixed case that is not EIP-55.
    odd_case = CHECKSUMMED.swapcase().replace("0X", "0x")
    assert Model(address=odd_case).address == CHECKSUMMED
    for raw in ["0x123", ADDRESS + "00", "0x" + "zz" * 20, 5, {}, ["0x"]]:
        assert codes(address=raw) == codes(signer=raw) == ["invalid_address"], raw


def test_dids() -> None:
    assert Model(did="did:op:" + "ab" * 32).did == "did:op:" + "ab" * 32
    for raw in ["did:op:../../etc/passwd", "did:op:", "did:foo:1", "x", "did:op:" + "a" * 65,
                "did:op:abc/../x", 5]:
        assert codes(did=raw) == ["validation_error"], raw


def test_userdata_one_rule() -> None:
    assert userdata_object('{"a": 1}') == userdata_object({"a": 1}) == {"a": 1}
    for dropped in ["not json", "[1, 2]", "5", "null", "", "{}", {}, None]:
        assert userdata_object(dropped) is None, dropped
    assert Model(userdata="{").userdata is None  # type: ignore[arg-type]
    for wrong in [[1], 5, True]:
        assert codes(userdata=wrong) == ["validation_error"], wrong


def test_timestamps_are_in_the_future_and_sane() -> None:
    assert Model(valid_until=4_102_444_800).valid_until == 4_102_444_800
    for raw in [1, "1700000000", TIMESTAMP_MAX + 1, "²", 1.5e9, "9" * 5000]:
        assert codes(valid_until=raw) == ["invalid_valid_until"], raw


def test_parse_field_outside_a_model() -> None:
    from tidegate.types import _did, _file_index

    with pytest.raises(BadRequestError) as coded:
        parse_field(_file_index, "²", "fileIndex")
    assert (coded.value.code, coded.value.message) == (
        "invalid_file_index", "The fileIndex must be a non-negative integer.")
    with pytest.raises(ValidationError) as generic:
        parse_field(_did, "x", "documentId")
    assert generic.value.errors == {"documentId": "The documentId format is invalid."}
