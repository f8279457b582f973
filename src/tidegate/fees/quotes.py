"""Quote provider fees: what ``initialize`` hands the consumer to pass to ``startOrder``."""

from __future__ import annotations

import time

from eth_utils import to_checksum_address

from tidegate.chain.clients import ChainConfig
from tidegate.chain.contracts import load_artifact
from tidegate.chain.rpc import rpc
from tidegate.fees.provider_fees import ProviderFee, build_provider_data, sign_provider_fee
from tidegate.types import ZERO_ADDRESS


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


_DECIMALS: dict[tuple[int, str], int] = {}


async def token_decimals(chain: ChainConfig, token: str) -> int:
    """``decimals()`` of a fee token (cached: it never changes); 18 for the zero address."""
    if int(token, 16) == 0:
        return 18
    key = (chain.chain_id, token.lower())
    if key not in _DECIMALS:
        contract = chain.web3.eth.contract(address=to_checksum_address(token),
                                           abi=load_artifact("ERC20Template").abi)
        _DECIMALS[key] = int(await rpc(contract.functions.decimals().call(), "decimals"))
    return _DECIMALS[key]
