"""A typed client of Ocean's ``Escrow`` contract, seen from the payee (the provider).

The contract (``ocean-contracts`` 3.1.0, ``artifacts/Escrow.json``; barge's address-file
key ``Escrow``) holds what payers deposited, per payer and token. A payer authorizes a
payee with three limits (the most it may have locked at once, the longest lock in
seconds, the most locks at once); the payee then:

- **locks** an amount of a payer's available funds for a job (``createLock``: job id,
  token, payer, amount, expiry in seconds from now); the contract refuses it if the
  payer lacks the funds, if there is no authorization, or if a limit would be passed;
- **claims** at most the locked amount before the lock expires (``claimLockAndWithdraw``
  / ``claimLocksAndWithdraw``): the claimed amount, less the OPC fee the router takes
  on it, is sent to the payee's wallet, the rest of the lock returns to the payer's
  available funds. A claim sent after the lock expired does not revert: the contract
  cancels the lock instead (all of it returns to the payer) and emits ``Canceled``,
  not ``Claimed`` -- :class:`ClaimOutcome` tells the two apart from the receipt;
- **cancels** expired locks (``cancelExpiredLocks``, which anyone may call).

Job ids on chain are ``uint256``: :func:`job_id_hash` maps a job id string to one as
Ocean Node does (SHA-256 of the UTF-8 string). Claims carry no subsidy (``jobType``
0, no subsidy providers).

Reads raise :class:`~tidegate.chain.transactions.TransactionUnavailableError` (503)
when the RPC fails; writes go through :class:`ProviderSender` and raise its errors
(a revert is a 400 ``transaction_reverted`` with the contract's reason).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils import to_checksum_address
from web3 import AsyncWeb3
from web3.contract import AsyncContract
from web3.logs import DISCARD
from web3.types import TxReceipt

from tidegate.chain.clients import ChainConfig
from tidegate.chain.contracts import load_artifact
from tidegate.chain.transactions import ProviderSender, SentTransaction, chain_call
from tidegate.types import ZERO_ADDRESS

ESCROW_KEY = "Escrow"
"""The contract's key in a barge address file (what ocean.js 8 reads too)."""
NO_SUBSIDY_JOB_TYPE = 0


def job_id_hash(job_id: str) -> int:
    """The ``uint256`` job id of the job ``job_id`` on chain (SHA-256, as Ocean Node)."""
    return int.from_bytes(hashlib.sha256(job_id.encode("utf-8")).digest(), "big")


@dataclass(frozen=True)
class Funds:
    """A payer's balance in the escrow, for one token (base units)."""

    available: int
    locked: int


@dataclass(frozen=True)
class Authorization:
    """What a payer allows one payee, for one token."""

    payee: str
    max_locked_amount: int
    current_locked_amount: int
    max_lock_seconds: int
    max_lock_counts: int
    current_locks: int


@dataclass(frozen=True)
class Lock:
    """Funds locked for one job; ``expiry`` and ``start_time`` are chain timestamps."""

    job_id: int
    payer: str
    amount: int
    expiry: int
    token: str
    start_time: int


@dataclass(frozen=True)
class Claim:
    """One lock to claim: ``amount`` (base units) at most the locked amount."""

    job_id: int
    token: str
    payer: str
    amount: int
    proof: bytes = b""


@dataclass(frozen=True)
class ClaimOutcome:
    """What one claim (or cancel) transaction did, read from its receipt's events.

    ``claimed`` maps job id -> amount claimed; ``cancelled`` job id -> amount returned
    to the payer (a lock that had expired).
    """

    tx_hash: str
    claimed: dict[int, int] = field(default_factory=dict)
    cancelled: dict[int, int] = field(default_factory=dict)


