"""Ordering a service the way ocean.py 3.1 / ocean.js 3.x do.

1. Resolve the DDO at the metadata cache and pick the service.
2. Look on chain for this consumer's latest order of that service (``OrderStarted``
   logs of the datatoken) and let the provider's ``initialize`` say whether it is still
   valid (``validOrder``): then nothing is spent.
3. Otherwise take the quote (the signed provider fee), get one datatoken if the
   consumer holds none (buy it from the datatoken's fixed-rate exchange, approving the
   base token, or take it from its dispenser), approve the provider fee and call
   ``startOrder``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from web3 import Web3

from tidegate.consumer.chain import ONE_TOKEN, ZERO_ADDRESS, Chain, Wallet, format_amount
from tidegate.consumer.errors import ChainError, ConsumerError, UsageProblem
from tidegate.consumer.http import MetadataCache, Provider, check_url
from tidegate.fees.provider_fees import ProviderFee

SCAN_CHUNK = 5_000
"""Blocks per ``eth_getLogs`` request when looking for an earlier order."""
SCAN_LIMIT = 200_000
"""How far back (in blocks) an earlier order is looked for."""
NO_MARKET_FEE = (ZERO_ADDRESS, ZERO_ADDRESS, 0)


@dataclass(frozen=True)
class ServiceRef:
    """One service of a resolved asset."""

    did: str
    ddo: dict[str, Any]
    raw: dict[str, Any]
    index: int

    @property
    def id(self) -> str:
        return str(self.raw.get("id", ""))

    @property
    def type(self) -> str:
        return str(self.raw.get("type", ""))

    @property
    def datatoken(self) -> str:
        value = self.raw.get("datatokenAddress")
        if not isinstance(value, str) or not Web3.is_address(value):
            raise ConsumerError(f"service {self.id!r} of {self.did} has no datatoken address")
        return Web3.to_checksum_address(value)

    @property
    def endpoint(self) -> str | None:
        value = self.raw.get("serviceEndpoint")
        return value.rstrip("/") if isinstance(value, str) and value else None

    @property
    def timeout(self) -> int:
        try:
            return max(int(self.raw.get("timeout") or 0), 0)
        except (TypeError, ValueError):
            return 0

    @property
    def chain_id(self) -> int:
        try:
            return int(self.ddo["chainId"])
        except (KeyError, TypeError, ValueError):
            raise ConsumerError(f"the DDO of {self.did} has no chainId") from None

    @property
    def name(self) -> str:
        metadata = self.ddo.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        return str(name) if name else self.did


def pick_service(did: str, ddo: dict[str, Any], service_id: str | None,
                 kinds: tuple[str, ...]) -> ServiceRef:
    """The service ``service_id``, or the first one of a type in ``kinds``."""
    services = [s for s in ddo.get("services", []) if isinstance(s, dict)]
    listing = ", ".join(f"{s.get('id')} ({s.get('type')})" for s in services) or "none"
    for index, raw in enumerate(services):
        if service_id is None and raw.get("type") not in kinds:
            continue
        if service_id is not None and str(raw.get("id")) != service_id:
            continue
        if raw.get("type") not in kinds:
            raise UsageProblem(f"service {service_id} of {did} is a {raw.get('type')} service, "
                               f"not {' or '.join(kinds)}")
        return ServiceRef(did, ddo, raw, index)
    if service_id is not None:
        raise UsageProblem(f"{did} has no service {service_id!r} (its services: {listing})")
    raise UsageProblem(f"{did} has no {' or '.join(kinds)} service (its services: {listing})")


@dataclass
class Session:
    """What one command talks to: the chain (with the wallet), the metadata cache, providers."""

    http: httpx.Client
    wallet: Wallet
    rpc_url: str
    provider_url: str | None = None
    metadata_url: str | None = None
    _chain: Chain | None = field(default=None, repr=False)
    _providers: dict[str, Provider] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.provider_url:
            self.provider_url = check_url(self.provider_url, "--provider-url")
        if self.metadata_url:
            self.metadata_url = check_url(self.metadata_url, "--metadata-url")
        if not self.metadata_url and not self.provider_url:
            raise UsageProblem("give --metadata-url or --provider-url (a Tidegate provider "
                               "serves the metadata API too) to resolve the DID")

    @property
    def chain(self) -> Chain:
        if self._chain is None:
            self._chain = Chain(self.rpc_url, self.wallet)
        return self._chain

    def resolve(self, did: str) -> dict[str, Any]:
        url = self.metadata_url or self.provider_url
        assert url is not None
        return MetadataCache(self.http, url).resolve(did)

    def service(self, did: str, service_id: str | None, kinds: tuple[str, ...]) -> ServiceRef:
        ref = pick_service(did, self.resolve(did), service_id, kinds)
        chain_id = self.chain.chain_id
        if chain_id != ref.chain_id:
            raise UsageProblem(f"{did} is on chain {ref.chain_id}, but the RPC is chain "
                               f"{chain_id}")
        return ref

    def provider_for(self, ref: ServiceRef) -> Provider:
        """--provider-url if given, else the service's own ``serviceEndpoint``."""
        url = self.provider_url or ref.endpoint
        if not url:
            raise ConsumerError(f"service {ref.id} of {ref.did} names no provider; "
                                f"give --provider-url")
        url = check_url(url, "the service endpoint")
        if url not in self._providers:
            self._providers[url] = Provider(self.http, url)
        return self._providers[url]


