"""The operator-service engine against a recorded-contract fake (no cluster runs here).

The fake is a small HTTP server answering as the Ocean operator-service does for the
reference Provider (signing, environments, start, status/stop/delete, results) and
recording every request it receives, so
these tests check what Tidegate sends (routes, query parameters, the workflow
document, provider signatures) and how it reads the answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.helpers import CONSUMER_ADDRESS, PROVIDER_ADDRESS, PROVIDER_KEY
from tests.local_http import LocalServer, QuietHandler
from tests.unit.compute.conftest import ALGO_DID, DID, PYTHON, environment
from tidegate.auth.signatures import recover_signer
from tidegate.compute.engines.base import JobAlgorithm, JobInput, JobSpec
from tidegate.compute.engines.operator_service import OperatorServiceEngine
from tidegate.errors import (
    BadRequestError,
    NotFoundError,
    ServiceUnavailableError,
    UnauthorizedError,
)

FEE_TOKENS = {8996: "0x" + "33" * 20, 137: "0x" + "55" * 20}
OPERATOR_ENV = {"consumerAddress": "0x" + "44" * 20, "cpuNumber": 1, "currentJobs": 0,
                "desc": "x", "diskGB": 1, "feeToken": "0x" + "99" * 20, "id": "ocean-compute",
                "lastSeen": "1.0", "maxJobDuration": 60, "maxJobs": 1, "priceMin": 1,
                "ramGB": 1, "storageExpiry": 60, "cpuType": "AMD", "gpuNumber": 0}
RESULTS = [{"filename": "out.csv", "filesize": 5, "type": "output", "index": 0},
           {"filename": "algorithm.log", "filesize": 12, "type": "algorithmLog", "index": 1}]


def operator_job(status: int = 1, text: str = "Warming up") -> dict[str, Any]:
    """A job object as the operator-service serialises it (numbers as strings)."""
    return {"agreementId": "0x" + "11" * 32, "jobId": "job-abc", "owner": CONSUMER_ADDRESS,
            "status": status, "statusText": text, "dateCreated": "1700000000.5",
            "dateFinished": "1700000100.25" if status == 70 else None,
            "results": json.dumps(RESULTS) if status == 70 else "", "stopreq": 0,
            "removed": 0, "algoDID": ALGO_DID, "inputDID": [DID]}


class FakeOperator(LocalServer):
    def __init__(self) -> None:
        super().__init__(_Handler)
        self.received: list[dict[str, Any]] = []
        self.failures: list[tuple[int, bytes]] = []  # answered first, in order
        self.chunked_result = False


class _Handler(QuietHandler):
    server: FakeOperator

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        if self.server.chunked_result and self.path.startswith("/api/v1/operator/getResult"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.server.received.append({
            "method": self.command, "path": url.path,
            "query": {k: v[0] for k, v in parse_qs(url.query).items()},
            "json": json.loads(raw) if raw else None,
            "content_type": self.headers.get("Content-Type")})
        if self.server.failures:
            status, body = self.server.failures.pop(0)
            self._answer(status, body)
            return
        path = url.path.removeprefix("/api/v1/operator/")
        if path == "environments":
            self._answer(200, json.dumps([OPERATOR_ENV]).encode())
        elif path == "compute":
            status = {"POST": (1, "Warming up"), "GET": (70, "Job completed"),
                      "PUT": (70, "Job stopped"), "DELETE": (70, "Job completed")}[self.command]
            self._answer(200, json.dumps([operator_job(*status)]).encode())
        elif path == "getResult":
            self._answer(200, b"a,b\n1", {"Content-Type": "text/csv",
                                          "Content-Disposition": "attachment; filename=out.csv"})
        else:
            self._answer(404, b'{"error": "not found"}')

    do_GET = do_POST = do_PUT = do_DELETE = _handle


@pytest.fixture
def operator() -> Iterator[FakeOperator]:
    with FakeOperator().running() as server:
        yield server


@pytest.fixture
async def engine(operator: FakeOperator) -> AsyncIterator[OperatorServiceEngine]:
    async with httpx.AsyncClient() as http:
        yield OperatorServiceEngine(http, operator.url + "/", PROVIDER_KEY, [8996, 137],
                                    fee_tokens=FEE_TOKENS, metadata_uri="http://aquarius:5000")


def assert_provider_signed(signature: str, message: str) -> None:
    assert signature[-2:] in ("00", "01")  # the reference helper's v = 0/1
    assert recover_signer(message, signature) == PROVIDER_ADDRESS


def job_spec(algorithm: JobAlgorithm) -> JobSpec:
    inputs = [JobInput(DID, "compute", "0x" + "22" * 32, {"id": DID}, [], {"rows": 5}),
              JobInput(DID.replace("ab", "ef"), "access", "0x" + "33" * 32, {}, [])]
    return JobSpec("ignored", CONSUMER_ADDRESS, environment(id="ocean-compute"), 8996,
                   "0x" + "11" * 32, inputs, algorithm, max_duration=120)


async def test_environments_recorded_contract_fake(engine: OperatorServiceEngine,
                                                   operator: FakeOperator) -> None:
    operator.failures.append((503, b"busy"))  # retried
    envs = await engine.environments()
    calls = [(r["method"], r["path"], r["query"]) for r in operator.received]
    assert calls == [("GET", "/api/v1/operator/environments", {"chainId": "8996"})] * 2 + [
        ("GET", "/api/v1/operator/environments", {"chainId": "137"})]
    assert [(e.id, e.chain_id, e.fee_token) for e in envs] == [
        ("ocean-compute", 8996, FEE_TOKENS[8996]), ("ocean-compute", 137, FEE_TOKENS[137])]
    first = envs[0]
    assert first.price_min == Decimal(1) and first.max_job_duration == 60
    assert first.consumer_address == OPERATOR_ENV["consumerAddress"]
    assert first.to_json() == {**OPERATOR_ENV, "feeToken": FEE_TOKENS[8996]}


async def test_environments_unavailable_recorded_contract_fake(
        engine: OperatorServiceEngine, operator: FakeOperator) -> None:
    operator.failures.append((500, b'{"error": "boom"}'))
    with pytest.raises(ServiceUnavailableError) as failed:
        await engine.environments()
    assert failed.value.message == ("Compute envs could not be retrieved for chainId 8996, "
                                    "check configuration.")
    async with httpx.AsyncClient() as http:
        closed = OperatorServiceEngine(http, "http://127.0.0.1:9", PROVIDER_KEY, [8996],
                                       retries=1)
        with pytest.raises(ServiceUnavailableError, match="chainId 8996"):
            await closed.environments()


async def test_start_posts_the_workflow_recorded_contract_fake(
        engine: OperatorServiceEngine, operator: FakeOperator) -> None:
    raw = JobAlgorithm(container=PYTHON, rawcode="print(1)")
    before = time.time_ns()
    record = await engine.start(job_spec(raw))
    [call] = operator.received
    assert (call["method"], call["path"]) == ("POST", "/api/v1/operator/compute")
    assert call["content_type"] == "application/json"
    body = call["json"]
    assert before <= body["nonce"] <= time.time_ns()
    assert_provider_signed(body.pop("providerSignature"), CONSUMER_ADDRESS + str(body["nonce"]))
    valid_until = body.pop("validUntil")
    assert abs(valid_until - (time.time() + 120)) < 5
    assert body == {
        "workflow": {"stages": [{
            "index": 0,
            "input": [
                {"index": 0, "id": DID, "remote": {"txId": "0x" + "22" * 32,
                                                   "serviceId": "compute",
                                                   "userdata": {"rows": 5}}},
                {"index": 1, "id": DID.replace("ab", "ef"),
                 "remote": {"txId": "0x" + "33" * 32, "serviceId": "access"}}],
            "compute": {"Instances": 1, "namespace": "ocean-compute", "maxtime": 120},
            "algorithm": {"id": "", "url": "", "rawcode": "print(1)", "container": PYTHON},
            "output": {"metadataUri": "http://aquarius:5000"}}]},
        "agreementId": "0x" + "11" * 32, "owner": CONSUMER_ADDRESS,
        "providerAddress": PROVIDER_ADDRESS, "environment": "ocean-compute",
        "nonce": body["nonce"], "chainId": 8996}
    assert (record.job_id, record.status, record.owner) == ("job-abc", 1, CONSUMER_ADDRESS)
    assert record.to_json()["dateCreated"] == "1700000000.5"  # the operator's own text
    assert record.date_created == 1700000000.5 and record.input_dids == [DID]


async def test_published_algorithm_workflow_recorded_contract_fake(
        engine: OperatorServiceEngine, operator: FakeOperator) -> None:
    ddo = {"id": ALGO_DID, "services": [
        {"id": "other", "serviceEndpoint": "http://elsewhere"},
        {"id": "algo-access", "serviceEndpoint": "http://provider:8030"}]}
    published = JobAlgorithm(container=PYTHON, did=ALGO_DID, ddo=ddo,
                             files=[{"type": "url", "url": "http://secret/algo.py"}],
                             algocustomdata={"k": 1}, userdata={"u": 2})
    await engine.start(job_spec(published))
    algorithm = operator.received[0]["json"]["workflow"]["stages"][0]["algorithm"]
    assert algorithm["id"] == ALGO_DID and algorithm["rawcode"] == ""
    assert algorithm["container"] == PYTHON and algorithm["algouserdata"] is None
    assert algorithm["algocustomdata"] == {"k": 1}
    assert algorithm["remote"]["userData"] == {"u": 2}
    assert "http://secret" not in json.dumps(operator.received[0]["json"])
    # Without the algorithm's service id the first service is named (see base.py note).
    expected = getattr(published, "service_id", None) or "other"
    assert algorithm["remote"]["serviceId"] == expected


async def test_status_stop_delete_recorded_contract_fake(
        engine: OperatorServiceEngine, operator: FakeOperator) -> None:
    [status] = await engine.jobs(CONSUMER_ADDRESS, "job-abc", DID)
    [stopped] = await engine.stop(CONSUMER_ADDRESS, "job-abc", None)
    [deleted] = await engine.delete(CONSUMER_ADDRESS, None, DID)
    calls = operator.received
    assert [(c["method"], c["path"]) for c in calls] == [
        ("GET", "/api/v1/operator/compute"), ("PUT", "/api/v1/operator/compute"),
        ("DELETE", "/api/v1/operator/compute")]
    for call, job_id in zip(calls, ("job-abc", "job-abc", ""), strict=True):
        query = dict(call["query"])
        assert_provider_signed(query.pop("providerSignature"),
                               CONSUMER_ADDRESS + job_id + query["nonce"])
        assert query.pop("providerAddress") == PROVIDER_ADDRESS
        assert query.pop("owner") == CONSUMER_ADDRESS
        assert int(query.pop("nonce")) > 0
        assert query == ({"jobId": "job-abc", "documentId": DID} if call is calls[0] else
                         {"jobId": "job-abc"} if call is calls[1] else {"documentId": DID})
    assert status.status == 70 and status.date_finished == 1700000100.25
    assert [(r.filename, r.type, r.index) for r in status.results] == [
        ("out.csv", "output", 0), ("algorithm.log", "algorithmLog", 1)]
    assert stopped.status_text == "Job stopped" and deleted.job_id == "job-abc"
    assert status.to_json()["results"] == json.dumps(RESULTS)  # passed through as sent


async def test_result_streams_recorded_contract_fake(engine: OperatorServiceEngine,
                                                     operator: FakeOperator) -> None:
    stream = await engine.result(CONSUMER_ADDRESS, "job-abc", 0)
    assert (stream.filename, stream.size, stream.content_type) == ("out.csv", 5, "text/csv")
    assert b"".join([c async for c in stream.chunks]) == b"a,b\n1"
    query = dict(operator.received[0]["query"])
    assert operator.received[0]["path"] == "/api/v1/operator/getResult"
    assert_provider_signed(query.pop("providerSignature"),
                           CONSUMER_ADDRESS + "job-abc" + query["nonce"])
    assert {k: v for k, v in query.items() if k != "nonce"} == {
        "index": "0", "owner": CONSUMER_ADDRESS, "jobId": "job-abc"}
    operator.chunked_result = True  # no Content-Length: read (bounded) before relaying
    chunked = await engine.result(CONSUMER_ADDRESS, "job-abc", 1)
    assert chunked.size == 5 and b"".join([c async for c in chunked.chunks]) == b"a,b\n1"
    operator.failures.append((404, b'{"error": "Job not found"}'))
    with pytest.raises(NotFoundError, match="Job not found"):
        await engine.result(CONSUMER_ADDRESS, "nope", 0)


@pytest.mark.parametrize(("status", "error"), [
    (400, BadRequestError), (401, UnauthorizedError), (404, NotFoundError),
    (500, ServiceUnavailableError)])
async def test_operator_errors_recorded_contract_fake(
        engine: OperatorServiceEngine, operator: FakeOperator, status: int,
        error: type[Exception]) -> None:
    operator.failures.append((status, b'{"error": "Invalid providerSignature"}'))
    with pytest.raises(error) as raised:
        await engine.start(job_spec(JobAlgorithm(container=PYTHON, rawcode="x")))
    assert "Invalid providerSignature" in str(raised.value)
    assert len(operator.received) == 1  # a start is never retried


def test_used_seconds_come_from_the_operators_run_timestamps_recorded_contract_fake() -> None:
    from tidegate.compute.engines.operator_service import job_from_operator

    base = {**operator_job(70, "Job completed"), "dateCreated": "1000.0",
            "dateFinished": "1200.0"}
    ran = job_from_operator({**base, "algoStartTimestamp": "1100.5",
                             "algoStopTimestamp": "1130.5"})
    assert ran.used_seconds(now=5000) == 30.0
    # Stopped while queued: the operator says the algorithm never started.
    assert job_from_operator({**base, "algoStartTimestamp": "0",
                              "algoStopTimestamp": "0"}).used_seconds(now=5000) is None
    # No timestamps (older operators): creation to finish, provisioning included.
    assert job_from_operator(base).used_seconds(now=5000) == 200.0
    assert job_from_operator({**base, "status": 40, "dateFinished": None}).used_seconds(
        now=1050) == 50.0
    assert job_from_operator({**base, "status": 1}).used_seconds(now=5000) is None
    for failed in (31, 32):  # a provisioning failure never ran, whatever it sends
        assert job_from_operator({**base, "status": failed,
                                  "algoStartTimestamp": "1100"}).used_seconds(5000) is None
