"""``initialize``: check that a consumer may order an access service, and quote the fee.

With a still-valid ``transferTxId`` the answer is just the order (the consumer can
download again without a new order); otherwise a quote: the datatoken, the
consumer's nonce, the provider fee signed exactly as ``startOrder`` checks it, and
the provider's address.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tidegate.assets.orders import OrderInvalidError, OrderValidator
from tidegate.assets.resolver import Resolver
from tidegate.auth.nonces import nonce_as_int
from tidegate.chain.clients import Chains
from tidegate.commands.asset_services import consumable_service, service_file
from tidegate.errors import BadRequestError
from tidegate.fees.provider_fees import ProviderFee
from tidegate.fees.quotes import quote_provider_fee
from tidegate.files.info import file_info
from tidegate.files.objects import StorageContext
from tidegate.stores.base import Store


@dataclass(frozen=True)
class InitializeAccess:
    """Quote an order of access service ``service_id`` of ``did`` for ``consumer``.

    ``consumer`` is checksummed. ``transfer_tx``: an earlier order to reuse if still
    valid. ``file_index``: also check that this file is reachable (with ``userdata``).
    """

    did: str
    service_id: str
    consumer: str
    transfer_tx: str | None = None
    file_index: int | None = None
    userdata: dict[str, Any] | None = None


@dataclass(frozen=True)
class ValidOrder:
    """An order that still grants access: no new order is needed."""

    order_tx: str


@dataclass(frozen=True)
class AccessQuote:
    """What the consumer passes to ``startOrder``, and the nonce to sign with next.

    ``datatoken`` is the service's ``datatokenAddress`` exactly as the DDO spells it.
    """

    datatoken: str
    nonce: int
    provider_fee: ProviderFee
    compute_address: str


async def initialize_access(
    cmd: InitializeAccess, *, resolver: Resolver, chains: Chains, store: Store,
    orders: OrderValidator, storage: StorageContext, fee_amount: int,
) -> ValidOrder | AccessQuote:
    """The initialize answer for an access service (400s for every refusal).

    The fee is ``fee_amount`` base units of the chain's fee token (``ChainConfig.fee_token``).
    """
    found = await consumable_service(resolver, chains, cmd.did, cmd.service_id, cmd.consumer)
    asset, service, chain = found.asset, found.service, found.chain
    if service.type == "compute":
        raise BadRequestError(
            "Use the initializeCompute endpoint to initialize compute jobs.",
            code="use_initialize_compute")
    if cmd.transfer_tx:
        try:
            order = await orders.validate(chain, asset=asset, service=service,
                                          tx_id=cmd.transfer_tx, sender=cmd.consumer,
                                          allow_expired_fees=True)
        except OrderInvalidError:
            pass  # not (or no longer) valid: quote a new order
        else:
            return ValidOrder(order.order_tx)
    if cmd.file_index is not None:
        file = await service_file(found, cmd.file_index, cmd.userdata)
        info = await file_info(file, storage, cmd.file_index, False)
        if not info.get("valid"):
            raise BadRequestError("Asset URL not found, not available or invalid.",
                                  code="file_unavailable")
    fee = quote_provider_fee(chain, token=chain.fee_token,
                             datatoken=service.datatoken, service_id=service.id,
                             environment=None, valid_until=0, amount=fee_amount)
    return AccessQuote(
        datatoken=str(service.raw.get("datatokenAddress", service.datatoken)),
        nonce=nonce_as_int(await store.get_nonce(cmd.consumer)),
        provider_fee=fee,
        compute_address=chain.compute_address,
    )
