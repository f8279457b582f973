"""What the compute use cases share: their services, the request's parts, the lookups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tidegate.assets.consumability import check_consumable
from tidegate.assets.ddo import Asset, Service
from tidegate.assets.orders import OrderValidator
from tidegate.assets.resolver import Resolver, resolve_asset
from tidegate.auth.request_auth import RequestAuthenticator
from tidegate.chain.clients import ChainConfig, Chains
from tidegate.commands.asset_services import AssetService, consumable_service
from tidegate.commands.compute.checks import (
    AlgorithmRef,
    check_algorithm_allowed,
    check_dataset_service,
    refuse,
)
from tidegate.compute.engines.base import ComputeEngine
from tidegate.compute.environments import Environment
from tidegate.errors import BadRequestError
from tidegate.fees.provider_fees import compute_fee_amount
from tidegate.fees.quotes import token_decimals
from tidegate.files.objects import StorageContext


@dataclass(frozen=True)
class ComputeContext:
    """What the compute use cases need (built once per request by the adapter)."""

    resolver: Resolver
    chains: Chains
    orders: OrderValidator
    storage: StorageContext
    engine: ComputeEngine
    authenticator: RequestAuthenticator


@dataclass(frozen=True)
class DatasetRef:
    """One input of a job: service ``service_id`` of ``did``, ordered in ``transfer_tx``
    (optional when quoting), with the consumer's ``userdata`` for its files."""

    did: str
    service_id: str
    transfer_tx: str | None = None
    userdata: dict[str, Any] | None = None


@dataclass(frozen=True)
class AlgorithmRequest:
    """The job's algorithm: a published one (``did`` + ``service_id``, ordered in
    ``transfer_tx``), or raw ``meta`` (``rawcode`` or ``url``, and a ``container``).

    ``meta`` wins when both are given, as in the reference. ``algocustomdata`` is
    handed to the algorithm as is; ``userdata`` is for its files.
    """

    did: str | None = None
    service_id: str | None = None
    transfer_tx: str | None = None
    meta: Mapping[str, Any] | None = None
    algocustomdata: Any = None
    userdata: dict[str, Any] | None = None


async def find_environment(engine: ComputeEngine, env_id: str) -> Environment:
    """The engine's environment ``env_id``; 400 ``unknown_environment`` if none; the
    engine's 503 (``sandbox_unavailable``: why) while it can run no job at all."""
    refusal = await engine.unavailable()
    if refusal is not None:
        raise refusal
    for env in await engine.environments():
        if env.id == env_id:
            return env
    raise BadRequestError("Compute environment does not exist", code="unknown_environment")


async def compute_time_fee(chain: ChainConfig, env: Environment, since: int,
                           until: int) -> int:
    """What ``until - since`` seconds of ``env`` cost, in base units of its fee token
    (0 for a free environment): the one rule that quotes and the start check share."""
    if env.free:
        return 0
    decimals = await token_decimals(chain, env.fee_token)
    return compute_fee_amount(until, since, env.price_min, decimals)


async def resolve_algorithm(ctx: ComputeContext, request: AlgorithmRequest) -> AlgorithmRef:
    """The published algorithm's asset and service, or the raw ``meta``."""
    if request.meta:
        return AlgorithmRef(None, None, request.meta)
    if request.did is None or request.service_id is None:
        raise refuse("missing_meta_documentId", "Give algorithm.documentId or algorithm.meta.")
    asset = await resolve_asset(ctx.resolver, request.did)
    if not asset.is_algorithm:
        raise refuse("not_algo", "DID is not a valid algorithm")
    return AlgorithmRef(asset, asset.service(request.service_id), None)


async def dataset_service(ctx: ComputeContext, index: int, dataset: DatasetRef, consumer: str,
                          algorithm: AlgorithmRef) -> AssetService:
    """Input ``index``'s service, once the consumer may use it with ``algorithm``."""
    found = await consumable_service(ctx.resolver, ctx.chains, dataset.did,
                                     dataset.service_id, consumer)
    check_dataset_service(index, found.service)
    if found.service.type == "compute":
        await check_algorithm_allowed(found.service, algorithm, found.chain.provider_key,
                                      ctx.storage)
    return found


async def algorithm_service(ctx: ComputeContext, asset: Asset, service: Service,
                            consumer: str) -> AssetService:
    """The published algorithm's service, once the consumer may use it."""
    chain = ctx.chains.get(asset.chain_id)
    # The preamble's consumability check, on the asset already resolved.
    await check_consumable(chain, asset, consumer)
    return AssetService(asset, service, chain)
