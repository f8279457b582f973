"""The sandbox holds: network, host files, inputs, memory, time, CPU, disk, fork bombs.

Each hostile algorithm runs for real in bubblewrap; the job must end with a status
and detail saying why, and nothing may leak to or linger on the host.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.unit.compute.conftest import (
    TEST_OPTIONS,
    EngineFactory,
    Origin,
    environment,
    finished,
    result_bytes,
    spec,
    wait_status,
)
from tidegate.compute.jobs import JobStatus
from tidegate.compute.sandbox import Sandbox, SandboxOptions

ROOT = os.geteuid() == 0


def _processes_of(uid: int) -> list[str]:
    found = subprocess.run(["ps", "-o", "pid=,args=", "-u", str(uid)], capture_output=True,
                           text=True, check=False)
    return [line for line in found.stdout.splitlines() if line.strip()]


def _algorithm_processes() -> bytes:
    """Any process running a sandboxed algorithm (they all run $ALGO)."""
    return subprocess.run(["pgrep", "-f", "/data/transformations/algorithm"],
                          capture_output=True, check=False).stdout


async def test_no_network_unless_the_environment_allows_it(make_engine: EngineFactory,
                                                           origin: Origin) -> None:
    origin.files["/ping"] = b"pong"
    port = origin.server_address[1]
    code = f"""
import socket, urllib.request
for target in [("127.0.0.1", {port}), ("1.1.1.1", 80)]:
    try:
        socket.create_connection(target, timeout=2).close()
        print("connected", target[1])
    except OSError as exc:
        print("blocked", target[1], exc.__class__.__name__, exc.strerror)
print(urllib.request.urlopen("http://127.0.0.1:{port}/ping", timeout=2).read())
"""
    closed, opened = environment(), environment(id="net-env", allow_network=True)
    engine = await make_engine(closed, opened)
    denied = spec(closed, code=code)
    allowed = spec(opened, code=code, allow_network=True)
    await engine.start(denied)
    record = await finished(engine, denied.job_id)
    log = (await result_bytes(engine, denied.job_id)).decode()
    assert f"blocked {port} ConnectionRefusedError" in log  # not the host's loopback
    assert "blocked 80 OSError Network is unreachable" in log
    assert "URLError" in log and record.detail == "Algorithm exited with code 1."
    assert origin.requests["/ping"] == 0
    await engine.start(allowed)
    granted = await finished(engine, allowed.job_id)
    assert granted.detail == "" and origin.requests["/ping"] == 1
    assert f"connected {port}" in (await result_bytes(engine, allowed.job_id)).decode()


async def test_the_host_is_invisible_and_inputs_are_read_only(
        make_engine: EngineFactory, tmp_path: Path) -> None:
    secret = tmp_path / "provider-secret.txt"
    secret.write_text("PROVIDER_PRIVATE_KEY=0xdead")
    code = f"""
import json, os
seen = {{}}
for path in ["/root", "/home", "/work", {str(tmp_path)!r}, {str(secret)!r}, "/etc/passwd",
             "/etc/shadow", "/var", "/opt", "/srv", "/sys"]:
    try:
        seen[path] = sorted(os.listdir(path)) if os.path.isdir(path) else open(path).read()
    except OSError as exc:
        seen[path] = exc.__class__.__name__
writes = {{}}
for path in ["/data/inputs/x", "/data/ddos/x", "/data/transformations/x", "/data/x", "/x",
             "/usr/x", "/etc/x", "/tmp/x", "/data/outputs/x", "/data/logs/x"]:
    try:
        open(path, "w").write("w")
        writes[path] = "written"
    except OSError as exc:
        writes[path] = exc.strerror
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
pids = [p for p in os.listdir("/proc") if p.isdigit()]
json.dump({{"seen": seen, "writes": writes, "pids": pids, "uid": os.getuid(),
           "cap": status["CapEff"].strip(), "nnp": status["NoNewPrivs"].strip(),
           "env": sorted(os.environ), "root": sorted(os.listdir("/"))}},
          open("/data/outputs/report.json", "w"))
