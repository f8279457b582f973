"""Compute in Ocean Node's protocol (C2D v2), as ocean.js 8.6.2 calls it over HTTP.

Routes only this generation has: ``POST /api/services/freeCompute`` (signed
``consumerAddress + nonce + "freeStartCompute"``) and ``GET
/api/services/computeStreamableLogs`` (signed ``... + "getComputeStreamableLogs"``).
Paths both generations share are routed in :mod:`tidegate.api.endpoints.compute`,
which hands this module what the request says is Ocean Node's: the environments
listing (``?protocol=node``), a start whose body carries ``datasets`` or ``payment``
(paid through ``Services.compute_payments``, the Escrow contract; 402
``escrow_unavailable`` without it), an ``initializeCompute`` whose body carries
``payment`` (the escrow quote), and jobs started through this protocol (rendered as
Ocean Node's ``ComputeJob``).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any, Final, Self

import pydantic
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tidegate.api.context import compute_context, services
from tidegate.api.endpoints.access import render_quote
from tidegate.api.endpoints.compute_params import AlgorithmParams
from tidegate.api.node.credentials import node_proof, node_token
from tidegate.api.outbound import probing
from tidegate.api.params import NONCE_RULE, Params
from tidegate.api.responses import JsonResponse
from tidegate.api.routes import Endpoint, Variant
from tidegate.commands.compute.initialize import ComputeQuote
from tidegate.commands.compute.logs import ComputeLogs, compute_logs
from tidegate.commands.compute.node_initialize import (
    NOT_ORDERED,
    InitializeNodeCompute,
    NodeComputeQuotes,
    initialize_node_compute,
)
from tidegate.commands.compute.node_start import (
    NodeDataset,
    PaymentRequest,
    StartNodeCompute,
    start_node_compute,
)
from tidegate.commands.initialize import ValidOrder
from tidegate.compute.environments import Environment
from tidegate.compute.jobs import JobRecord
from tidegate.compute.resources import ResourceAmount, describe
from tidegate.types import (
    AddressText,
    ChainIdParam,
    Did,
    Nonce,
    OrderTxHash,
    Userdata,
    checksum_address,
    fail,
)

FREE_START: Final = "freeStartCompute"
PAID_START: Final = "startCompute"
STOP: Final = "stopCompute"
RESULT: Final = "getComputeResult"
LOGS: Final = "getComputeStreamableLogs"
MAX_AMOUNT: Final = 1_000_000
MAX_DURATION: Final = 10**9


def _amount(raw: object) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) \
            or not 0 <= raw <= MAX_AMOUNT:
        fail("invalid_resources", f"The {{field}} must be a number from 0 to {MAX_AMOUNT}.")
    return float(raw)


def _seconds(raw: object, minimum: int) -> int:
    """Whole seconds (a fraction rounds up) from ``minimum`` to ``MAX_DURATION``."""
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw) \
            or not minimum <= raw <= MAX_DURATION:
        fail("invalid_duration", f"The {{field}} must be a number of seconds from {minimum} "
                                 f"to {MAX_DURATION}.")
    return math.ceil(raw)


def _duration(raw: object) -> int:
    return _seconds(raw, 1)


def _queue_wait(raw: object) -> int:
    return _seconds(raw, 0)


def _object(raw: object) -> object:
    if not isinstance(raw, Mapping):
        fail("invalid_input", "The {field} must be an object.")
    return dict(raw)


Amount = Annotated[float, pydantic.PlainValidator(_amount), pydantic.WithJsonSchema(
    {"type": "number", "minimum": 0, "maximum": MAX_AMOUNT})]
Duration = Annotated[int, pydantic.PlainValidator(_duration), pydantic.WithJsonSchema(
    {"type": "number", "minimum": 1, "maximum": MAX_DURATION,
     "description": "Seconds (a fraction counts as a whole second); capped by the "
                    "environment's maximum."})]
QueueWait = Annotated[int, pydantic.PlainValidator(_queue_wait), pydantic.WithJsonSchema(
    {"type": "number", "minimum": 0, "maximum": MAX_DURATION,
     "description": "Seconds the job may wait for a free slot before it is ended unrun "
                    "(0 or absent: it waits as long as it takes)."})]
FileObjectParam = Annotated[dict[str, Any] | None, pydantic.PlainValidator(_object),
                            pydantic.WithJsonSchema({"type": "object", "description":
                                                     "A file object (url, ipfs, ...)."})]


class ResourceParams(Params):
    id: str
    amount: Amount


class NodeDatasetParams(Params):
    """A published dataset (``documentId`` + ``serviceId``, ordered in ``transferTxId``)
    or the consumer's own ``fileObject``."""

    required_one_of = (("documentId", "serviceId"), ("fileObject",))

    documentId: Did | None = None
    serviceId: str | None = None
    transferTxId: OrderTxHash | None = None
    fileObject: FileObjectParam = None
    userdata: Userdata = None

    @pydantic.model_validator(mode="after")
    def _named(self) -> Self:
        if self.fileObject is None and (self.documentId is None or self.serviceId is None):
            fail("missing_dataset", "Give {field}.documentId and {field}.serviceId, or "
                                    "{field}.fileObject.")
        return self

    def dataset(self) -> NodeDataset:
        if self.fileObject is not None:
            return NodeDataset(file_object=self.fileObject, userdata=self.userdata)
        return NodeDataset(did=self.documentId, service_id=self.serviceId,
                           transfer_tx=self.transferTxId, userdata=self.userdata)


