"""``initialize``: check that a consumer may order an access service, and quote the fee.

With a still-valid ``transferTxId`` the answer is just ``{"validOrder": tx}`` (the
consumer can download again without a new order); otherwise the quote is
``{datatoken, nonce, providerFee, computeAddress}`` where the provider fee is signed
exactly as ``startOrder`` checks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tidegate.assets.consumable import check_consumable
from tidegate.assets.ddo import Asset, Service
from tidegate.assets.orders import OrderInvalidError, OrderValidator
from tidegate.assets.resolver import Resolver, resolve_asset
from tidegate.auth.nonces import nonce_as_int
from tidegate.chain.clients import ChainConfig, Chains
from tidegate.errors import BadRequestError
from tidegate.fees.quotes import quote_provider_fee
from tidegate.files.info import file_info
from tidegate.files.objects import StorageContext, parse_file_object
from tidegate.files.service_files import decrypt_service_files
from tidegate.stores.base import Store
from tidegate.types import checksum_address, is_address


@dataclass(frozen=True)
class InitializeRequest:
    did: str
    service_id: str
    consumer: str
    transfer_tx: str | None = None
    file_index: str | None = None
    userdata: Any = None


def parse_file_index(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not raw.strip().isdigit():
        raise BadRequestError("The fileIndex must be a non-negative integer.",
                              code="invalid_file_index")
    return int(raw)


async def load_service(
    resolver: Resolver, chains: Chains, did: str, service_id: str, consumer: str
) -> tuple[Asset, Service, ChainConfig]:
    """Resolve the asset, check it is consumable by ``consumer``, find the service."""
    if not is_address(consumer):
        raise BadRequestError("The consumerAddress is not an address.", code="invalid_address")
    asset = await resolve_asset(resolver, did)
    chain = chains.get(asset.chain_id)
    service = asset.service(service_id)
    await check_consumable(chain, asset, consumer)
    return asset, service, chain


async def check_file_reachable(
    asset: Asset, service: Service, chain: ChainConfig, ctx: StorageContext, index: int,
    userdata: Any,
) -> None:
    files = decrypt_service_files(asset, service, chain.provider_key)
    if index >= len(files):
        raise BadRequestError(f"No such fileIndex {index}.", code="invalid_file_index")
    info = await file_info(parse_file_object(files[index], userdata), ctx, index, False)
    if not info.get("valid"):
        raise BadRequestError("Asset URL not found, not available or invalid.",
                              code="file_unavailable")


async def initialize_access(
    req: InitializeRequest, *, resolver: Resolver, chains: Chains, store: Store,
    orders: OrderValidator, storage: StorageContext, fee_amount: int,
) -> dict[str, Any]:
    """The initialize answer for an access service.

    The fee is ``fee_amount`` base units of the chain's fee token (``ChainConfig.fee_token``).
    """
    asset, service, chain = await load_service(resolver, chains, req.did, req.service_id,
                                               req.consumer)
    if service.type == "compute":
        raise BadRequestError(
            "Use the initializeCompute endpoint to initialize compute jobs.",
            code="use_initialize_compute")
    if req.transfer_tx:
        try:
            order = await orders.validate(chain, asset=asset, service=service,
                                          tx_id=req.transfer_tx, sender=req.consumer,
                                          allow_expired_fees=True)
        except OrderInvalidError:
            pass  # not (or no longer) valid: quote a new order
        else:
            return {"validOrder": order.order_tx}
    index = parse_file_index(req.file_index)
    if index is not None:
        await check_file_reachable(asset, service, chain, storage, index, req.userdata)
    fee = quote_provider_fee(chain, token=chain.fee_token,
                             datatoken=service.datatoken, service_id=service.id,
                             environment=None, valid_until=0, amount=fee_amount)
    nonce = await store.get_nonce(checksum_address(req.consumer))
    return {
        "datatoken": service.raw.get("datatokenAddress", service.datatoken),
        "nonce": nonce_as_int(nonce),
        "providerFee": fee.to_json(),
        "computeAddress": chain.compute_address,
    }
