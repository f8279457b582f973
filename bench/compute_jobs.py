"""``python -m bench.compute_jobs``: job overhead on the Docker engine (issue #12).

Drives :class:`~tidegate.compute.engines.docker.DockerEngine` directly, with a real
SQLite store and the production :class:`DockerOptions` defaults, on a real daemon
(``--docker-host``, default the private test daemon). The algorithm is a 1 s one:
``sleep 1`` in ``tidegate-test/busybox:1`` (``--image debian``: ``time.sleep(1)`` in
python3 of ``ubuntu:latest``). The image is present (a cached image: what Ocean Node's
~6–8 s is measured with); the job has no dataset input (no fetch is timed).

Each job is timed from outside, by polling the store every 10 ms the way a client polls
``GET /compute``: ``submit`` (``engine.start`` called) → ``running`` (status 40 seen) →
``result`` (status 70 seen, the log listed as a result). Overhead = total − the
algorithm's own 1 s. Two scenarios:

- ``sequential``: 20 jobs one after the other (p50 and max of each phase);
- ``concurrent``: 10 jobs submitted at once into an environment with ``maxJobs`` 10
  (1 CPU each), on however many cores the machine has: wall time of the batch against
  the 10 s of algorithm time it holds, and each job's own overhead.

Prints a table and writes ``--output`` (bench/results-compute.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiodocker

from tidegate.chain.clients import Chains
from tidegate.compute.engines.base import JobAlgorithm, JobSpec
from tidegate.compute.engines.container_spec import DockerOptions
from tidegate.compute.engines.docker import DockerEngine
from tidegate.compute.environments import Environment
from tidegate.compute.jobs import JobStatus
from tidegate.files.objects import StorageContext
from tidegate.files.safe_fetch import FetchPolicy, PinnedAsyncClient, SafeFetcher
from tidegate.stores.sqlite import SqliteStore

ALGORITHM_SECONDS = 1.0
TARGET_OVERHEAD = 1.5
OCEAN_NODE = "~6–8 s"
POLL = 0.01
IMAGES: dict[str, tuple[dict[str, str], str]] = {
    "busybox": ({"image": "tidegate-test/busybox", "tag": "1", "entrypoint": "sh $ALGO"},
                "sleep 1\n"),
    "debian": ({"image": "ubuntu", "tag": "latest", "entrypoint": "python3 $ALGO"},
               "import time\ntime.sleep(1)\n"),
}
ZERO = "0x" + "00" * 20
OWNER = "0x" + "ab" * 20


@dataclass(frozen=True)
class Timing:
    to_running: float
    to_result: float
    status: int
    detail: str

    @property
    def total_overhead(self) -> float:
        return self.to_running + self.to_result - ALGORITHM_SECONDS

    @property
    def after_running(self) -> float:
        """running → result beyond the algorithm's own second."""
        return self.to_result - ALGORITHM_SECONDS


def _spec(env: Environment, container: dict[str, str], code: str) -> JobSpec:
    return JobSpec(job_id=uuid.uuid4().hex, owner=OWNER, environment=env,
                   chain_id=env.chain_id, agreement_id="0x" + "11" * 32, inputs=[],
                   algorithm=JobAlgorithm(container=container, rawcode=code),
                   max_duration=env.max_job_duration)


async def _one_job(engine: DockerEngine, job: JobSpec) -> Timing:
    submitted = time.perf_counter()
    await engine.start(job)
    running: float | None = None
    while True:
        [record] = await engine.jobs(None, job.job_id, None)
        now = time.perf_counter()
        if running is None and record.status >= JobStatus.RUNNING:
            running = now
        if record.status >= JobStatus.PUBLISHING_RESULTS or record.status in (31, 32):
            if record.status == JobStatus.COMPLETED and record.results:
                assert running is not None
                return Timing(running - submitted, now - running, int(record.status),
                              record.detail)
            if record.status != JobStatus.PUBLISHING_RESULTS:
                raise RuntimeError(f"job {job.job_id} ended in {record.status}: "
                                   f"{record.detail}")
        await asyncio.sleep(POLL)


def _p50(values: list[float]) -> float:
    return statistics.median(values)


async def run(docker_host: str, image: str, sequential: int, concurrent: int,
              ) -> dict[str, Any]:
    container, code = IMAGES[image]
    docker = aiodocker.Docker(url=docker_host)
    async with PinnedAsyncClient() as client:
        return await _run(docker, client, container, code, sequential, concurrent, image)


