"""The Docker engine on the real test daemon: real images, real containers, real limits."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import aiodocker
import pytest

from tests.docker_daemon import DOCKER_HOST
from tests.unit.compute.conftest import (
    DID,
    OWNER,
    Origin,
    finished,
    result_bytes,
    spec,
    wait_status,
)
from tests.unit.compute.docker.conftest import (
    BUSYBOX,
    TEST_OPTIONS,
    UBUNTU_NODE,
    UBUNTU_PYTHON,
    DockerFactory,
    docker_environment,
    job_containers,
)
from tidegate.compute.engines.base import JobInput
from tidegate.compute.engines.docker import DockerEngine, DockerUnavailableError
from tidegate.compute.engines.docker_images import ImageCheckError, ImageNotAllowedError
from tidegate.compute.engines.queueing import InsufficientDiskError
from tidegate.compute.engines.records import INTERRUPTED
from tidegate.compute.environments import Gpus
from tidegate.compute.jobs import JobStatus
from tidegate.compute.workspace import ResultNotFoundError
from tidegate.files.objects import StorageContext
from tidegate.stores.sqlite import SqliteStore

INPUT = bytes(range(256)) * 8

MARKER_SCRIPT = """
cat /etc/tidegate-test-image > /data/outputs/marker
id -u > /data/outputs/uid
id -g >> /data/outputs/uid
echo "algo=$ALGO dids=$DIDS" > /data/outputs/env
env | cut -d= -f1 | sort > /data/outputs/names
echo hello from busybox
"""


async def test_job_runs_in_the_named_image_as_non_root(make_docker_engine: DockerFactory) -> None:
    engine = await make_docker_engine()
    env = docker_environment()
    job = spec(env, code=MARKER_SCRIPT, container=BUSYBOX)
    await engine.start(job)
    record = await finished(engine, job.job_id, within=60)
    assert record.status == JobStatus.COMPLETED and record.detail == "", record
    assert await result_bytes(engine, job.job_id, "output", "marker") == b"busybox\n"
    assert await result_bytes(engine, job.job_id, "output", "uid") == b"65534\n65534\n"
    assert (await result_bytes(engine, job.job_id, "output", "env")).decode() == (
        f'algo=/data/transformations/algorithm dids=["{DID}"]\n')
    names = (await result_bytes(engine, job.job_id, "output", "names")).decode().split()
    assert set(names) <= {"ALGO", "DIDS", "TRANSFORMATION_DID", "HOME", "TMPDIR", "PATH",
                          "HOSTNAME", "PWD", "SHLVL"}, names
    assert await result_bytes(engine, job.job_id) == b"hello from busybox\n"


PYTHON_IO = """
import json, os
did = json.loads(os.environ["DIDS"])[0]
data = open(f"/data/inputs/{did}/0", "rb").read()
ddo = json.load(open(f"/data/ddos/{did}"))
os.makedirs("/data/outputs/sub", exist_ok=True)
open("/data/outputs/copy.bin", "wb").write(data[::-1])
open("/data/outputs/sub/meta.json", "w").write(json.dumps({"ddo": ddo["id"],
    "marker": open("/etc/tidegate-test-image").read().strip(), "uid": os.getuid()}))
print("read", len(data), "bytes", flush=True)
"""


async def test_python_in_the_debian_image_reads_inputs_over_http(
        make_docker_engine: DockerFactory, origin: Origin) -> None:
    engine = await make_docker_engine()
    env = docker_environment()
    inputs = [JobInput(DID, "compute", "0x" + "22" * 32, {"id": DID},
                       [origin.file("/data.bin", INPUT)])]
    job = spec(env, files=[origin.file("/algo.py", PYTHON_IO.encode())], inputs=inputs,
               container=UBUNTU_PYTHON)
    await engine.start(job)
    record = await finished(engine, job.job_id, within=60)
    assert record.status == JobStatus.COMPLETED and record.detail == "", record
    assert [(r.filename, r.type) for r in record.results] == [
        ("copy.bin", "output"), ("sub/meta.json", "output"), ("algorithm.log", "algorithmLog")]
    assert await result_bytes(engine, job.job_id, "output", "copy.bin") == INPUT[::-1]
    meta = json.loads(await result_bytes(engine, job.job_id, "output", "sub/meta.json"))
    assert meta == {"ddo": DID, "marker": "debian", "uid": 65534}
    assert await result_bytes(engine, job.job_id) == f"read {len(INPUT)} bytes\n".encode()


async def test_the_ecosystem_example_ubuntu_latest_with_node(
        make_docker_engine: DockerFactory) -> None:
    engine = await make_docker_engine()
    code = ("const fs = require('fs');\n"
            "fs.writeFileSync('/data/outputs/out.txt', 'node ' + process.version);\n"
            "console.log(JSON.parse(process.env.DIDS).length);\n")
    job = spec(docker_environment(), code=code, container=UBUNTU_NODE)
    await engine.start(job)
    record = await finished(engine, job.job_id, within=60)
    assert record.status == JobStatus.COMPLETED and record.detail == "", record
    assert (await result_bytes(engine, job.job_id, "output")).startswith(b"node v")
    assert await result_bytes(engine, job.job_id) == b"1\n"


CONFINED = """
import errno, json, os, socket
report = {}
try:
    socket.create_connection(("1.1.1.1", 80), timeout=3).close()
    report["tcp"] = "connected"
