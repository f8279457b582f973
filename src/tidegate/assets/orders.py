"""Validate a datatoken order on chain before a file is served or a job started.

Only logs emitted by the service's own datatoken count (``OrderStarted``,
``OrderReused``, ``ProviderFee``): the reference matched by topic alone, so any
contract could re-emit a provider-signed fee and a fake ``OrderStarted``. The
ProviderFee must be signed by this provider for this datatoken and service; the
order must pay one datatoken, for this service index, by or for the sender, within
the service timeout. A pending or unknown transaction is waited for briefly
(``TIDEGATE_PENDING_TX_WAIT``), then refused with a 400.

Mined receipts are immutable (re-orgs aside), so decoded orders are cached by tx
hash: a warm validation costs no receipt fetch.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD

from tidegate.assets.ddo import Asset, Service
from tidegate.chain.clients import ChainConfig
from tidegate.chain.contracts import load_artifact
from tidegate.chain.nft import nft_contract
from tidegate.chain.rpc import concurrently, rpc
from tidegate.errors import BadRequestError
from tidegate.fees.provider_fees import ProviderFee, verify_provider_fee_signature
from tidegate.types import TX_HASH_TEXT, checksum_address

ONE_DATATOKEN = 10**18


class OrderInvalidError(BadRequestError):
    code = "order_invalid"


@dataclass(frozen=True)
class FeeEvent:
    fee: ProviderFee
    provider_data: dict[str, Any]


@dataclass(frozen=True)
class DecodedOrder:
    """What one order transaction says about one datatoken (cacheable)."""

    order_tx: str
    consumer: str
    payer: str
    amount: int
    service_index: int
    timestamp: int
    fees: tuple[FeeEvent, ...]


@dataclass(frozen=True)
class ValidatedOrder:
    order_tx: str
    consumer: str
    payer: str
    timestamp: int
    fee: FeeEvent


class OrderValidator:
    """Validates orders against one provider identity per chain, with a receipt cache."""

    def __init__(self, pending_wait: float, cache_size: int = 10000) -> None:
        self.pending_wait = pending_wait
        self.cache_size = cache_size
        self._orders: OrderedDict[tuple[int, str, str, int], DecodedOrder] = OrderedDict()
        self._deployed: set[tuple[int, str, str]] = set()
        self._head_times: dict[int, tuple[float, int]] = {}

    async def now(self, chain: ChainConfig) -> float:
        """The later of this host's clock and the chain's head block time.

        Order timestamps are block times. On real chains the host clock leads the
        head, so this is the host clock (as the reference). A dev chain that mines a
        block per transaction runs ahead of the wall clock; its own time then keeps
        expiry consistent. The head time is fetched at most once a second.
        """
        fetched = self._head_times.get(chain.chain_id)
        if fetched is None or time.monotonic() - fetched[0] > 1.0:
            block = await rpc(chain.web3.eth.get_block("latest"), "eth_getBlockByNumber")
            fetched = (time.monotonic(), int(block["timestamp"]))
            self._head_times[chain.chain_id] = fetched
        return max(time.time(), float(fetched[1]))

    async def _receipt(self, chain: ChainConfig, tx: str, *, wait: bool) -> Any:
        deadline = time.monotonic() + (self.pending_wait if wait else 0)
        while True:
            try:
                return await rpc(chain.web3.eth.get_transaction_receipt(HexBytes(tx)),
                                 "eth_getTransactionReceipt")
            except TransactionNotFound:
                if time.monotonic() >= deadline:
                    raise OrderInvalidError(
                        f"Order transaction {tx} was not found on chain (or is still pending)."
                    ) from None
                await asyncio.sleep(0.1)

    async def _check_deployed(self, chain: ChainConfig, asset: Asset, service: Service) -> None:
        key = (chain.chain_id, asset.nft_address, service.datatoken)
        if key in self._deployed:
            return
        deployed = await rpc(
            nft_contract(chain, asset.nft_address).functions.isDeployed(service.datatoken).call(),
            "ERC721Template.isDeployed",
        )
        if not deployed:
            raise OrderInvalidError("The service datatoken was not deployed by the asset's NFT.")
        self._deployed.add(key)

    def _own_logs(self, receipt: Any, datatoken: str, event: str) -> list[Any]:
        contract = _datatoken_decoder(datatoken)
        own = {**receipt, "logs": [log for log in receipt["logs"]
                                   if checksum_address(log["address"]) == datatoken]}
        return list(getattr(contract.events, event)().process_receipt(own, errors=DISCARD))

    def _cached(self, chain: ChainConfig, tx: str, service: Service) -> DecodedOrder | None:
        key = (chain.chain_id, tx.lower(), service.datatoken, service.index)
        cached = self._orders.get(key)
        if cached is not None:
            self._orders.move_to_end(key)
        return cached

    async def _decode(self, chain: ChainConfig, tx: str, service: Service) -> DecodedOrder:
        key = (chain.chain_id, tx.lower(), service.datatoken, service.index)
        cached = self._cached(chain, tx, service)
        if cached is not None:
            return cached
        receipt = await self._receipt(chain, tx, wait=True)
        if receipt["status"] != 1:
            raise OrderInvalidError("The order transaction failed.")
        fees = tuple(self._fee_events(receipt, service.datatoken))
        order_receipt, timestamp = receipt, None
        reused = self._own_logs(receipt, service.datatoken, "OrderReused")
        if reused:
            original = HexBytes(reused[0]["args"]["orderTxId"]).to_0x_hex()
            timestamp = int(reused[0]["args"]["timestamp"])
            order_receipt = await self._receipt(chain, original, wait=False)
            if order_receipt["status"] != 1:
                raise OrderInvalidError("The order referenced in OrderReused failed.")
        started = [e for e in self._own_logs(order_receipt, service.datatoken, "OrderStarted")
                   if int(e["args"]["serviceIndex"]) == service.index]
        if not started:
            raise OrderInvalidError(
                "The transaction has no OrderStarted event of this service's datatoken "
                "for this service."
            )
        args = started[-1]["args"]
        decoded = DecodedOrder(
            order_tx=HexBytes(order_receipt["transactionHash"]).to_0x_hex(),
            consumer=checksum_address(args["consumer"]),
            payer=checksum_address(args["payer"]),
            amount=int(args["amount"]),
            service_index=int(args["serviceIndex"]),
            timestamp=timestamp if timestamp is not None else int(args["timestamp"]),
            fees=fees,
        )
        self._orders[key] = decoded
        if len(self._orders) > self.cache_size:
            self._orders.popitem(last=False)
        return decoded

    def _fee_events(self, receipt: Any, datatoken: str) -> list[FeeEvent]:
        events = []
        for entry in self._own_logs(receipt, datatoken, "ProviderFee"):
            a = entry["args"]
            try:
                data = json.loads(bytes(a["providerData"]))
            except ValueError:
                continue
            if not isinstance(data, dict):
                continue
            fee = ProviderFee(
                provider_fee_address=checksum_address(a["providerFeeAddress"]),
                provider_fee_token=checksum_address(a["providerFeeToken"]),
                provider_fee_amount=int(a["providerFeeAmount"]),
                provider_data=bytes(a["providerData"]), v=int(a["v"]),
                r=bytes(a["r"]), s=bytes(a["s"]), valid_until=int(a["validUntil"]),
            )
            events.append(FeeEvent(fee, data))
        return events

    async def validate(
        self, chain: ChainConfig, *, asset: Asset, service: Service, tx_id: str, sender: str,
        environment: str | None = None, allow_expired_fees: bool = False,
        now: float | None = None,
    ) -> ValidatedOrder:
        """Check order ``tx_id`` for ``service``; raise OrderInvalidError with the reason."""
        if not TX_HASH_TEXT.fullmatch(tx_id):
            raise OrderInvalidError("The transferTxId is not a transaction hash.")
        order = self._cached(chain, tx_id, service)
        head = self._head_times.get(chain.chain_id)
        if (order is not None and head is not None and time.monotonic() - head[0] <= 1.0
                and (chain.chain_id, asset.nft_address, service.datatoken) in self._deployed):
            # Warm: nothing to ask the chain, so no tasks to spawn.
            chain_now = max(time.time(), float(head[1]))
        else:
            _, order, chain_now = await concurrently(
                self._check_deployed(chain, asset, service), self._decode(chain, tx_id, service),
                self.now(chain))
        now = chain_now if now is None else now
        fee = self._matching_fee(order, service)
        if environment is not None and fee.provider_data.get("environment") != environment:
            raise OrderInvalidError(
                "Mismatch between ordered c2d environment and selected one.")
        if fee.fee.provider_fee_address != chain.provider_address:
            raise OrderInvalidError("The provider fee was not issued by this provider.")
        if not verify_provider_fee_signature(fee.fee, chain.provider_address):
            raise OrderInvalidError("The provider fee signature is not this provider's.")
        if (not allow_expired_fees and fee.fee.valid_until > 0
                and now >= fee.fee.valid_until):
            raise OrderInvalidError("The provider fee has expired (validUntil).")
        if order.amount < ONE_DATATOKEN:
            raise OrderInvalidError("The amount in the event is less than the amount requested.")
        if service.timeout and now - order.timestamp > service.timeout:
            raise OrderInvalidError("The order has expired.")
        signer = checksum_address(sender)
        if signer not in (order.consumer, order.payer):
            raise OrderInvalidError("The sender of the order is not the consumer or payer.")
        return ValidatedOrder(order.order_tx, order.consumer, order.payer, order.timestamp, fee)

    @staticmethod
    def _matching_fee(order: DecodedOrder, service: Service) -> FeeEvent:
        for fee in reversed(order.fees):
            dt, sid = fee.provider_data.get("dt"), fee.provider_data.get("id")
            if (isinstance(dt, str) and dt.lower() == service.datatoken.lower()
                    and str(sid).lower() == service.id.lower()):
                return fee
        raise OrderInvalidError("Cannot find the event for the provider fee in the transaction.")


@functools.lru_cache(maxsize=4096)
def _datatoken_decoder(datatoken: str) -> Any:
    """A connection-less contract object: decoding logs needs the ABI, not a node."""
    return Web3().eth.contract(address=Web3.to_checksum_address(datatoken),
                               abi=load_artifact("ERC20Template").abi)
