"""Provider-fee byte formats (pinned vectors), signatures and amounts."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from eth_abi.packed import encode_packed
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import keccak

from tidegate.fees.provider_fees import (
    ProviderFee,
    build_provider_data,
    compute_fee_amount,
    provider_fee_hash,
    sign_provider_fee,
    verify_provider_fee_signature,
)

# The barge provider key (public, development only) and its address.
KEY = "0xfd5c1ccea015b6d663618850824154a3b3fb2882c46cefb05b9a93fea8c3d215"
PROVIDER = "0xe08A1dAe983BC701D05E492DB80e0144f8f4b909"
OTHER_KEY = "0x" + "11" * 32
OCEAN = "0x2473f4F7bf40ed9310838edFCA6262C17A59DF64"
DT = "0xC7EC1970B09224B317c52d92f37F5e1E4fF6B687"

# Decoded providerData observed from the reference Provider.
REFERENCE_DATA = (
    b'{"environment":null,"timestamp":1795533607.358028,'
    b'"dt":"0xC7EC1970B09224B317c52d92f37F5e1E4fF6B687","id":"test"}'
)
COMPUTE_DATA = (
    b'{"environment":"ocean-compute","timestamp":1700000000.5,'
    b'"dt":"0xC7EC1970B09224B317c52d92f37F5e1E4fF6B687","id":"svc"}'
)
COMPUTE_HASH = "f2c2e83701063dddaa31dbfaa3847e752fd3d82dd65548ac2ad5f0663cea1535"
DOWNLOAD_HASH = "b2b694e3d22d113d31116d0f15344330a76326ba0f4a32f779405ce89672be80"
COMPUTE_AMOUNT = 3600 * 10**18


def compute_fee() -> ProviderFee:
    return sign_provider_fee(
        KEY,
        provider_data=COMPUTE_DATA,
        fee_token=OCEAN,
        fee_amount=COMPUTE_AMOUNT,
        valid_until=1700003600,
    )


def test_provider_data_matches_the_reference_bytes() -> None:
    assert build_provider_data(None, 1795533607.358028, DT, "test") == REFERENCE_DATA
    assert build_provider_data("ocean-compute", 1700000000.5, DT, "svc") == COMPUTE_DATA


def test_fee_hash_vectors() -> None:
    assert provider_fee_hash(REFERENCE_DATA, PROVIDER, OCEAN, 0, 0).hex() == DOWNLOAD_HASH
    digest = provider_fee_hash(COMPUTE_DATA, PROVIDER, OCEAN, COMPUTE_AMOUNT, 1700003600)
    assert digest.hex() == COMPUTE_HASH
    # An independent encoder (eth_abi's encodePacked) agrees.
    packed = encode_packed(
        ["bytes", "address", "address", "uint256", "uint256"],
        [COMPUTE_DATA, PROVIDER, OCEAN, COMPUTE_AMOUNT, 1700003600],
    )
    assert keccak(packed) == digest
    # Address case does not change the packed bytes.
    assert (
        provider_fee_hash(COMPUTE_DATA, PROVIDER.lower(), OCEAN.lower(), COMPUTE_AMOUNT, 1700003600)
        == digest
    )


def test_signature_vector_and_wire_json() -> None:
    fee = compute_fee()
    assert fee.to_json() == {
        "providerFeeAddress": PROVIDER,
        "providerFeeToken": OCEAN,
        "providerFeeAmount": "3600000000000000000000",
        "providerData": "0x" + COMPUTE_DATA.hex(),
        "v": 28,
        "r": "0x3f5c9a3de3f9466d94b39247be8d73dffcdacb9dc19d0df3b5ed99d5871fdc71",
        "s": "0x2e301ee3c0f706727186bb0e4e38939c600b4b8b1aa6ef874c652250792ac52a",
        "validUntil": 1700003600,
    }
    assert list(fee.to_json()) == [
        "providerFeeAddress",
        "providerFeeToken",
        "providerFeeAmount",
        "providerData",
        "v",
        "r",
        "s",
        "validUntil",
    ]
    # What the contract does: ecrecover over the EIP-191 prefixed 32-byte hash.
    prefixed = encode_defunct(primitive=bytes.fromhex(COMPUTE_HASH))
    assert Account.recover_message(prefixed, vrs=(fee.v, fee.r, fee.s)) == PROVIDER


def test_contract_tuple_order() -> None:
    fee = compute_fee()
    assert fee.as_contract_tuple() == (
        PROVIDER,
        OCEAN,
        COMPUTE_AMOUNT,
        fee.v,
        fee.r,
        fee.s,
        1700003600,
        COMPUTE_DATA,
    )


def test_json_round_trip_and_rejects() -> None:
    fee = compute_fee()
    assert ProviderFee.from_json(fee.to_json()) == fee
    wire = fee.to_json()
    assert ProviderFee.from_json({**wire, "providerFeeAmount": COMPUTE_AMOUNT}) == fee
    for broken in (
        {k: v for k, v in wire.items() if k != "r"},
        {**wire, "v": 1},
        {**wire, "r": "0x1234"},
        {**wire, "providerData": "7b"},
        {**wire, "providerFeeAmount": "-1"},
        {**wire, "providerFeeToken": "ocean"},
        {**wire, "validUntil": "soon"},
    ):
        with pytest.raises(ValueError):
            ProviderFee.from_json(broken)


def test_verify_signature() -> None:
    fee = compute_fee()
    assert verify_provider_fee_signature(fee, PROVIDER)
    assert verify_provider_fee_signature(fee, PROVIDER.lower())
    assert not verify_provider_fee_signature(fee, Account.from_key(OTHER_KEY).address)
    cheaper = dataclasses.replace(fee, provider_fee_amount=1)
    assert not verify_provider_fee_signature(cheaper, PROVIDER)
    assert not verify_provider_fee_signature(dataclasses.replace(fee, valid_until=0), PROVIDER)
    assert not verify_provider_fee_signature(dataclasses.replace(fee, v=fee.v - 27), PROVIDER)
    assert not verify_provider_fee_signature(dataclasses.replace(fee, r=b"\0" * 32), PROVIDER)
    assert not verify_provider_fee_signature(fee, "not an address")
    # Signed by another key but naming the provider: the contract would refuse it too.
    forged = sign_provider_fee(
        OTHER_KEY,
        provider_data=COMPUTE_DATA,
        fee_token=OCEAN,
        fee_amount=COMPUTE_AMOUNT,
        valid_until=1700003600,
    )
    assert not verify_provider_fee_signature(
        dataclasses.replace(forged, provider_fee_address=PROVIDER), PROVIDER
    )


def test_sign_rejects_out_of_range_values() -> None:
    with pytest.raises(ValueError):
        sign_provider_fee(KEY, provider_data=b"", fee_token=OCEAN, fee_amount=-1, valid_until=0)
    with pytest.raises(ValueError):
        sign_provider_fee(KEY, provider_data=b"", fee_token=OCEAN, fee_amount=0, valid_until=2**256)
    with pytest.raises(ValueError):
        sign_provider_fee(KEY, provider_data=b"", fee_token="0x12", fee_amount=0, valid_until=0)


NOW = 1_700_000_000


@pytest.mark.parametrize(
    ("duration", "price", "decimals", "expected"),
    [
        (3600, Decimal(60), 18, 3600 * 10**18),  # the reference's unit-test example
        (2 * 86400, Decimal(1), 18, 2880 * 10**18),  # two days do not wrap
        (86400 + 60, Decimal(1), 0, 1441),  # timedelta.seconds would give 1
        (90, Decimal("0.5"), 6, 750_000),
        (1, Decimal(1), 0, 0),  # 1/60 token truncates to 0
        (59, Decimal(1), 18, 983_333_333_333_333_333),  # truncated, not rounded
        (0, Decimal(60), 18, 0),
        (-1, Decimal(60), 18, 0),  # already expired
        (-86400 * 3, Decimal(60), 18, 0),
        (600, Decimal(0), 18, 0),
    ],
)
def test_compute_fee_amount(duration: int, price: Decimal, decimals: int, expected: int) -> None:
    assert compute_fee_amount(NOW + duration, NOW, price, decimals) == expected


def test_compute_fee_amount_is_exact_beyond_decimal_precision() -> None:
    price = Decimal("1234567890.123456789012345678901234567")  # 37 significant digits
    scaled = 1234567890123456789012345678901234567  # price * 10**27
    expected = 7 * scaled * 10**18 // (60 * 10**27)
    assert compute_fee_amount(NOW + 7, NOW, price, 18) == expected


@pytest.mark.parametrize("price", [Decimal(-1), Decimal("NaN"), Decimal("Infinity"), 1.5, True])
def test_compute_fee_amount_rejects_bad_prices(price: Decimal) -> None:
    with pytest.raises(ValueError):
        compute_fee_amount(NOW + 60, NOW, price, 18)


def test_compute_fee_amount_rejects_negative_decimals() -> None:
    with pytest.raises(ValueError):
        compute_fee_amount(NOW + 60, NOW, Decimal(1), -1)
