"""Quote provider fees: what ``initialize`` hands the consumer to pass to ``startOrder``."""

from __future__ import annotations

import time

from tidegate.chain.clients import ChainConfig
from tidegate.fees.provider_fees import ProviderFee, build_provider_data, sign_provider_fee

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def fee_token(chain: ChainConfig, configured: str | None) -> str:
    """``PROVIDER_FEE_TOKEN`` for the chain, else its OCEAN token, else the zero address."""
    if configured:
        return configured
    return chain.addresses.get("Ocean", ZERO_ADDRESS)


def quote_provider_fee(
    chain: ChainConfig, *, token: str, datatoken: str, service_id: str,
    environment: str | None, valid_until: int, amount: int, now: float | None = None,
) -> ProviderFee:
    """A fee signed by this chain's provider key, bound to the datatoken and service."""
    data = build_provider_data(environment, time.time() if now is None else now,
                               datatoken, service_id)
    return sign_provider_fee(chain.provider_key, provider_data=data, fee_token=token,
                             fee_amount=amount, valid_until=valid_until)
