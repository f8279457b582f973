"""Compute-to-data use cases: initializeCompute, start, status, stop, delete, result.

Orders for compute name the environment's compute address as ``consumer`` and the
user as ``payer``; they must be emitted by each input's (and the algorithm's)
datatoken, for that environment, with provider fees that cover the job's duration.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from eth_utils import is_address, to_checksum_address

from tidegate.assets.consumable import check_consumable
from tidegate.assets.ddo import Asset
from tidegate.assets.orders import OrderInvalidError, OrderValidator, ValidatedOrder
from tidegate.assets.resolver import Resolver, resolve_asset
from tidegate.auth.request_auth import RequestAuthenticator
from tidegate.auth.signatures import compute_message, compute_result_message
from tidegate.chain.clients import ChainConfig, Chains
from tidegate.commands.compute_checks import (
    AlgorithmRef,
    check_algorithm_allowed,
    check_dataset_service,
    refuse,
)
from tidegate.compute.engines.base import ComputeEngine, JobAlgorithm, JobInput, JobSpec
from tidegate.compute.environments import Environment
from tidegate.compute.jobs import JobNotFoundError, JobRecord
from tidegate.errors import BadRequestError
from tidegate.fees.provider_fees import compute_fee_amount
from tidegate.fees.quotes import quote_provider_fee, token_decimals
from tidegate.files.objects import StorageContext
from tidegate.files.service_files import decrypt_service_files


@dataclass(frozen=True)
class ComputeContext:
    """What the compute use cases need (built once by the API layer)."""

    resolver: Resolver
    chains: Chains
    orders: OrderValidator
    storage: StorageContext
    engine: ComputeEngine
    authenticator: RequestAuthenticator


def _item(raw: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise BadRequestError(f"The {where} must be an object.", code="invalid_input")
    if not raw.get("documentId"):
        raise BadRequestError(f"The {where}.documentId field is required.",
                              code="validation_error")
    if raw.get("serviceId") in (None, ""):
        raise BadRequestError(f"The {where}.serviceId field is required.",
                              code="validation_error")
    return raw


async def find_environment(engine: ComputeEngine, env_id: str | None) -> Environment:
    for env in await engine.environments():
        if env.id == env_id:
            return env
    raise BadRequestError("Compute environment does not exist", code="unknown_environment")


async def _algorithm(ctx: ComputeContext, raw: Any) -> AlgorithmRef:
    if not isinstance(raw, Mapping):
        raise BadRequestError("The algorithm field is required.", code="validation_error")
    meta = raw.get("meta")
    if isinstance(meta, str):
        try:
            meta = orjson.loads(meta)
        except orjson.JSONDecodeError:
            raise BadRequestError("The algorithm.meta is not JSON.", code="invalid_input") \
                from None
    if meta:
        if not isinstance(meta, Mapping):
            raise BadRequestError("The algorithm.meta must be an object.", code="invalid_input")
        return AlgorithmRef(None, None, meta)
    if not raw.get("documentId"):
        raise refuse("missing_meta_documentId", "Give algorithm.documentId or algorithm.meta.")
    asset = await resolve_asset(ctx.resolver, str(raw["documentId"]))
    if not asset.is_algorithm:
        raise refuse("not_algo", "DID is not a valid algorithm")
    if raw.get("serviceId") in (None, ""):
        raise BadRequestError("The algorithm.serviceId field is required.",
                              code="validation_error")
    return AlgorithmRef(asset, asset.service(str(raw["serviceId"])), None)


async def _dataset(ctx: ComputeContext, index: int, raw: Mapping[str, Any], consumer: str,
                   algorithm: AlgorithmRef) -> tuple[Asset, ChainConfig]:
    asset = await resolve_asset(ctx.resolver, str(raw["documentId"]))
    chain = ctx.chains.get(asset.chain_id)
    service = asset.service(str(raw["serviceId"]))
    await check_consumable(chain, asset, consumer)
    check_dataset_service(index, service)
    if service.type == "compute":
        await check_algorithm_allowed(service, algorithm, chain.provider_key, ctx.storage)
    return asset, chain


def parse_valid_until(raw: Any) -> int:
    text = str(raw) if raw is not None else ""
    if not text.isdigit() or int(text) <= int(time.time()):
        raise BadRequestError("The validUntil value is not correct.", code="invalid_valid_until")
    return int(text)


async def _quote(ctx: ComputeContext, chain: ChainConfig, asset: Asset, item: Mapping[str, Any],
                 consumer: str, env: Environment, valid_until: int, pays: bool) -> dict[str, Any]:
    service = asset.service(str(item["serviceId"]))
    valid_order: str | None = None
    if item.get("transferTxId"):
        try:
            order = await ctx.orders.validate(
                chain, asset=asset, service=service, tx_id=str(item["transferTxId"]),
                sender=consumer, environment=env.id, allow_expired_fees=True)
        except OrderInvalidError:
            order = None
        if order is not None:
            if valid_until <= order.fee.fee.valid_until:
                return {"validOrder": order.order_tx}
            valid_order = order.order_tx
    amount = 0
    if pays and not env.free:
        decimals = await token_decimals(chain, env.fee_token)
        amount = compute_fee_amount(valid_until, int(time.time()), env.price_min, decimals)
    fee = quote_provider_fee(chain, token=env.fee_token, datatoken=service.datatoken,
                             service_id=service.id, environment=env.id,
                             valid_until=valid_until, amount=amount)
    answer: dict[str, Any] = {"datatoken": service.raw.get("datatokenAddress", service.datatoken),
                              "providerFee": fee.to_json()}
    if valid_order:
        answer["validOrder"] = valid_order
    return answer


async def initialize_compute(ctx: ComputeContext, body: Mapping[str, Any]) -> dict[str, Any]:
    """Quotes (or still-valid orders) for every dataset and the algorithm, in order."""
    consumer = body.get("consumerAddress")
    if not isinstance(consumer, str) or not is_address(consumer):
        raise BadRequestError("The consumerAddress field is required.", code="validation_error")
    datasets = body.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise BadRequestError("The datasets field is required.", code="validation_error")
    compute = body.get("compute") if isinstance(body.get("compute"), Mapping) else {}
    assert isinstance(compute, Mapping)
    valid_until = parse_valid_until(compute.get("validUntil"))
    env = await find_environment(ctx.engine, compute.get("env"))
    algorithm = await _algorithm(ctx, body.get("algorithm"))
    ctx.engine.check_container(algorithm.container)
    answer: dict[str, Any] = {"datasets": []}
    for index, raw in enumerate(datasets):
        item = _item(raw, "dataset" if index == 0 else f"datasets[{index}]")
        asset, chain = await _dataset(ctx, index, item, consumer, algorithm)
        answer["datasets"].append(await _quote(ctx, chain, asset, item, consumer, env,
                                               valid_until, pays=index == 0))
    if algorithm.asset is not None:
        algo_raw = body["algorithm"]
        chain = ctx.chains.get(algorithm.asset.chain_id)
        await check_consumable(chain, algorithm.asset, consumer)
        answer["algorithm"] = await _quote(ctx, chain, algorithm.asset, algo_raw, consumer,
                                           env, valid_until, pays=False)
    return answer


async def _validated(ctx: ComputeContext, chain: ChainConfig, asset: Asset,
                     item: Mapping[str, Any], consumer: str, env: Environment) -> ValidatedOrder:
    if not item.get("transferTxId"):
        raise BadRequestError("The transferTxId field is required.", code="validation_error")
    service = asset.service(str(item["serviceId"]))
    order = await ctx.orders.validate(chain, asset=asset, service=service,
                                      tx_id=str(item["transferTxId"]), sender=consumer,
                                      environment=env.id)
    if order.consumer != to_checksum_address(env.consumer_address):
        raise OrderInvalidError("The order was made for another compute consumer.")
    return order


def _files(asset: Asset, item: Mapping[str, Any], chain: ChainConfig) -> list[dict[str, Any]]:
    return decrypt_service_files(asset, asset.service(str(item["serviceId"])), chain.provider_key)


async def start_compute(ctx: ComputeContext, body: Mapping[str, Any], auth_token: str | None
                        ) -> list[dict[str, Any]]:
    """Verify the signed request, every order and the fees; hand the job to the engine."""
    dataset = _item(body.get("dataset"), "dataset")
    consumer = await ctx.authenticator.authenticate(
        signer=str(body.get("consumerAddress", "")),
        message=compute_message(str(body.get("consumerAddress", "")), "",
                                str(dataset["documentId"])),
        nonce=str(body.get("nonce", "")), signature=body.get("signature") or None,
        auth_token=auth_token)
    env = await find_environment(ctx.engine, body.get("environment"))
    algorithm = await _algorithm(ctx, body.get("algorithm"))
    ctx.engine.check_container(algorithm.container)
    extra = body.get("additionalDatasets") or []
    if not isinstance(extra, list):
        raise refuse("additional_input_invalid", "additionalDatasets must be a list.")
    items = [dataset] + [_item(x, f"datasets[{i + 1}]") for i, x in enumerate(extra)]
    inputs: list[JobInput] = []
    orders: list[tuple[ValidatedOrder, ChainConfig]] = []
    for index, item in enumerate(items):
        asset, chain = await _dataset(ctx, index, item, consumer, algorithm)
        orders.append((await _validated(ctx, chain, asset, item, consumer, env), chain))
        inputs.append(JobInput(did=asset.did, service_id=str(item["serviceId"]),
                               transfer_tx=str(item["transferTxId"]), ddo=asset.raw,
                               files=_files(asset, item, chain), userdata=item.get("userdata")))
    algo_raw = body["algorithm"]
    job_algorithm = JobAlgorithm(container=algorithm.container,
                                 algocustomdata=algo_raw.get("algocustomdata"),
                                 userdata=algo_raw.get("algouserdata") or algo_raw.get("userdata"))
    if algorithm.asset is not None:
        chain = ctx.chains.get(algorithm.asset.chain_id)
        await check_consumable(chain, algorithm.asset, consumer)
        orders.append((await _validated(ctx, chain, algorithm.asset, algo_raw, consumer, env),
                       chain))
        job_algorithm = JobAlgorithm(
            container=algorithm.container, files=_files(algorithm.asset, algo_raw, chain),
            did=algorithm.asset.did, ddo=algorithm.asset.raw,
            algocustomdata=job_algorithm.algocustomdata, userdata=job_algorithm.userdata,
            service_id=str(algo_raw["serviceId"]), transfer_tx=str(algo_raw["transferTxId"]))
    else:
        meta = algorithm.meta or {}
        if not meta.get("rawcode") and not meta.get("url"):
            raise refuse("meta_oneof_url_rawcode_remote",
                         "The algorithm needs rawcode or a url.")
        job_algorithm = JobAlgorithm(
            container=algorithm.container, rawcode=meta.get("rawcode") or None,
            files=[{"type": "url", "url": meta["url"], "method": "GET"}] if meta.get("url")
            else [], algocustomdata=job_algorithm.algocustomdata,
            userdata=job_algorithm.userdata)
    duration = await _check_fees(orders, env)
    record = await ctx.engine.start(JobSpec(
        job_id=uuid.uuid4().hex, owner=consumer, environment=env, chain_id=orders[0][1].chain_id,
        agreement_id=orders[0][0].order_tx, inputs=inputs, algorithm=job_algorithm,
        max_duration=duration, allow_network=env.allow_network))
    return [record.to_json()]


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
        decimals = await token_decimals(chain, env.fee_token)
        required = compute_fee_amount(valid_until, int(started), Decimal(env.price_min),
                                      decimals)
        paid = sum(o.fee.fee.provider_fee_amount for o, _ in orders
                   if o.fee.fee.provider_fee_token.lower() == env.fee_token.lower())
        if paid < required:
            raise refuse("fees_not_paid", "The provider fees paid do not cover the duration.")
    return duration


def _owner(raw: Any) -> str:
    if not isinstance(raw, str) or not is_address(raw):
        raise BadRequestError("The consumerAddress field is required.", code="validation_error")
    return to_checksum_address(raw)


async def compute_status(ctx: ComputeContext, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Jobs of ``consumerAddress`` (optionally one job or one dataset)."""
    owner = _owner(params.get("consumerAddress"))
    jobs = await ctx.engine.jobs(owner, params.get("jobId") or None,
                                 params.get("documentId") or None)
    return [j.to_json() for j in jobs]


