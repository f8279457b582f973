"""The consumer's side of the Escrow contract in tests (what ocean.js 8's EscrowContract
does: approve, deposit, authorize), and reads of what happened on chain."""

from __future__ import annotations

from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic

from tests.chain_fixtures import ChainHarness
from tests.helpers import PROVIDER_ADDRESS
from tidegate.dev.ocean_txs import ONE_TOKEN, approve, contract


def deposit(harness: ChainHarness, amount: int, payer: LocalAccount | None = None) -> None:
    """``payer`` (the consumer) approves the escrow and deposits ``amount`` OCEAN."""
    who = payer or harness.consumer
    ocean, escrow = harness.addresses["Ocean"], harness.addresses["Escrow"]
    approve(harness.txs, who, ocean, escrow, amount)
    harness.txs.send(who, contract(harness.chain.w3, "Escrow", escrow).functions.deposit(
        ocean, amount), gas=300_000)


def authorize(harness: ChainHarness, max_locked: int, max_seconds: int, max_counts: int,
              payer: LocalAccount | None = None, payee: str = PROVIDER_ADDRESS) -> None:
    """``payer`` allows ``payee`` (the test provider) to lock and claim OCEAN."""
    who = payer or harness.consumer
    escrow = contract(harness.chain.w3, "Escrow", harness.addresses["Escrow"])
    harness.txs.send(who, escrow.functions.authorize(
        harness.addresses["Ocean"], payee, max_locked, max_seconds, max_counts), gas=300_000)


def fund(harness: ChainHarness, amount: int = 100 * ONE_TOKEN, *,
         max_locked: int = 100 * ONE_TOKEN, max_seconds: int = 10 * 3600,
         max_counts: int = 10) -> None:
    deposit(harness, amount)
    authorize(harness, max_locked, max_seconds, max_counts)


def ocean_balance(harness: ChainHarness, who: str) -> int:
    token = contract(harness.chain.w3, "OceanToken", harness.addresses["Ocean"])
    return int(token.functions.balanceOf(who).call())


def payer_funds(harness: ChainHarness, payer: str | None = None) -> tuple[int, int]:
    """(available, locked) of the consumer in the escrow."""
    escrow = contract(harness.chain.w3, "Escrow", harness.addresses["Escrow"])
    available, locked = escrow.functions.getUserFunds(
        payer or harness.consumer.address, harness.addresses["Ocean"]).call()
    return int(available), int(locked)


def opc_fee(harness: ChainHarness, amount: int) -> int:
    """The OPC fee the router takes on a claim of ``amount`` OCEAN."""
    router = contract(harness.chain.w3, "FactoryRouter", harness.addresses["Router"])
    rate = int(router.functions.getOPCFee(harness.addresses["Ocean"]).call())
    return amount * rate // 10**18


def escrow_events(harness: ChainHarness, name: str) -> list[Any]:
    """Every ``name`` event the Escrow emitted, decoded, oldest first."""
    w3 = harness.chain.w3
    escrow = contract(w3, "Escrow", harness.addresses["Escrow"])
    abi = next(e for e in escrow.abi if e.get("type") == "event" and e["name"] == name)
    logs = w3.eth.get_logs({"address": escrow.address, "fromBlock": 0, "toBlock": "latest",
                            "topics": [event_abi_to_log_topic(abi)]})  # type: ignore[arg-type]
    event = getattr(escrow.events, name)()
    return [event.process_log(log) for log in logs]
