"""Synchronous Ocean transactions for publishing, the dev chain and tests.

Every helper takes a :class:`Transactor`, the sender of one ``web3.Web3`` connection to
any node (the in-process dev chain, its JSON-RPC shim, anvil, ganache), the deployment's
address map (barge key names: ``ERC721Factory``, ``Ocean``, ``FixedPrice``,
``Dispenser``) and an eth_account ``LocalAccount`` that signs locally. Each sends one
transaction (plus any approval it documents), waits for the receipt and raises
:class:`OceanTxError` unless it succeeded.

Gas limits are fixed, generous constants (an estimate costs a round trip and, on
py-evm, extra EVM runs); ``set_metadata`` estimates because its calldata is unbounded.
Each transaction takes the node's pending nonce. It is not cached across transactions:
a cached nonce goes stale when a dev chain is reverted to a snapshot, and while
eth-tester refuses a nonce that is too high, anvil, ganache and geth queue it, so the
transaction would never be mined. The nonces of transactions still in flight are tracked
by the :class:`Transactor`, so that concurrent senders do not collide.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import TxParams, TxReceipt

from tidegate.chain.contracts import load_artifact
from tidegate.fees.provider_fees import ProviderFee
from tidegate.types import ZERO_ADDRESS

MAX_UINT256 = 2**256 - 1
ONE_TOKEN = 10**18
Variant = Literal["plain", "fixed_rate", "dispenser"]
ConsumeMarketFee = tuple[str, str, int]
NO_CONSUME_MARKET_FEE: ConsumeMarketFee = (ZERO_ADDRESS, ZERO_ADDRESS, 0)

_GAS = {
    "createNftWithErc20": 2_500_000,
    "createNftWithErc20WithFixedRate": 3_000_000,
    "createNftWithErc20WithDispenser": 3_000_000,
    "setMetaDataState": 150_000,
    "mint": 150_000,
    "approve": 100_000,
    "transfer": 100_000,
    "startOrder": 400_000,
    "reuseOrder": 300_000,
    "buyFromFreAndOrder": 800_000,
    "buyFromDispenserAndOrder": 500_000,
}
_RECEIPT_TIMEOUT = 30.0


class OceanTxError(RuntimeError):
    """A transaction could not be sent, or was mined with status 0."""


def contract(w3: Web3, name: str, address: str) -> Contract:
    """A contract object for the ocean-contracts artifact ``name`` at ``address``."""
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=load_artifact(name).abi)


def _address_of(addresses: Mapping[str, object], key: str) -> str:
    value = addresses.get(key)
    if not isinstance(value, str):
        raise OceanTxError(f"the address map has no {key!r} entry")
    return value


def _revert_reason(w3: Web3, tx: TxParams, block_number: int) -> str:
    """Replay a failed transaction as a call on the state before it, for its reason."""
    fields = ("from", "to", "data", "value", "gas")
    call = cast(TxParams, {k: v for k, v in tx.items() if k in fields})
    try:
        w3.eth.call(call, block_identifier=max(block_number - 1, 0))
    except ContractLogicError as exc:
        return str(exc.message or exc)
    except Exception as exc:  # in-process, eth-tester raises its own TransactionFailed
        text = str(exc)
        return text if "revert" in text else f"no reason available ({type(exc).__name__})"
    return "out of gas or reverted without a reason"


class Transactor:
    """Signs and sends the transactions of local accounts over one connection.

    One per ``Web3`` connection, shared by everything that sends over it (the helpers
    below take it as their first argument). It holds the connection's fee parameters
    (read once), one lock per sender (a sender's transactions reach the node in nonce
    order: eth-tester has no mempool and refuses every nonce but the next one), and
    the nonces of its transactions still in flight, so that concurrent senders of one
    account do not collide. Nothing is kept once a sender has nothing in flight, so a
    chain reverted to a snapshot needs no reset.
    """

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self._lock = threading.Lock()
        # Per sender: (the nonce after our latest in-flight one, how many are in flight).
        self._in_flight: dict[str, tuple[int, int]] = {}
        self._sender_locks: dict[str, threading.Lock] = {}
        self._fees: tuple[int, int, int] | None = None  # chain id, maxFee, maxPriorityFee

    def _fee_params(self) -> tuple[int, int, int]:
        if self._fees is None:
            gas_price = int(self.w3.eth.gas_price)
            priority = min(10**9, gas_price)
            # Twice the current price absorbs base-fee drift on a lightly used dev chain.
            self._fees = (int(self.w3.eth.chain_id), 2 * gas_price + priority, priority)
        return self._fees

    def _sender_lock(self, address: str) -> threading.Lock:
        """The lock that orders one sender's transactions."""
        with self._lock:
            return self._sender_locks.setdefault(address.lower(), threading.Lock())

    def _reserve_nonce(self, address: str) -> int:
        """The nonce for a new transaction of ``address``; pair with :meth:`_release_nonce`.

        The node's pending count, or past this object's transactions still in flight
        (another thread's may not be pending on the node yet).
        """
        pending = int(self.w3.eth.get_transaction_count(Web3.to_checksum_address(address),
                                                        "pending"))
        with self._lock:
            following, in_flight = self._in_flight.get(address, (0, 0))
            nonce = max(pending, following) if in_flight else pending
            self._in_flight[address] = (nonce + 1, in_flight + 1)
            return nonce

    def _release_nonce(self, address: str) -> None:
        """The transaction that reserved a nonce was mined, or will never be sent."""
        with self._lock:
            following, in_flight = self._in_flight.get(address, (0, 0))
            if in_flight <= 1:
                self._in_flight.pop(address, None)
            else:
                self._in_flight[address] = (following, in_flight - 1)

    def in_flight(self, address: str) -> int:
        """How many transactions of ``address`` this object has sent and not seen mined."""
        with self._lock:
            return self._in_flight.get(address, (0, 0))[1]

    def send(
        self, account: LocalAccount, function: ContractFunction, gas: int | None = None
    ) -> TxReceipt:
        """Sign ``function`` locally, send it, wait for a successful receipt.

        ``gas`` defaults to the fixed limit for the function's name, else an estimate.
        If the node refuses the transaction, the nonce is re-read and, if it changed
        (another sender used it meanwhile), the transaction is sent once more. Raises
        :class:`OceanTxError` if sending fails or the receipt has status 0.
        """
        w3, what = self.w3, function.fn_name
        chain_id, max_fee, priority_fee = self._fee_params()
        params: dict[str, Any] = {
            "from": account.address,
            "chainId": chain_id,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": priority_fee,
            "value": 0,
        }
        gas = gas if gas is not None else _GAS.get(what)
        if gas is None:
            try:
                gas = int(function.estimate_gas(cast(TxParams, params))) * 6 // 5
            except Exception as exc:  # ContractLogicError, or eth-tester's own in-process
                raise OceanTxError(f"{what} would fail: {exc}") from exc
        params["gas"] = gas
        with self._sender_lock(account.address):
            params["nonce"] = self._reserve_nonce(account.address)
            reserved = True
            try:
                for attempt in (1, 2):
                    tx = function.build_transaction(cast(TxParams, params))
                    signed = account.sign_transaction(cast(dict[str, Any], tx))
                    try:
                        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
                        break
                    except Exception as exc:
                        # Someone else may have used the nonce meanwhile: re-read it, once.
                        self._release_nonce(account.address)
                        reserved = False
                        used = params["nonce"]
                        params["nonce"] = self._reserve_nonce(account.address)
                        reserved = True
                        if attempt == 2 or params["nonce"] == used:
                            raise OceanTxError(f"{what}: sending failed: {exc}") from exc
            except BaseException:
                if reserved:
                    self._release_nonce(account.address)
                raise
        try:
            receipt = w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=_RECEIPT_TIMEOUT, poll_latency=0.01
            )
        finally:
            self._release_nonce(account.address)
        if receipt["status"] != 1:
            reason = _revert_reason(w3, tx, int(receipt["blockNumber"]))
            raise OceanTxError(f"{what} failed in tx {tx_hash.to_0x_hex()}: {reason}")
        return receipt

    def send_hash(self, account: LocalAccount, function: ContractFunction) -> HexStr:
        """:meth:`send`, returning the transaction hash (``0x`` hex)."""
        return HexStr(self.send(account, function)["transactionHash"].to_0x_hex())