Dataset = Annotated[NodeDatasetParams, pydantic.BeforeValidator(_object)]
Resource = Annotated[ResourceParams, pydantic.BeforeValidator(_object)]


class FreeComputeParams(Params):
    """ocean.js 8's ``freeComputeStart`` body (it also sends ``dataset``, the first of
    ``datasets``, for older providers: ignored)."""

    datasets: list[Dataset] = pydantic.Field(default_factory=list)
    algorithm: AlgorithmParams
    environment: str
    consumerAddress: AddressText
    nonce: Nonce | None = pydantic.Field(None, description=NONCE_RULE)
    signature: str | None = None
    resources: list[Resource] = pydantic.Field(default_factory=list)
    maxJobDuration: Duration | None = None
    queueMaxWaitTime: QueueWait | None = None

    def problems(self) -> dict[str, str]:
        return self.algorithm.problems()

    def command(self, request: Request, command: str = FREE_START) -> StartNodeCompute:
        return StartNodeCompute(
            proof=node_proof(self.consumerAddress, self.nonce, self.signature, command,
                             node_token(request)),
            environment=self.environment, algorithm=self.algorithm.request(),
            datasets=[d.dataset() for d in self.datasets],
            resources=[ResourceAmount(r.id, r.amount) for r in self.resources],
            max_duration=self.maxJobDuration, payment=self.payment_request(),
            queue_max_wait=self.queueMaxWaitTime or 0)

    def payment_request(self) -> PaymentRequest | None:
        return None


class PaymentParams(Params):
    chainId: ChainIdParam
    token: AddressText


class PaidComputeParams(FreeComputeParams):
    """ocean.js 8's ``computeStart`` body: paid through the Escrow contract."""

    payment: Annotated[PaymentParams, pydantic.BeforeValidator(_object)]

    def payment_request(self) -> PaymentRequest | None:
        return PaymentRequest(self.payment.chainId.value, checksum_address(self.payment.token))


class QuotePaymentParams(PaymentParams):
    """``payment`` of ocean.js 8's ``initializeCompute``: the resources ride in it."""

    resources: list[Resource] = pydantic.Field(default_factory=list)


class InitializeNodeComputeParams(Params):
    """ocean.js 8's ``initializeCompute`` body (unsigned; the paid path only)."""

    datasets: list[Dataset] = pydantic.Field(default_factory=list)
    algorithm: AlgorithmParams
    environment: str
    consumerAddress: AddressText
    payment: Annotated[QuotePaymentParams, pydantic.BeforeValidator(_object)]
    maxJobDuration: Duration | None = None
    queueMaxWaitTime: QueueWait | None = None

    def problems(self) -> dict[str, str]:
        return self.algorithm.problems()

    def command(self) -> InitializeNodeCompute:
        return InitializeNodeCompute(
            consumer=checksum_address(self.consumerAddress), environment=self.environment,
            algorithm=self.algorithm.request(),
            payment=PaymentRequest(self.payment.chainId.value,
                                   checksum_address(self.payment.token)),
            datasets=[d.dataset() for d in self.datasets],
            resources=[ResourceAmount(r.id, r.amount) for r in self.payment.resources],
            max_duration=self.maxJobDuration, queue_max_wait=self.queueMaxWaitTime or 0)


class LogsParams(Params):
    jobId: str
    consumerAddress: AddressText
    nonce: Nonce | None = pydantic.Field(None, description=NONCE_RULE)
    signature: str | None = None


