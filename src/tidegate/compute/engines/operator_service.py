"""The operator-service engine: Ocean's C2D API in front of Kubernetes clusters.

Tidegate talks to ``{OPERATOR_SERVICE_URL}/api/v1/operator/<x>`` (as the reference
Provider's ``ocean_provider/utils/compute.py`` does) as the
provider: every request carries ``providerAddress``, a ``nonce`` (``time.time_ns()``,
strictly increasing) and ``providerSignature``, the provider key's signature of
``owner + jobId + nonce`` (``owner + nonce`` without a job id) in the reference's
form (v = 0/1). Jobs are the operator's: this engine keeps no job records of its own,
and the operator's job and environment objects are returned with their fields intact.

**Ocean Node protocol jobs** (compute v2): the operator knows nothing of a job's
protocol, free flag, resources or maximum duration, and gives the job its own id. At
start the engine stores them in Tidegate's store (``operator_jobs``: Tidegate's job
id, the escrow lock's, -> the operator's id and that JSON) and merges them into the
operator's records on every status, stop and delete, so the v2 routes render the job
(``JobRecord.to_node_json``) and the free-job limit counts free jobs. Clients see the
operator's job id; asked for Tidegate's id (the settlement sweep, which knows the
lock's), the engine asks the operator for the job the row names. A delete first keeps
the job's last state in its row (an unfinished job as ended then): the operator forgets
a deleted job, and a paid job deleted before the sweep settled it is still charged.

**Used time** of a paid job (``OperatorJobRecord.used_seconds``): the operator's
``algoStartTimestamp`` -> ``algoStopTimestamp`` (else ``dateFinished``) when it sends
them (Ocean's newer C2D job objects do; ``"0"`` means never started). Without them it
is ``dateCreated`` -> ``dateFinished``: the provisioning time is charged too (the
payments object clamps it to the job's maximum). A job **never ran** -- released, not
charged -- when its status is a provisioning failure (31, 32), or when the operator
sends timestamps and ``algoStartTimestamp`` is unset (e.g. stopped while queued);
without timestamps a job stopped before it ran cannot be told apart and is charged
from ``dateCreated``.

Differences from the reference, on purpose: the base URL keeps its path (the
reference's ``urljoin`` drops a last segment without a trailing slash); the result
download does not forward the consumer's signature (the engine protocol does not
carry it) and never puts signatures in the file name; the workflow's
``compute.maxtime`` is the job's maximum duration (the reference sends 3600 whatever
the job's ``maxJobDuration``, so a job paid for less could run for an hour).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import httpx
import orjson
from eth_account import Account

from tidegate.auth.signatures import sign_message
from tidegate.compute.engines.base import JobAlgorithm, JobSpec, ResultStream
from tidegate.compute.engines.records import JobNotRunningError
from tidegate.compute.environments import Environment
from tidegate.compute.jobs import FINISHED, JobRecord, JobResult, JobStatus
from tidegate.errors import (
    BadRequestError,
    NotFoundError,
    ServiceUnavailableError,
    TidegateError,
    UnauthorizedError,
)
from tidegate.files.storages import safe_filename
from tidegate.stores.base import OperatorJobRow, Store
from tidegate.types import ZERO_ADDRESS, digits_value

__all__ = ["OperatorEnvironment", "OperatorJobRecord", "OperatorServiceEngine",
           "provider_signature"]

logger = logging.getLogger(__name__)

_RETRY_STATUSES: Final = frozenset({502, 503, 504})
_FILENAME: Final = re.compile(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', re.IGNORECASE)


def provider_signature(message: str, private_key: str) -> str:
    """The reference helper's signature: EIP-191 over keccak(message), v = 0/1."""
    signature = sign_message(message, private_key)
    return signature[:-2] + f"{int(signature[-2:], 16) - 27:02x}"


@dataclass(frozen=True)
class OperatorEnvironment(Environment):
    """An operator environment; :meth:`to_json` is the operator's object + ``feeToken``."""

    raw: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**self.raw, "feeToken": self.fee_token}


@dataclass
class OperatorJobRecord(JobRecord):
    """A job as the operator described it; :meth:`to_json` keeps every operator field."""

    raw: dict[str, Any] = field(default_factory=dict)
    run_finished: float | None = None
    """``algoStopTimestamp`` when the operator sends it (see the module's used time)."""

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), **self.raw}

    def used_seconds(self, now: float) -> float | None:
        """The algorithm's run by the operator's timestamps (see the module)."""
        if self.date_started is None:
            return None
        end = self.run_finished or self.date_finished or now
        return max(0.0, end - self.date_started)


