"""Compute-to-data endpoints (reference names: computeStart, computeStatus, ...)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tidegate.api.context import services
from tidegate.api.params import MAX_PARAMS_BODY, Params, read_body, read_params
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.auth.signatures import compute_message
from tidegate.commands import compute as use_cases
from tidegate.commands.compute_checks import check_container_fields
from tidegate.errors import BadRequestError


def _context(request: Request) -> use_cases.ComputeContext:
    svc = services(request)
    return use_cases.ComputeContext(
        resolver=svc.resolver, chains=svc.chains, orders=svc.orders, storage=svc.storage,
        engine=svc.engine, authenticator=svc.authenticator)


async def _json_body(request: Request) -> dict[str, Any]:
    """Compute start and initializeCompute read the JSON body (as the reference)."""
    body = await read_body(request, MAX_PARAMS_BODY)
    try:
        data = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        raise BadRequestError("The request body is not valid JSON.", code="invalid_json") \
            from None
    if not isinstance(data, dict):
        raise BadRequestError("The request body must be a JSON object.", code="invalid_json")
    return data


class EnvironmentsParams(Params):
    chainId: str | None = None


class StatusParams(Params):
    consumerAddress: str
    jobId: str | None = None
    documentId: str | None = None
    nonce: str | None = None
    signature: str | None = None


class ResultParams(Params):
    consumerAddress: str
    jobId: str
    index: str
    nonce: str
    signature: str | None = None


async def get_environments(request: Request) -> Response:
    envs = await services(request).engine.environments()
    answer: dict[str, list[dict[str, Any]]] = {
        str(cid): [] for cid in services(request).chains.ids}
    for env in envs:
        answer.setdefault(str(env.chain_id), []).append(env.to_json())
    return JsonResponse(answer)


async def post_initialize_compute(request: Request) -> Response:
    return JsonResponse(await use_cases.initialize_compute(_context(request),
                                                           await _json_body(request)))


async def post_compute(request: Request) -> Response:
    jobs = await use_cases.start_compute(_context(request), await _json_body(request),
                                         request.headers.get("AuthToken"))
    return JsonResponse(jobs)


async def get_compute(request: Request) -> Response:
    params = await read_params(request)
    svc = services(request)
    if svc.settings.compute_status_signed:
        owner = str(params.get("consumerAddress") or "")
        await svc.authenticator.authenticate(
            signer=owner,
            message=compute_message(owner, str(params.get("jobId") or ""),
                                    str(params.get("documentId") or "")),
            nonce=str(params.get("nonce") or ""), signature=params.get("signature") or None,
            auth_token=request.headers.get("AuthToken"))
    return JsonResponse(await use_cases.compute_status(_context(request), params))


async def put_compute(request: Request) -> Response:
    params = await read_params(request)
    return JsonResponse(await use_cases.stop_compute(_context(request), params,
                                                     request.headers.get("AuthToken")))


async def delete_compute(request: Request) -> Response:
    params = await read_params(request)
    return JsonResponse(await use_cases.delete_compute(_context(request), params,
                                                       request.headers.get("AuthToken")))


async def get_compute_result(request: Request) -> Response:
    params = await read_params(request)
    result = await use_cases.compute_result(_context(request), params,
                                            request.headers.get("AuthToken"))

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in result.chunks:
            yield chunk

    return StreamingResponse(chunks(), media_type=result.content_type, headers={
        "Content-Length": str(result.size),
        "Content-Disposition": f"attachment;filename={result.filename}"})


async def post_validate_container(request: Request) -> Response:
    body = await _json_body(request)
    check_container_fields(body)
    return JsonResponse(body)


ENDPOINTS = [
    Endpoint("computeEnvironments", "GET", "/api/services/computeEnvironments",
             get_environments, "Compute environments, keyed by chain id",
             params=EnvironmentsParams),
    Endpoint("initializeCompute", "POST", "/api/services/initializeCompute",
             post_initialize_compute, "Quotes for the datasets and algorithm of a job",
             body="none"),
    Endpoint("computeStart", "POST", "/api/services/compute", post_compute,
             "Start a job (signed consumerAddress + dataset.documentId + nonce)", body="none"),
    Endpoint("computeStatus", "GET", "/api/services/compute", get_compute,
             "Status of the consumer's jobs", params=StatusParams),
    Endpoint("computeStop", "PUT", "/api/services/compute", put_compute,
             "Stop jobs (signed consumerAddress + jobId + documentId + nonce)",
             params=StatusParams),
    Endpoint("computeDelete", "DELETE", "/api/services/compute", delete_compute,
             "Delete jobs and their results (signed like stop)", params=StatusParams),
    Endpoint("computeResult", "GET", "/api/services/computeResult", get_compute_result,
             "Download a job result (signed consumerAddress + jobId + index + nonce)",
             params=ResultParams),
    Endpoint("validateContainer", "POST", "/api/services/validateContainer",
             post_validate_container, "Check a container description", body="none"),
]
