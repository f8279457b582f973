"""Aquarius v4's ``datatokens`` and ``stats`` of indexed DDOs, read from the chain.

``datatokens`` is one ``{address, name, symbol, serviceId}`` per service (name and
symbol from the ERC-20 contract). ``stats`` is ``{allocated: 0, orders: N, price}``
where ``orders`` counts the ``OrderStarted`` logs of the asset's datatokens that the
indexer saw, and ``price`` is Aquarius' shape: ``{"value": rate, "tokenAddress": base,
"tokenSymbol": symbol}`` for a fixed-rate exchange of a datatoken, ``{"value": 0.0}``
for a dispenser, ``{}`` for neither.

The events that change stats are emitted by a datatoken (``OrderStarted``,
``NewFixedRate``, ``NewDispenser``) or by the chain's ``FixedPrice`` exchange (rate
changed, exchange activated or deactivated); :class:`StatsEvents` maps a log to the
datatoken it concerns. Immutable facts (a token's name, symbol and data NFT, an
exchange's datatoken) are cached; prices are read afresh each time.

DDOs served with Ocean Node's ``indexedMetadata`` (:mod:`tidegate.assets.versions`)
carry ``stats`` in its shape instead (:func:`node_stats`): one entry per service,
``{datatokenAddress, name, symbol, serviceId, orders, prices}``, ``prices`` listing the
datatoken's active dispensers (``{type: "dispenser", price: "0", contract, token}``)
and active fixed-rate exchanges (``{type: "fixedrate", price, token, contract,
exchangeId}``, ``price`` in ethers' ``formatEther`` text).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, TypeVar, cast

from eth_abi.exceptions import DecodingError
from eth_typing import ABIEvent
from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3.exceptions import BadFunctionCallOutput

from tidegate.assets.versions import subject
from tidegate.chain.clients import ChainConfig
from tidegate.chain.contracts import load_artifact
from tidegate.chain.rpc import ContractCallError, concurrently, rpc
from tidegate.errors import ServiceUnavailableError

T = TypeVar("T")

_DATATOKEN_EVENTS: Final = ("OrderStarted", "NewFixedRate", "NewDispenser")
_EXCHANGE_EVENTS: Final = ("ExchangeRateChanged", "ExchangeActivated", "ExchangeDeactivated")
_CACHE_SIZE: Final = 10_000
_ONE: Final = 10**18


async def _call_or_none(call: Awaitable[T], what: str) -> T | None:
    """A contract read; None when the contract reverts or is not what we expected.

    RPC trouble still raises (503): the indexer then retries the whole range.
    """
    try:
        return await rpc(call, what)
    except ContractCallError:
        return None
    except ServiceUnavailableError as exc:
        # web3 reports "no such contract or function" (empty return data) as a Web3Exception.
        if isinstance(exc.__cause__, BadFunctionCallOutput | DecodingError):
            return None
        raise


def _address(value: object) -> str | None:
    try:
        return to_checksum_address(str(value))
    except ValueError:
        return None


def _remember(cache: dict[str, T], key: str, value: T) -> T:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()  # rare; a full cache only costs one read per token again
    cache[key] = value
    return value


@lru_cache(maxsize=4096)
def _contract(web3: Any, name: str, address: str) -> Any:
    # Building a web3 contract object parses the ABI: keep them.
    return web3.eth.contract(address=address, abi=load_artifact(name).abi)


def _topics(artifact: str, names: tuple[str, ...]) -> dict[bytes, str]:
    entries = cast(list[dict[str, Any]], list(load_artifact(artifact).abi))
    return {
        bytes(event_abi_to_log_topic(cast(ABIEvent, e))): str(e["name"])
        for e in entries
        if e.get("type") == "event" and e.get("name") in names
    }


@dataclass(frozen=True)
class StatsEvent:
    """A log that changes an asset's stats: the datatoken it concerns."""

    datatoken: str
    order: bool
    """True for ``OrderStarted`` (``stats.orders`` grows); else only the price changed."""