except OSError as exc:
    report["tcp"] = errno.errorcode.get(exc.errno, str(exc))
try:
    socket.getaddrinfo("deb.debian.org", 80)
    report["dns"] = "resolved"
except OSError:
    report["dns"] = "failed"
report["interfaces"] = sorted(os.listdir("/sys/class/net"))
for path in ("/x", "/etc/x", "/usr/x", "/data/x", "/data/inputs/x", "/data/ddos/x",
             "/data/transformations/x", "/tmp/ok", "/data/logs/ok", "/data/outputs/ok",
             "/dev/shm/ok"):
    try:
        open(path, "w").write("x")
        report[path] = "written"
    except OSError as exc:
        report[path] = errno.errorcode[exc.errno]
stat = os.statvfs("/dev/shm")
report["shm_bytes"] = stat.f_blocks * stat.f_frsize
report["docker.sock"] = os.path.exists("/var/run/docker.sock") or os.path.exists(
    "/run/tidegate-test-docker/docker.sock")
report["caps"] = [line for line in open("/proc/self/status")
                  if line.startswith(("CapEff", "CapBnd", "NoNewPrivs", "Seccomp:"))]
open("/data/outputs/report.json", "w").write(json.dumps(report))
"""


async def test_no_network_no_writes_outside_outputs_no_capabilities(
        make_docker_engine: DockerFactory) -> None:
    engine = await make_docker_engine()
    job = spec(docker_environment(), code=CONFINED, container=UBUNTU_PYTHON)
    await engine.start(job)
    record = await finished(engine, job.job_id, within=60)
    assert record.status == JobStatus.COMPLETED and record.detail == "", record
    report = json.loads(await result_bytes(engine, job.job_id, "output", "report.json"))
    assert report["tcp"] in ("ENETUNREACH", "EHOSTUNREACH"), report
    assert report["dns"] == "failed" and report["interfaces"] == ["lo"]
    for path in ("/x", "/etc/x", "/usr/x", "/data/x", "/data/inputs/x", "/data/ddos/x",
                 "/data/transformations/x"):
        assert report[path] in ("EROFS", "EACCES"), (path, report[path])
    assert report["/tmp/ok"] == report["/data/logs/ok"] == report["/data/outputs/ok"] \
        == report["/dev/shm/ok"] == "written"
    assert report["shm_bytes"] == 8 * 1024 * 1024  # TEST_OPTIONS.tmp_bytes
    assert report["docker.sock"] is False
    caps = {line.split(":")[0]: line.split(":")[1].strip() for line in report["caps"]}
    assert caps["CapEff"] == caps["CapBnd"] == "0000000000000000"
    assert caps["NoNewPrivs"] == "1" and caps["Seccomp"] == "2"  # the default profile


async def test_memory_over_the_limit_ends_with_a_memory_reason(
        make_docker_engine: DockerFactory) -> None:
    env = docker_environment(ram_gb=0.0625)
    engine = await make_docker_engine(env)
    code = "print('allocating', flush=True)\nblob = b'x' * (512 * 1024 * 1024)\nprint('no')"
    job = spec(env, code=code, container=UBUNTU_PYTHON)
    await engine.start(job)
    record = await finished(engine, job.job_id, within=60)
    assert record.status == JobStatus.COMPLETED
    assert record.detail.startswith("Memory limit exceeded (64 MB)"), record.detail
    assert (await result_bytes(engine, job.job_id)).startswith(b"allocating\n")


FORK_BOMB = """
import os, time
children = 0
try:
    for _ in range(500):
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        children += 1
except OSError as exc:
    pass
