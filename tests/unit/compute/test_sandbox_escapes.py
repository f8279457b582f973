"""Sandbox escape attempts (issue #16 item 7), each a hostile algorithm run for real.

Every algorithm tries one way out, writes what it saw to ``/data/outputs/report.json``
and exits 0; the test checks that the attempt was denied, that nothing reached the
host (listeners count what arrived), and what the job's status says.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import json
import os
import socket
import stat
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.unit.compute.conftest import (
    TEST_OPTIONS,
    EngineFactory,
    environment,
    finished,
    job_processes,
    result_bytes,
    spec,
    unique_did,
    wait_status,
)
from tidegate.compute.engines.local import LocalEngine
from tidegate.compute.jobs import JobRecord, JobResult, JobStatus
from tidegate.compute.workspace import ResultNotFoundError, Workspace, _force, result_file

ROOT = os.geteuid() == 0
SECRET = "tidegate-escape-test-secret-" + uuid.uuid4().hex


async def _run(engine: LocalEngine, code: str, algorithm_did: str | None = None,
               **env: Any) -> tuple[JobRecord, dict[str, Any]]:
    """Run ``code``; its record and the report it wrote."""
    job = spec(environment(**env), code=code, algorithm_did=algorithm_did)
    await engine.start(job)
    record = await finished(engine, job.job_id, within=30)
    log = await result_bytes(engine, job.job_id)
    assert record.detail == "", log
    report = json.loads(await result_bytes(engine, job.job_id, "output", "report.json"))
    return record, report


_READ = """
import json, os
def attempt(path):
    try:
        if os.path.isdir(path):
            return sorted(os.listdir(path))
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError as exc:
        return exc.__class__.__name__
"""


async def test_process_environments_are_out_of_reach(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    me = os.getpid()  # Tidegate is this process: the engine runs in the test
    code = _READ + f"""
paths = ["/proc/1/environ", "/proc/1/cmdline", "/proc/{me}/environ", "/proc/{me}/cmdline",
         "/proc/{me}/root", "/proc/{me}/cwd", "/proc/self/environ"]
report = {{p: attempt(p) for p in paths}}
report["pids"] = sorted(p for p in os.listdir("/proc") if p.isdigit())
report["fds"] = sorted(os.listdir("/proc/self/fd"))
json.dump(report, open("/data/outputs/report.json", "w"))
"""
    os.environ["TIDEGATE_ESCAPE_SECRET"] = SECRET
    try:
        _, report = await _run(engine, code)
    finally:
        del os.environ["TIDEGATE_ESCAPE_SECRET"]
    assert SECRET not in json.dumps(report)
    for path in (f"/proc/{me}/environ", f"/proc/{me}/cmdline", f"/proc/{me}/root",
                 f"/proc/{me}/cwd"):
        # A new pid namespace: Tidegate's pid does not exist in the job's /proc (its
        # own pids are 1-3; the test's pid is far above).
        assert report[path] == "FileNotFoundError", (path, report[path])
    # pid 1 is bubblewrap's init: root-owned in root mode (unreadable to the job's uid),
    # started with PATH only in any case.
    environ = report["/proc/1/environ"]
    assert environ == "PermissionError" if ROOT else "PROVIDER" not in environ
    assert "PROVIDER" not in report["/proc/self/environ"]
    assert len(report["pids"]) <= 3
    # Only stdin, stdout, stderr (and the descriptor listing /proc/self/fd): no socket,
    # database or log file of Tidegate's is inherited.
    assert len(report["fds"]) <= 4 and {"0", "1", "2"} <= set(report["fds"])


async def test_provider_files_and_other_jobs_are_out_of_reach(
        make_engine: EngineFactory, tmp_path: Path) -> None:
    engine = await make_engine()
    # A job of another consumer, running meanwhile, with an output of its own.
    other = spec(environment(max_job_duration=30),
                 code=f"import time\nopen('/data/outputs/theirs', 'w').write({SECRET!r})\n"
                      "time.sleep(30)")
    await engine.start(other)
    await wait_status(engine, other.job_id, {JobStatus.RUNNING})
    other_dir = tmp_path / "compute" / "jobs" / other.job_id
    theirs = other_dir / "data" / "outputs" / "theirs"
    for _ in range(100):
        if theirs.is_file() and theirs.read_text() == SECRET:
            break
        await asyncio.sleep(0.05)
    assert theirs.read_text() == SECRET
    store_db = tmp_path / "store.db"
    assert store_db.is_file()
    code = _READ + f"""
