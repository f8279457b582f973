"""Escrow payments with the real ocean.js 8.6.2 consumer (driver: oceanjs8/escrow.mjs).

On the chain `tidegate dev` runs: Tidegate quotes a paid job's ``payment`` object,
ocean.js finds the Escrow in the dev address file and approves, deposits and
authorizes from that quote (``EscrowContract.verifyFundsForEscrowPayment``), then
Tidegate's ``EscrowPayments`` locks the job's cost and claims what it used. The provider
side runs in this test's process with the dev provider key (the paid compute routes
that wire it to jobs are tested over HTTP in tests/api/node/test_paid_compute.py).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import E2E, SETUP_HINT, DevStack, DriverRun, _run_driver, step
from tests.helpers import PROVIDER_ADDRESS, PROVIDER_KEY
from tidegate.chain.clients import build_web3, rpc_session
from tidegate.chain.contracts import load_address_file
from tidegate.chain.escrow import EscrowClient
from tidegate.chain.transactions import ProviderSender
from tidegate.fees.claim_queue import CLAIMED, ClaimQueue
from tidegate.fees.compute_cost import Pricing, ResourceRequest
from tidegate.fees.escrow_payments import EscrowPayments
from tidegate.stores.sqlite import SqliteStore

pytestmark = pytest.mark.e2e

OCEANJS8 = E2E / "oceanjs8"
DEMO_CONSUMER = 2  # holds 1000 OCEAN on the dev chain
ONE = 10**18
RESOURCES = (ResourceRequest("cpu", Decimal(2)), ResourceRequest("ram", Decimal(4)))


def _addresses(stack: DevStack) -> dict[str, str]:
    return load_address_file(stack.address_file)[8996]


@pytest.fixture(scope="session")
async def provider(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    """The provider's escrow side on the dev chain (the dev provider key)."""
    stack: DevStack = request.getfixturevalue("dev_stack")
    session = rpc_session()
    web3 = build_web3(stack.rpc_url, 10, session, chain_id=8996)
    escrow = EscrowClient(web3, _addresses(stack)["Escrow"], ProviderSender(web3, PROVIDER_KEY))
    store = SqliteStore(Path(tmp_path_factory.mktemp("escrow")) / "store.db")
    await store.open()
    payments = EscrowPayments({8996: escrow}, ClaimQueue(store, {8996: escrow}))
    try:
        yield stack, escrow, payments
    finally:
        await store.close()
        await session.close()


@pytest.fixture(scope="session")
async def oceanjs8_escrow(provider: Any, keys: dict[int, str],
                          tmp_path_factory: pytest.TempPathFactory) -> DriverRun:
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"node is not installed: the ocean.js 8 client cannot run ({SETUP_HINT})")
    if not (OCEANJS8 / "node_modules" / "@oceanprotocol" / "lib").exists():
        pytest.skip(f"the ocean.js 8 client (tests/e2e/oceanjs8/node_modules) is missing: "
                    f"{SETUP_HINT}")
    stack, _escrow, payments = provider
    pricing = Pricing(8996, _addresses(stack)["Ocean"], {"cpu": Decimal(1), "ram": Decimal("0.5")})
    quote = await payments.payment_quote(pricing, RESOURCES, 300)
    out = Path(tmp_path_factory.mktemp("oceanjs8-escrow")) / "report.json"
    env = {"E2E_RPC_URL": stack.rpc_url, "ADDRESS_FILE": stack.address_file,
           "E2E_CONSUMER_KEY": keys[DEMO_CONSUMER], "E2E_PAYMENT": json.dumps(quote.to_json())}
    return _run_driver("the ocean.js 8 escrow driver",
                       [node, str(OCEANJS8 / "escrow.mjs"), str(out)], env, out, stack)


def test_oceanjs8_finds_the_escrow_in_the_dev_address_file(
        oceanjs8_escrow: DriverRun, provider: Any) -> None:
    stack = provider[0]
    assert step(oceanjs8_escrow, "config")["escrow"] == _addresses(stack)["Escrow"]


async def test_a_job_is_paid_from_what_oceanjs8_deposited_and_authorized(
        oceanjs8_escrow: DriverRun, provider: Any) -> None:
    stack, escrow, payments = provider
    back = step(oceanjs8_escrow, "read_back")
    # ocean.js logs and swallows a failed transaction (sendPreparedTransaction): show it.
    logs = (oceanjs8_escrow.stdout + oceanjs8_escrow.stderr)[-3000:]
    assert back["payees"] == [PROVIDER_ADDRESS], logs
    payer = oceanjs8_escrow.report["client"]["address"]
    ocean = _addresses(stack)["Ocean"]
    deposited = int(back["available"])
    assert deposited >= 20 * ONE, logs  # at least the quoted 5 minutes x 4 OCEAN

    # ocean.js scales all three limits by the token's decimals (its authorize runs
    # amountToUnits on each): far above what the quote asked, so any lock fits.
    auth = await escrow.authorization(payer, ocean)
    assert auth is not None
    assert auth.max_lock_seconds == (300 + 3600) * ONE and auth.max_lock_counts == 10 * ONE

    pricing = Pricing(8996, ocean, {"cpu": Decimal(1), "ram": Decimal("0.5")})
    payment = await payments.lock_for_job("e2e-escrow-job", payer, pricing, RESOURCES, 300)
    assert (await escrow.funds(payer, ocean)).locked == 20 * ONE
    row = await payments.settle_job(payment, used_seconds=61)  # 2 minutes: 8 OCEAN
    assert row.state == CLAIMED
    funds = await escrow.funds(payer, ocean)
    assert (funds.available, funds.locked) == (deposited - 8 * ONE, 0)
