"""Compute fixtures: a local origin serving input files, a SQLite store, real engines.

Nothing of Tidegate is mocked: files are fetched through a real SafeFetcher (private
addresses allowed), jobs run in real bubblewrap sandboxes with small limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.helpers import CONSUMER_ADDRESS, PROVIDER_ADDRESS
from tests.local_http import LocalServer, QuietHandler, local_fetcher
from tidegate.chain.clients import Chains
from tidegate.compute.engines.base import JobAlgorithm, JobInput, JobSpec
from tidegate.compute.engines.local import LocalEngine
from tidegate.compute.environments import Environment
from tidegate.compute.jobs import FINISHED, JobRecord
from tidegate.compute.sandbox import SandboxOptions
from tidegate.files.objects import StorageContext
from tidegate.stores.sqlite import SqliteStore

OWNER = CONSUMER_ADDRESS
DID = "did:op:" + "ab" * 32
ALGO_DID = "did:op:" + "cd" * 32
PYTHON = {"image": "python", "tag": "3.11-slim", "entrypoint": "python $ALGO",
          "checksum": "sha256:00"}
NODE = {"image": "node", "tag": "20", "entrypoint": "node $ALGO", "checksum": "sha256:00"}
ZERO = "0x0000000000000000000000000000000000000000"
TEST_OPTIONS = SandboxOptions(max_processes=32, tmp_bytes=8 * 1024 * 1024, poll_interval=0.05)


class Origin(LocalServer):
    """Serves ``files`` (path -> bytes); anything else is a 404. Counts requests."""

    def __init__(self) -> None:
        super().__init__(_Handler)
        self.files: dict[str, bytes] = {}
        self.requests: Counter[str] = Counter()

    def file(self, path: str, content: bytes) -> dict[str, Any]:
        """Serve ``content`` at ``path``; the file object pointing at it."""
        self.files[path] = content
        return {"type": "url", "url": self.url + path, "method": "GET"}


class _Handler(QuietHandler):
    server: Origin

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.server.requests[path] += 1
        body = self.server.files.get(path)
        status = 200 if body is not None else 404
        body = body if body is not None else b"not found"
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            self.close_connection = True


@pytest.fixture
def origin() -> Iterator[Origin]:
    with Origin().running() as server:
        yield server


@pytest.fixture
async def storage() -> AsyncIterator[StorageContext]:
    fetcher, client = local_fetcher()
    async with client:
        yield StorageContext(None, None, Chains({}), fetcher, 1024 * 1024)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    db = SqliteStore(tmp_path / "store.db")
    await db.open()
    try:
        yield db
    finally:
        await db.close()


def environment(**overrides: Any) -> Environment:
    values: dict[str, Any] = {
        "id": "test-env", "chain_id": 8996, "consumer_address": PROVIDER_ADDRESS,
        "fee_token": ZERO, "price_min": Decimal(0), "cpu_number": 1, "ram_gb": 1.0,
        "disk_gb": 0.01, "max_jobs": 2, "max_job_duration": 10,
    }
    values.update(overrides)
    return Environment(**values)


EngineFactory = Callable[..., Awaitable[LocalEngine]]


@pytest.fixture
async def make_engine(store: SqliteStore, storage: StorageContext,
                      tmp_path: Path) -> AsyncIterator[EngineFactory]:
    """Build opened engines on the shared store and data dir; all closed at the end."""
    engines: list[LocalEngine] = []

    async def build(*envs: Environment, options: SandboxOptions = TEST_OPTIONS,
                    **kwargs: Any) -> LocalEngine:
        engine = LocalEngine(store, storage, list(envs) or [environment()],
                             tmp_path / "compute", sandbox=options, **kwargs)
        await engine.open()
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        await engine.close()


def spec(env: Environment, *, code: str | None = None, files: list[dict[str, Any]] | None = None,
         container: dict[str, Any] | None = None, inputs: list[JobInput] | None = None,
         max_duration: int | None = None, algocustomdata: Any = None,
         algorithm_did: str | None = None, allow_network: bool = False) -> JobSpec:
    """A job for ``env`` (raw ``code`` or algorithm ``files``), owner :data:`OWNER`."""
    algorithm = JobAlgorithm(container=container or PYTHON, rawcode=code, files=files or [],
                             did=algorithm_did,
                             ddo={"id": algorithm_did} if algorithm_did else None,
                             algocustomdata=algocustomdata)
    return JobSpec(job_id=uuid.uuid4().hex, owner=OWNER, environment=env, chain_id=env.chain_id,
                   agreement_id="0x" + "11" * 32,
                   inputs=inputs if inputs is not None else [
                       JobInput(DID, "compute", "0x" + "22" * 32, {"id": DID}, [])],
                   algorithm=algorithm,
                   max_duration=max_duration or env.max_job_duration,
                   allow_network=allow_network)


def job_processes(did: str) -> list[int]:
    """Pids of the running processes of the job whose algorithm DID is ``did``.

    Found by ``TRANSFORMATION_DID`` in their environment, not by uid or command line:
    other Tidegate processes on this machine (other test runs) run algorithms too, as
    the same sandbox uid and with the same command line.
    """
    marker = f"TRANSFORMATION_DID={did}".encode() + b"\0"
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError), \
                    open(os.path.join(entry.path, "environ"), "rb") as handle:
                if marker in handle.read():
                    found.append(int(entry.name))
    return found


def unique_did() -> str:
    """An algorithm DID no other job has (see :func:`job_processes`)."""
    return "did:op:" + uuid.uuid4().hex * 2


async def wait_status(engine: LocalEngine, job_id: str, statuses: set[int],
                      within: float = 20) -> JobRecord:
    """Poll until the job's status is one of ``statuses`` (at most ``within`` seconds)."""
    deadline = time.monotonic() + within
    while True:
        [record] = await engine.jobs(None, job_id, None)
        if record.status in statuses:
            return record
        if time.monotonic() > deadline:
            raise AssertionError(f"job stuck in status {record.status}: {record.detail}")
        await asyncio.sleep(0.05)


async def finished(engine: LocalEngine, job_id: str, within: float = 20) -> JobRecord:
    return await wait_status(engine, job_id, {int(s) for s in FINISHED}, within)


async def result_bytes(engine: LocalEngine, job_id: str, kind: str = "algorithmLog",
                       name: str | None = None) -> bytes:
    """The bytes of the job's result of type ``kind`` (and ``filename``)."""
    [record] = await engine.jobs(OWNER, job_id, None)
    [entry] = [r for r in record.results
               if r.type == kind and (name is None or r.filename == name)]
    stream = await engine.result(OWNER, job_id, entry.index)
    data = b"".join([chunk async for chunk in stream.chunks])
    assert len(data) == stream.size == entry.filesize
    return data