paths = [{str(tmp_path)!r}, {str(tmp_path / "compute")!r}, {str(store_db)!r},
         {str(store_db) + "-wal"!r}, {str(other_dir)!r},
         {str(other_dir / "data" / "outputs" / "theirs")!r}, "/data/../compute",
         "/data/outputs/../../jobs"]
report = {{p: attempt(p) for p in paths}}
report["pids"] = [open(f"/proc/{{p}}/cmdline").read() for p in os.listdir("/proc")
                  if p.isdigit()]
json.dump(report, open("/data/outputs/report.json", "w"))
"""
    _, report = await _run(engine, code)
    pids = report.pop("pids")
    assert all(value == "FileNotFoundError" for value in report.values()), report
    assert not any("theirs" in cmdline or "sleep" in cmdline for cmdline in pids), pids
    await engine.stop(other.owner, other.job_id, None)


class _Listeners:
    """TCP (v4, v6), UDP, unix-path and abstract unix listeners; what reached them."""

    def __init__(self, directory: Path) -> None:
        self.arrived: list[str] = []
        self._sockets: list[socket.socket] = []
        self.targets: dict[str, Any] = {}
        self._listen("tcp4", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 0))
        with contextlib.suppress(OSError):
            self._listen("tcp6", socket.AF_INET6, socket.SOCK_STREAM, ("::1", 0))
        self._listen("udp4", socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 0))
        self._listen("unix", socket.AF_UNIX, socket.SOCK_STREAM, str(directory / "host.sock"))
        # /tmp of the host (the job's /tmp is its own): a socket a host service could have.
        self._listen("unix-tmp", socket.AF_UNIX, socket.SOCK_STREAM,
                     f"/tmp/tidegate-escape-{uuid.uuid4().hex[:8]}.sock")
        self._listen("abstract", socket.AF_UNIX, socket.SOCK_STREAM,
                     f"\0tidegate-escape-{uuid.uuid4().hex}")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _listen(self, name: str, family: int, kind: int, address: Any) -> None:
        sock = socket.socket(family, kind)
        sock.bind(address)
        if kind == socket.SOCK_STREAM:
            sock.listen(16)
        sock.settimeout(0.05)
        self._sockets.append(sock)
        bound = sock.getsockname()
        self.targets[name] = list(bound[:2]) if family != socket.AF_UNIX else address

    def _serve(self) -> None:
        while not self._stop.is_set():
            for index, sock in enumerate(self._sockets):
                with contextlib.suppress(OSError):
                    if sock.type == socket.SOCK_DGRAM:
                        sock.recv(64)
                    else:
                        conn, _ = sock.accept()
                        conn.close()
                    self.arrived.append(list(self.targets)[index])

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self._sockets:
            name = sock.getsockname()
            sock.close()
            if isinstance(name, str) and name.startswith("/"):
                os.unlink(name)


@pytest.fixture
def listeners(tmp_path: Path) -> Iterator[_Listeners]:
    found = _Listeners(tmp_path)
    try:
        yield found
    finally:
        found.close()


async def test_no_byte_reaches_a_host_socket(make_engine: EngineFactory,
                                             listeners: _Listeners) -> None:
    engine = await make_engine()
    code = f"""