async def _signed_owner(ctx: ComputeContext, params: Mapping[str, Any],
                        auth_token: str | None) -> str:
    owner = str(params.get("consumerAddress") or "")
    return await ctx.authenticator.authenticate(
        signer=owner,
        message=compute_message(owner, str(params.get("jobId") or ""),
                                str(params.get("documentId") or "")),
        nonce=str(params.get("nonce") or ""), signature=params.get("signature") or None,
        auth_token=auth_token)


async def stop_compute(ctx: ComputeContext, params: Mapping[str, Any],
                       auth_token: str | None) -> list[dict[str, Any]]:
    owner = await _signed_owner(ctx, params, auth_token)
    jobs: list[JobRecord] = await ctx.engine.stop(owner, params.get("jobId") or None,
                                                  params.get("documentId") or None)
    return _found(jobs, params)


async def delete_compute(ctx: ComputeContext, params: Mapping[str, Any],
                         auth_token: str | None) -> list[dict[str, Any]]:
    owner = await _signed_owner(ctx, params, auth_token)
    jobs = await ctx.engine.delete(owner, params.get("jobId") or None,
                                   params.get("documentId") or None)
    return _found(jobs, params)


def _found(jobs: list[JobRecord], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The records, or a 404 when a named job does not exist.

    ocean.py 3.1.2 reads element 0 of a stop/delete answer: an empty list would crash
    it with IndexError, a 404 becomes its ordinary provider error.
    """
    if params.get("jobId") and not jobs:
        raise JobNotFoundError("Job not found.")
    return [j.to_json() for j in jobs]


async def compute_result(ctx: ComputeContext, params: Mapping[str, Any],
                         auth_token: str | None) -> Any:
    owner_raw = str(params.get("consumerAddress") or "")
    job_id, index = str(params.get("jobId") or ""), str(params.get("index") or "")
    if not job_id or not index.isdigit():
        raise BadRequestError("The jobId and index fields are required.",
                              code="validation_error")
    owner = await ctx.authenticator.authenticate(
        signer=owner_raw, message=compute_result_message(owner_raw, job_id, index),
        nonce=str(params.get("nonce") or ""), signature=params.get("signature") or None,
        auth_token=auth_token)
    return await ctx.engine.result(owner, job_id, int(index))