@dataclass
class Cost:
    amount: int
    symbol: str
    decimals: int

    def __str__(self) -> str:
        return f"{format_amount(self.amount, self.decimals)} {self.symbol}"


@dataclass
class OrderOutcome:
    """One ordered (or reused) service."""

    tx: str
    reused: bool = False
    datatoken_from: str = ""
    """``held``, ``fixed-rate exchange``, ``dispenser``; empty when reused."""
    datatoken_symbol: str = "datatoken"
    price: Cost | None = None
    provider_fee: Cost | None = None
    gas_wei: int = 0
    transactions: list[str] = field(default_factory=list)
    reused_from: str = ""
    """The earlier order a ``reuseOrder`` renewed."""

    @property
    def summary(self) -> str:
        if self.reused:
            return "reusing a still-valid order"
        if self.datatoken_from == "reuseOrder":
            return "renewed the provider fee of a still-valid order"
        return "ordered"

    def describe(self) -> list[tuple[str, str]]:
        """(label, text) lines for the terminal."""
        if self.reused:
            return [("order tx", self.tx), ("cost", "nothing: a still-valid order was reused")]
        if self.datatoken_from == "fixed-rate exchange":
            got = f"bought 1 {self.datatoken_symbol} for {self.price} at the fixed-rate exchange"
        elif self.datatoken_from == "dispenser":
            got = f"1 {self.datatoken_symbol} from the dispenser (free)"
        elif self.datatoken_from == "reuseOrder":
            got = f"none spent (reuseOrder of {self.reused_from} with a fresh provider fee)"
        else:
            got = f"1 {self.datatoken_symbol} you held"
        return [
            ("order tx", self.tx),
            ("datatoken", got),
            ("provider fee", str(self.provider_fee) if self.provider_fee else "none"),
            ("gas", f"{format_amount(self.gas_wei)} in the chain's native coin "
                    f"({len(self.transactions)} transaction"
                    f"{'s' if len(self.transactions) != 1 else ''})"),
        ]


def find_earlier_order(chain: Chain, ref: ServiceRef, consumer: str) -> str | None:
    """The latest ``OrderStarted`` of ``ref`` for ``consumer`` paid by this wallet, if any.

    Orders older than the service timeout are skipped; the provider has the last word
    (``initialize`` with ``transferTxId``). Any RPC trouble ends the search quietly.
    """
    datatoken = chain.contract("ERC20Template", ref.datatoken)
    event = datatoken.events.OrderStarted()
    me = chain.wallet.address
    try:
        latest, now = chain.latest_block()
        event_info = ref.ddo.get("event")
        first = max(latest - SCAN_LIMIT, 0)
        if isinstance(event_info, dict) and isinstance(event_info.get("block"), int):
            first = max(first, int(event_info["block"]))
        high = latest
        while high >= first:
            low = max(high - SCAN_CHUNK + 1, first)
            logs = event.get_logs(from_block=low, to_block=high,
                                  argument_filters={"consumer": Web3.to_checksum_address(
                                      consumer)})
            for log in sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"]),
                              reverse=True):
                args = log["args"]
                if log["address"] != datatoken.address or int(args["serviceIndex"]) != ref.index:
                    continue
                if str(args["payer"]).lower() != me.lower():
                    continue
                if ref.timeout and int(args["timestamp"]) + ref.timeout < now:
                    return None  # older ones have expired too
                return str(log["transactionHash"].to_0x_hex())
            high = low - 1
    except ChainError:
        return None
    except Exception:  # a node that limits or refuses eth_getLogs: order afresh
        return None
    return None