import json, socket
targets = {json.dumps(listeners.targets)}
families = {{"tcp4": socket.AF_INET, "tcp6": socket.AF_INET6, "udp4": socket.AF_INET}}
report = {{}}
for name, address in targets.items():
    family = families.get(name, socket.AF_UNIX)
    kind = socket.SOCK_DGRAM if name.startswith("udp") else socket.SOCK_STREAM
    sock = socket.socket(family, kind)
    sock.settimeout(2)
    try:
        if kind == socket.SOCK_DGRAM:
            sock.sendto(b"x", tuple(address))
        else:
            sock.connect(tuple(address) if isinstance(address, list) else address)
            sock.sendall(b"x")
        report[name] = "sent"
    except OSError as exc:
        report[name] = exc.__class__.__name__
    finally:
        sock.close()
json.dump(report, open("/data/outputs/report.json", "w"))
"""
    _, report = await _run(engine, code)
    await asyncio.sleep(0.3)  # a datagram or connection in flight would have arrived
    assert listeners.arrived == []
    # No host network namespace: no loopback listener; unix paths of the host are not
    # in the job's filesystem; abstract sockets belong to the network namespace.
    assert report["tcp4"] == "ConnectionRefusedError"
    assert report["udp4"] in ("sent", "OSError")  # a datagram into an empty namespace
    assert report["unix"] == report["unix-tmp"] == "FileNotFoundError"
    assert report["abstract"] == "ConnectionRefusedError"
    if "tcp6" in report:
        assert report["tcp6"] in ("ConnectionRefusedError", "OSError")


async def test_background_processes_do_not_outlive_the_job(make_engine: EngineFactory) -> None:
    engine = await make_engine()
    code = """
import json, os, signal, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:  # a daemon: own session, deaf to SIGTERM and SIGHUP
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        while True:
            with open("/data/outputs/heartbeat", "a") as beat:
                beat.write("x")
            time.sleep(0.05)
    os._exit(0)
time.sleep(0.5)
json.dump({"left": "daemon"}, open("/data/outputs/report.json", "w"))
"""
    did = unique_did()
    record, report = await _run(engine, code, algorithm_did=did)
    assert report == {"left": "daemon"} and record.status == JobStatus.COMPLETED
    await asyncio.sleep(0.2)
    assert job_processes(did) == []
    beats = await result_bytes(engine, record.job_id, "output", "heartbeat")
    await asyncio.sleep(0.3)
    assert await result_bytes(engine, record.job_id, "output", "heartbeat") == beats
    _assert_no_job_cgroup(engine)


async def test_a_symlink_output_never_serves_a_host_file(make_engine: EngineFactory,
                                                         tmp_path: Path) -> None:
    host_file = tmp_path / "host-secret"
    host_file.write_text(SECRET)
    host_file.chmod(0o600)
    engine = await make_engine()
    code = f"""
import json, os
os.symlink({str(host_file)!r}, "/data/outputs/link")
os.symlink({str(tmp_path)!r}, "/data/outputs/dirlink")
os.symlink("/etc/hostname", "/data/outputs/inside-link")
os.symlink("../../algorithm.log", "/data/outputs/up")
os.mkfifo("/data/outputs/fifo")
report = {{}}
try:
    os.link("/data/transformations/algorithm", "/data/outputs/hard")
    report["hard"] = "linked"
except OSError as exc:
    report["hard"] = exc.__class__.__name__
