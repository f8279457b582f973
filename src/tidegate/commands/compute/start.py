"""Compute start: verify the signed request, every order and the fees; start the job.

Order of checks: the signature (nonce consumed), the environment, the algorithm and
its container, then per input its consumability, the dataset's rules for this
algorithm and its order; then the algorithm's order; then that the fees paid cover
the job's duration. The engine gets the decrypted file objects of every input.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from tidegate.assets.orders import OrderInvalidError, ValidatedOrder
from tidegate.auth.request_auth import SignedRequest
from tidegate.chain.clients import ChainConfig
from tidegate.commands.asset_services import AssetService, service_files
from tidegate.commands.compute.checks import AlgorithmRef, refuse
from tidegate.commands.compute.context import (
    AlgorithmRequest,
    ComputeContext,
    DatasetRef,
    algorithm_service,
    compute_time_fee,
    dataset_service,
    find_environment,
    resolve_algorithm,
)
from tidegate.compute.engines.base import JobAlgorithm, JobInput, JobSpec
from tidegate.compute.environments import Environment
from tidegate.compute.jobs import JobRecord
from tidegate.errors import ValidationError
from tidegate.types import checksum_address


@dataclass(frozen=True)
class StartCompute:
    """Run ``algorithm`` on ``datasets`` (the first one's service must be a compute
    service) in environment ``environment``, for the signer of ``proof``.

    Every input and a published algorithm need ``transfer_tx``: an order whose consumer
    is the environment's compute address, paid by the signer.
    """

    proof: SignedRequest
    datasets: list[DatasetRef]
    algorithm: AlgorithmRequest
    environment: str


async def validate_order(ctx: ComputeContext, found: AssetService, transfer_tx: str | None,
                 consumer: str, env: Environment, field: str) -> ValidatedOrder:
    """``transfer_tx``, an order of ``found`` by ``consumer`` for ``env``'s compute
    address (400 naming ``field`` when absent)."""
    if not transfer_tx:
        raise ValidationError({field: f"The {field} field is required."})
    order = await ctx.orders.validate(found.chain, asset=found.asset, service=found.service,
                                      tx_id=transfer_tx, sender=consumer, environment=env.id)
    if order.consumer != checksum_address(env.consumer_address):
        raise OrderInvalidError("The order was made for another compute consumer.")
    return order


async def job_algorithm(ctx: ComputeContext, request: AlgorithmRequest, algorithm: AlgorithmRef,
                        consumer: str, env: Environment,
                        orders: list[tuple[ValidatedOrder, ChainConfig]]) -> JobAlgorithm:
    """The engine's algorithm; a published one's order (checked) is added to ``orders``."""
    if algorithm.asset is not None and algorithm.service is not None:  # published
        found = await algorithm_service(ctx, algorithm.asset, algorithm.service, consumer)
        orders.append((await validate_order(ctx, found, request.transfer_tx, consumer, env,
                                    "algorithm.transferTxId"), found.chain))
        return JobAlgorithm(
            container=algorithm.container, files=await service_files(found),
            did=algorithm.asset.did, ddo=algorithm.asset.raw,
            algocustomdata=request.algocustomdata, userdata=request.userdata,
            service_id=found.service.id, transfer_tx=request.transfer_tx)
    meta = algorithm.meta or {}
    if not meta.get("rawcode") and not meta.get("url"):
        raise refuse("meta_oneof_url_rawcode_remote", "The algorithm needs rawcode or a url.")
    return JobAlgorithm(
        container=algorithm.container, rawcode=meta.get("rawcode") or None,
        files=[{"type": "url", "url": meta["url"], "method": "GET"}] if meta.get("url") else [],
        algocustomdata=request.algocustomdata, userdata=request.userdata)


async def _check_fees(orders: list[tuple[ValidatedOrder, ChainConfig]],
                      env: Environment) -> int:
    """The paid provider fees (in the environment's token) must cover the duration.

    Returns the seconds the job may run: until the fees' ``validUntil``, capped by
    the environment's maximum job duration.
    """
    now = int(time.time())
    valid_until = max(o.fee.fee.valid_until for o, _ in orders)
    if valid_until <= now:
        raise refuse("fees_not_paid", "The provider fees do not cover any compute time.")
    duration = min(valid_until - now, env.max_job_duration)
    if not env.free:
        order, chain = orders[0]
        started = float(order.fee.provider_data.get("timestamp", now))
        required = await compute_time_fee(chain, env, int(started), valid_until)
        paid = sum(o.fee.fee.provider_fee_amount for o, _ in orders
                   if o.fee.fee.provider_fee_token.lower() == env.fee_token.lower())
        if paid < required:
            raise refuse("fees_not_paid", "The provider fees paid do not cover the duration.")
    return duration


async def start_compute(ctx: ComputeContext, cmd: StartCompute) -> JobRecord:
    """The started job's first record (400/401 for every refusal)."""
    consumer = await ctx.authenticator.authenticate(cmd.proof)
    env = await find_environment(ctx.engine, cmd.environment)
    algorithm = await resolve_algorithm(ctx, cmd.algorithm)
    ctx.engine.check_container(algorithm.container)
    inputs: list[JobInput] = []
    orders: list[tuple[ValidatedOrder, ChainConfig]] = []
    for index, dataset in enumerate(cmd.datasets):
        found = await dataset_service(ctx, index, dataset, consumer, algorithm)
        field = "dataset.transferTxId" if index == 0 else f"additionalDatasets.{index - 1}" \
            ".transferTxId"
        orders.append((await validate_order(ctx, found, dataset.transfer_tx, consumer, env, field),
                       found.chain))
        inputs.append(JobInput(did=found.asset.did, service_id=found.service.id,
                               transfer_tx=str(dataset.transfer_tx), ddo=found.asset.raw,
                               files=await service_files(found), userdata=dataset.userdata))
    job_alg = await job_algorithm(ctx, cmd.algorithm, algorithm, consumer, env, orders)
    duration = await _check_fees(orders, env)
    return await ctx.engine.start(JobSpec(
        job_id=uuid.uuid4().hex, owner=consumer, environment=env, chain_id=orders[0][1].chain_id,
        agreement_id=orders[0][0].order_tx, inputs=inputs, algorithm=job_alg,
        max_duration=duration, allow_network=env.allow_network))