class TokenReader:
    """Datatoken, exchange and dispenser reads of one chain, with caches."""

    def __init__(self, chain: ChainConfig) -> None:
        self.chain = chain
        self._info: dict[str, tuple[str, str]] = {}
        self._nft: dict[str, str | None] = {}
        self._exchange_token: dict[str, str | None] = {}

    def _erc20(self, address: str) -> Any:
        return _contract(self.chain.web3, "ERC20Template", address)

    async def token_info(self, address: str) -> tuple[str, str]:
        """(name, symbol) of an ERC-20; empty strings if it has none (as Aquarius)."""
        if address not in self._info:
            calls = self._erc20(address).functions
            name, symbol = await concurrently(
                _call_or_none(calls.name().call(), "ERC20.name"),
                _call_or_none(calls.symbol().call(), "ERC20.symbol"))
            _remember(self._info, address,
                      (name if isinstance(name, str) else "",
                       symbol if isinstance(symbol, str) else ""))
        return self._info[address]

    async def nft_of(self, datatoken: str) -> str | None:
        """The data NFT of a datatoken (``getERC721Address``), None if not a datatoken."""
        if datatoken not in self._nft:
            nft = await _call_or_none(self._erc20(datatoken).functions.getERC721Address().call(),
                                      "ERC20Template.getERC721Address")
            _remember(self._nft, datatoken, _address(nft) if nft is not None else None)
        return self._nft[datatoken]

    async def exchange_datatoken(self, exchange: str, exchange_id: bytes) -> str | None:
        """The datatoken a fixed-rate exchange sells."""
        key = f"{exchange}:{exchange_id.hex()}"
        if key not in self._exchange_token:
            fre = _contract(self.chain.web3, "FixedRateExchange", exchange)
            found = await _call_or_none(fre.functions.getExchange(exchange_id).call(),
                                        "FixedRateExchange.getExchange")
            _remember(self._exchange_token, key, _address(found[1]) if found else None)
        return self._exchange_token[key]

    async def datatokens(self, ddo: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``datatokens``: one entry per service that names a datatoken, in service order."""
        services = subject(ddo).get("services")
        result: list[dict[str, Any]] = []
        for service in services if isinstance(services, list) else []:
            if not isinstance(service, dict) or not isinstance(
                    service.get("datatokenAddress"), str):
                continue
            address = _address(service["datatokenAddress"])
            name, symbol = await self.token_info(address) if address else ("", "")
            result.append({"address": service["datatokenAddress"], "name": name,
                           "symbol": symbol, "serviceId": service.get("id")})
        return result

    async def _exchanges(self, datatoken: str) -> list[tuple[bool, dict[str, Any]]]:
        rates = await _call_or_none(self._erc20(datatoken).functions.getFixedRates().call(),
                                    "ERC20Template.getFixedRates")
        found: list[tuple[bool, dict[str, Any]]] = []
        for exchange, exchange_id in rates or []:
            fre = _contract(self.chain.web3, "FixedRateExchange", to_checksum_address(exchange))
            info = await _call_or_none(fre.functions.getExchange(bytes(exchange_id)).call(),
                                       "FixedRateExchange.getExchange")
            if not info:
                continue
            base = to_checksum_address(info[3])
            price: dict[str, Any] = {"value": int(info[5]) / _ONE, "tokenAddress": base}
            symbol = (await self.token_info(base))[1]
            if symbol:
                price["tokenSymbol"] = symbol
            found.append((bool(info[6]), price))
        return found

    async def price(self, nft: str, datatokens: list[dict[str, Any]]) -> dict[str, Any]:
        """``stats.price`` over the asset's datatokens that belong to ``nft``.

        A fixed-rate exchange wins over a dispenser (as Aquarius, which reads the
        subgraph); an active exchange wins over an inactive one.
        """
        exchanges: list[tuple[bool, dict[str, Any]]] = []
        dispenser = False
        seen: set[str] = set()
        for entry in datatokens:
            address = _address(entry.get("address"))
            if address is None or address in seen or await self.nft_of(address) != nft:
                continue
            seen.add(address)
            exchanges += await self._exchanges(address)
            if not dispenser:
                dispensers = await _call_or_none(
                    self._erc20(address).functions.getDispensers().call(),
                    "ERC20Template.getDispensers")
                dispenser = bool(dispensers)
        if exchanges:
            active = [p for on, p in exchanges if on]
            return (active or [p for _, p in exchanges])[0]
        return {"value": 0.0} if dispenser else {}


    async def node_prices(self, datatoken: str) -> list[dict[str, Any]]:
        """Ocean Node's ``prices`` of one datatoken: its active dispensers, then its
        active fixed-rate exchanges (``token`` is the datatoken for a dispenser, the
        base token for an exchange)."""
        address = _address(datatoken)
        if address is None:
            return []
        calls = self._erc20(address).functions
        dispensers, rates = await concurrently(
            _call_or_none(calls.getDispensers().call(), "ERC20Template.getDispensers"),
            _call_or_none(calls.getFixedRates().call(), "ERC20Template.getFixedRates"))
        prices: list[dict[str, Any]] = []
        for dispenser in dispensers or []:
            contract = _contract(self.chain.web3, "Dispenser", to_checksum_address(dispenser))
            status = await _call_or_none(contract.functions.status(address).call(),
                                         "Dispenser.status")
            if status and status[0] is True:
                prices.append({"type": "dispenser", "price": "0",
                               "contract": to_checksum_address(dispenser), "token": datatoken})
        for exchange, exchange_id in rates or []:
            fre = _contract(self.chain.web3, "FixedRateExchange", to_checksum_address(exchange))
            info = await _call_or_none(fre.functions.getExchange(bytes(exchange_id)).call(),
                                       "FixedRateExchange.getExchange")
            if info and info[6] is True:
                prices.append({"type": "fixedrate", "price": format_ether(int(info[5])),
                               "token": to_checksum_address(info[3]),
                               "contract": to_checksum_address(exchange),
                               "exchangeId": "0x" + bytes(exchange_id).hex()})
        return prices

    async def node_stats(self, ddo: Mapping[str, Any],
                         previous: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        """Ocean Node's ``indexedMetadata.stats`` of ``ddo``: one entry per service that
        names a datatoken, its ``orders`` carried over from ``previous`` (same datatoken
        and service id)."""
        counted = {(str(e.get("datatokenAddress", "")).lower(), e.get("serviceId")):
                   e.get("orders") for e in node_stats_of(previous)}
        stats: list[dict[str, Any]] = []
        for token in await self.datatokens(ddo):
            orders = counted.get((str(token["address"]).lower(), token["serviceId"]))
            stats.append({"datatokenAddress": token["address"], "name": token["name"],
                          "symbol": token["symbol"], "serviceId": token["serviceId"],
                          "orders": orders if isinstance(orders, int) else 0,
                          "prices": await self.node_prices(token["address"])})
        return stats


def format_ether(wei: int) -> str:
    """ethers' ``formatEther``: 18 decimals, trailing zeros dropped, at least one digit
    after the point (``1.0``, ``1.5``, ``0.000000000000000001``)."""
    whole, fraction = divmod(abs(wei), _ONE)
    digits = f"{fraction:018d}".rstrip("0") or "0"
    return f"{'-' if wei < 0 else ''}{whole}.{digits}"


def node_stats_of(ddo: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The ``indexedMetadata.stats`` entries of a stored DDO ([] if it has none)."""
    indexed = ddo.get("indexedMetadata") if ddo else None
    stats = indexed.get("stats") if isinstance(indexed, Mapping) else None
    return [e for e in stats if isinstance(e, dict)] if isinstance(stats, list) else []


class StatsEvents:
    """Which logs change stats, and the datatoken each concerns."""

    def __init__(self, chain: ChainConfig, reader: TokenReader) -> None:
        self.chain = chain
        self.reader = reader
        self.datatoken_topics = _topics("ERC20Template", _DATATOKEN_EVENTS)
        self.exchange_topics = _topics("FixedRateExchange", _EXCHANGE_EVENTS)
        fixed = chain.addresses.get("FixedPrice")
        self._fixed_price = _address(fixed) if fixed else None

    @property
    def topics(self) -> list[bytes]:
        return [*self.datatoken_topics, *self.exchange_topics]

    async def classify(self, entry: Any) -> StatsEvent | None:
        """The datatoken a stats log concerns, or None for a log that is not one."""
        topic = bytes(entry["topics"][0])
        emitter = to_checksum_address(entry["address"])
        name = self.datatoken_topics.get(topic)
        if name is not None:
            return StatsEvent(emitter, order=name == "OrderStarted")
        if topic in self.exchange_topics and emitter == self._fixed_price \
                and len(entry["topics"]) > 1:
            token = await self.reader.exchange_datatoken(emitter, bytes(entry["topics"][1]))
            return StatsEvent(token, order=False) if token else None
        return None


def indexed_datatokens(ddo: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``datatokens`` of a stored DDO; from its services if it has none (older index).
    A 5.x DDO has both in ``credentialSubject``."""
    fields = subject(ddo)
    listed = fields.get("datatokens")
    if isinstance(listed, list) and listed:
        return [d for d in listed if isinstance(d, dict)]
    services = fields.get("services")
    return [{"address": s["datatokenAddress"]} for s in services if isinstance(s, dict)
            and isinstance(s.get("datatokenAddress"), str)] if isinstance(services, list) else []


def log_position(block: int, log_index: int) -> int:
    """(block, log index) as one increasing integer (stored as the orders cursor)."""
    return (block << 20) | log_index


def merged_stats(previous: Mapping[str, Any] | None, price: dict[str, Any]) -> dict[str, Any]:
    """Aquarius' ``stats`` for a (re)written DDO: the order count carried over."""
    old = previous.get("stats") if previous else None
    orders = old.get("orders") if isinstance(old, dict) else None
    return {"allocated": 0, "orders": orders if isinstance(orders, int) else 0,
            "price": price}
