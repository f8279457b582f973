"""The consumer's chain access: reads, and transactions signed locally with its key.

Any EVM JSON-RPC node. Contract ABIs come from the ``ocean-contracts`` package; the
contract addresses come from the asset itself (its datatoken lists its fixed-rate
exchanges and dispensers), so no address file is needed. Errors never carry the RPC
URL (it may hold an API key) or the key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar, cast

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception
from web3.types import TxParams, TxReceipt

from tidegate.auth.signatures import message_digest
from tidegate.chain.contracts import load_artifact
from tidegate.consumer.errors import ChainError, UsageProblem, one_line

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
ONE_TOKEN = 10**18
RECEIPT_TIMEOUT = 180.0
T = TypeVar("T")


def format_amount(amount: int, decimals: int = 18) -> str:
    """``amount`` base units as a decimal number without trailing zeros."""
    value = Decimal(amount).scaleb(-decimals).normalize()
    text = f"{value:f}"
    return text


class Wallet:
    """The consumer's key: its address and request signatures (the key is never shown)."""

    def __init__(self, key: str) -> None:
        try:
            self._account: LocalAccount = Account.from_key(key.strip())
        except (ValueError, TypeError, AttributeError):
            raise UsageProblem("the consumer key is not a private key (64 hex digits)") from None

    @property
    def account(self) -> LocalAccount:
        return self._account

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign(self, message: str) -> str:
        """EIP-191 over keccak(message), as the provider checks signed requests."""
        signed = self._account.sign_message(encode_defunct(primitive=message_digest(message)))
        return "0x" + bytes(signed.signature).hex()

    def __repr__(self) -> str:
        return f"Wallet({self.address})"


@dataclass
class Spent:
    """What the transactions of one command cost in gas."""

    gas_wei: int = 0
    transactions: list[str] = field(default_factory=list)


