"""Provider fees: ``providerData``, the fee hash, signing and verifying, the amount.

The byte formats are what ``ERC20Template._checkProviderFee`` checks on chain and
what the reference Provider emits (its ``ocean_provider/utils/provider_fees.py``)::

    h = keccak256(abi.encodePacked(bytes providerData, address feeAddress,
                                   address feeToken, uint256 amount, uint256 validUntil))
    signer = ecrecover(keccak256("\\x19Ethereum Signed Message:\\n32" ‖ h), v, r, s)

and ``signer`` must equal ``providerFeeAddress``. ``validUntil`` is *not* checked on
chain; order validation must check it. Pure functions: no network access.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from tidegate.types import HEX_DATA, checksum_address

_UINT256_MAX = 2**256 - 1
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_WORD = re.compile(r"0x[0-9a-fA-F]{64}")


def _address(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ADDRESS.fullmatch(value):
        raise ValueError(f"{what} must be a 0x-prefixed 20-byte hex address")
    return checksum_address(value)


def _uint256(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _UINT256_MAX:
        raise ValueError(f"{what} must be an integer in uint256 range")
    return value


@dataclass(frozen=True)
class ProviderFee:
    """A signed provider fee, as quoted by ``initialize`` and passed to ``startOrder``."""

    provider_fee_address: str
    provider_fee_token: str
    provider_fee_amount: int
    provider_data: bytes
    v: int
    r: bytes
    s: bytes
    valid_until: int

    def to_json(self) -> dict[str, Any]:
        """The reference's wire object; the amount is a decimal string, ``v`` 27 or 28."""
        return {
            "providerFeeAddress": self.provider_fee_address,
            "providerFeeToken": self.provider_fee_token,
            "providerFeeAmount": str(self.provider_fee_amount),
            "providerData": "0x" + self.provider_data.hex(),
            "v": self.v,
            "r": "0x" + self.r.rjust(32, b"\0").hex(),
            "s": "0x" + self.s.rjust(32, b"\0").hex(),
            "validUntil": self.valid_until,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProviderFee:
        """Parse the wire object (amount as a decimal string or an int).

        Raises ``ValueError`` for missing keys or values of the wrong shape. The
        signature is not checked here: see :func:`verify_provider_fee_signature`.
        """
        try:
            amount = data["providerFeeAmount"]
            provider_data, r, s = data["providerData"], data["r"], data["s"]
            v, valid_until = data["v"], data["validUntil"]
            fee_address, fee_token = data["providerFeeAddress"], data["providerFeeToken"]
        except KeyError as exc:
            raise ValueError(f"provider fee lacks {exc.args[0]!r}") from None
        # ASCII digits only (``isdigit`` alone takes "²"); uint256 has at most 78.
        if isinstance(amount, str) and amount.isascii() and amount.isdigit() \
                and len(amount) <= 78:
            amount = int(amount)
        for name, value, pattern in (
            ("providerData", provider_data, HEX_DATA),
            ("r", r, _WORD),
            ("s", s, _WORD),
        ):
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise ValueError(f"provider fee {name} must be 0x hex")
        if v not in (27, 28) or isinstance(v, bool):
            raise ValueError("provider fee v must be 27 or 28")
        return cls(
            provider_fee_address=_address(fee_address, "providerFeeAddress"),
            provider_fee_token=_address(fee_token, "providerFeeToken"),
            provider_fee_amount=_uint256(amount, "providerFeeAmount"),
            provider_data=bytes.fromhex(provider_data[2:]),
            v=v,
            r=bytes.fromhex(r[2:]),
            s=bytes.fromhex(s[2:]),
            valid_until=_uint256(valid_until, "validUntil"),
        )

    def as_contract_tuple(self) -> tuple[str, str, int, int, bytes, bytes, int, bytes]:
        """``(providerFeeAddress, providerFeeToken, providerFeeAmount, v, r, s,
        validUntil, providerData)``: the struct ``startOrder``/``reuseOrder`` take."""
        return (
            self.provider_fee_address,
            self.provider_fee_token,
            self.provider_fee_amount,
            self.v,
            self.r.rjust(32, b"\0"),
            self.s.rjust(32, b"\0"),
            self.valid_until,
            self.provider_data,
        )


def build_provider_data(
    environment: str | None, timestamp: float, datatoken: str, service_id: str
) -> bytes:
    """Compact JSON ``{"environment","timestamp","dt","id"}`` in exactly that key order.

    ``datatoken`` and ``service_id`` are kept as given (order validation compares them
    case-insensitively). The bytes are signed, so their exact form matters.
    """
    document = {
        "environment": environment,
        "timestamp": timestamp,
        "dt": datatoken,
        "id": service_id,
    }
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def provider_fee_hash(
    provider_data: bytes, fee_address: str, fee_token: str, amount: int, valid_until: int
) -> bytes:
    """keccak256(abi.encodePacked(bytes, address, address, uint256, uint256)), 32 bytes."""
    packed = b"".join(
        (
            bytes(provider_data),
            bytes.fromhex(_address(fee_address, "fee address")[2:]),
            bytes.fromhex(_address(fee_token, "fee token")[2:]),
            _uint256(amount, "fee amount").to_bytes(32, "big"),
            _uint256(valid_until, "validUntil").to_bytes(32, "big"),
        )
    )
    return keccak(packed)


@lru_cache(maxsize=16)
def _account(private_key: str | bytes) -> LocalAccount:
    # Deriving the address costs an EC multiplication: once per key, not per quote.
    account: LocalAccount = Account.from_key(private_key)
    return account


def sign_provider_fee(
    private_key: str | bytes,
    *,
    provider_data: bytes,
    fee_token: str,
    fee_amount: int,
    valid_until: int,
) -> ProviderFee:
    """Sign a fee with the provider key; the fee address is that key's address.

    EIP-191 ("\\x19Ethereum Signed Message:\\n32") over the 32-byte fee hash, ``v`` 27/28:
    exactly what the contract recovers.
    """
    account = _account(private_key)
    digest = provider_fee_hash(provider_data, account.address, fee_token, fee_amount, valid_until)
    signed = account.sign_message(encode_defunct(primitive=digest))
    return ProviderFee(
        provider_fee_address=account.address,
        provider_fee_token=_address(fee_token, "fee token"),
        provider_fee_amount=fee_amount,
        provider_data=bytes(provider_data),
        v=signed.v,
        r=signed.r.to_bytes(32, "big"),
        s=signed.s.to_bytes(32, "big"),
        valid_until=valid_until,
    )


@lru_cache(maxsize=4096)  # pure; each download of an order checks the same fee again
def verify_provider_fee_signature(fee: ProviderFee, expected_signer: str) -> bool:
    """True iff ``fee`` is signed by ``expected_signer`` and names it as fee address.

    Both conditions are what the contract enforces (signer == providerFeeAddress).
    Only ``v`` 27/28 is accepted, as ``ecrecover`` on chain needs. Malformed values
    give False, never an exception.
    """
    if fee.v not in (27, 28) or len(fee.r) > 32 or len(fee.s) > 32:
        return False
    try:
        expected = _address(expected_signer, "expected signer")
        if _address(fee.provider_fee_address, "fee address") != expected:
            return False
        digest = provider_fee_hash(
            fee.provider_data,
            fee.provider_fee_address,
            fee.provider_fee_token,
            fee.provider_fee_amount,
            fee.valid_until,
        )
        signer = Account.recover_message(
            encode_defunct(primitive=digest),
            vrs=(fee.v, int.from_bytes(fee.r, "big"), int.from_bytes(fee.s, "big")),
        )
    except Exception:  # eth_keys raises several types for invalid signatures
        return False
    return bool(signer == expected)


def compute_fee_amount(valid_until: int, now: int, price_per_minute: Decimal, decimals: int) -> int:
    """Fee in token base units for ``valid_until - now`` seconds at ``price_per_minute``.

    Exact over the whole duration (the reference used ``timedelta.seconds``, which
    wraps after a day), truncated toward zero. 0 when ``valid_until <= now``.
    Raises ``ValueError`` for a negative or non-finite price or negative decimals.
    """
    if not isinstance(price_per_minute, Decimal | int) or isinstance(price_per_minute, bool):
        raise ValueError("price_per_minute must be a Decimal")
    price = Decimal(price_per_minute)
    if not price.is_finite() or price < 0:
        raise ValueError("price_per_minute must be a finite, non-negative number")
    if decimals < 0:
        raise ValueError("decimals must be non-negative")
    if valid_until <= now:
        return 0
    # Fraction keeps every step exact; Decimal division could round at 28 digits.
    exact = Fraction(valid_until - now) * Fraction(price) * 10**decimals / 60
    return int(exact)