open("/data/outputs/children", "w").write(str(children))
"""


async def test_a_fork_bomb_is_contained(make_docker_engine: DockerFactory) -> None:
    engine = await make_docker_engine()
    job = spec(docker_environment(), code=FORK_BOMB, container=UBUNTU_PYTHON)
    await engine.start(job)
    record = await finished(engine, job.job_id, within=60)
    assert record.status == JobStatus.COMPLETED, record
    children = int(await result_bytes(engine, job.job_id, "output", "children"))
    assert 0 < children < 32  # TEST_OPTIONS.max_processes


async def test_a_checksum_that_does_not_match_the_image_is_refused(
        make_docker_engine: DockerFactory, docker: aiodocker.Docker) -> None:
    engine = await make_docker_engine()
    env = docker_environment()
    wrong = {**BUSYBOX, "checksum": "sha256:" + "0" * 64}
    with pytest.raises(ImageCheckError) as refused:
        await engine.start(spec(env, code="echo never", container=wrong))
    assert refused.value.status == 400 and refused.value.code == "image_checksum_mismatch"
    assert "does not match the algorithm's container.checksum" in refused.value.message
    assert await engine.jobs(OWNER, None, None) == []  # nothing persisted
    image_id = (await docker.images.inspect("tidegate-test/busybox:1"))["Id"]
    for checksum in (image_id, image_id.removeprefix("sha256:")):
        job = spec(env, code="echo pinned", container={**BUSYBOX, "checksum": checksum})
        await engine.start(job)
        record = await finished(engine, job.job_id, within=60)
        assert record.status == JobStatus.COMPLETED and record.detail == "", record


async def test_an_image_that_cannot_be_pulled_fails_the_job_in_32(
        make_docker_engine: DockerFactory) -> None:
    engine = await make_docker_engine()
    absent = {"image": "127.0.0.1:9/tidegate-test/absent", "tag": "1", "entrypoint": "sh $ALGO"}
    job = spec(docker_environment(), code="echo never", container=absent)
    await engine.start(job)
    record = await finished(engine, job.job_id, within=60)
    assert record.status == JobStatus.ALGORITHM_PROVISIONING_FAILED
    assert record.status_text == "Algorithm provisioning failed"
    assert record.detail == ("Could not pull the image 127.0.0.1:9/tidegate-test/absent:1: "
                             "the registry could not be reached."), record.detail
    assert (await result_bytes(engine, job.job_id)).endswith(record.detail.encode() + b"\n")


async def test_stop_kills_the_container_at_once_and_the_log_is_readable_before(
        make_docker_engine: DockerFactory, docker: aiodocker.Docker) -> None:
    engine = await make_docker_engine()
    job = spec(docker_environment(max_job_duration=120),
               code="echo started\necho early > /data/outputs/early\nsleep 120",
               container=BUSYBOX)
    await engine.start(job)
    await running_with_log(engine, job.job_id, b"started\n")
    assert len(await job_containers(docker, job.job_id)) == 1
    asked = time.monotonic()
    [stopped] = await engine.stop(OWNER, job.job_id, None)
    assert time.monotonic() - asked < 3
    assert stopped.status == JobStatus.COMPLETED and stopped.status_text == "Job stopped"
    assert await job_containers(docker, job.job_id) == []
    assert (await result_bytes(engine, job.job_id)).startswith(b"started\n")


async def test_a_stop_whose_kill_ends_the_wait_first_is_still_a_stop(
        make_docker_engine: DockerFactory) -> None:
    """The race CI hit: the kill makes the container's wait return before the watch loop
    polls again, so the loop never saw the stop. A poll interval of 60 s makes that order
    certain; the record must still say "Job stopped", not "exited with code 137"."""
    engine = await make_docker_engine(options=replace(TEST_OPTIONS, poll_interval=60))
    job = spec(docker_environment(max_job_duration=120), code="echo started\nsleep 120",
               container=BUSYBOX)
    await engine.start(job)
    await running_with_log(engine, job.job_id, b"started\n")
    [stopped] = await engine.stop(OWNER, job.job_id, None)
    assert (stopped.status, stopped.status_text) == (JobStatus.COMPLETED, "Job stopped"), (
        stopped.detail)


async def test_a_job_past_its_queue_max_wait_ends_unrun(
        make_docker_engine: DockerFactory, docker: aiodocker.Docker) -> None:
    """One slot: the second job (queueMaxWaitTime 1 s) ends in the queue, no container
    of it was ever made, while the first one runs on."""
    env = docker_environment(max_job_duration=60, max_jobs=1)
    engine = await make_docker_engine(env)
    holder = spec(env, code="echo holding\nsleep 8", container=BUSYBOX)
    await engine.start(holder)
    await wait_status(engine, holder.job_id, {JobStatus.RUNNING}, within=60)
    waiter = replace(spec(env, code="echo never", container=BUSYBOX), queue_max_wait=1)
    await engine.start(waiter)
    record = await finished(engine, waiter.job_id, within=10)
    assert (record.status, record.status_text) == (JobStatus.COMPLETED,
                                                   "Job expired in the queue")
    assert record.detail == ("The job waited longer than its queueMaxWaitTime (1 s) for a "
                             "free slot and was not run.")
    assert record.date_started is None and await job_containers(docker, waiter.job_id) == []
    assert (await engine.jobs(OWNER, holder.job_id, None))[0].status == JobStatus.RUNNING
    await engine.stop(OWNER, holder.job_id, None)


async def test_the_wall_clock_limit_kills_the_container(
        make_docker_engine: DockerFactory) -> None:
    env = docker_environment(max_job_duration=60)
    engine = await make_docker_engine(env)
    job = spec(env, code="echo going\nsleep 60", container=BUSYBOX, max_duration=1)
    await engine.start(job)
    record = await finished(engine, job.job_id, within=30)
    assert record.detail == "Time limit exceeded: the job ran longer than 1 s and was stopped."


async def running_with_log(engine: DockerEngine, job_id: str, log: bytes) -> None:
    """Wait until the job runs and its log so far is ``log``."""
    await wait_status(engine, job_id, {JobStatus.RUNNING}, within=60)
    deadline = time.monotonic() + 10
    while await result_bytes_so_far(engine, job_id) != log:
        assert time.monotonic() < deadline, "the log so far never showed"
        await asyncio.sleep(0.05)


async def result_bytes_so_far(engine: DockerEngine, job_id: str) -> bytes:
    """The running job's log (result 0) as it is now."""
    stream = await engine.result(OWNER, job_id, 0)
    return b"".join([chunk async for chunk in stream.chunks])


