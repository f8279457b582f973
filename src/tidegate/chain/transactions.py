"""Transactions the provider sends itself (escrow locks and claims), signed locally.

The provider's key never leaves the process: a transaction is built here, signed with
``eth_account`` and sent raw. :class:`ProviderSender` is the one sender of a chain's
provider account inside a process:

- **Nonces.** Sends of one account are serialised by a lock. The nonce is the node's
  ``pending`` transaction count, raised to one past our own latest transaction while
  any of ours is still unconfirmed (a load-balanced RPC can answer a pending count
  that lags the transaction it just accepted; for two minutes after our last send at
  most, so a dropped transaction cannot leave a nonce gap). Nothing is remembered
  once all our transactions are mined, so a dev chain reverted to a snapshot, or
  another process that sent meanwhile, needs no reset. A nonce the node refuses as used (another
  worker process of the same key sent first) is replaced by the next one, up to
  three times.
- **Gas.** Estimated (which also reports a revert and its reason before anything is
  signed), with 20% headroom; fees follow the node's gas price (EIP-1559 fields, a
  maximum of twice the price plus the tip).
- **Errors.** A call that reverts, at estimation or mined with status 0, raises
  :class:`TransactionRevertedError` (400 ``transaction_reverted``) carrying the
  contract's reason; an RPC that cannot be reached, an unknown outcome (no receipt
  in time) and a refused send raise :class:`TransactionUnavailableError` (503). No
  message names the RPC URL or the key.

Sending and waiting are separate (:meth:`ProviderSender.send` returns the hash at
once), so a caller can persist the hash before it waits: a transaction whose receipt
never came can be looked up later instead of being sent again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import aiohttp
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.contract.async_contract import AsyncContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound, Web3Exception
from web3.types import Nonce, TxParams, TxReceipt, Wei

from tidegate.errors import BadRequestError, ServiceUnavailableError

T = TypeVar("T")

GAS_HEADROOM = 1.2
RECEIPT_TIMEOUT = 60.0
RECEIPT_POLL = 0.05
# A tip above the node's whole gas price would make maxFee < tip on quiet dev chains.
MAX_PRIORITY_FEE = 10**9
NONCE_ATTEMPTS = 3
NONCE_FLOOR_SECONDS = 120.0
"""How long our own last nonce overrides a lower pending count: a transaction the node
dropped must not hold every later one back behind a nonce gap."""
# What nodes (geth, anvil, erigon, nethermind, eth-tester) answer for a nonce another
# sender used.
_NONCE_TAKEN = ("nonce too low", "replacement transaction underpriced",
                "nonce has already been used", "already imported",
                "invalid transaction nonce: expected")


class _NonceTaken(Exception):
    """The node refused the nonce: another transaction of this account has it."""


class TransactionRevertedError(BadRequestError):
    """The contract refused the call (at estimation, or mined with status 0)."""

    code = "transaction_reverted"

    def __init__(self, message: str, *, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        """The contract's revert reason ("" when it gave none)."""


class TransactionUnavailableError(ServiceUnavailableError):
    """The transaction could not be sent, or its outcome is not known yet."""

    code = "chain_transaction_unavailable"


@dataclass(frozen=True)
class SentTransaction:
    """A transaction the node accepted: its hash and the nonce it used."""

    tx_hash: str
    nonce: int


def revert_reason(exc: ContractLogicError) -> str:
    """The contract's reason of a revert ("execution reverted: X" -> "X")."""
    text = str(exc.message or exc)
    for prefix in ("execution reverted: ", "execution reverted"):
        if text.startswith(prefix):
            return text[len(prefix):].strip()
    return text


async def chain_call(call: Awaitable[T], what: str) -> T:
    """Await a read; RPC trouble -> 503, a revert -> :class:`TransactionRevertedError`."""
    try:
        return await call
    except ContractLogicError as exc:
        reason = revert_reason(exc)
        raise TransactionRevertedError(f"{what} was refused: {reason}.", reason=reason) from exc
    except (TimeoutError, Web3Exception, aiohttp.ClientError, OSError, ValueError) as exc:
        raise TransactionUnavailableError(
            f"The chain RPC is unavailable ({what}).") from exc