class EscrowClient:
    """The provider's view of the Escrow contract on one chain (see the module)."""

    def __init__(self, web3: AsyncWeb3[Any], address: str, sender: ProviderSender) -> None:
        self.address = to_checksum_address(address)
        self.sender = sender
        self.web3 = web3
        self.contract: AsyncContract = web3.eth.contract(
            address=self.address, abi=load_artifact("Escrow").abi)
        self._decimals: dict[str, int] = {}

    @classmethod
    def for_chain(cls, chain: ChainConfig, sender: ProviderSender | None = None) -> EscrowClient:
        """The chain's Escrow (its address-file entry; 503 if it has none).

        ``sender`` defaults to a new sender of the chain's provider key: pass the one
        the process already uses for that account, if any (nonces are counted per sender).
        """
        address = chain.contract_address(ESCROW_KEY)
        return cls(chain.web3, address,
                   sender or ProviderSender(chain.web3, chain.provider_key))

    @property
    def payee(self) -> str:
        """The provider's address: the payee of every lock this client makes."""
        return self.sender.address

    # --- reads -----------------------------------------------------------------------
    async def token_decimals(self, token: str) -> int:
        """``decimals()`` of a payment token (read once: it never changes)."""
        key = token.lower()
        if key not in self._decimals:
            erc20 = self.web3.eth.contract(address=to_checksum_address(token),
                                           abi=load_artifact("ERC20Template").abi)
            self._decimals[key] = int(await chain_call(
                erc20.functions.decimals().call(), "token decimals"))
        return self._decimals[key]

    async def chain_time(self) -> int:
        """The latest block's timestamp (what lock expiries are compared with)."""
        block = await chain_call(self.web3.eth.get_block("latest"), "latest block")
        return int(block["timestamp"])

    async def funds(self, payer: str, token: str) -> Funds:
        available, locked = await chain_call(self.contract.functions.getUserFunds(
            to_checksum_address(payer), to_checksum_address(token)).call(), "escrow funds")
        return Funds(int(available), int(locked))

    async def authorization(self, payer: str, token: str) -> Authorization | None:
        """What ``payer`` allows this provider for ``token``, or None."""
        rows = await chain_call(self.contract.functions.getAuthorizations(
            to_checksum_address(token), to_checksum_address(payer),
            to_checksum_address(self.payee)).call(), "escrow authorizations")
        for row in rows:
            if str(row[0]).lower() == self.payee.lower():
                return Authorization(to_checksum_address(row[0]), *(int(v) for v in row[1:]))
        return None

    async def locks(self, *, token: str | None = None, payer: str | None = None) -> list[Lock]:
        """This provider's locks, of ``token`` and ``payer`` when given.

        The contract's own filter ORs its two criteria, so both are applied here.
        """
        rows = await chain_call(self.contract.functions.getLocks(
            ZERO_ADDRESS, ZERO_ADDRESS, to_checksum_address(self.payee)).call(), "escrow locks")
        found = [Lock(int(r[0]), to_checksum_address(r[1]), int(r[2]), int(r[3]),
                      to_checksum_address(r[4]), int(r[5])) for r in rows]
        return [lock for lock in found
                if (token is None or lock.token.lower() == token.lower())
                and (payer is None or lock.payer.lower() == payer.lower())]

    async def lock(self, job_id: int, token: str, payer: str) -> Lock | None:
        """The lock of one job, or None (never made, claimed or cancelled)."""
        for lock in await self.locks(token=token, payer=payer):
            if lock.job_id == job_id:
                return lock
        return None

    # --- writes ----------------------------------------------------------------------
    async def create_lock(self, job_id: int, token: str, payer: str, amount: int,
                          expiry_seconds: int) -> str:
        """Lock ``amount`` of ``payer``'s funds for ``expiry_seconds``; the tx hash."""
        function = self.contract.functions.createLock(
            job_id, to_checksum_address(token), to_checksum_address(payer), amount,
            expiry_seconds)
        receipt = await self.sender.transact(function, "escrow createLock")
        return receipt["transactionHash"].to_0x_hex()

    async def send_claims(self, claims: Sequence[Claim]) -> SentTransaction:
        """Send one claim-and-withdraw transaction for ``claims``; do not wait."""
        if not claims:
            raise ValueError("no claims")
        if len(claims) == 1:
            c = claims[0]
            function = self.contract.functions.claimLockAndWithdraw(
                c.job_id, to_checksum_address(c.token), to_checksum_address(c.payer),
                c.amount, c.proof, NO_SUBSIDY_JOB_TYPE, [])
        else:
            function = self.contract.functions.claimLocksAndWithdraw(
                [c.job_id for c in claims], [to_checksum_address(c.token) for c in claims],
                [to_checksum_address(c.payer) for c in claims], [c.amount for c in claims],
                [c.proof for c in claims], [NO_SUBSIDY_JOB_TYPE] * len(claims),
                [[] for _ in claims])
        return await self.sender.send(function, "escrow claim")

    async def claim(self, claims: Sequence[Claim]) -> ClaimOutcome:
        """Claim ``claims`` in one transaction and wait for it (see the module)."""
        sent = await self.send_claims(claims)
        return self.outcome(await self.sender.receipt(sent.tx_hash, "escrow claim"))

    async def cancel_expired_locks(self, locks: Sequence[tuple[int, str, str]]) -> ClaimOutcome:
        """Cancel this provider's expired locks ``(job id, token, payer)``.

        Locks that have not expired are left alone (the contract skips them).
        """
        if not locks:
            raise ValueError("no locks")
        function = self.contract.functions.cancelExpiredLocks(
            [job for job, _, _ in locks], [to_checksum_address(t) for _, t, _ in locks],
            [to_checksum_address(p) for _, _, p in locks],
            [to_checksum_address(self.payee)] * len(locks))
        return self.outcome(await self.sender.transact(function, "escrow cancelExpiredLocks"))

    def outcome(self, receipt: TxReceipt) -> ClaimOutcome:
        """The claims and cancellations of a mined transaction, by job id."""
        outcome = ClaimOutcome(receipt["transactionHash"].to_0x_hex())
        events = self.contract.events
        for event in events.Claimed().process_receipt(receipt, errors=DISCARD):
            if event["address"] == self.address:
                outcome.claimed[int(event["args"]["jobId"])] = int(event["args"]["amount"])
        for event in events.Canceled().process_receipt(receipt, errors=DISCARD):
            if event["address"] == self.address:
                outcome.cancelled[int(event["args"]["jobId"])] = int(event["args"]["amount"])
        return outcome