def node_job(record: JobRecord) -> dict[str, Any]:
    """A job in its generation's shape: Ocean Node's for jobs started through it."""
    return record.to_node_json() if record.protocol == "node" else record.to_json()


def node_environments(envs: list[Environment], chain_id: int | None) -> list[dict[str, Any]]:
    """``computeEnvironments`` in the C2D v2 shape: one flat list (``chain_id``: only the
    environments priced on that chain, as Ocean Node filters)."""
    return [describe(env, running=env.current_jobs,
                     free_running=env.current_jobs if env.free else 0,
                     queued=env.queued_jobs)
            for env in envs if chain_id is None or env.chain_id == chain_id]


async def post_free_compute(request: Request, p: FreeComputeParams) -> Response:
    record = await start_node_compute(compute_context(request), p.command(request))
    return JsonResponse([node_job(record)])


async def post_paid_compute(request: Request, p: PaidComputeParams) -> Response:
    record = await start_node_compute(compute_context(request), p.command(request, PAID_START),
                                      services(request).compute_payments)
    return JsonResponse([node_job(record)])


def render_compute_quote(quote: ComputeQuote | ValidOrder) -> dict[str, Any]:
    """One input's quote as both generations answer it (``validOrder``: its order)."""
    if isinstance(quote, ValidOrder):
        return render_quote(quote)
    answer: dict[str, Any] = {"datatoken": quote.datatoken,
                              "providerFee": quote.provider_fee.to_json()}
    if quote.valid_order:
        answer["validOrder"] = quote.valid_order
    return answer


def render_node_quotes(quotes: NodeComputeQuotes) -> dict[str, Any]:
    """Ocean Node's answer: ``algorithm``, ``datasets`` (request order), ``payment``;
    ``validOrder`` is false wherever there is no order to reuse (as Ocean Node)."""
    def one(quote: ComputeQuote | ValidOrder | None) -> dict[str, Any]:
        if quote is None:
            return dict(NOT_ORDERED)
        return {"validOrder": False, **render_compute_quote(quote)}

    return {"algorithm": one(quotes.algorithm), "datasets": [one(q) for q in quotes.datasets],
            "payment": quotes.payment}


async def post_initialize_node_compute(request: Request,
                                       p: InitializeNodeComputeParams) -> Response:
    quotes = await probing(request, initialize_node_compute(
        compute_context(request), p.command(), services(request).compute_payments))
    return JsonResponse(render_node_quotes(quotes))


async def get_streamable_logs(request: Request, p: LogsParams) -> Response:
    chunks = await compute_logs(compute_context(request), ComputeLogs(
        job_id=p.jobId, proof=node_proof(p.consumerAddress, p.nonce, p.signature, LOGS,
                                         node_token(request))))

    async def body() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            yield chunk

    return StreamingResponse(body(), media_type="text/plain")


def carries_node_start(data: Mapping[str, Any]) -> bool:
    """A compute start of Ocean Node's protocol: only it sends ``datasets`` or
    ``payment`` (the classic start sends ``dataset`` and ``additionalDatasets``)."""
    return "datasets" in data or "payment" in data


PAID_START_VARIANT = Variant(
    carries=carries_node_start,
    rule={"anyOf": [{"required": ["datasets"]}, {"required": ["payment"]}]},
    params=PaidComputeParams, handler=post_paid_compute)


def carries_payment(data: Mapping[str, Any]) -> bool:
    """An ``initializeCompute`` of Ocean Node's protocol: only it sends ``payment`` (the
    classic body sends ``compute: {env, validUntil}``; both send ``datasets``)."""
    return "payment" in data


PAID_INITIALIZE_VARIANT = Variant(
    carries=carries_payment, rule={"required": ["payment"]},
    params=InitializeNodeComputeParams, handler=post_initialize_node_compute)

ENDPOINTS = [
    Endpoint("freeCompute", "POST", "/api/services/freeCompute", post_free_compute,
             "Start a free job (Ocean Node's protocol: signed consumerAddress + nonce + "
             "'freeStartCompute', or an Authorization token)",
             params=FreeComputeParams, source="json", fetches_files=True),
    Endpoint("computeStreamableLogs", "GET", "/api/services/computeStreamableLogs",
             get_streamable_logs,
             "The log of a running job as it grows (signed consumerAddress + nonce + "
             "'getComputeStreamableLogs'); 404 once the job has finished",
             params=LogsParams,
             responses=((200, "The log, streamed until the job ends (text/plain)"),)),
]