def _timestamp(value: object) -> float | None:
    if value in (None, "", 0):
        return None
    try:
        return float(str(value))
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _listed(value: object) -> list[Any]:
    """A list the operator may send as JSON text (older operator-service versions do)."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return []
    return list(value) if isinstance(value, list) else []


def job_from_operator(raw: Mapping[str, Any]) -> OperatorJobRecord:
    """Map one operator job object to a record (lenient: the operator's fields win)."""
    results = []
    for i, item in enumerate(_listed(raw.get("results"))):
        if isinstance(item, Mapping):
            results.append(JobResult(filename=str(item.get("filename", "")),
                                     filesize=int(item.get("filesize") or 0),
                                     type=str(item.get("type", "output")),
                                     index=int(item.get("index", i))))
    inputs = [str(d) for d in _listed(raw.get("inputDID"))]
    status = int(raw.get("status") or 1)
    created = _timestamp(raw.get("dateCreated")) or 0.0
    started: float | None
    if "algoStartTimestamp" in raw:
        started = _timestamp(raw.get("algoStartTimestamp")) or None
    elif status >= JobStatus.RUNNING:  # no timestamps: charged from the job's creation
        started = created or None
    else:
        started = None
    if status in (JobStatus.DATA_PROVISIONING_FAILED,
                  JobStatus.ALGORITHM_PROVISIONING_FAILED):
        started = None
    return OperatorJobRecord(
        job_id=str(raw.get("jobId", "")), owner=str(raw.get("owner", "")),
        did=str(raw.get("documentId") or raw.get("did") or (inputs[0] if inputs else "")),
        agreement_id=str(raw.get("agreementId", "")),
        environment=str(raw.get("environment", "")),
        chain_id=int(raw.get("chainId") or 0), status=status,
        status_text=str(raw.get("statusText", "")),
        date_created=created, date_started=started,
        date_finished=_timestamp(raw.get("dateFinished")), results=results,
        algorithm_did=str(raw["algoDID"]) if raw.get("algoDID") else None, input_dids=inputs,
        stop_requested=bool(int(raw.get("stopreq") or 0)), raw=dict(raw),
        run_finished=_timestamp(raw.get("algoStopTimestamp")) or None)


def _merged(record: JobRecord, row: OperatorJobRow) -> JobRecord:
    """``record`` with what Tidegate stored of it at start (``operator_jobs``)."""
    known = json.loads(row.document)
    record.protocol = str(known.get("protocol", record.protocol))
    record.free = bool(known.get("free", record.free))
    record.max_duration = int(known.get("maxDuration", record.max_duration))
    record.resources = list(known.get("resources", record.resources))
    record.environment = record.environment or str(known.get("environment", ""))
    return record


class OperatorServiceEngine:
    """:class:`~tidegate.compute.engines.base.ComputeEngine` backed by an operator-service.

    ``http`` is the app's shared client (not closed here). ``provider_key`` is the
    chain-independent key (``UNIVERSAL_PRIVATE_KEY`` or the single provider key).
    ``fee_tokens`` maps chain id to this provider's fee token (added to every
    environment); ``metadata_uri`` is the stage ``output.metadataUri``. ``store``
    keeps what Tidegate knows of its Ocean Node protocol jobs (see the module); without
    one (tests of the classic path) such jobs are rendered from the operator's fields
    alone.
    """

    def __init__(self, http: httpx.AsyncClient, base_url: str, provider_key: str,
                 chain_ids: Sequence[int], *, fee_tokens: Mapping[int, str] | None = None,
                 metadata_uri: str = "", timeout: float = 30.0, retries: int = 3,
                 max_unsized_result: int = 64 * 1024 * 1024,
                 store: Store | None = None) -> None:
        self._http = http
        self._store = store
        self._base = base_url.rstrip("/") + "/api/v1/operator/"
        self._key = provider_key
        self.address: str = Account.from_key(provider_key).address
        self._chain_ids = list(chain_ids)
        self._fee_tokens = dict(fee_tokens or {})
        self._metadata_uri = metadata_uri
        self._timeout = timeout
        self._retries = max(1, retries)
        self._max_unsized = max_unsized_result

    # --- signing and transport ---------------------------------------------------------
    def _signed(self, owner: str | None, job_id: str | None = None) -> dict[str, str]:
        nonce = str(time.time_ns())
        return {"providerAddress": self.address, "nonce": nonce,
                "providerSignature": provider_signature((owner or "") + (job_id or "") + nonce,
                                                        self._key)}

    async def _call(self, method: str, name: str,
                    params: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
                    body: Callable[[], Any] | None = None) -> httpx.Response:
        """One operator call; GETs are retried on 502/503/504 and transport errors.

        ``params``/``body`` are built per attempt: each attempt needs a fresh nonce.
        """
        attempts = self._retries if method == "GET" else 1
        for attempt in range(attempts):
            try:
                response = await self._http.request(
                    method, self._base + name,
                    params=params() if callable(params) else params,
                    json=body() if body else None, timeout=self._timeout,
                    headers={"Content-Type": "application/json", "Connection": "close"})
            except httpx.HTTPError as exc:
                if attempt + 1 < attempts:
                    await asyncio.sleep(0.2 * 2**attempt)
                    continue
                raise ServiceUnavailableError("The compute operator-service is unreachable.",
                                              code="operator_unavailable") from exc
            if response.status_code in _RETRY_STATUSES and attempt + 1 < attempts:
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _error(response: httpx.Response) -> TidegateError:
        """Our error for an operator error answer (its ``error`` text, shortened)."""
        try:
            decoded = orjson.loads(response.content)
            text = str(decoded.get("error") or decoded) if isinstance(decoded, dict) else ""
        except orjson.JSONDecodeError:
            text = ""
        text = text[:300] or f"The compute operator-service answered {response.status_code}."
        status = response.status_code
        if status == 400:
            return BadRequestError(text, code="operator_error")
        if status in (401, 403):
            return UnauthorizedError(text, code="operator_refused")
        if status == 404:
            return NotFoundError(text, code="job_not_found")
        return ServiceUnavailableError(text, code="operator_error")

    def _jobs(self, response: httpx.Response) -> list[JobRecord]:
        if response.status_code >= 400:
            raise self._error(response)
        try:
            decoded = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise ServiceUnavailableError("The compute operator-service answered badly.",
                                          code="operator_error") from None
        items = decoded if isinstance(decoded, list) else [decoded]
        return [job_from_operator(item) for item in items if isinstance(item, Mapping)]

    # --- protocol ----------------------------------------------------------------------
    async def unavailable(self) -> TidegateError | None:
        """Always ``None``: the operator-service is asked on every call, and a failure to
        read it is a 503 there (``operator_unavailable``), not a standing state."""
        return None

    async def environments(self) -> list[Environment]:
        """Every chain's environments (``GET environments?chainId=``), with our fee token.

        Any chain that cannot be read makes the whole answer a 503, as the reference.
        """
        found: list[Environment] = []
        for chain_id in self._chain_ids:
            failure = ServiceUnavailableError(
                f"Compute envs could not be retrieved for chainId {chain_id}, "
                "check configuration.", code="operator_unavailable")
            try:
                response = await self._call("GET", "environments", {"chainId": chain_id})
                decoded = orjson.loads(response.content) if response.status_code < 400 else None
            except (TidegateError, orjson.JSONDecodeError):
                raise failure from None
            if not isinstance(decoded, list):
                raise failure
            for raw in decoded:
                env = self._environment(chain_id, raw)
                if env is not None:
                    found.append(env)
        return found

    def _environment(self, chain_id: int, raw: object) -> OperatorEnvironment | None:
        if not isinstance(raw, Mapping) or not raw.get("id"):
            return None
        try:
            return OperatorEnvironment(
                id=str(raw["id"]), chain_id=chain_id,
                consumer_address=str(raw.get("consumerAddress", "")),
                fee_token=self._fee_tokens.get(chain_id) or str(raw.get("feeToken")
                                                                or ZERO_ADDRESS),
                price_min=Decimal(str(raw.get("priceMin", 0))),
                cpu_number=int(raw.get("cpuNumber", 1)), ram_gb=float(raw.get("ramGB", 1)),
                disk_gb=float(raw.get("diskGB", 1)), max_jobs=int(raw.get("maxJobs", 1)),
                max_job_duration=int(raw.get("maxJobDuration", 3600)),
                storage_expiry=int(raw.get("storageExpiry", 0)),
                description=str(raw.get("desc", "")),
                current_jobs=int(raw.get("currentJobs", 0)), raw=dict(raw))
        except (TypeError, ValueError, InvalidOperation):
            logger.warning("ignoring a malformed operator environment on chain %d", chain_id)
            return None

    def check_container(self, container: Any) -> None:
        """Any image: the cluster pulls it (validateContainer checks the fields)."""

    def workflow(self, spec: JobSpec) -> dict[str, Any]:
        """The ``POST compute`` body the reference Provider sends (signature and nonce included)."""
        inputs = []
        for index, item in enumerate(spec.inputs):
            remote: dict[str, Any] = {"txId": item.transfer_tx, "serviceId": item.service_id}
            if item.userdata:
                remote["userdata"] = item.userdata
            inputs.append({"index": index, "id": item.did, "remote": remote})
        stage = {"index": 0, "input": inputs,
                 # The job's own limit (the reference sends 3600 whatever was paid for):
                 # the operator then stops a paid job at the duration it was charged.
                 "compute": {"Instances": 1, "namespace": "ocean-compute",
                             "maxtime": spec.max_duration},
                 "algorithm": _algorithm(spec.algorithm),
                 "output": {"metadataUri": self._metadata_uri}}
        signed = self._signed(spec.owner)
        return {"workflow": {"stages": [stage]},
                "providerSignature": signed["providerSignature"],
                "agreementId": spec.agreement_id, "owner": spec.owner,
                "providerAddress": self.address, "environment": spec.environment.id,
                "validUntil": int(time.time()) + spec.max_duration,
                "nonce": int(signed["nonce"]), "chainId": spec.chain_id}

    async def start(self, spec: JobSpec) -> JobRecord:
        """POST the workflow; the operator's first job object. An Ocean Node protocol
        job's terms are stored first under the operator's id (see the module)."""
        jobs = self._jobs(await self._call("POST", "compute", body=lambda: self.workflow(spec)))
        if not jobs:
            raise ServiceUnavailableError("The compute operator-service returned no job.",
                                          code="operator_error")
        record = jobs[0]
        if spec.protocol == "node" and self._store is not None:
            document = json.dumps({
                "protocol": spec.protocol, "free": spec.free,
                "maxDuration": spec.max_duration, "environment": spec.environment.id,
                "resources": [{"id": rid, "amount": amount}
                              for rid, amount in spec.resources]})
            row = OperatorJobRow(spec.job_id, record.job_id, document)
            await self._store.put_operator_job(row.job_id, row.operator_job_id, row.document)
            record = _merged(record, row)
        return record

    async def _target(self, owner: str | None, job_id: str | None, did: str | None,
                      ) -> tuple[OperatorJobRow | None, Callable[[], dict[str, Any]]]:
        """The stored row when ``job_id`` is Tidegate's id of one of its jobs, and the
        operator query for the job (by the operator's id then)."""
        row = (None if job_id is None or self._store is None
               else await self._store.get_operator_job(job_id))
        return row, self._query(owner, row.operator_job_id if row else job_id, did)

    async def _with_known(self, records: list[JobRecord]) -> list[JobRecord]:
        """Merge the stored terms of Tidegate's jobs into the operator's records."""
        if self._store is None or not records:
            return records
        rows = {row.operator_job_id: row
                for row in await self._store.find_operator_jobs([r.job_id for r in records])}
        return [_merged(r, rows[r.job_id]) if r.job_id in rows else r for r in records]

    def _query(self, owner: str | None, job_id: str | None,
               did: str | None) -> Callable[[], dict[str, Any]]:
        def build() -> dict[str, Any]:
            params: dict[str, Any] = {"providerAddress": self.address}
            if owner:
                params["owner"] = owner
            if job_id:
                params["jobId"] = job_id
            if did:
                params["documentId"] = did
            signed = self._signed(owner, job_id)
            params["providerSignature"] = signed["providerSignature"]
            params["nonce"] = signed["nonce"]
            return params

        return build

    async def jobs(self, owner: str | None, job_id: str | None,
                   did: str | None) -> list[JobRecord]:
        """The operator's jobs with Tidegate's terms merged. Asked by Tidegate's id (the
        settlement sweep), a job deleted since is its last state, kept at the delete."""
        row, query = await self._target(owner, job_id, did)
        try:
            found = self._jobs(await self._call("GET", "compute", query))
        except NotFoundError:
            found = []
        if not found and row is not None:
            deleted = json.loads(row.document).get("deleted")
            if isinstance(deleted, Mapping):
                return [_merged(job_from_operator(deleted), row)]
        return await self._with_known(found)

    async def stop(self, owner: str, job_id: str | None, did: str | None) -> list[JobRecord]:
        _, query = await self._target(owner, job_id, did)
        return await self._with_known(self._jobs(await self._call("PUT", "compute", query)))

    async def delete(self, owner: str, job_id: str | None, did: str | None) -> list[JobRecord]:
        """DELETE at the operator. A Tidegate job's last state is kept in its row first
        (an unfinished one as ended now), so a paid job deleted before it was settled
        is still charged for what it ran."""
        row, query = await self._target(owner, job_id, did)
        # The job's state is read first only when it may be one of Tidegate's (a
        # classic job's delete costs the operator no extra call).
        if self._store is not None and (
                job_id is None or row is not None
                or await self._store.find_operator_jobs([job_id])):
            try:
                before = self._jobs(await self._call("GET", "compute", query))
            except NotFoundError:
                before = []
            await self._keep_deleted(before)
        return await self._with_known(self._jobs(await self._call("DELETE", "compute",
                                                                  query)))

    async def _keep_deleted(self, records: list[JobRecord]) -> None:
        assert self._store is not None
        rows = {row.operator_job_id: row
                for row in await self._store.find_operator_jobs([r.job_id for r in records])}
        for record in records:
            row = rows.get(record.job_id)
            if row is None or not isinstance(record, OperatorJobRecord):
                continue
            last = dict(record.raw)
            if int(last.get("status") or 1) not in FINISHED:
                last.update(status=int(JobStatus.COMPLETED), statusText="Job deleted",
                            dateFinished=f"{time.time():.3f}")
            document = {**json.loads(row.document), "deleted": last}
            await self._store.put_operator_job(row.job_id, row.operator_job_id,
                                               json.dumps(document))

    async def follow_log(self, owner: str, job_id: str) -> AsyncIterator[bytes]:
        """operator-service has no log stream: 404 ``job_not_running`` for every job."""
        raise JobNotRunningError("Streamable logs are not available for this compute "
                                 "engine.")

    async def result(self, owner: str, job_id: str, index: int) -> ResultStream:
        """Stream ``getResult``; a body without a length is read (bounded) first."""
        signed = self._signed(owner, job_id)
        params: dict[str, str | int] = {"index": index, "owner": owner, "jobId": job_id,
                  "providerSignature": signed["providerSignature"], "nonce": signed["nonce"]}
        request = self._http.build_request("GET", self._base + "getResult", params=params,
                                           timeout=self._timeout)
        try:
            response = await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError("The compute operator-service is unreachable.",
                                          code="operator_unavailable") from exc
        try:
            if response.status_code >= 400:
                await response.aread()
                raise self._error(response)
            match = _FILENAME.search(response.headers.get("content-disposition", ""))
            name = safe_filename(match.group(1) if match else f"{job_id}-{index}")
            content_type = response.headers.get("content-type", "application/octet-stream")
            length = response.headers.get("content-length", "")
            encoded = response.headers.get("content-encoding", "identity") != "identity"
            size = digits_value(length)
            if size is not None and not encoded:
                return ResultStream(name, size, content_type, _relay(response))
            body = await _bounded(response, self._max_unsized)
        except BaseException:
            await response.aclose()
            raise
        await response.aclose()
        return ResultStream(name, len(body), content_type, _once(body))

    async def close(self) -> None:
        """Nothing to stop: jobs run in the cluster; the HTTP client is the app's."""


def _algorithm(algorithm: JobAlgorithm) -> dict[str, Any]:
    """The stage's ``algorithm``, as the reference Provider builds it: a published DID or raw
    meta."""
    container = dict(algorithm.container)
    if algorithm.did:
        # Service id and order tx are optional JobAlgorithm fields (newer base.py).
        service_id = algorithm.service_id
        services = list((algorithm.ddo or {}).get("services") or [])
        service = next((s for s in services if isinstance(s, Mapping)
                        and s.get("id") == service_id), services[0] if services else {})
        return {"id": algorithm.did, "rawcode": "", "container": container,
                "algouserdata": None,
                "remote": {"serviceEndpoint": service.get("serviceEndpoint"),
                           "txId": algorithm.transfer_tx,
                           "serviceId": service_id or service.get("id"),
                           "userData": algorithm.userdata},
                "algocustomdata": algorithm.algocustomdata}
    url = next((f.get("url") for f in algorithm.files if f.get("type") == "url"), "")
    return {"id": "", "url": url or "", "rawcode": algorithm.rawcode or "",
            "container": container}


async def _relay(response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_bytes():
            yield chunk
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError("The compute result download broke off.",
                                      code="operator_unavailable") from exc
    finally:
        await response.aclose()


async def _bounded(response: httpx.Response, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ServiceUnavailableError("The compute result is too large to relay.",
                                          code="operator_error")
        parts.append(chunk)
    return b"".join(parts)


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body