open("/data/outputs/plain.txt", "w").write("mine")
json.dump(report, open("/data/outputs/report.json", "w"))
"""
    record, report = await _run(engine, code)
    # Links, FIFOs are not results: only the two regular files the job wrote.
    assert report["hard"] in ("PermissionError", "OSError")  # EXDEV: another mount
    assert [(r.filename, r.type) for r in record.results] == [
        ("plain.txt", "output"), ("report.json", "output"), ("algorithm.log", "algorithmLog")]
    assert await result_bytes(engine, record.job_id, "output", "plain.txt") == b"mine"
    # A record naming a link (or a path through one) is refused, never followed.
    workspace = Workspace(tmp_path / "compute" / "jobs" / record.job_id)
    for name in ("link", "dirlink/host-secret", "inside-link", "up", "fifo"):
        with pytest.raises(ResultNotFoundError):
            result_file(workspace, JobResult(filename=name, filesize=0, type="output", index=0))
    assert host_file.read_text() == SECRET and stat.S_IMODE(host_file.stat().st_mode) == 0o600
    # Deleting the job removes the links, not what they point to.
    await engine.delete(record.owner, record.job_id, None)
    assert host_file.read_text() == SECRET and not workspace.root.exists()


def test_removing_a_workspace_never_chmods_through_a_link(tmp_path: Path) -> None:
    """rmtree's retry makes paths writable again: never the target of a job's link."""
    host_file = tmp_path / "host-file"
    host_file.write_text("host")
    host_file.chmod(0o600)
    link = tmp_path / "outputs" / "link"
    link.parent.mkdir()
    link.symlink_to(host_file)
    _force(os.unlink, str(link), None)
    assert not link.is_symlink() and stat.S_IMODE(host_file.stat().st_mode) == 0o600


def _assert_no_job_cgroup(engine: LocalEngine) -> None:
    layout = engine.sandbox.cgroups
    if layout is not None:
        for parent in {layout.memory, layout.pids}:
            assert not [p.name for p in parent.iterdir() if p.name.startswith("tidegate-")]



def _syscall_numbers(*names: str) -> dict[str, int]:
    """This architecture's numbers of ``names`` (libseccomp knows them all)."""
    lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2")
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    return {name: lib.seccomp_syscall_resolve_name(name.encode()) for name in names}


_KERNEL_SURFACE = """
import ctypes, errno, json, os, socket, subprocess, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
numbers = NUMBERS
def call(name, *args):
    result = libc.syscall(numbers[name], *[ctypes.c_long(a) for a in args])
    return "allowed" if result >= 0 else errno.errorcode[ctypes.get_errno()]
report = {
    "unshare_user": call("unshare", 0x10000000),
    "unshare_net": call("unshare", 0x40000000),
    "setns": call("setns", 0, 0),
    "clone_newuser": call("clone", 0x10000000 | 17, 0, 0, 0, 0),
    "clone3": call("clone3", 0, 0),
    "keyctl": call("keyctl", 0, -1, 0, 0, 0),
    "add_key": call("add_key", 0, 0, 0, 0, 0),
    "bpf": call("bpf", 0, 0, 0),
    "perf_event_open": call("perf_event_open", 0, 0, -1, -1, 0),
    "userfaultfd": call("userfaultfd", 0),
    "io_uring_setup": call("io_uring_setup", 1, 0),
    "ptrace": call("ptrace", 16, 1, 0, 0),
    "mount": call("mount", 0, 0, 0, 0, 0),
}
# What algorithms need still works: threads, subprocesses, socketpair.
box = []
thread = threading.Thread(target=lambda: box.append("thread"))
thread.start(); thread.join()
report["thread"] = box == ["thread"]
report["subprocess"] = subprocess.run([sys.executable, "-c", "print(7)"],
                                      capture_output=True).stdout == b"7\\n"
left, right = socket.socketpair()
report["socketpair"] = bool(left.send(b"x")) and right.recv(1) == b"x"
try:
    socket.socket(socket.AF_UNIX).close()
    report["unix_socket"] = "allowed"
except OSError as exc:
    report["unix_socket"] = errno.errorcode[exc.errno]
report["seccomp"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("Seccomp:")]
json.dump(report, open("/data/outputs/report.json", "w"))
"""
_NUMBERS = _syscall_numbers("unshare", "setns", "clone", "clone3", "keyctl", "add_key", "bpf",
                            "perf_event_open", "userfaultfd", "io_uring_setup", "ptrace",
                            "mount")
