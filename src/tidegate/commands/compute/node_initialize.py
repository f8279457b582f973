"""``initializeCompute`` in Ocean Node's protocol (C2D v2, the paid path).

ocean.js 8 calls it before a paid ``computeStart``, unsigned, with ``payment: {chainId,
token, resources}``, ``maxJobDuration`` and the inputs; the answer's ``payment`` object
(escrow address, payee, chain, token, amount in base units, ``minLockSeconds``) is what
its ``EscrowContract`` then deposits and authorizes. Checks, in order: the environment,
the payments object (402 ``escrow_unavailable`` without one, as the paid start), the
resources and the duration, the algorithm and its container, each input as the start
checks it (a file object parses; a published dataset must admit the algorithm), then
the payment's token and chain (400 ``escrow_token_refused``).

Per input (the algorithm first, as Ocean Node answers it): a published one gets the
classic quote (:func:`~tidegate.commands.compute.initialize.quote_input`: its order
still valid, or a provider fee without compute time for ``startOrder``: the compute
is paid through the escrow); a file object or raw algorithm ``{"validOrder": false}``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tidegate.commands.compute.context import (
    AlgorithmRequest,
    ComputeContext,
    DatasetRef,
    algorithm_service,
    dataset_service,
    find_environment,
    resolve_algorithm,
)
from tidegate.commands.compute.initialize import ComputeQuote, quote_input
from tidegate.commands.compute.node_start import (
    ComputePayments,
    NodeDataset,
    PaidJob,
    PaymentRequest,
    PaymentUnavailableError,
    job_duration,
)
from tidegate.commands.initialize import ValidOrder
from tidegate.compute.resources import ResourceAmount, fill_resources, job_cost
from tidegate.files.objects import parse_file_object

NOT_ORDERED: dict[str, Any] = {"validOrder": False}
"""Ocean Node's answer for an input that is not a published asset."""


@dataclass(frozen=True)
class InitializeNodeCompute:
    """Quote a paid job of ``algorithm`` on ``datasets`` in ``environment`` for
    ``consumer`` (checksummed), paid with ``payment``, for ``max_duration`` seconds
    (None: the environment's maximum), waiting at most ``queue_max_wait`` seconds for
    a slot (the lock's ``minLockSeconds`` covers that wait too)."""

    consumer: str
    environment: str
    algorithm: AlgorithmRequest
    payment: PaymentRequest
    datasets: list[NodeDataset] = field(default_factory=list)
    resources: list[ResourceAmount] = field(default_factory=list)
    max_duration: int | None = None
    queue_max_wait: int = 0


@dataclass(frozen=True)
class NodeComputeQuotes:
    """Per input (``None``: not published, answered ``{"validOrder": false}``), in
    request order, the algorithm's apart; ``payment`` is Ocean Node's object as is."""

    datasets: list[ComputeQuote | ValidOrder | None]
    algorithm: ComputeQuote | ValidOrder | None
    payment: dict[str, Any]


async def initialize_node_compute(ctx: ComputeContext, cmd: InitializeNodeCompute,
                                  payments: ComputePayments | None) -> NodeComputeQuotes:
    """The quotes of a paid v2 job (see the module); 400s for every refusal."""
    env = await find_environment(ctx.engine, cmd.environment)
    if payments is None:
        raise PaymentUnavailableError(
            "Paid compute of Ocean Node's protocol (escrow) is not available on this "
            "provider; use free compute, or the classic compute with orders.")
    resources = fill_resources(env, cmd.resources)
    seconds = job_duration(env, cmd.max_duration)
    algorithm = await resolve_algorithm(ctx, cmd.algorithm)
    ctx.engine.check_container(algorithm.container)
    # The orders these quotes are for must stay valid for the whole run.
    valid_until = int(time.time()) + seconds
    quotes: list[ComputeQuote | ValidOrder | None] = []
    for index, dataset in enumerate(cmd.datasets):
        if dataset.file_object is not None:
            parse_file_object(dict(dataset.file_object), dataset.userdata)  # 400 if bad
            quotes.append(None)
            continue
        assert dataset.did is not None and dataset.service_id is not None  # the model's
        found = await dataset_service(ctx, index, _ref(dataset), cmd.consumer, algorithm)
        quotes.append(await quote_input(ctx, found, dataset.transfer_tx, cmd.consumer, env,
                                        valid_until, pays=False))
    algorithm_quote: ComputeQuote | ValidOrder | None = None
    if algorithm.asset is not None and algorithm.service is not None:  # published
        found = await algorithm_service(ctx, algorithm.asset, algorithm.service, cmd.consumer)
        algorithm_quote = await quote_input(ctx, found, cmd.algorithm.transfer_tx,
                                            cmd.consumer, env, valid_until, pays=False)
    job = PaidJob(job_id="", consumer=cmd.consumer, environment=env,
                  chain_id=cmd.payment.chain_id, token=cmd.payment.token,
                  resources=tuple(resources), seconds=seconds, cost=job_cost(env, seconds),
                  queue_seconds=cmd.queue_max_wait)
    return NodeComputeQuotes(quotes, algorithm_quote, await payments.quote(job))


def _ref(dataset: NodeDataset) -> DatasetRef:
    return DatasetRef(str(dataset.did), str(dataset.service_id), dataset.transfer_tx,
                      dataset.userdata)
