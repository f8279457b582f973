"""The local engine end to end: real inputs over HTTP, real sandboxed algorithms."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path

import pytest

from tests.unit.compute.conftest import (
    ALGO_DID,
    DID,
    NODE,
    OWNER,
    EngineFactory,
    Origin,
    environment,
    finished,
    result_bytes,
    spec,
    wait_status,
)
from tidegate.compute.engines.base import JobInput
from tidegate.compute.engines.local import INTERRUPTED, JobNotFoundError
from tidegate.compute.jobs import JobRecord, JobStatus
from tidegate.compute.runtimes import UnsupportedImageError
from tidegate.compute.sandbox import SandboxOptions, SandboxUnavailableError
from tidegate.compute.workspace import ResultNotFoundError
from tidegate.stores.sqlite import SqliteStore

INPUT = bytes(range(256)) * 40 + b"\x00tail\xff"

PYTHON_ALGO = b"""
import json, os, sys
did = json.loads(os.environ["DIDS"])[0]
data = open(f"/data/inputs/{did}/0", "rb").read()
ddo = json.load(open(f"/data/ddos/{did}"))
custom = json.load(open("/data/inputs/algoCustomData.json"))
os.makedirs("/data/outputs/sub", exist_ok=True)
open("/data/outputs/copy.bin", "wb").write(data[::-1])
open("/data/outputs/sub/meta.json", "w").write(json.dumps(
    {"ddo": ddo["id"], "custom": custom, "algo": os.environ["ALGO"],
     "transformation": os.environ["TRANSFORMATION_DID"], "size": len(data)}))