def _event_args(source: Contract, event: str, receipt: TxReceipt) -> list[Any]:
    """Arguments of ``event`` logs emitted by ``source`` itself in ``receipt``."""
    decoded = source.events[event]().process_receipt(receipt, errors=DISCARD)
    return [log["args"] for log in decoded if log["address"] == source.address]


@dataclass(frozen=True)
class CreatedTokens:
    """What one factory call created (addresses EIP-55, hashes ``0x`` hex).

    ``exchange_id`` (``0x`` + 64 hex) and ``exchange`` (the FixedRateExchange contract)
    only for ``fixed_rate``; ``dispenser`` only for ``dispenser``.
    """

    nft: str
    datatoken: str
    tx: str
    exchange_id: str | None = None
    exchange: str | None = None
    dispenser: str | None = None


def create_data_nft_with_datatoken(
    txs: Transactor,
    addresses: Mapping[str, object],
    publisher: LocalAccount,
    variant: Variant = "plain",
    name: str = "Tidegate Data NFT",
    symbol: str = "TDNFT",
    **options: Any,
) -> tuple[str, str]:
    """:func:`create_asset_tokens`, returning ``(nft_address, datatoken_address)``."""
    created = create_asset_tokens(txs, addresses, publisher, variant, name, symbol, **options)
    return created.nft, created.datatoken


