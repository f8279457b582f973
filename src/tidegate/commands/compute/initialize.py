"""``initializeCompute``: quotes (or still-valid orders) for a job's inputs and algorithm.

Unsigned, as in the reference. Each input (then the published algorithm) gets a
provider fee for the environment until ``valid_until``; only the first input pays
for the compute time. An input whose ``transfer_tx`` is an order still valid for the
whole duration needs no new order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from tidegate.assets.orders import OrderInvalidError
from tidegate.commands.asset_services import AssetService
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
from tidegate.commands.initialize import ValidOrder
from tidegate.compute.environments import Environment
from tidegate.fees.provider_fees import ProviderFee
from tidegate.fees.quotes import quote_provider_fee


@dataclass(frozen=True)
class InitializeCompute:
    """Quote a job of ``algorithm`` on ``datasets`` (at least one) in environment
    ``environment`` until ``valid_until`` (UNIX seconds) for ``consumer`` (checksummed)."""

    consumer: str
    datasets: list[DatasetRef]
    algorithm: AlgorithmRequest
    environment: str
    valid_until: int


@dataclass(frozen=True)
class ComputeQuote:
    """A provider fee to pass to ``startOrder``; ``valid_order``: an earlier order that is
    valid but ends before ``valid_until`` (its fee must be topped up)."""

    datatoken: str
    provider_fee: ProviderFee
    valid_order: str | None = None


@dataclass(frozen=True)
class ComputeQuotes:
    """One answer per input, in request order; the algorithm's when it is published."""

    datasets: list[ComputeQuote | ValidOrder]
    algorithm: ComputeQuote | ValidOrder | None


async def quote_input(ctx: ComputeContext, found: AssetService, transfer_tx: str | None,
                 consumer: str, env: Environment, valid_until: int,
                 pays: bool) -> ComputeQuote | ValidOrder:
    """One input's quote (``pays``: its fee includes the compute time), or its still
    valid order; also what ``node_initialize`` answers per published input."""
    chain, service = found.chain, found.service
    valid_order: str | None = None
    if transfer_tx:
        try:
            order = await ctx.orders.validate(
                chain, asset=found.asset, service=service, tx_id=transfer_tx,
                sender=consumer, environment=env.id, allow_expired_fees=True)
        except OrderInvalidError:
            order = None
        if order is not None:
            if valid_until <= order.fee.fee.valid_until:
                return ValidOrder(order.order_tx)
            valid_order = order.order_tx
    amount = await compute_time_fee(chain, env, int(time.time()), valid_until) if pays else 0
    fee = quote_provider_fee(chain, token=env.fee_token, datatoken=service.datatoken,
                             service_id=service.id, environment=env.id,
                             valid_until=valid_until, amount=amount)
    return ComputeQuote(str(service.raw.get("datatokenAddress", service.datatoken)), fee,
                        valid_order)


async def initialize_compute(ctx: ComputeContext, cmd: InitializeCompute) -> ComputeQuotes:
    """Quotes for every input and the algorithm, in order (400s for every refusal)."""
    env = await find_environment(ctx.engine, cmd.environment)
    algorithm = await resolve_algorithm(ctx, cmd.algorithm)
    ctx.engine.check_container(algorithm.container)
    quotes: list[ComputeQuote | ValidOrder] = []
    for index, dataset in enumerate(cmd.datasets):
        found = await dataset_service(ctx, index, dataset, cmd.consumer, algorithm)
        quotes.append(await quote_input(ctx, found, dataset.transfer_tx, cmd.consumer, env,
                                   cmd.valid_until, pays=index == 0))
    algorithm_quote = None
    if algorithm.asset is not None and algorithm.service is not None:  # published
        found = await algorithm_service(ctx, algorithm.asset, algorithm.service, cmd.consumer)
        algorithm_quote = await quote_input(ctx, found, cmd.algorithm.transfer_tx, cmd.consumer,
                                       env, cmd.valid_until, pays=False)
    return ComputeQuotes(quotes, algorithm_quote)