@dataclass
class Route:
    """How the one datatoken an order spends is obtained."""

    source: str
    """``held``, ``fixed-rate exchange`` or ``dispenser``."""
    contract: str = ZERO_ADDRESS
    exchange_id: bytes = b""
    price: Cost | None = None
    base_token: str = ZERO_ADDRESS


def find_route(chain: Chain, datatoken: str, symbol: str) -> Route:
    """Held already, else the first active fixed-rate exchange, else an open dispenser."""
    me = chain.wallet.address
    if chain.balance(datatoken) >= ONE_TOKEN:
        return Route("held")
    dt = chain.contract("ERC20Template", datatoken)
    rates = chain.call("listing the fixed-rate exchanges", dt.functions.getFixedRates())
    for fre_address, exchange_id in rates:
        fre = chain.contract("FixedRateExchange", fre_address)
        if not chain.call("reading the exchange", fre.functions.isActive(exchange_id)):
            continue
        exchange = chain.call("reading the exchange", fre.functions.getExchange(exchange_id))
        base_token = str(exchange[3])
        price = int(chain.call("reading the price",
                               fre.functions.calcBaseInGivenOutDT(exchange_id, ONE_TOKEN, 0))[0])
        base_symbol, base_decimals = chain.token_info(base_token)
        return Route("fixed-rate exchange", fre.address, bytes(exchange_id),
                     Cost(price, base_symbol, base_decimals), base_token)
    for dispenser_address in chain.call("listing the dispensers", dt.functions.getDispensers()):
        dispenser = chain.contract("Dispenser", dispenser_address)
        status = chain.call("reading the dispenser", dispenser.functions.status(dt.address))
        allowed = str(status[6])
        if not status[0] or (int(allowed, 16) != 0 and allowed.lower() not in (
                me.lower(), dt.address.lower())):
            continue
        return Route("dispenser", dispenser.address)
    raise ConsumerError(f"{me} holds no {symbol} (the datatoken {dt.address}), and it has no "
                        f"active fixed-rate exchange or dispenser to get one from")


def parse_fee(quote: Any, provider: Provider) -> ProviderFee:
    fee = quote.get("providerFee") if isinstance(quote, dict) else None
    try:
        if not isinstance(fee, dict):
            raise ValueError("no providerFee")
        return ProviderFee.from_json(fee)
    except ValueError as exc:
        raise ConsumerError(f"the provider at {provider.origin} quoted no usable provider fee "
                            f"({exc})") from None


def fee_cost(chain: Chain, fee: ProviderFee) -> Cost | None:
    """What the provider fee charges (None: nothing; the contract skips a zero address)."""
    if int(fee.provider_fee_address, 16) == 0 or fee.provider_fee_amount == 0:
        return None
    symbol, decimals = chain.token_info(fee.provider_fee_token)
    return Cost(fee.provider_fee_amount, symbol, decimals)


def approve_charges(chain: Chain, spender: str, charges: list[tuple[str, Cost]]) -> None:
    """Check the balances and approve ``spender`` for the total per token."""
    totals: dict[str, Cost] = {}
    for token, cost in charges:
        key = Web3.to_checksum_address(token)
        if key in totals:
            totals[key] = Cost(totals[key].amount + cost.amount, cost.symbol, cost.decimals)
        else:
            totals[key] = Cost(cost.amount, cost.symbol, cost.decimals)
    for token, total in totals.items():
        held = chain.balance(token)
        if held < total.amount:
            raise ConsumerError(f"the order costs {total}, but {chain.wallet.address} holds "
                                f"{Cost(held, total.symbol, total.decimals)}")
        chain.approve(token, spender, total.amount, str(total))


