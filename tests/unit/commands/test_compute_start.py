"""Compute start (and its initializeCompute quotes), called directly.

The engine is a recorder: the command's job is to verify the request, the orders
and the fees and to hand the engine a complete JobSpec (the engines have their own
tests in tests/unit/compute).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from tests.chain_fixtures import ORIGIN_FILES
from tests.helpers import CONSUMER_ADDRESS, OTHER_KEY, PROVIDER_ADDRESS
from tests.unit.commands.conftest import Deps, signed
from tidegate.assets.orders import OrderInvalidError
from tidegate.auth.signatures import InvalidSignatureError, compute_message
from tidegate.commands.compute.checks import ComputeRefusedError
from tidegate.commands.compute.context import AlgorithmRequest, ComputeContext, DatasetRef
from tidegate.commands.compute.initialize import (
    ComputeQuote,
    InitializeCompute,
    initialize_compute,
)
from tidegate.commands.compute.start import StartCompute, start_compute
from tidegate.compute.engines.base import JobSpec, ResultStream
from tidegate.compute.environments import Environment
from tidegate.compute.jobs import JobRecord
from tidegate.dev import ocean_txs
from tidegate.errors import BadRequestError

PYTHON = {"entrypoint": "python $ALGO", "image": "python", "tag": "3.11",
          "checksum": "sha256:" + "ab" * 32}
RAW = AlgorithmRequest(meta={"rawcode": "print(1)", "container": PYTHON})


@dataclass
class RecordingEngine:
    """A ComputeEngine that accepts every job and keeps its spec."""

    env: Environment
    started: list[JobSpec] = field(default_factory=list)

    async def environments(self) -> list[Environment]:
        return [self.env]

    async def unavailable(self) -> None:
        return None

    def check_container(self, container: Mapping[str, Any]) -> None:
        if container.get("image") != "python":
            raise BadRequestError("Unsupported image.", code="unsupported_image")

    async def start(self, spec: JobSpec) -> JobRecord:
        self.started.append(spec)
        return JobRecord(spec.job_id, spec.owner, spec.inputs[0].did, spec.agreement_id,
                         spec.environment.id, spec.chain_id)

    async def jobs(self, owner: str | None, job_id: str | None,
                   did: str | None) -> list[JobRecord]:
        return []

    async def stop(self, owner: str, job_id: str | None, did: str | None) -> list[JobRecord]:
        return []

    async def delete(self, owner: str, job_id: str | None, did: str | None) -> list[JobRecord]:
        return []

    async def result(self, owner: str, job_id: str, index: int) -> ResultStream:
        raise AssertionError("not used")

    async def close(self) -> None:
        return None


@pytest.fixture
def engine(deps: Deps) -> RecordingEngine:
    return RecordingEngine(Environment(id="env", chain_id=8996,
                                       consumer_address=PROVIDER_ADDRESS,
                                       fee_token=deps.harness.addresses["Ocean"],
                                       price_min=Decimal(0), max_job_duration=300))


@pytest.fixture
def ctx(deps: Deps, engine: RecordingEngine) -> ComputeContext:
    return ComputeContext(resolver=deps.resolver, chains=deps.chains, orders=deps.orders,
                          storage=deps.storage, engine=engine,
                          authenticator=deps.authenticator)


async def publish_dataset(deps: Deps, **rules: Any) -> Any:
    compute = {"allowRawAlgorithm": True, "allowNetworkAccess": False,
               "publisherTrustedAlgorithmPublishers": [], "publisherTrustedAlgorithms": [],
               **rules}
    return await deps.publish(name="dataset", services=("compute",), compute=compute)


async def ordered(deps: Deps, ctx: ComputeContext, dataset: Any,
                  consumer: str = PROVIDER_ADDRESS) -> str:
    """initializeCompute's quote, then startOrder for the environment's consumer."""
    quotes = await initialize_compute(ctx, InitializeCompute(
        consumer=CONSUMER_ADDRESS, datasets=[DatasetRef(dataset.did, "0")], algorithm=RAW,
        environment="env", valid_until=int(time.time()) + 600))
    [quote] = quotes.datasets
    assert isinstance(quote, ComputeQuote) and quotes.algorithm is None
    return str(ocean_txs.start_order(deps.harness.txs, deps.harness.consumer,
                                     dataset.datatoken_address, consumer, 0,
                                     quote.provider_fee))


def start(dataset: Any, tx: str, *, key: str | None = None,
          algorithm: AlgorithmRequest = RAW) -> StartCompute:
    message = compute_message(CONSUMER_ADDRESS, "", dataset.did)
    proof = signed(message) if key is None else signed(message, key=key)
    return StartCompute(proof=proof, datasets=[DatasetRef(dataset.did, "0", tx)],
                        algorithm=algorithm, environment="env")


async def test_a_raw_algorithm_job_gets_its_inputs(deps: Deps, ctx: ComputeContext,
                                                   engine: RecordingEngine) -> None:
    dataset = await publish_dataset(deps)
    tx = await ordered(deps, ctx, dataset)
    record = await start_compute(ctx, start(dataset, tx))
    [spec] = engine.started
    assert (record.job_id, record.owner, record.agreement_id) == (spec.job_id,
                                                                  CONSUMER_ADDRESS, tx)
    assert 0 < spec.max_duration <= 300  # the fee's validUntil, capped by the environment
    [job_input] = spec.inputs
    assert (job_input.did, job_input.service_id, job_input.transfer_tx) == (dataset.did, "0",
                                                                            tx)
    assert job_input.files == [{"type": "url", "url": deps.harness.origin + "/data.csv"}]
    assert spec.algorithm.rawcode == "print(1)" and spec.algorithm.container == PYTHON
    assert ORIGIN_FILES["data.csv"]  # the file the engine will fetch exists


async def test_refusals(deps: Deps, ctx: ComputeContext, engine: RecordingEngine) -> None:
    dataset = await publish_dataset(deps)
    closed = await publish_dataset(deps, allowRawAlgorithm=False)
    tx = await ordered(deps, ctx, dataset)
    with pytest.raises(InvalidSignatureError):  # signed by another key: nothing is read
        await start_compute(ctx, start(dataset, tx, key=OTHER_KEY))
    with pytest.raises(ComputeRefusedError) as raw_refused:
        await start_compute(ctx, start(closed, tx))
    assert raw_refused.value.code == "no_raw_algo_allowed"
    assert "no_raw_algo_allowed" in raw_refused.value.message  # ocean.py reads the text
    with pytest.raises(ComputeRefusedError) as no_code:
        await start_compute(ctx, start(dataset, tx, algorithm=AlgorithmRequest(
            meta={"container": PYTHON})))
    assert no_code.value.code == "meta_oneof_url_rawcode_remote"
    # Ordered for the consumer itself rather than the environment's compute address.
    own = await ordered(deps, ctx, dataset, consumer=CONSUMER_ADDRESS)
    with pytest.raises(OrderInvalidError):
        await start_compute(ctx, start(dataset, own))
    with pytest.raises(BadRequestError) as unknown:
        await start_compute(ctx, StartCompute(
            proof=signed(compute_message(CONSUMER_ADDRESS, "", dataset.did)),
            datasets=[DatasetRef(dataset.did, "0", tx)], algorithm=RAW,
            environment="elsewhere"))
    assert unknown.value.code == "unknown_environment"
    assert engine.started == []