def create_asset_tokens(
    txs: Transactor,
    addresses: Mapping[str, object],
    publisher: LocalAccount,
    variant: Variant = "plain",
    name: str = "Tidegate Data NFT",
    symbol: str = "TDNFT",
    *,
    datatoken_name: str = "Tidegate Datatoken",
    datatoken_symbol: str = "TDT",
    nft_uri: str = "https://oceanprotocol.com/nft/",
    transferable: bool = True,
    cap: int = MAX_UINT256,
    publish_market_fee: ConsumeMarketFee = NO_CONSUME_MARKET_FEE,
    rate: int = ONE_TOKEN,
    base_token: str | None = None,
    market_fee: int = 0,
    dispenser_max_tokens: int = 100 * ONE_TOKEN,
    dispenser_max_balance: int = 100 * ONE_TOKEN,
) -> CreatedTokens:
    """Create a data NFT and its first datatoken in one factory call.

    ``plain`` uses ERC20 template 1 (``createNftWithErc20``); ``fixed_rate`` (an FRE
    selling minted datatokens for ``rate`` base-token units each, OCEAN by default)
    and ``dispenser`` (free datatokens) use template 2, as only it can sell and order
    in one transaction. The publisher owns the NFT, mints and collects payments.
    ``publish_market_fee`` is ``(address, token, amount)``. The exchange id and the
    dispenser come from the datatoken's own ``NewFixedRate``/``NewDispenser`` events.
    """
    factory = contract(txs.w3, "ERC721Factory", _address_of(addresses, "ERC721Factory"))
    me = publisher.address
    fee_address, fee_token, fee_amount = publish_market_fee
    nft_data = (name, symbol, 1, nft_uri, transferable, me)
    erc_data: tuple[int, list[str], list[str], list[int], list[bytes]] = (
        1 if variant == "plain" else 2,
        [datatoken_name, datatoken_symbol],
        [me, me, fee_address, fee_token],
        [cap, fee_amount],
        [],
    )
    if variant == "plain":
        function = factory.functions.createNftWithErc20(nft_data, erc_data)
    elif variant == "fixed_rate":
        base = base_token or _address_of(addresses, "Ocean")
        base_decimals = int(contract(txs.w3, "ERC20Template", base).functions.decimals().call())
        fixed_data = (
            _address_of(addresses, "FixedPrice"),
            [base, me, me, ZERO_ADDRESS],
            [base_decimals, 18, rate, market_fee, 1],
        )
        function = factory.functions.createNftWithErc20WithFixedRate(nft_data, erc_data, fixed_data)
    elif variant == "dispenser":
        dispenser_data = (
            _address_of(addresses, "Dispenser"),
            dispenser_max_tokens,
            dispenser_max_balance,
            True,
            ZERO_ADDRESS,
        )
        function = factory.functions.createNftWithErc20WithDispenser(
            nft_data, erc_data, dispenser_data
        )
    else:
        raise ValueError(f"unknown datatoken variant {variant!r}")
    receipt = txs.send(publisher, function)
    nfts = _event_args(factory, "NFTCreated", receipt)
    tokens = _event_args(factory, "TokenCreated", receipt)
    if len(nfts) != 1 or len(tokens) != 1:
        raise OceanTxError("the factory did not report exactly one NFT and one datatoken")
    nft, datatoken = str(nfts[0]["newTokenAddress"]), str(tokens[0]["newTokenAddress"])
    created = CreatedTokens(nft=nft, datatoken=datatoken,
                            tx=receipt["transactionHash"].to_0x_hex())
    if variant == "plain":
        return created
    token = contract(txs.w3, "ERC20TemplateEnterprise", datatoken)
    if variant == "fixed_rate":
        rates = _event_args(token, "NewFixedRate", receipt)
        if len(rates) != 1:
            raise OceanTxError("the datatoken did not report exactly one fixed-rate exchange")
        return replace(created, exchange_id="0x" + bytes(rates[0]["exchangeId"]).hex(),
                       exchange=str(rates[0]["exchangeContract"]))
    dispensers = _event_args(token, "NewDispenser", receipt)
    if len(dispensers) != 1:
        raise OceanTxError("the datatoken did not report exactly one dispenser")
    return replace(created, dispenser=str(dispensers[0]["dispenserContract"]))