async def test_a_restart_removes_the_container_of_a_killed_tidegate_and_fails_its_job(
        make_docker_engine: DockerFactory, docker: aiodocker.Docker, tmp_path: Path) -> None:
    job_id = uuid.uuid4().hex
    crashing = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.unit.compute.docker.crashing_tidegate",
        str(tmp_path / "store.db"), str(tmp_path / "compute"), job_id, DOCKER_HOST,
        stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).parents[4])
    try:
        assert crashing.stdout is not None
        line = await asyncio.wait_for(crashing.stdout.readline(), 60)
        assert line == b"running\n"
    finally:
        crashing.kill()  # -9: no clean-up of its own
        await crashing.wait()
    assert len(await job_containers(docker, job_id)) == 1  # left running by the dead one
    engine = await make_docker_engine(docker_environment(max_job_duration=120),
                                      lease_ttl=1.0)
    record = await finished(engine, job_id, within=20)
    assert record.detail == INTERRUPTED
    deadline = time.monotonic() + 10
    while await job_containers(docker, job_id):
        assert time.monotonic() < deadline, "the orphaned container was not removed"
        await asyncio.sleep(0.1)


async def test_without_a_daemon_jobs_are_refused_with_503(
        store: SqliteStore, storage: StorageContext, tmp_path: Path) -> None:
    """A real client to a socket no daemon listens on (nothing is faked)."""
    absent = aiodocker.Docker(url=f"unix://{tmp_path}/no-daemon.sock")
    engine = DockerEngine(store, storage, [docker_environment()], tmp_path / "compute", absent)
    try:
        refusal = await engine.unavailable()
        assert refusal is not None and refusal.status == 503
        assert refusal.code == "docker_unavailable"
        assert "does not answer" in refusal.message and "no-daemon" not in refusal.message
        with pytest.raises(DockerUnavailableError):
            await engine.start(spec(docker_environment(), code="echo", container=BUSYBOX))
        assert await engine.jobs(None, None, None) == []
    finally:
        await engine.close()
        await absent.close()


