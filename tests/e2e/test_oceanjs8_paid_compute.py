"""A paid compute v2 job with the real ocean.js 8.6.2 (driver: oceanjs8/paid.mjs) on
``tidegate dev`` with a priced environment: initializeCompute's escrow quote, ocean.js's
deposit and authorization from it, computeStart paid through the Escrow contract, and
Tidegate's settlement of the minutes the job used."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    E2E,
    SETUP_HINT,
    DevStack,
    DriverRun,
    _dev_stack,
    _run_driver,
    step,
)
from tests.helpers import PROVIDER_ADDRESS

pytestmark = pytest.mark.e2e

OCEANJS8 = E2E / "oceanjs8"
DEMO_CONSUMER = 2  # holds 1000 OCEAN on the dev chain (this stack has its own)
ONE = 10**18
#: 2 OCEAN a minute for the whole job.
PAID_ENVIRONMENTS = [{"id": "paid", "chainId": 8996, "priceMin": 2, "cpu": 2,
                      "maxJobDuration": 300}]


@pytest.fixture(scope="session")
def paid_dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """``tidegate dev`` whose one compute environment is priced."""
    yield from _dev_stack(tmp_path_factory, "tidegate-dev-paid", {
        "TIDEGATE_COMPUTE_ENVIRONMENTS": json.dumps(PAID_ENVIRONMENTS)})


@pytest.fixture(scope="session")
def oceanjs8_paid(paid_dev_stack: DevStack, keys: dict[int, str],
                  tmp_path_factory: pytest.TempPathFactory) -> DriverRun:
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"node is not installed: the ocean.js 8 client cannot run ({SETUP_HINT})")
    if not (OCEANJS8 / "node_modules" / "@oceanprotocol" / "lib").exists():
        pytest.skip(f"the ocean.js 8 client (tests/e2e/oceanjs8/node_modules) is missing: "
                    f"{SETUP_HINT}")
    out = Path(tmp_path_factory.mktemp("oceanjs8-paid")) / "report.json"
    env = {"E2E_PROVIDER_URL": paid_dev_stack.provider_url,
           "E2E_RPC_URL": paid_dev_stack.rpc_url, "ADDRESS_FILE": paid_dev_stack.address_file,
           "E2E_CONSUMER_KEY": keys[DEMO_CONSUMER], "E2E_ENV_ID": "paid"}
    return _run_driver("the ocean.js 8 paid compute driver",
                       [node, str(OCEANJS8 / "paid.mjs"), str(out)], env, out, paid_dev_stack)


def test_initialize_compute_quotes_the_escrow_payment(oceanjs8_paid: DriverRun) -> None:
    answer = step(oceanjs8_paid, "initialize_compute")
    payment = answer["payment"]
    assert (payment["payee"], payment["chainId"]) == (PROVIDER_ADDRESS, 8996)
    assert (payment["amount"], payment["minLockSeconds"]) == (str(4 * ONE), 120 + 3600)
    assert answer["algorithm"] == {"validOrder": False} and answer["datasets"] == []


def test_a_paid_job_is_locked_run_and_settled(oceanjs8_paid: DriverRun) -> None:
    logs = (oceanjs8_paid.stdout + oceanjs8_paid.stderr)[-3000:]
    before = step(oceanjs8_paid, "verify_funds")["before"]
    deposited = int(before["available"])
    assert deposited >= 4 * ONE and before["locked"] == "0", logs
    started = step(oceanjs8_paid, "compute_start")
    assert started["isFree"] is False and started["agreementId"].startswith("0x")
    assert started["funds"] == {"available": str(deposited - 4 * ONE), "locked": str(4 * ONE)}
    done = step(oceanjs8_paid, "finished_and_settled")
    # The job ran about a second: one minute (2 OCEAN) claimed, the rest back.
    assert done["status"] == 70
    assert done["funds"] == {"available": str(deposited - 2 * ONE), "locked": "0"}