def set_metadata(
    txs: Transactor,
    publisher: LocalAccount,
    nft: str,
    state: int,
    provider_url: str,
    provider_address: str,
    flags: bytes,
    data: bytes,
    data_hash: bytes,
) -> HexStr:
    """``nft.setMetaData`` without metadata proofs; returns the tx hash (``0x`` hex).

    ``flags``: 0 plain, 1 LZMA-compressed, 2 encrypted (ocean.py's convention);
    ``data_hash`` is the 32-byte sha256 of the plain DDO. Gas is estimated.
    """
    token = contract(txs.w3, "ERC721Template", nft)
    function = token.functions.setMetaData(
        state, provider_url, provider_address, flags, data, data_hash, []
    )
    return txs.send_hash(publisher, function)


def set_metadata_state(txs: Transactor, publisher: LocalAccount, nft: str, state: int) -> HexStr:
    """``nft.setMetaDataState`` (0 active, 1 end-of-life, ...); returns the tx hash."""
    function = contract(txs.w3, "ERC721Template", nft).functions.setMetaDataState(state)
    return txs.send_hash(publisher, function)


def mint_datatoken(
    txs: Transactor, minter: LocalAccount, datatoken: str, to: str, amount: int
) -> HexStr:
    """Mint ``amount`` base units of ``datatoken`` to ``to``; returns the tx hash."""
    function = contract(txs.w3, "ERC20Template", datatoken).functions.mint(
        Web3.to_checksum_address(to), amount
    )
    return txs.send_hash(minter, function)


def approve(txs: Transactor, owner: LocalAccount, token: str, spender: str, amount: int) -> HexStr:
    """ERC-20 ``approve``; returns the tx hash."""
    function = contract(txs.w3, "ERC20Template", token).functions.approve(
        Web3.to_checksum_address(spender), amount
    )
    return txs.send_hash(owner, function)


def transfer(txs: Transactor, sender: LocalAccount, token: str, to: str, amount: int) -> HexStr:
    """ERC-20 ``transfer``; returns the tx hash."""
    function = contract(txs.w3, "ERC20Template", token).functions.transfer(
        Web3.to_checksum_address(to), amount
    )
    return txs.send_hash(sender, function)


def _approve_fees(
    txs: Transactor, payer: LocalAccount, dt: str, charges: list[tuple[str, int]]
) -> None:
    """Approve the datatoken to pull each (token, amount); it pulls fees from msg.sender."""
    totals: dict[str, int] = {}
    for token, amount in charges:
        if amount > 0 and int(token, 16) != 0:
            key = Web3.to_checksum_address(token)
            totals[key] = totals.get(key, 0) + amount
    for token, amount in totals.items():
        approve(txs, payer, token, dt, amount)


def _provider_charge(fee: ProviderFee) -> tuple[str, int]:
    # The contract transfers nothing when the fee address is zero.
    if int(fee.provider_fee_address, 16) == 0:
        return ZERO_ADDRESS, 0
    return fee.provider_fee_token, fee.provider_fee_amount


def start_order(
    txs: Transactor,
    consumer: LocalAccount,
    datatoken: str,
    consumer_address: str,
    service_index: int,
    provider_fee: ProviderFee,
    *,
    consume_market_fee: ConsumeMarketFee = NO_CONSUME_MARKET_FEE,
    approve_fees: bool = True,
) -> HexStr:
    """``datatoken.startOrder``: spends 1 datatoken of ``consumer``; returns the tx hash.

    With ``approve_fees`` the provider and consume-market fee amounts are approved to
    the datatoken first (one ``approve`` per fee token). ``consumer_address`` is the
    order's beneficiary (``OrderStarted.consumer``); ``consumer`` signs and pays.
    """
    dt = contract(txs.w3, "ERC20Template", datatoken)
    if approve_fees:
        charges = [_provider_charge(provider_fee), consume_market_fee[1:]]
        _approve_fees(txs, consumer, dt.address, charges)
    function = dt.functions.startOrder(
        Web3.to_checksum_address(consumer_address),
        service_index,
        provider_fee.as_contract_tuple(),
        consume_market_fee,
    )
    return txs.send_hash(consumer, function)