async def test_closing_tidegate_kills_and_removes_running_containers(
        make_docker_engine: DockerFactory, docker: aiodocker.Docker) -> None:
    engine = await make_docker_engine()
    job = spec(docker_environment(), code="sleep 60", container=BUSYBOX)
    await engine.start(job)
    await wait_status(engine, job.job_id, {JobStatus.RUNNING}, within=60)
    await engine.close()
    assert await job_containers(docker, job.job_id) == []
    [record] = await engine.jobs(None, job.job_id, None)
    assert record.detail == "Interrupted: Tidegate shut down during the job."


# A character device of the host that a container's default /dev does not have, standing
# in for a GPU's device node (no GPU on this machine; the NVIDIA path is a unit test).
GPU_STAND_IN = next((p for p in ("/dev/vga_arbiter", "/dev/cpu_dma_latency")
                     if Path(p).is_char_device()), None)
SEE_DEVICE = 'if [ -c "$1" ]; then echo present; else echo absent; fi > /data/outputs/device'


@pytest.mark.skipif(GPU_STAND_IN is None, reason="no stand-in device node on this host")
async def test_gpu_devices_reach_only_their_environments_jobs(
        make_docker_engine: DockerFactory) -> None:
    assert GPU_STAND_IN is not None
    gpu_env = docker_environment(id="gpu-env", gpus=Gpus(count=1, type="stand-in",
                                                         driver="devices",
                                                         device_ids=(GPU_STAND_IN,)))
    plain = docker_environment(id="plain-env")
    engine = await make_docker_engine(gpu_env, plain)
    code = SEE_DEVICE.replace("$1", GPU_STAND_IN)
    jobs = {"gpu": spec(gpu_env, code=code, container=BUSYBOX),
            "plain": spec(plain, code=code, container=BUSYBOX),
            # A spec claiming GPUs for an environment that has none gets none: the
            # engine's own environment decides.
            "claimed": spec(replace(plain, gpus=gpu_env.gpus), code=code,
                            container=BUSYBOX)}
    for job in jobs.values():
        await engine.start(job)
    seen = {}
    for name, job in jobs.items():
        record = await finished(engine, job.job_id, within=60)
        assert record.detail == "", record
        seen[name] = await result_bytes(engine, job.job_id, "output", "device")
    assert seen == {"gpu": b"present\n", "plain": b"absent\n", "claimed": b"absent\n"}


async def test_an_image_outside_the_environments_allowed_images_is_refused(
        make_docker_engine: DockerFactory) -> None:
    env = docker_environment(allowed_images=("ubuntu:*",))
    engine = await make_docker_engine(env)
    with pytest.raises(ImageNotAllowedError):
        await engine.start(spec(env, code="echo", container=BUSYBOX))
    job = spec(env, code="print('allowed')", container=UBUNTU_PYTHON)
    await engine.start(job)
    assert (await finished(engine, job.job_id, within=60)).detail == ""