def start_order(chain: Chain, ref: ServiceRef, fee: ProviderFee,
                beneficiary: str) -> OrderOutcome:
    """Get a datatoken if needed, approve the fees and order for ``beneficiary``.

    Template 2 (enterprise) datatokens are sold only inside the order transaction
    (``buyFromFreAndOrder``, ``buyFromDispenserAndOrder``: the exchange and dispenser
    let only the datatoken swap); template 1 datatokens are bought (``buyDT``, after
    approving the base token to the exchange) or dispensed first, then ``startOrder``.
    """
    before = (chain.spent.gas_wei, len(chain.spent.transactions))
    symbol, _ = chain.token_info(ref.datatoken)
    route = find_route(chain, ref.datatoken, symbol)
    provider_cost = fee_cost(chain, fee)
    charges = [(fee.provider_fee_token, provider_cost)] if provider_cost else []
    enterprise = route.source != "held" and int(chain.call(
        "reading the datatoken template",
        chain.contract("ERC20Template", ref.datatoken).functions.getId())) == 2
    dt = chain.contract("ERC20TemplateEnterprise" if enterprise else "ERC20Template",
                        ref.datatoken)
    me = chain.wallet.address
    order = (Web3.to_checksum_address(beneficiary), ref.index, fee.as_contract_tuple(),
             NO_MARKET_FEE)
    if route.source == "fixed-rate exchange" and route.price is not None:
        if enterprise:
            charges.append((route.base_token, route.price))
            function = dt.functions.buyFromFreAndOrder(order, (
                route.contract, route.exchange_id, route.price.amount, 0, ZERO_ADDRESS))
        else:
            approve_charges(chain, route.contract, [(route.base_token, route.price)])
            fre = chain.contract("FixedRateExchange", route.contract)
            chain.send(f"buying 1 {symbol}", fre.functions.buyDT(
                route.exchange_id, ONE_TOKEN, route.price.amount, ZERO_ADDRESS, 0))
            function = dt.functions.startOrder(*order)
    elif route.source == "dispenser":
        if enterprise:
            function = dt.functions.buyFromDispenserAndOrder(order, route.contract)
        else:
            dispenser = chain.contract("Dispenser", route.contract)
            chain.send(f"taking 1 {symbol} from the dispenser", dispenser.functions.dispense(
                dt.address, ONE_TOKEN, Web3.to_checksum_address(me)))
            function = dt.functions.startOrder(*order)
    else:
        function = dt.functions.startOrder(*order)
    approve_charges(chain, dt.address, charges)
    receipt = chain.send(str(function.fn_name), function)
    return OrderOutcome(
        tx=receipt["transactionHash"].to_0x_hex(), datatoken_from=route.source,
        datatoken_symbol=symbol, price=route.price, provider_fee=provider_cost,
        gas_wei=chain.spent.gas_wei - before[0],
        transactions=chain.spent.transactions[before[1]:])


def reuse_order(chain: Chain, ref: ServiceRef, order_tx: str, fee: ProviderFee) -> OrderOutcome:
    """``reuseOrder`` of a still-valid order with a fresh provider fee (compute)."""
    before = (chain.spent.gas_wei, len(chain.spent.transactions))
    provider_cost = fee_cost(chain, fee)
    dt = chain.contract("ERC20Template", ref.datatoken)
    if provider_cost:
        approve_charges(chain, dt.address, [(fee.provider_fee_token, provider_cost)])
    receipt = chain.send("reuseOrder", dt.functions.reuseOrder(
        bytes.fromhex(order_tx.removeprefix("0x")), fee.as_contract_tuple()))
    return OrderOutcome(
        tx=receipt["transactionHash"].to_0x_hex(), datatoken_from="reuseOrder",
        reused_from=order_tx, provider_fee=provider_cost, gas_wei=chain.spent.gas_wei - before[0],
        transactions=chain.spent.transactions[before[1]:])


def order_access(session: Session, did: str, service_id: str | None) -> tuple[
        ServiceRef, OrderOutcome]:
    """Order an access service of ``did`` (or reuse a still-valid order)."""
    ref = session.service(did, service_id, ("access",))
    provider = session.provider_for(ref)
    me = session.wallet.address
    params: dict[str, str] = {"documentId": did, "serviceId": ref.id, "consumerAddress": me}
    earlier = find_earlier_order(session.chain, ref, me)
    if earlier:
        params["transferTxId"] = earlier
    quote = provider.json("initialize", "to quote the order", params=params)
    if isinstance(quote, dict) and isinstance(quote.get("validOrder"), str):
        return ref, OrderOutcome(tx=quote["validOrder"], reused=True)
    fee = parse_fee(quote, provider)
    return ref, start_order(session.chain, ref, fee, me)