def reuse_order(
    txs: Transactor,
    payer: LocalAccount,
    datatoken: str,
    order_tx_id: str,
    provider_fee: ProviderFee,
    *,
    approve_fees: bool = True,
) -> HexStr:
    """``datatoken.reuseOrder`` of an earlier order (a fresh provider fee); returns the tx hash."""
    dt = contract(txs.w3, "ERC20Template", datatoken)
    if approve_fees:
        _approve_fees(txs, payer, dt.address, [_provider_charge(provider_fee)])
    function = dt.functions.reuseOrder(
        bytes.fromhex(order_tx_id.removeprefix("0x")), provider_fee.as_contract_tuple()
    )
    return txs.send_hash(payer, function)


def _order_params(
    consumer_address: str, service_index: int, fee: ProviderFee, market: ConsumeMarketFee
) -> tuple[Any, ...]:
    return (
        Web3.to_checksum_address(consumer_address),
        service_index,
        fee.as_contract_tuple(),
        market,
    )


def buy_from_fre_and_order(
    txs: Transactor,
    addresses: Mapping[str, object],
    consumer: LocalAccount,
    datatoken: str,
    consumer_address: str,
    service_index: int,
    provider_fee: ProviderFee,
    *,
    exchange_id: bytes | None = None,
    consume_market_fee: ConsumeMarketFee = NO_CONSUME_MARKET_FEE,
    approve_fees: bool = True,
) -> HexStr:
    """Buy 1 datatoken from the FRE and order it in one tx (template 2); returns the tx hash.

    The exchange defaults to the datatoken's exchange on ``addresses["FixedPrice"]``.
    With ``approve_fees`` the base-token price and the fees are approved to the
    datatoken (not the FRE): the datatoken pulls them from ``consumer``.
    """
    dt = contract(txs.w3, "ERC20TemplateEnterprise", datatoken)
    fre = contract(txs.w3, "FixedRateExchange", _address_of(addresses, "FixedPrice"))
    if exchange_id is None:
        rates = [bytes(r[1]) for r in dt.functions.getFixedRates().call() if r[0] == fre.address]
        if not rates:
            raise OceanTxError(f"datatoken {dt.address} has no fixed-rate exchange")
        exchange_id = rates[0]
    price = int(fre.functions.calcBaseInGivenOutDT(exchange_id, ONE_TOKEN, 0).call()[0])
    base_token = str(fre.functions.getExchange(exchange_id).call()[3])
    if approve_fees:
        charges = [(base_token, price), _provider_charge(provider_fee), consume_market_fee[1:]]
        _approve_fees(txs, consumer, dt.address, charges)
    function = dt.functions.buyFromFreAndOrder(
        _order_params(consumer_address, service_index, provider_fee, consume_market_fee),
        (fre.address, exchange_id, price, 0, ZERO_ADDRESS),
    )
    return txs.send_hash(consumer, function)


def buy_from_dispenser_and_order(
    txs: Transactor,
    addresses: Mapping[str, object],
    consumer: LocalAccount,
    datatoken: str,
    consumer_address: str,
    service_index: int,
    provider_fee: ProviderFee,
    *,
    consume_market_fee: ConsumeMarketFee = NO_CONSUME_MARKET_FEE,
    approve_fees: bool = True,
) -> HexStr:
    """Take 1 free datatoken from the dispenser and order it (template 2); returns the tx hash."""
    dt = contract(txs.w3, "ERC20TemplateEnterprise", datatoken)
    if approve_fees:
        charges = [_provider_charge(provider_fee), consume_market_fee[1:]]
        _approve_fees(txs, consumer, dt.address, charges)
    function = dt.functions.buyFromDispenserAndOrder(
        _order_params(consumer_address, service_index, provider_fee, consume_market_fee),
        Web3.to_checksum_address(_address_of(addresses, "Dispenser")),
    )
    return txs.send_hash(consumer, function)