async def test_a_registry_that_never_answers_ends_the_pull_at_its_timeout(
        make_docker_engine: DockerFactory) -> None:
    """A real TCP listener on loopback that accepts and never answers (a stuck registry)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        engine = await make_docker_engine(options=replace(TEST_OPTIONS, pull_timeout=1.0))
        stuck = {"image": f"127.0.0.1:{port}/tidegate-test/stuck", "tag": "1",
                 "entrypoint": "sh $ALGO"}
        job = spec(docker_environment(), code="echo never", container=stuck)
        started = time.monotonic()
        await engine.start(job)
        record = await finished(engine, job.job_id, within=30)
    assert record.status == JobStatus.ALGORITHM_PROVISIONING_FAILED
    assert record.detail == (f"Could not pull the image 127.0.0.1:{port}/tidegate-test/stuck:1:"
                             " timed out after 1 s."), record.detail
    assert time.monotonic() - started < 10


async def test_results_disappear_after_storage_expiry(make_docker_engine: DockerFactory,
                                                      tmp_path: Path) -> None:
    env = docker_environment(storage_expiry=1)
    engine = await make_docker_engine(env, lease_ttl=1.0)  # sweeps every second
    job = spec(env, code="echo kept > /data/outputs/out", container=BUSYBOX)
    await engine.start(job)
    record = await finished(engine, job.job_id, within=60)
    assert record.results and not record.removed
    workspace = tmp_path / "compute" / "jobs" / job.job_id
    assert workspace.is_dir()
    deadline = time.monotonic() + 10
    while not (await engine.jobs(OWNER, job.job_id, None))[0].removed:
        assert time.monotonic() < deadline, "the results never expired"
        await asyncio.sleep(0.1)
    [expired] = await engine.jobs(OWNER, job.job_id, None)
    assert expired.results == [] and expired.status == JobStatus.COMPLETED
    assert not workspace.exists()
    with pytest.raises(ResultNotFoundError):
        await engine.result(OWNER, job.job_id, 0)


async def test_a_job_is_refused_before_the_disk_fills(make_docker_engine: DockerFactory,
                                                      tmp_path: Path) -> None:
    """The real free space of the test's disk, against a floor above it."""
    free = shutil.disk_usage(tmp_path).free
    engine = await make_docker_engine(options=replace(TEST_OPTIONS, min_free_bytes=free + 2**30))
    with pytest.raises(InsufficientDiskError) as refused:
        await engine.start(spec(docker_environment(), code="echo", container=BUSYBOX))
    assert (refused.value.status, refused.value.code) == (503, "insufficient_disk")
    assert await engine.jobs(None, None, None) == []
    # A floor the disk keeps: accepted (the job's 2 x diskGB counted against it).
    env = docker_environment(disk_gb=0.01)
    roomy = await make_docker_engine(env, options=replace(TEST_OPTIONS, min_free_bytes=2**20))
    job = spec(env, code="echo fits", container=BUSYBOX)
    await roomy.start(job)
    assert (await finished(roomy, job.job_id, within=60)).detail == ""


async def test_a_daemon_that_goes_away_and_comes_back(
        store: SqliteStore, storage: StorageContext, tmp_path: Path) -> None:
    """The daemon's socket reached through a relay this test opens and closes (the real
    daemon behind it; the shared daemon itself is never stopped)."""
    daemon_socket = DOCKER_HOST.removeprefix("unix://")
    relay_path = str(tmp_path / "relay.sock")

    open_writers: list[asyncio.StreamWriter] = []

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_unix_connection(daemon_socket)
        open_writers.extend((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    client = aiodocker.Docker(url=f"unix://{relay_path}")
    engine = DockerEngine(store, storage, [docker_environment()], tmp_path / "compute",
                          client, TEST_OPTIONS, lease_ttl=0.6)
    server: asyncio.Server | None = None
    try:
        assert await engine.unavailable() is not None  # no relay yet
        server = await asyncio.start_unix_server(relay, relay_path)

        async def until(available: bool) -> None:
            deadline = time.monotonic() + 10
            while (await engine.unavailable() is None) != available:
                assert time.monotonic() < deadline, f"never became available={available}"
                await asyncio.sleep(0.1)

        await until(True)
        job = spec(docker_environment(), code="echo via relay", container=BUSYBOX)
        await engine.start(job)
        assert await result_bytes(engine, (await finished(engine, job.job_id, 60)).job_id) \
            == b"via relay\n"
        server.close()
        for writer in open_writers:  # the client's kept-alive connections too
            writer.close()
        await server.wait_closed()
        server = None
        await until(False)
        with pytest.raises(DockerUnavailableError):
            await engine.start(spec(docker_environment(), code="echo", container=BUSYBOX))
    finally:
        await engine.close()
        await client.close()
        if server is not None:
            server.close()


async def test_outputs_over_the_disk_quota_are_cut_with_a_reason(
        make_docker_engine: DockerFactory) -> None:
    env = docker_environment(disk_gb=0.01)  # 10737418 bytes
    engine = await make_docker_engine(env)
    code = "".join(f"dd if=/dev/zero of=/data/outputs/{name} bs=1048576 count=4 2>/dev/null\n"
                   for name in "abc")
    job = spec(env, code=code, container=BUSYBOX)
    await engine.start(job)
    record = await finished(engine, job.job_id, within=60)
    assert record.detail == ("Disk limit exceeded: outputs may total 10737418 bytes. 1 output "
                             "file(s) beyond the disk limit (10737418 bytes) are not results.")
    assert [(r.filename, r.filesize, r.index) for r in record.results if r.type == "output"] \
        == [("a", 4 * 2**20, 0), ("b", 4 * 2**20, 1)]
    assert record.results[-1].type == "algorithmLog" and record.results[-1].index == 2
    assert await result_bytes(engine, job.job_id, "output", "b") == bytes(4 * 2**20)