print("read", len(data), "bytes")
print("warning on stderr", file=sys.stderr)
"""


async def test_python_algorithm_reads_its_input_and_writes_results(
        make_engine: EngineFactory, origin: Origin) -> None:
    engine = await make_engine()
    env = (await engine.environments())[0]
    inputs = [JobInput(DID, "compute", "0x" + "22" * 32, {"id": DID, "x": 1},
                       [origin.file("/data.bin", INPUT)])]
    job = spec(env, files=[origin.file("/algo.py", PYTHON_ALGO)], inputs=inputs,
               algorithm_did=ALGO_DID, algocustomdata={"alpha": 0.5})
    first = await engine.start(job)
    assert first.status == JobStatus.WARMING_UP and first.owner == OWNER

    record = await finished(engine, job.job_id)
    assert record.status == JobStatus.COMPLETED and record.detail == ""
    assert record.status_text == "Job completed" and record.date_finished
    assert [(r.filename, r.type, r.index) for r in record.results] == [
        ("copy.bin", "output", 0), ("sub/meta.json", "output", 1),
        ("algorithm.log", "algorithmLog", 2)]
    assert await result_bytes(engine, job.job_id, "output", "copy.bin") == INPUT[::-1]
    meta = json.loads(await result_bytes(engine, job.job_id, "output", "sub/meta.json"))
    assert meta == {"ddo": DID, "custom": {"alpha": 0.5},
                    "algo": "/data/transformations/algorithm",
                    "transformation": ALGO_DID, "size": len(INPUT)}
    log = await result_bytes(engine, job.job_id)
    assert log == f"read {len(INPUT)} bytes\nwarning on stderr\n".encode()
    # One upstream request per file, no probes.
    assert origin.requests == {"/data.bin": 1, "/algo.py": 1}
    stream = await engine.result(OWNER, job.job_id, 1)
    assert stream.filename == "meta.json" and stream.content_type == "application/json"
    assert b"".join([c async for c in stream.chunks])


async def test_node_algorithm(make_engine: EngineFactory) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the node runtime cannot be tested here")
    engine = await make_engine(environment(ram_gb=2.0))
    code = ("const fs = require('fs');\n"
            "fs.writeFileSync('/data/outputs/out.txt', 'node ' + process.version);\n"
            "console.log(JSON.parse(process.env.DIDS).length);\n")
    job = spec(environment(ram_gb=2.0), code=code, container=NODE)
    record = await finished(engine, job.job_id) if await engine.start(job) else None
    assert record is not None and record.status == JobStatus.COMPLETED, record
    assert (await result_bytes(engine, job.job_id, "output")).startswith(b"node v")
    assert await result_bytes(engine, job.job_id) == b"1\n"


async def test_raw_code_and_a_failing_exit_code(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    env = environment()
    ok = spec(env, code="print('raw code ran')")
    bad = spec(env, code="import sys\nopen('/data/outputs/partial', 'w').write('p')\n"
                         "print('about to fail')\nsys.exit(3)")
    await engine.start(ok)
    await engine.start(bad)
    assert await result_bytes(engine, (await finished(engine, ok.job_id)).job_id) \
        == b"raw code ran\n"
    failed = await finished(engine, bad.job_id)
    # As the Ocean operator: a failing algorithm still completes, with its log.
    assert failed.status == JobStatus.COMPLETED
    assert failed.detail == "Algorithm exited with code 3."
    assert await result_bytes(engine, bad.job_id, "output") == b"p"
    assert await result_bytes(engine, bad.job_id) == b"about to fail\n"


async def test_jobs_queue_beyond_max_jobs(make_engine: EngineFactory) -> None:
    env = environment(max_jobs=1)
    engine = await make_engine(env)
    code = "import time\ntime.sleep(0.8)\nprint('done')"
    first, second = spec(env, code=code), spec(env, code=code)
    await engine.start(first)
    await engine.start(second)
    await wait_status(engine, first.job_id, {JobStatus.RUNNING})
    [queued] = await engine.jobs(OWNER, second.job_id, None)
    assert queued.status == JobStatus.WARMING_UP
    assert (await engine.environments())[0].current_jobs == 1
    one = await finished(engine, first.job_id)
    two = await finished(engine, second.job_id)
    assert one.status == two.status == JobStatus.COMPLETED
    assert two.date_created <= one.date_finished  # type: ignore[operator]
    assert two.date_finished - one.date_finished >= 0.7  # type: ignore[operator]


async def test_stop_a_long_running_job_keeps_its_outputs(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    env = environment(max_job_duration=60)
    job = spec(env, code="import time\nopen('/data/outputs/early', 'w').write('e')\n"
                         "print('sleeping', flush=True)\ntime.sleep(60)")
    await engine.start(job)
    await wait_status(engine, job.job_id, {JobStatus.RUNNING})
    await asyncio.sleep(0.3)
    began = time.monotonic()
    [stopped] = await engine.stop(OWNER, job.job_id, None)
    assert time.monotonic() - began < 3
    assert stopped.status == JobStatus.COMPLETED and stopped.status_text == "Job stopped"
    assert stopped.stop_requested and stopped.detail == "Job stopped"
    assert await result_bytes(engine, job.job_id, "output") == b"e"
    assert await result_bytes(engine, job.job_id) == b"sleeping\n"
    # Stopping a finished job changes nothing.
    assert (await engine.stop(OWNER, job.job_id, None))[0].date_finished \
        == stopped.date_finished


async def test_stop_a_queued_job(make_engine: EngineFactory) -> None:
    env = environment(max_jobs=1)
    engine = await make_engine(env)
    running = spec(env, code="import time\ntime.sleep(30)")
    queued = spec(env, code="print('never')")
    await engine.start(running)
    await engine.start(queued)
    await wait_status(engine, running.job_id, {JobStatus.RUNNING})
    [record] = await engine.stop(OWNER, queued.job_id, None)
    assert record.status_text == "Job stopped"
    # The reference always publishes the log: result 0 exists even for a job that never ran.
    assert [(r.type, r.index) for r in record.results] == [("algorithmLog", 0)]
    stream = await engine.result(OWNER, queued.job_id, 0)
    log = b"".join([chunk async for chunk in stream.chunks])
    assert log == b"tidegate: Job stopped\n"
    await engine.stop(OWNER, None, DID)  # by dataset: stops the running one too
    assert (await finished(engine, running.job_id)).status_text == "Job stopped"


async def test_delete_removes_files_and_keeps_a_tombstone(make_engine: EngineFactory,
                                                tmp_path: Path) -> None:
    engine = await make_engine()
    job = spec(environment(), code="open('/data/outputs/o', 'w').write('x')")
    await engine.start(job)
    await finished(engine, job.job_id)
    job_dir = tmp_path / "compute" / "jobs" / job.job_id
    assert (job_dir / "data" / "outputs" / "o").is_file()
    assert await engine.delete("0x" + "00" * 20, job.job_id, None) == []  # other owner
    [deleted] = await engine.delete(OWNER, job.job_id, None)
    assert deleted.job_id == job.job_id and deleted.to_json()["removed"] == 1
    assert not job_dir.exists()
    # As operator-service: the record stays, marked removed, without results; a second
    # delete (or a status) still finds it instead of answering an empty list.
    [again] = await engine.delete(OWNER, job.job_id, None)
    assert again.removed and again.results == []
    [status] = await engine.jobs(OWNER, job.job_id, None)
    assert status.removed
    with pytest.raises(ResultNotFoundError):
        await engine.result(OWNER, job.job_id, 0)


async def test_results_are_only_for_their_owner(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    job = spec(environment(), code="print('mine')")
    await engine.start(job)
    await finished(engine, job.job_id)
    with pytest.raises(JobNotFoundError) as other:
        await engine.result("0x" + "99" * 20, job.job_id, 0)
    with pytest.raises(JobNotFoundError) as missing:
        await engine.result(OWNER, "no-such-job", 0)
    assert other.value.message == missing.value.message and other.value.status == 404
    with pytest.raises(ResultNotFoundError):
        await engine.result(OWNER, job.job_id, 7)
    assert await engine.jobs("0x" + "99" * 20, job.job_id, None) == []
    assert [r.job_id for r in await engine.jobs(OWNER.lower(), None, DID)] == [job.job_id]


async def test_restart_fails_unfinished_jobs_and_keeps_finished_results(
        make_engine: EngineFactory, store: SqliteStore) -> None:
    first = await make_engine()
    done = spec(environment(), code="open('/data/outputs/kept', 'w').write('still here')")
    await first.start(done)
    await finished(first, done.job_id)
    # A job a crashed process left "running": its record, no live lease.
    orphan = JobRecord(job_id="orphan1", owner=OWNER, did=DID, agreement_id="0x",
                       environment="test-env", chain_id=8996, status=JobStatus.RUNNING,
                       date_created=time.time())
    await store.put_job(orphan.job_id, OWNER, json.dumps(orphan.to_store()))

    second = await make_engine()  # a restarted Tidegate on the same store and data dir
    [failed] = await second.jobs(OWNER, "orphan1", None)
    assert failed.status == JobStatus.COMPLETED and failed.detail == INTERRUPTED
    assert failed.date_finished is not None
    assert await result_bytes(second, done.job_id, "output") == b"still here"


async def test_a_job_whose_process_stops_renewing_is_failed(
        make_engine: EngineFactory) -> None:
    first = await make_engine(lease_ttl=1.0)
    job = spec(environment(max_job_duration=60), code="import time\ntime.sleep(60)")
    await first.start(job)
    await wait_status(first, job.job_id, {JobStatus.RUNNING})
    # Simulate a process that died (or hung): it stops renewing its leases.
    assert first._maintainer is not None
    first._maintainer.cancel()
    second = await make_engine(lease_ttl=1.0)
    record = await finished(second, job.job_id, within=10)
    assert record.detail == INTERRUPTED
    # The first process notices its record was finished elsewhere and ends its run.
    for _ in range(50):
        if not first._active:
            break
        await asyncio.sleep(0.1)
    assert not first._active
    [still] = await second.jobs(OWNER, job.job_id, None)
    assert still.detail == INTERRUPTED


async def test_a_live_job_of_another_process_is_not_failed(make_engine: EngineFactory) -> None:
    first = await make_engine(lease_ttl=1.0)
    job = spec(environment(), code="import time\ntime.sleep(2.5)\nprint('ok')")
    await first.start(job)
    await wait_status(first, job.job_id, {JobStatus.RUNNING})
    second = await make_engine(lease_ttl=1.0)  # sweeps at open and while running
    record = await finished(second, job.job_id)
    assert record.detail == "" and record.status_text == "Job completed"
    # The second process can stop the first one's jobs (through the store).
    other = spec(environment(max_job_duration=60), code="import time\ntime.sleep(60)")
    await first.start(other)
    await wait_status(second, other.job_id, {JobStatus.RUNNING})
    began = time.monotonic()
    [stopped] = await second.stop(OWNER, other.job_id, None)
    assert stopped.status_text == "Job stopped" and time.monotonic() - began < 5


async def test_unsupported_containers_are_refused_before_anything_is_stored(
        make_engine: EngineFactory) -> None:
    engine = await make_engine()
    env = environment()
    for container in ({"image": "ubuntu", "tag": "22.04", "entrypoint": "bash $ALGO"},
                      {"image": "python", "tag": "3", "entrypoint": "bash -c 'rm -rf /'"},
                      {"image": "python", "tag": "3", "entrypoint": ""}):
        with pytest.raises(UnsupportedImageError) as refused:
            engine.check_container(container)
        assert refused.value.status == 400 and refused.value.code == "unsupported_image"
        with pytest.raises(UnsupportedImageError):
            await engine.start(spec(env, code="print(1)", container=container))
    assert await engine.jobs(None, None, None) == []


async def test_without_a_sandbox_jobs_are_refused_unless_unsafe(
        make_engine: EngineFactory) -> None:
    broken = await make_engine(options=SandboxOptions(bwrap="/nonexistent/bwrap"))
    assert broken.sandbox.unavailable is not None
    assert await broken.environments() == []  # nothing advertised that cannot run
    refusal = await broken.unavailable()
    assert refusal is not None and refusal.status == 503
    assert refusal.code == "sandbox_unavailable" and "bwrap" in refusal.message
    with pytest.raises(SandboxUnavailableError) as refused:
        await broken.start(spec(environment(), code="print(1)"))
    assert refused.value.status == 503 and "bubblewrap" in refused.value.message
    unsafe = await make_engine(options=SandboxOptions(unsafe_no_sandbox=True,
                                                      poll_interval=0.05))
    assert await unsafe.unavailable() is None and len(await unsafe.environments()) == 1
    job = spec(environment(), code="import os\nprint(os.path.basename(os.environ['ALGO']))")
    await unsafe.start(job)
    assert (await finished(unsafe, job.job_id)).detail == ""
    assert await result_bytes(unsafe, job.job_id) == b"algorithm\n"


async def test_provisioning_failures(make_engine: EngineFactory, origin: Origin) -> None:
    engine = await make_engine(environment(disk_gb=0.0001))  # ~107 kB for everything
    env = environment(disk_gb=0.0001)
    missing = spec(env, code="print(1)", inputs=[JobInput(
        DID, "compute", "0x", {"id": DID}, [{"type": "url", "url": origin.url + "/nope",
                                             "method": "GET"}])])
    too_big = spec(env, code="print(1)", inputs=[JobInput(
        DID, "compute", "0x", {"id": DID}, [origin.file("/big", b"x" * 200_000)])])
    bad_algo = spec(env, files=[{"type": "url", "url": origin.url + "/gone.py",
                                 "method": "GET"}])
    for job in (missing, too_big, bad_algo):
        await engine.start(job)
    one, two, three = [await finished(engine, j.job_id) for j in (missing, too_big, bad_algo)]
    assert one.status == JobStatus.DATA_PROVISIONING_FAILED
    assert one.detail == f"Could not provision input {DID} file 0: " \
        "the file's server answered with status 404"
    assert "127.0.0.1" not in one.detail
    assert two.status == JobStatus.DATA_PROVISIONING_FAILED and "disk limit" in two.detail
    assert three.status == JobStatus.ALGORITHM_PROVISIONING_FAILED
    assert three.detail.startswith("Could not provision the algorithm: ")
    # A failed job still has its log (with why) as result 0, as the reference publishes it.
    for failed in (one, two, three):
        assert [(r.type, r.index) for r in failed.results] == [("algorithmLog", 0)]