class ProviderSender:
    """Signs and sends the transactions of one account on one chain (see the module)."""

    def __init__(self, web3: AsyncWeb3[Any], private_key: str, *,
                 receipt_timeout: float = RECEIPT_TIMEOUT) -> None:
        self.web3 = web3
        self._account: LocalAccount = Account.from_key(private_key)
        self.receipt_timeout = receipt_timeout
        self._lock = asyncio.Lock()
        self._next_nonce: int | None = None  # one past our latest unconfirmed transaction
        self._unconfirmed: set[str] = set()
        self._floor_until = 0.0  # monotonic time after which the node's count is trusted
        self._chain_id: int | None = None

    def __repr__(self) -> str:  # never the key
        return f"ProviderSender({self.address})"

    @property
    def address(self) -> str:
        return str(self._account.address)

    async def send(self, function: AsyncContractFunction, what: str) -> SentTransaction:
        """Estimate, sign and send ``function`` (a bound contract call); return at once."""
        async with self._lock:
            if self._chain_id is None:
                self._chain_id = int(await chain_call(self.web3.eth.chain_id, what))
            base: TxParams = {"from": self._account.address, "chainId": self._chain_id}
            gas = await chain_call(function.estimate_gas(base), what)
            gas_price = int(await chain_call(self.web3.eth.gas_price, what))
            floor = -1
            for attempt in range(NONCE_ATTEMPTS):
                nonce = int(await chain_call(self.web3.eth.get_transaction_count(
                    self._account.address, "pending"), what))
                if (self._unconfirmed and self._next_nonce is not None
                        and time.monotonic() < self._floor_until):
                    nonce = max(nonce, self._next_nonce)
                nonce = max(nonce, floor)
                try:
                    tx_hash = await self._sign_and_send(function, what, self._chain_id, nonce,
                                                        gas, gas_price)
                except _NonceTaken as exc:
                    # Another process sent from this account with that nonce: take the
                    # next one (a few times, then give up like any refused send).
                    floor = nonce + 1
                    if attempt + 1 == NONCE_ATTEMPTS:
                        raise TransactionUnavailableError(
                            f"The chain RPC did not accept the transaction ({what}).") from exc
                    continue
                self._next_nonce = nonce + 1
                self._unconfirmed.add(tx_hash)
                self._floor_until = time.monotonic() + NONCE_FLOOR_SECONDS
                return SentTransaction(tx_hash, nonce)
            raise AssertionError("unreachable")  # the loop returns or raises

    async def _sign_and_send(self, function: AsyncContractFunction, what: str, chain_id: int,
                             nonce: int, gas: int, gas_price: int) -> str:
        priority = min(MAX_PRIORITY_FEE, gas_price)
        params: TxParams = {
            "from": self._account.address, "chainId": chain_id, "nonce": Nonce(nonce),
            "gas": int(gas * GAS_HEADROOM),
            "maxFeePerGas": Wei(2 * gas_price + priority),
            "maxPriorityFeePerGas": Wei(priority),
        }
        tx = await chain_call(function.build_transaction(params), what)
        signed = self._account.sign_transaction(cast(dict[str, Any], tx))
        try:
            raw_hash = await self.web3.eth.send_raw_transaction(signed.raw_transaction)
        except ContractLogicError as exc:
            reason = revert_reason(exc)
            raise TransactionRevertedError(f"{what} was refused: {reason}.",
                                           reason=reason) from exc
        except (TimeoutError, Web3Exception, aiohttp.ClientError, OSError, ValueError) as exc:
            text = str(exc).lower()
            if "already known" in text:  # this very transaction is in the node's pool
                return HexBytes(signed.hash).to_0x_hex()
            if any(marker in text for marker in _NONCE_TAKEN):
                raise _NonceTaken from exc
            # Sent or not, the pending count tells the next send (nothing assumed).
            raise TransactionUnavailableError(
                f"The chain RPC did not accept the transaction ({what}).") from exc
        return HexBytes(raw_hash).to_0x_hex()

    async def receipt(self, tx_hash: str, what: str) -> TxReceipt:
        """Wait for the receipt of ``tx_hash``; raise unless it succeeded.

        :class:`TransactionUnavailableError` when there is none within
        ``receipt_timeout`` (the outcome is then unknown: it may still be mined).
        """
        try:
            receipt = await self.web3.eth.wait_for_transaction_receipt(
                HexBytes(tx_hash), timeout=self.receipt_timeout, poll_latency=RECEIPT_POLL)
        except TimeExhausted as exc:
            raise TransactionUnavailableError(f"No receipt yet ({what}).") from exc
        except (TimeoutError, Web3Exception, aiohttp.ClientError, OSError, ValueError) as exc:
            raise TransactionUnavailableError(
                f"The chain RPC is unavailable ({what}).") from exc
        self._confirmed(tx_hash)
        if receipt["status"] != 1:
            raise TransactionRevertedError(f"{what} reverted on chain.")
        return receipt

    async def find_receipt(self, tx_hash: str, what: str) -> TxReceipt | None:
        """The receipt of ``tx_hash`` if it was mined (whatever its status), else None."""
        try:
            receipt = await self.web3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None
        except (TimeoutError, Web3Exception, aiohttp.ClientError, OSError, ValueError) as exc:
            raise TransactionUnavailableError(
                f"The chain RPC is unavailable ({what}).") from exc
        self._confirmed(tx_hash)
        return receipt

    async def is_pending(self, tx_hash: str, what: str) -> bool:
        """True if the node knows ``tx_hash`` but has not mined it (in its mempool)."""
        try:
            tx = await self.web3.eth.get_transaction(HexBytes(tx_hash))
        except TransactionNotFound:
            return False
        except (TimeoutError, Web3Exception, aiohttp.ClientError, OSError, ValueError) as exc:
            raise TransactionUnavailableError(
                f"The chain RPC is unavailable ({what}).") from exc
        return tx.get("blockNumber") is None

    async def transact(self, function: AsyncContractFunction, what: str) -> TxReceipt:
        """:meth:`send` then :meth:`receipt`."""
        sent = await self.send(function, what)
        return await self.receipt(sent.tx_hash, what)

    def _confirmed(self, tx_hash: str) -> None:
        self._unconfirmed.discard(tx_hash)
        if not self._unconfirmed:
            self._next_nonce = None
