"""The compute endpoints' request models, and their mapping to the compute commands.

initializeCompute and compute start read a JSON body (as the reference); status,
stop, delete and computeResult the query (or a JSON body). Signed messages follow the
Provider API: start ``consumerAddress + dataset.documentId + nonce``; stop, delete
(and status where required) ``consumerAddress + jobId + documentId + nonce``;
computeResult ``consumerAddress + jobId + index + nonce``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Self

import orjson
import pydantic

from tidegate.api.params import NONCE_RULE, Params, RawKept, wire_rules
from tidegate.auth.request_auth import SignedRequest
from tidegate.auth.signatures import compute_message, compute_result_message
from tidegate.commands.compute.checks import ComputeRefusedError, check_container_fields
from tidegate.commands.compute.context import AlgorithmRequest, DatasetRef
from tidegate.commands.compute.initialize import InitializeCompute
from tidegate.commands.compute.jobs import JobSelection
from tidegate.commands.compute.result import ComputeResult
from tidegate.commands.compute.start import StartCompute
from tidegate.types import (
    AddressText,
    ChainIdParam,
    ChecksumAddress,
    Did,
    Nonce,
    OrderTxHash,
    ResultIndex,
    Userdata,
    ValidUntil,
    checksum_address,
    fail,
)


def _object(raw: object) -> object:
    if not isinstance(raw, Mapping):
        fail("invalid_input", "The {field} must be an object.")
    return raw


def _list_or_none(raw: object) -> object:
    if not isinstance(raw, list):
        fail("additional_input_invalid",
             "additional_input_invalid: additionalDatasets must be a list.")
    return raw


def _meta(raw: object) -> dict[str, Any] | None:
    if isinstance(raw, str):  # clients may send the meta object as JSON text
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            fail("invalid_input", "The {field} is not JSON.")
    if not isinstance(raw, Mapping):
        fail("invalid_input", "The {field} must be an object.")
    return dict(raw) or None  # {} names no algorithm


_META_OBJECT: Final = {"type": "object", "minProperties": 1}
AlgorithmMeta = Annotated[dict[str, Any] | None, pydantic.PlainValidator(_meta),
                          pydantic.WithJsonSchema({
                              "anyOf": [_META_OBJECT, {"type": "string",
                                                       "contentMediaType": "application/json",
                                                       "contentSchema": _META_OBJECT}],
                              "description": "A raw algorithm: rawcode or url, and a "
                                             "container (an object, or its JSON text)."})]


class DatasetParams(Params):
    documentId: Did
    serviceId: str
    transferTxId: OrderTxHash | None = None
    userdata: Userdata = None

    def ref(self) -> DatasetRef:
        return DatasetRef(self.documentId, self.serviceId, self.transferTxId, self.userdata)


class OrderedDatasetParams(DatasetParams):
    transferTxId: OrderTxHash


Dataset = Annotated[DatasetParams, pydantic.BeforeValidator(_object)]
OrderedDataset = Annotated[OrderedDatasetParams, pydantic.BeforeValidator(_object)]


class AlgorithmParams(Params):
    """A raw algorithm (``meta``, which wins), or a published one (``documentId`` and
    ``serviceId``; compute start also needs its order, ``transferTxId``)."""

    required_one_of = (("meta",), ("documentId", "serviceId"))

    documentId: Did | None = None
    serviceId: str | None = None
    transferTxId: OrderTxHash | None = None
    meta: AlgorithmMeta = None
    algocustomdata: Annotated[Any, pydantic.WithJsonSchema({})] = None
    algouserdata: Userdata = None
    userdata: Userdata = None

    @pydantic.model_validator(mode="after")
    def _named(self) -> Self:
        if self.meta is None and self.documentId is None:
            fail("missing_meta_documentId",
                 "missing_meta_documentId: Give algorithm.documentId or algorithm.meta.")
        return self

    def problems(self) -> dict[str, str]:
        if self.meta is None and self.serviceId is None:
            return {"algorithm.serviceId": "The algorithm.serviceId field is required."}
        return {}

    def request(self) -> AlgorithmRequest:
        return AlgorithmRequest(did=self.documentId, service_id=self.serviceId,
                                transfer_tx=self.transferTxId, meta=self.meta,
                                algocustomdata=self.algocustomdata,
                                userdata=self.algouserdata or self.userdata)


class ComputeEnvParams(Params):
    env: str
    validUntil: ValidUntil


class InitializeComputeParams(Params):
    datasets: Annotated[list[Dataset], pydantic.Field(min_length=1)]
    algorithm: AlgorithmParams
    compute: ComputeEnvParams
    consumerAddress: ChecksumAddress

    def problems(self) -> dict[str, str]:
        return self.algorithm.problems()

    def command(self) -> InitializeCompute:
        return InitializeCompute(consumer=self.consumerAddress,
                                 datasets=[d.ref() for d in self.datasets],
                                 algorithm=self.algorithm.request(),
                                 environment=self.compute.env,
                                 valid_until=self.compute.validUntil)


class StartComputeParams(Params):
    dataset: OrderedDataset
    additionalDatasets: Annotated[list[OrderedDataset], pydantic.BeforeValidator(
        _list_or_none)] = pydantic.Field(default_factory=list)
    algorithm: AlgorithmParams
    environment: str
    consumerAddress: AddressText
    nonce: Nonce
    signature: str | None = None

    def problems(self) -> dict[str, str]:
        return self.algorithm.problems()

    def command(self, auth_token: str | None) -> StartCompute:
        return StartCompute(
            proof=SignedRequest(
                signer=self.consumerAddress,
                message=compute_message(self.consumerAddress, "", self.dataset.documentId),
                nonce=self.nonce, signature=self.signature, auth_token=auth_token),
            datasets=[d.ref() for d in (self.dataset, *self.additionalDatasets)],
            algorithm=self.algorithm.request(), environment=self.environment)


class JobParams(Params):
    """The owner's jobs; ``jobId`` and ``documentId`` narrow them."""

    consumerAddress: AddressText
    jobId: str | None = None
    documentId: Did | None = None
    nonce: Nonce | None = pydantic.Field(None, description=(
        "Only where the status is signed (TIDEGATE_COMPUTE_STATUS_SIGNED): then "
        + NONCE_RULE[0].lower() + NONCE_RULE[1:]))
    signature: str | None = None

    def selection(self, auth_token: str | None, command: str | None = None,
                  token_needs_nonce: bool = True) -> JobSelection:
        """``command``: Ocean Node's name of the operation, whose signed form
        (``consumerAddress + nonce + command``) is accepted too; ``token_needs_nonce``
        False for Ocean Node's ``Authorization`` token, sent alone."""
        message = compute_message(self.consumerAddress, self.jobId or "",
                                  self.documentId or "")
        return JobSelection(
            owner=checksum_address(self.consumerAddress), job_id=self.jobId,
            did=self.documentId,
            proof=SignedRequest(signer=self.consumerAddress, message=message, nonce=self.nonce,
                                signature=self.signature, auth_token=auth_token,
                                command=command, token_needs_nonce=token_needs_nonce))


