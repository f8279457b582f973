"""Compute-to-data endpoints (reference names: computeStart, computeStatus, ...).

Request models: :mod:`tidegate.api.endpoints.compute_params`. Every answer about
jobs is a list of job objects (ocean.py and ocean.js read element 0).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tidegate.api.context import compute_context, services
from tidegate.api.endpoints.compute_params import (
    ContainerParams,
    DeleteJobParams,
    EnvironmentsParams,
    InitializeComputeParams,
    JobParams,
    ResultParams,
    SignedJobParams,
    StartComputeParams,
)
from tidegate.api.node import compute as node
from tidegate.api.node.credentials import request_token
from tidegate.api.outbound import probing
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint
from tidegate.commands.compute.context import ComputeContext
from tidegate.commands.compute.delete import delete_compute
from tidegate.commands.compute.environments import compute_environments
from tidegate.commands.compute.initialize import ComputeQuotes, initialize_compute
from tidegate.commands.compute.result import compute_result
from tidegate.commands.compute.start import start_compute
from tidegate.commands.compute.status import compute_status
from tidegate.commands.compute.stop import stop_compute
from tidegate.compute.jobs import JobRecord


def _context(request: Request) -> ComputeContext:
    return compute_context(request)


def _token(request: Request, command: str) -> tuple[str | None, str, bool]:
    """(token, Ocean Node's command, whether the token needs a nonce): the classic
    ``AuthToken`` header needs one, Ocean Node's ``Authorization`` token stands alone."""
    token, needs_nonce = request_token(request)
    return token, command, needs_nonce


def _jobs(records: list[JobRecord]) -> JsonResponse:
    # Each job in the shape of the generation that started it (docs/ocean-node.md).
    return JsonResponse([node.node_job(record) for record in records])


def render_quotes(quotes: ComputeQuotes) -> dict[str, Any]:
    """``{"datasets": [...], "algorithm": ...}``: one quote per input, in request order."""
    answer: dict[str, Any] = {"datasets": [node.render_compute_quote(q) for q in quotes.datasets]}
    if quotes.algorithm is not None:
        answer["algorithm"] = node.render_compute_quote(quotes.algorithm)
    return answer


async def get_environments(request: Request, p: EnvironmentsParams) -> Response:
    svc = services(request)
    envs = await compute_environments(svc.engine, svc.chains)
    if p.protocol == "node":
        chain = None if p.chainId is None else p.chainId.value
        return JsonResponse(node.node_environments(
            [env for chain_envs in envs.values() for env in chain_envs], chain))
    return JsonResponse({str(chain_id): [env.to_json() for env in chain_envs]
                         for chain_id, chain_envs in envs.items()})


async def post_initialize_compute(request: Request, p: InitializeComputeParams) -> Response:
    quotes = await probing(request, initialize_compute(_context(request), p.command()))
    return JsonResponse(render_quotes(quotes))


async def post_compute(request: Request, p: StartComputeParams) -> Response:
    record = await start_compute(_context(request), p.command(request.headers.get("AuthToken")))
    return _jobs([record])


async def get_compute(request: Request, p: JobParams) -> Response:
    signed = services(request).settings.compute_status_signed
    selection = p.selection(request.headers.get("AuthToken"))
    return _jobs(await compute_status(_context(request), selection, signed=signed))


async def put_compute(request: Request, p: SignedJobParams) -> Response:
    selection = p.selection(*_token(request, node.STOP))
    return _jobs(await stop_compute(_context(request), selection))


async def delete_compute_jobs(request: Request, p: DeleteJobParams) -> Response:
    selection = p.selection(request.headers.get("AuthToken"))
    return _jobs(await delete_compute(_context(request), selection))


async def get_compute_result(request: Request, p: ResultParams) -> Response:
    result = await compute_result(_context(request), p.command(*_token(request, node.RESULT)))

    async def chunks() -> AsyncIterator[bytes]:
        async for chunk in result.chunks:
            yield chunk

    return StreamingResponse(chunks(), media_type=result.content_type, headers={
        "Content-Length": str(result.size),
        "Content-Disposition": f"attachment;filename={result.filename}"})


async def post_validate_container(request: Request, p: ContainerParams) -> Response:
    return JsonResponse(p.raw)  # valid: echoed as posted


ENDPOINTS = [
    Endpoint("computeEnvironments", "GET", "/api/services/computeEnvironments",
             get_environments, "Compute environments, keyed by chain id",
             params=EnvironmentsParams),
    Endpoint("initializeCompute", "POST", "/api/services/initializeCompute",
             post_initialize_compute, "Quotes for the datasets and algorithm of a job; a "
             "body with payment is Ocean Node's (escrow payment quote, docs/ocean-node.md)",
             params=InitializeComputeParams, source="json", fetches_files=True,
             variant=node.PAID_INITIALIZE_VARIANT,
             responses=((200, "The quotes"),
                        (402, "Ocean Node's paid path: escrow payments unavailable"))),
    Endpoint("computeStart", "POST", "/api/services/compute", post_compute,
             "Start a job (signed consumerAddress + dataset.documentId + nonce); a body "
             "with datasets or payment is Ocean Node's paid start (docs/ocean-node.md)",
             params=StartComputeParams, source="json", fetches_files=True,
             variant=node.PAID_START_VARIANT,
             responses=((200, "A one-job list"),
                        (402, "Ocean Node's paid start: escrow payments unavailable"))),
    Endpoint("computeStatus", "GET", "/api/services/compute", get_compute,
             "Status of the consumer's jobs (unsigned unless TIDEGATE_COMPUTE_STATUS_SIGNED)",
             params=JobParams),
    Endpoint("computeStop", "PUT", "/api/services/compute", put_compute,
             "Stop jobs (signed consumerAddress + jobId + documentId + nonce)",
             params=SignedJobParams),
    Endpoint("computeDelete", "DELETE", "/api/services/compute", delete_compute_jobs,
             "Delete jobs and their results (signed like stop)", params=DeleteJobParams),
    Endpoint("computeResult", "GET", "/api/services/computeResult", get_compute_result,
             "Download a job result (signed consumerAddress + jobId + index + nonce)",
             params=ResultParams),
    Endpoint("validateContainer", "POST", "/api/services/validateContainer",
             post_validate_container, "Check a container description",
             params=ContainerParams, source="json"),
]
