"""Provider fees: the signed quote that ``startOrder`` checks on chain."""

from tidegate.fees.provider_fees import (
    ProviderFee,
    build_provider_data,
    compute_fee_amount,
    provider_fee_hash,
    sign_provider_fee,
    verify_provider_fee_signature,
)

__all__ = [
    "ProviderFee",
    "build_provider_data",
    "compute_fee_amount",
    "provider_fee_hash",
    "sign_provider_fee",
    "verify_provider_fee_signature",
]