class SignedJobParams(JobParams):
    """Stop: signed, or Ocean Node's ``Authorization`` token alone (hence no required
    nonce here: the authenticator requires it without such a token)."""

    nonce: Nonce | None = pydantic.Field(None, description=NONCE_RULE)


class DeleteJobParams(JobParams):
    """Delete (classic only: Ocean Node answers 404 "Not yet implemented!")."""

    nonce: Nonce


class ResultParams(Params):
    consumerAddress: AddressText
    jobId: str
    index: ResultIndex
    nonce: Nonce | None = pydantic.Field(None, description=NONCE_RULE)
    signature: str | None = None

    def command(self, auth_token: str | None, node_command: str | None = None,
                token_needs_nonce: bool = True) -> ComputeResult:
        """``node_command``: Ocean Node's name (``getComputeResult``), whose signed form
        is accepted too (and its ``Authorization`` token alone)."""
        message = compute_result_message(self.consumerAddress, self.jobId, self.index.text)
        return ComputeResult(job_id=self.jobId, index=self.index.value, proof=SignedRequest(
            signer=self.consumerAddress, message=message, nonce=self.nonce,
            signature=self.signature, auth_token=auth_token, command=node_command,
            token_needs_nonce=token_needs_nonce))


class EnvironmentsParams(Params):
    chainId: ChainIdParam | None = pydantic.Field(
        None, description="Classic: accepted, every chain's environments are returned, "
                          "keyed by id. With protocol=node: only that chain's.")
    protocol: Literal["node"] | None = pydantic.Field(None, description=(
        "node: the C2D v2 shape of Ocean Node's protocol (a flat list); GET / gives "
        "this path with it to Ocean Node's clients (docs/ocean-node.md)."))


def _container_schema(schema: dict[str, Any], model: type[pydantic.BaseModel]) -> None:
    wire_rules(schema, model)
    # check_container_fields reads the posted values as the reference does (truthiness):
    # a number is taken as its text, but 0 is no entrypoint or image.
    for name in ("entrypoint", "image"):
        prop = schema["properties"][name]
        prop["type"] = "string"
        prop.pop("minLength", None)
        schema["properties"][name] = {"anyOf": [
            {"type": "string", "minLength": 1}, {"type": "number", "not": {"const": 0}}],
            **{k: v for k, v in prop.items() if k in ("title", "description")}}


class ContainerParams(RawKept):
    """A container description, echoed back when valid."""

    model_config = pydantic.ConfigDict(**{**Params.model_config,
                                          "json_schema_extra": _container_schema})

    entrypoint: str
    image: str
    tag: str | None = None
    checksum: Annotated[str, pydantic.Field(pattern="^sha256:")]

    @pydantic.model_validator(mode="before")
    @classmethod
    def _container_rules(cls, data: Any) -> Any:
        # The reference's codes for these refusals (one home: compute.checks).
        if isinstance(data, Mapping):
            try:
                check_container_fields(data)
            except ComputeRefusedError as exc:
                fail(exc.code, exc.message)
        return data