class Chain:
    """A JSON-RPC connection and the wallet that signs this command's transactions."""

    def __init__(self, rpc_url: str, wallet: Wallet, *, timeout: float = 60.0) -> None:
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
        self.wallet = wallet
        self.spent = Spent()
        self._chain_id: int | None = None

    # -- reads ---------------------------------------------------------------------

    def rpc(self, what: str, call: Callable[[], T]) -> T:
        """Run one RPC read; connection failures become a one-line :class:`ChainError`."""
        try:
            return call()
        except ContractLogicError as exc:
            raise ChainError(f"{what} reverted: {one_line(str(exc.message or exc))}") from None
        except (OSError, Web3Exception, ValueError) as exc:
            raise ChainError(f"the chain RPC failed while {what} ({type(exc).__name__})") from None

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self.rpc("reading the chain id", lambda: int(self.w3.eth.chain_id))
        return self._chain_id

    def contract(self, name: str, address: str) -> Contract:
        return self.w3.eth.contract(address=Web3.to_checksum_address(address),
                                    abi=load_artifact(name).abi)

    def call(self, what: str, function: ContractFunction) -> Any:
        return self.rpc(what, function.call)

    def token_info(self, token: str) -> tuple[str, int]:
        """(symbol, decimals) of an ERC-20; ``("tokens", 18)`` when it does not say."""
        erc20 = self.contract("ERC20Template", token)
        try:
            return str(erc20.functions.symbol().call()), int(erc20.functions.decimals().call())
        except (OSError, Web3Exception, ValueError, OverflowError):
            return "tokens", 18

    def balance(self, token: str, owner: str | None = None) -> int:
        erc20 = self.contract("ERC20Template", token)
        who = Web3.to_checksum_address(owner or self.wallet.address)
        return int(self.call("reading a token balance", erc20.functions.balanceOf(who)))

    def allowance(self, token: str, spender: str) -> int:
        erc20 = self.contract("ERC20Template", token)
        return int(self.call("reading an allowance", erc20.functions.allowance(
            Web3.to_checksum_address(self.wallet.address), Web3.to_checksum_address(spender))))

    def latest_block(self) -> tuple[int, int]:
        """(number, timestamp) of the latest block."""
        block = self.rpc("reading the latest block", lambda: self.w3.eth.get_block("latest"))
        return int(block["number"]), int(block["timestamp"])

    # -- transactions ----------------------------------------------------------------

    def _fees(self) -> dict[str, int]:
        def read() -> dict[str, int]:
            latest = self.w3.eth.get_block("latest")
            gas_price = int(self.w3.eth.gas_price)
            base = latest.get("baseFeePerGas")
            if base is None:
                return {"gasPrice": gas_price}
            priority = min(10**9, gas_price)
            return {"maxFeePerGas": 2 * int(base) + priority, "maxPriorityFeePerGas": priority}

        return self.rpc("reading the gas price", read)

    def _revert_reason(self, tx: TxParams, block_number: int) -> str:
        call = cast(TxParams, {k: v for k, v in tx.items()
                               if k in ("from", "to", "data", "value")})
        try:
            self.w3.eth.call(call, block_identifier=max(block_number - 1, 0))
        except ContractLogicError as exc:
            return one_line(str(exc.message or exc))
        except Exception as exc:  # a node's own error type
            return f"no reason given ({type(exc).__name__})"
        return "out of gas or reverted without a reason"

    def send(self, what: str, function: ContractFunction) -> TxReceipt:
        """Sign ``function`` with the wallet, send it, wait for a successful receipt."""
        sender = Web3.to_checksum_address(self.wallet.address)
        params: dict[str, Any] = {"from": sender, "chainId": self.chain_id, "value": 0}
        params.update(self._fees())
        try:
            gas = int(function.estimate_gas(cast(TxParams, {"from": sender, "value": 0})))
        except ContractLogicError as exc:
            raise ChainError(f"{what} would fail: {one_line(str(exc.message or exc))}") from None
        except (OSError, Web3Exception, ValueError) as exc:
            text = str(exc)
            if "revert" in text.lower() or "insufficient" in text.lower():
                raise ChainError(f"{what} would fail: {one_line(text, 200)}") from None
            raise ChainError(f"the chain RPC failed while estimating {what} "
                             f"({type(exc).__name__})") from None
        params["gas"] = gas * 5 // 4 + 10_000
        params["nonce"] = self.rpc("reading the account nonce", lambda: int(
            self.w3.eth.get_transaction_count(sender, "pending")))
        tx = function.build_transaction(cast(TxParams, params))
        signed = self.wallet.account.sign_transaction(cast(dict[str, Any], tx))
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except (OSError, Web3Exception, ValueError) as exc:
            text = str(exc) if not isinstance(exc, OSError) else type(exc).__name__
            raise ChainError(f"the node refused {what}: {one_line(text, 200)}") from None
        hex_hash = tx_hash.to_0x_hex()
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=RECEIPT_TIMEOUT, poll_latency=0.2)
        except TimeExhausted:
            raise ChainError(f"{what} ({hex_hash}) was not mined within "
                             f"{RECEIPT_TIMEOUT:.0f} s") from None
        except (OSError, Web3Exception, ValueError) as exc:
            raise ChainError(f"the chain RPC failed while waiting for {what} ({hex_hash}, "
                             f"{type(exc).__name__})") from None
        price = int(receipt.get("effectiveGasPrice", params.get("gasPrice", 0)))
        self.spent.gas_wei += int(receipt["gasUsed"]) * price
        self.spent.transactions.append(hex_hash)
        if receipt["status"] != 1:
            reason = self._revert_reason(tx, int(receipt["blockNumber"]))
            raise ChainError(f"{what} failed in transaction {hex_hash}: {reason}")
        return receipt

    def approve(self, token: str, spender: str, amount: int, what: str) -> None:
        """``approve`` unless the allowance already covers ``amount``."""
        if amount <= 0 or self.allowance(token, spender) >= amount:
            return
        erc20 = self.contract("ERC20Template", token)
        self.send(f"approving {what}", erc20.functions.approve(
            Web3.to_checksum_address(spender), amount))