async def _run(docker: aiodocker.Docker, client: PinnedAsyncClient, container: dict[str, str],
               code: str, sequential: int, concurrent: int, image: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="tidegate-bench-compute-") as tmp:
        store = SqliteStore(Path(tmp) / "store.db")
        await store.open()
        storage = StorageContext(None, None, Chains({}),
                                 SafeFetcher(client, FetchPolicy(False, 5, 30)), 1024 * 1024)
        env = Environment(id="bench", chain_id=8996, consumer_address=ZERO, fee_token=ZERO,
                          price_min=Decimal(0), cpu_number=1, ram_gb=0.25, disk_gb=0.01,
                          max_jobs=max(concurrent, 1), max_job_duration=60, engine="docker")
        engine = DockerEngine(store, storage, [env], Path(tmp) / "compute", docker,
                              DockerOptions())
        try:
            await engine.open()
            if engine.unavailable_reason:
                raise SystemExit(f"no Docker daemon: {engine.unavailable_reason}")
            await _one_job(engine, _spec(env, container, code))  # warm-up, not counted
            seq = [await _one_job(engine, _spec(env, container, code))
                   for _ in range(sequential)]
            started = time.perf_counter()
            conc = await asyncio.gather(*(_one_job(engine, _spec(env, container, code))
                                          for _ in range(concurrent)))
            wall = time.perf_counter() - started
        finally:
            await engine.close()
            await store.close()
            await docker.close()
    return {"image": image, "container": container, "sequential": seq,
            "concurrent": list(conc), "wall": wall}


def _table(results: dict[str, Any]) -> str:
    seq: list[Timing] = results["sequential"]
    conc: list[Timing] = results["concurrent"]
    rows = [("| figure | p50 | max | target |"), "| --- | --- | --- | --- |"]

    def row(name: str, values: list[float], target: str = "") -> None:
        rows.append(f"| {name} | {_p50(values):.3f} s | {max(values):.3f} s | {target} |")

    row(f"sequential ({len(seq)}): submit → running", [t.to_running for t in seq])
    row("sequential: running → result, beyond the 1 s", [t.after_running for t in seq])
    row("sequential: total overhead per job", [t.total_overhead for t in seq],
        f"< {TARGET_OVERHEAD} s (Ocean Node {OCEAN_NODE})")
    row(f"concurrent ({len(conc)}): submit → running", [t.to_running for t in conc])
    row("concurrent: running → result, beyond the 1 s", [t.after_running for t in conc])
    row("concurrent: total overhead per job", [t.total_overhead for t in conc],
        f"< {TARGET_OVERHEAD} s")
    algo = len(conc) * ALGORITHM_SECONDS
    rows.append(f"| concurrent: wall time of the batch | {results['wall']:.3f} s | | "
                f"{algo:.0f} s of algorithm time on {os.cpu_count()} cores |")
    p50 = _p50([t.total_overhead for t in seq])
    met = "met" if p50 < TARGET_OVERHEAD else "NOT met"
    rows.append("")
    rows.append(f"Total overhead per job, p50 of {len(seq)} sequential jobs: **{p50:.3f} s** "
                f"(target < {TARGET_OVERHEAD} s: {met}; Ocean Node: {OCEAN_NODE} beyond the "
                f"algorithm's time with a cached image).")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compute_jobs",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--docker-host",
                        default=os.environ.get("DOCKER_HOST",
                                               "unix:///run/tidegate-test-docker/docker.sock"))
    parser.add_argument("--image", choices=sorted(IMAGES), default="busybox")
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=10)
    parser.add_argument("--note", default="", help="a line about the machine's state")
    parser.add_argument("--output", type=Path, default=Path("bench/results-compute.md"))
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.docker_host, args.image, args.sequential, args.concurrent))
    table = _table(results)
    print(table)
    load = os.getloadavg()
    header = [
        "# Docker engine job overhead (`python -m bench.compute_jobs`)", "",
        f"- {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
        f"{os.cpu_count()} cores, load average {load[0]:.2f} / {load[1]:.2f} / "
        f"{load[2]:.2f}, Python {sys.version.split()[0]}",
        f"- image `{results['container']['image']}:{results['container']['tag']}` "
        f"(cached), algorithm: 1 s sleep, entrypoint `{results['container']['entrypoint']}`, "
        "no dataset input; DockerEngine with a SQLite store, production DockerOptions; "
        "status polled every 10 ms.",
    ]
    if args.note:
        header.append(f"- {args.note}")
    args.output.write_text("\n".join([*header, "", table, ""]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