"""
    os.environ["TIDEGATE_TEST_SECRET"] = "must-not-leak"
    try:
        engine = await make_engine()
        job = spec(environment(), code=code)
        await engine.start(job)
        record = await finished(engine, job.job_id)
    finally:
        del os.environ["TIDEGATE_TEST_SECRET"]
    assert record.detail == "", await result_bytes(engine, job.job_id)
    report = json.loads(await result_bytes(engine, job.job_id, "output", "report.json"))
    assert all(v == "FileNotFoundError" for v in report["seen"].values()), report["seen"]
    writes = report["writes"]
    for path in ("/data/inputs/x", "/data/ddos/x", "/data/transformations/x", "/data/x", "/x",
                 "/usr/x", "/etc/x"):
        assert writes[path] == "Read-only file system", (path, writes[path])
    assert writes["/tmp/x"] == writes["/data/outputs/x"] == writes["/data/logs/x"] == "written"
    assert report["uid"] != 0 and report["cap"] == "0000000000000000"
    assert len(report["pids"]) <= 3  # bwrap's init, (setpriv→) python: no host process
    assert report["root"] == sorted(["bin", "data", "dev", "etc", "lib", "lib64", "proc",
                                     "sbin", "tmp", "usr"] if ROOT else report["root"])
    assert "TIDEGATE_TEST_SECRET" not in report["env"]
    assert set(report["env"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "ALGO", "DIDS",
                                  "TRANSFORMATION_DID", "PYTHONUNBUFFERED",
                                  "PYTHONDONTWRITEBYTECODE", "LC_CTYPE", "PWD"}
    if ROOT:
        assert report["nnp"] == "1"


async def test_memory_limit(make_engine: EngineFactory) -> None:
    env = environment(ram_gb=0.25)
    engine = await make_engine(env)
    job = spec(env, code="print('allocating', flush=True)\nblock = bytearray(600 * 2**20)")
    await engine.start(job)
    record = await finished(engine, job.job_id)
    assert record.status == JobStatus.COMPLETED
    assert record.detail == "Memory limit exceeded (256 MB). Algorithm exit code 1."
    assert b"MemoryError" in await result_bytes(engine, job.job_id)


async def test_wall_clock_limit(make_engine: EngineFactory) -> None:
    env = environment(max_job_duration=2)
    engine = await make_engine(env)
    job = spec(env, code="import time\nopen('/data/outputs/before', 'w').write('b')\n"
                         "time.sleep(120)")
    began = time.monotonic()
    await engine.start(job)
    record = await finished(engine, job.job_id)
    assert 1.9 < time.monotonic() - began < 6
    assert record.detail == "Time limit exceeded: the job ran longer than 2 s and was stopped."
    assert await result_bytes(engine, job.job_id, "output") == b"b"  # outputs so far kept


async def test_cpu_time_limit(make_engine: EngineFactory) -> None:
    env = environment(max_job_duration=20)
    options = SandboxOptions(cpu_time_factor=0.05, poll_interval=0.05)  # 1 s of CPU
    engine = await make_engine(env, options=options)
    job = spec(env, code="while True:\n    pass")
    began = time.monotonic()
    await engine.start(job)
    record = await finished(engine, job.job_id)
    assert time.monotonic() - began < 8
    assert record.detail == "CPU time limit exceeded (1 s of CPU time)."


async def test_disk_limit(make_engine: EngineFactory) -> None:
    env = environment(disk_gb=1 / 1024)  # 1 MiB of outputs
    engine = await make_engine(env)
    one_file = spec(env, code="open('/data/outputs/big', 'wb').write(b'x' * 5 * 2**20)")
    many_files = spec(env, code="import time\nfor i in range(100):\n"
                                "    open(f'/data/outputs/f{i}', 'wb').write(b'y' * 300_000)\n"
                                "time.sleep(30)")
    await engine.start(one_file)
    await engine.start(many_files)
    for job in (one_file, many_files):
        record = await finished(engine, job.job_id)
        assert record.detail.startswith("Disk limit exceeded: outputs may total 1048576 bytes")
        assert all(r.filesize <= 1048576 for r in record.results)


@pytest.mark.skipif(not ROOT, reason="counting the sandbox uid's processes needs root mode")
async def test_fork_bomb_is_contained(make_engine: EngineFactory) -> None:
    env = environment(max_job_duration=3)
    engine = await make_engine(env)
    code = """
import os, time
print("forking", flush=True)
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)
"""
    job = spec(env, code=code)
    await engine.start(job)
    await wait_status(engine, job.job_id, {JobStatus.RUNNING})
    uid = TEST_OPTIONS.sandbox_uid
    peak = 0
    while (await engine.jobs(None, job.job_id, None))[0].status == JobStatus.RUNNING:
        peak = max(peak, len(_processes_of(uid)))
        await asyncio.sleep(0.1)
    record = await finished(engine, job.job_id)
    assert peak <= TEST_OPTIONS.max_processes
    assert record.detail.startswith(("Time limit exceeded", "Process limit reached"))
    await asyncio.sleep(0.3)
    assert _processes_of(uid) == []  # nothing of the job survives it


async def test_stopped_and_timed_out_jobs_leave_no_process(make_engine: EngineFactory) -> None:
    env = environment(max_job_duration=1)
    engine = await make_engine(env)
    job = spec(env, code="import os, time\nif os.fork() == 0:\n    os.setsid()\n"
                         "    time.sleep(300)\ntime.sleep(300)")
    await engine.start(job)
    record = await finished(engine, job.job_id)
    assert record.detail.startswith("Time limit exceeded")
    await asyncio.sleep(0.3)
    if ROOT:
        assert _processes_of(TEST_OPTIONS.sandbox_uid) == []
    assert _algorithm_processes() == b""


@pytest.mark.skipif(not ROOT, reason="uids are only switched when Tidegate runs as root")
def test_processes_sharing_a_data_dir_never_share_a_job_uid(tmp_path: Path) -> None:
    one, two = Sandbox(TEST_OPTIONS, tmp_path), Sandbox(TEST_OPTIONS, tmp_path)
    first, second = one._take_uid(), two._take_uid()
    assert first == TEST_OPTIONS.sandbox_uid and second == first + 1  # flock-claimed
    one._release_uid(first)  # type: ignore[arg-type]
    assert two._take_uid() == first
    for uid in (first, second):
        two._release_uid(uid)  # type: ignore[arg-type]