_DENIED = {"unshare_user", "unshare_net", "setns", "clone_newuser", "keyctl", "add_key", "bpf",
           "perf_event_open", "userfaultfd", "io_uring_setup", "ptrace", "mount"}


async def test_the_seccomp_filter_refuses_kernel_surface(make_engine: EngineFactory,
                                                         listeners: _Listeners) -> None:
    engine = await make_engine(environment(), environment(id="net-env", allow_network=True))
    assert engine.sandbox.seccomp_reason == ""
    code = _KERNEL_SURFACE.replace("NUMBERS", json.dumps(_NUMBERS))
    _, report = await _run(engine, code)
    assert report["seccomp"] == ["2"]  # a filter is loaded
    assert {name: report[name] for name in _DENIED} == dict.fromkeys(_DENIED, "EPERM")
    assert report["clone3"] == "ENOSYS"  # the C library falls back to clone
    assert report["thread"] and report["subprocess"] and report["socketpair"]
    assert report["unix_socket"] == "allowed"  # no network: abstract sockets are private
    # With network the job shares the host's network namespace, abstract unix sockets
    # included: unix sockets are refused there, so no byte reaches the host's.
    job = spec(environment(id="net-env", allow_network=True), allow_network=True,
               code=code + f"""
try:
    client = socket.socket(socket.AF_UNIX)
    client.connect({listeners.targets["abstract"]!r})
    client.send(b"x")
    report["abstract"] = "sent"
except OSError as exc:
    report["abstract"] = errno.errorcode[exc.errno]
json.dump(report, open("/data/outputs/report.json", "w"))
""")
    await engine.start(job)
    record = await finished(engine, job.job_id)
    assert record.detail == "", await result_bytes(engine, job.job_id)
    networked = json.loads(await result_bytes(engine, job.job_id, "output", "report.json"))
    assert networked["unix_socket"] == networked["abstract"] == "EPERM"
    assert networked["socketpair"] and networked["thread"]
    await asyncio.sleep(0.2)
    assert listeners.arrived == []


async def test_without_the_filter_the_same_calls_reach_the_kernel(
        make_engine: EngineFactory) -> None:
    """The check above can fail: with TIDEGATE_COMPUTE_SECCOMP=false the kernel answers."""
    engine = await make_engine(options=replace(TEST_OPTIONS, seccomp=False))
    assert engine.sandbox.seccomp_reason.startswith("seccomp is disabled")
    _, report = await _run(engine, _KERNEL_SURFACE.replace("NUMBERS", json.dumps(_NUMBERS)))
    assert report["seccomp"] == ["0"]
    assert report["clone3"] != "ENOSYS" and report["keyctl"] != "EPERM"


async def test_dev_is_read_only_and_shared_memory_is_capped(make_engine: EngineFactory) -> None:
    """bwrap's /dev is an unbounded tmpfs: without root it would be the job's to fill."""
    engine = await make_engine()
    code = """
import errno, json, multiprocessing, os
report = {}
try:
    open("/dev/x", "w").write("x")
    report["dev"] = "written"
except OSError as exc:
    report["dev"] = errno.errorcode[exc.errno]
written = 0
try:
    with open("/dev/shm/fill", "wb") as handle:
        for _ in range(64):
            handle.write(b"s" * 2**20)
            handle.flush()
            written += 2**20
except OSError as exc:
    report["shm_error"] = errno.errorcode[exc.errno]
report["shm_written"] = written
os.unlink("/dev/shm/fill")
with multiprocessing.Pool(2) as pool:  # POSIX semaphores live in /dev/shm
    report["pool"] = pool.map(abs, [-1, -2])
report["null"] = open("/dev/null", "w").write("x")
json.dump(report, open("/data/outputs/report.json", "w"))
"""
    _, report = await _run(engine, code)
    assert report["dev"] in ("EROFS", "EACCES")
    assert report["shm_error"] == "ENOSPC" and report["shm_written"] <= TEST_OPTIONS.tmp_bytes
    assert report["pool"] == [1, 2] and report["null"] == 1
