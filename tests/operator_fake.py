"""A stateful recorded-contract fake of the Ocean operator-service (no Kubernetes here).

It answers the routes Tidegate's operator-service engine calls (``environments``,
``compute`` POST/GET/PUT/DELETE, ``getResult``) as the operator-service does: job
objects with its field names (numbers as strings, ``results`` as JSON text), its own
job ids, a provider signature on every call (checked: the signer must be the
provider). Jobs stay where the test puts them: :meth:`FakeStatefulOperator.move`
sets a job's status and fields (``algoStartTimestamp``/``algoStopTimestamp``,
``dateFinished``, results), as the cluster would while the job runs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.helpers import PROVIDER_ADDRESS
from tests.local_http import LocalServer, QuietHandler
from tidegate.auth.signatures import recover_signer


class FakeStatefulOperator(LocalServer):
    """The fake's state: ``environments`` (operator objects), ``jobs`` by operator id,
    ``results`` (job id -> file bodies by index), ``received`` (every request)."""

    def __init__(self, environments: list[dict[str, Any]], *,
                 algo_timestamps: bool = True) -> None:
        super().__init__(_Handler)
        self.environments = environments
        self.algo_timestamps = algo_timestamps
        """False: job objects without ``algoStartTimestamp``/``algoStopTimestamp``
        (older operator-service versions)."""
        self.jobs: dict[str, dict[str, Any]] = {}
        self.results: dict[str, list[bytes]] = {}
        self.received: list[dict[str, Any]] = []
        self.failures: list[int] = []
        """Statuses answered first to ``compute`` calls, in order (an operator outage)."""
        self.lock = threading.Lock()
        self._next = 0

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._next += 1
            job_id = f"op-{self._next:04d}"
            job = {"agreementId": body.get("agreementId", ""), "jobId": job_id,
                   "owner": body["owner"], "status": 1, "statusText": "Warming up",
                   "dateCreated": f"{time.time():.3f}", "dateFinished": None,
                   "results": "", "stopreq": 0, "removed": 0, "algoDID": "",
                   "inputDID": [], "environment": body.get("environment", ""),
                   "algoStartTimestamp": "0", "algoStopTimestamp": "0"}
            if not self.algo_timestamps:
                del job["algoStartTimestamp"], job["algoStopTimestamp"]
            self.jobs[job_id] = job
            return dict(job)

    def move(self, job_id: str, status: int, text: str, *,
             results: list[tuple[str, bytes]] | None = None, **fields: Any) -> None:
        """Put a job in ``status``; ``results`` are (file name, body), in index order."""
        with self.lock:
            job = self.jobs[job_id]
            job.update(status=status, statusText=text, **fields)
            if results is not None:
                self.results[job_id] = [body for _, body in results]
                job["results"] = json.dumps([
                    {"filename": name, "filesize": len(body), "type": "output", "index": i}
                    for i, (name, body) in enumerate(results)])

    def matching(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(job) for job in self.jobs.values()
                    if job["owner"] == query.get("owner", job["owner"])
                    and job["jobId"] == query.get("jobId", job["jobId"])]


class _Handler(QuietHandler):
    server: FakeStatefulOperator

    def _answer(self, status: int, payload: Any, *, body: bytes | None = None,
                headers: Mapping[str, str] | None = None) -> None:
        data = body if body is not None else json.dumps(payload).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _signed_by_provider(self, fields: Mapping[str, Any]) -> bool:
        message = (str(fields.get("owner") or "") + str(fields.get("jobId") or "")
                   + str(fields.get("nonce")))
        try:
            signer = recover_signer(message, str(fields.get("providerSignature", "")))
        except Exception:
            return False
        return signer == PROVIDER_ADDRESS

    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else {}
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path.removeprefix("/api/v1/operator/")
        self.server.received.append({"method": self.command, "path": path,
                                     "query": query, "json": body})
        if path == "environments":
            self._answer(200, self.server.environments)
            return
        if path == "compute" and self.server.failures:
            self._answer(self.server.failures.pop(0), {"error": "unavailable"})
            return
        signed = body if self.command == "POST" else query
        if path in ("compute", "getResult") and not self._signed_by_provider(signed):
            self._answer(401, {"error": "Invalid providerSignature"})
            return
        if path == "compute" and self.command == "POST":
            self._answer(200, [self.server.create(body)])
        elif path == "compute":
            jobs = self.server.matching(query)
            if self.command == "PUT":
                for job in jobs:
                    if job["status"] < 70:
                        self.server.move(job["jobId"], 70, "Job stopped", stopreq=1,
                                         dateFinished=f"{time.time():.3f}")
                jobs = self.server.matching(query)
            elif self.command == "DELETE":
                with self.server.lock:
                    for job in jobs:
                        self.server.jobs.pop(job["jobId"], None)
            self._answer(200, jobs)
        elif path == "getResult":
            files = self.server.results.get(query.get("jobId", ""), [])
            index = int(query.get("index", "-1"))
            if not 0 <= index < len(files) or not self.server.matching(query):
                self._answer(404, {"error": "No such result"})
                return
            self._answer(200, None, body=files[index], headers={
                "Content-Type": "text/csv",
                "Content-Disposition": f"attachment; filename=result-{index}.csv"})
        else:
            self._answer(404, {"error": "not found"})

    do_GET = do_POST = do_PUT = do_DELETE = _handle
