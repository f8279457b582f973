"""The sandbox when Tidegate does not run as root (bubblewrap in a user namespace).

The test suite runs as root on CI, which exercises root mode; here a real Tidegate
sandbox is driven by a process running as ``nobody`` (``setpriv``), so the user-namespace
mode is exercised too: no cgroup (rlimits), the seccomp filter, a read-only ``/dev``
with a capped ``/dev/shm``, the host invisible, no network.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

NOBODY = 65534
SRC = Path(__file__).resolve().parents[3] / "src"

_DRIVER = """
import asyncio, json, sys
from pathlib import Path
from tidegate.compute.sandbox import Limits, Sandbox, SandboxOptions
from tidegate.compute.workspace import Workspace

async def main(root: Path, code: str) -> None:
    sandbox = Sandbox(SandboxOptions(max_processes=32, tmp_bytes=4 * 2**20), None)
    unavailable = await sandbox.probe(root / "probe")
    workspace = Workspace(root / "job")
    workspace.create()
    limits = Limits(wall_seconds=20, cpu_seconds=10, memory_bytes=512 * 2**20,
                    disk_bytes=8 * 2**20, max_processes=32, max_open_files=64,
                    tmp_bytes=4 * 2**20)
    outcome = await sandbox.run(["/usr/bin/python3", "-c", code], {}, workspace, limits,
                                allow_network=False)
    print(json.dumps({"unavailable": unavailable, "root_mode": sandbox.root_mode,
                      "cgroup_reason": sandbox.cgroup_reason,
                      "seccomp_reason": sandbox.seccomp_reason, "detail": outcome.detail,
                      "log": workspace.log_file.read_text(),
                      "report": json.loads((workspace.outputs / "report.json").read_text())}))

asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
"""

_HOSTILE = """
import ctypes, errno, json, os, socket
def unshare_user():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x10000000) != 0:  # CLONE_NEWUSER
        raise OSError(ctypes.get_errno(), "unshare")
    return "allowed"
def attempt(action):
    try:
        return action()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, exc.__class__.__name__)
report = {
    "uid": os.getuid(),
    "secret": attempt(lambda: open(SECRET).read()),
    "proc1": attempt(lambda: open("/proc/1/environ", "rb").read().decode()),
    "dev": attempt(lambda: open("/dev/x", "w").write("x")),
    "root": attempt(lambda: open("/x", "w").write("x")),
    "tcp": attempt(lambda: socket.create_connection(("127.0.0.1", 22), timeout=2)),
    "unshare": attempt(unshare_user),
    "pids": sorted(p for p in os.listdir("/proc") if p.isdigit()),
}
written = 0
try:
    with open("/dev/shm/fill", "wb") as handle:
        for _ in range(64):
            handle.write(b"s" * 2**20)
            handle.flush()
            written += 2**20
except OSError as exc:
    report["shm"] = errno.errorcode[exc.errno]
report["shm_written"] = written
json.dump(report, open("/data/outputs/report.json", "w"))
"""


def _closed_to_others(path: Path) -> Path | None:
    """The first of ``path`` and its parents that users other than the owner cannot
    enter (no ``o+x``), or None. ``nobody`` imports Tidegate from the checkout: a clone
    under such a directory (``mktemp -d`` makes them 0700) cannot be read by it, and
    Python then skips the unreadable ``PYTHONPATH`` entry silently."""
    for candidate in (path, *path.parents):
        if not candidate.stat().st_mode & stat.S_IXOTH:
            return candidate
    return None


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory ``nobody`` owns, outside pytest's root-only temporary tree."""
    root = Path(tempfile.mkdtemp(prefix="tidegate-unprivileged-"))
    os.chmod(root, 0o755)
    os.chown(root, NOBODY, NOBODY)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to nobody needs root "
                                              "(without root the whole suite runs this mode)")
def test_the_user_namespace_sandbox_holds(scratch: Path) -> None:
    if shutil.which("setpriv") is None or not os.path.exists("/usr/bin/python3"):
        pytest.skip("setpriv or /usr/bin/python3 (the job's interpreter) is missing")
    for needed in (SRC, Path(sys.executable).parent):
        closed = _closed_to_others(needed)
        if closed is not None:
            pytest.skip(f"nobody cannot enter {closed} (on the way to {needed}): clone "
                        "the repository under a directory others may enter")
    secret = scratch / "provider-secret"
    secret.write_text("PROVIDER_PRIVATE_KEY=0xdead")
    secret.chmod(0o644)  # readable by nobody on the host: only the sandbox hides it
    code = _HOSTILE.replace("SECRET", repr(str(secret)))
    run = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         sys.executable, "-c", _DRIVER, str(scratch), code],
        capture_output=True, text=True, timeout=120, cwd=scratch, check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(SRC),
             "TIDEGATE_TEST_SECRET": "must-not-leak"})
    if run.returncode != 0 and "Permission denied" in run.stderr and str(SRC) in run.stderr:
        pytest.skip(f"nobody cannot read the source tree at {SRC}")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["unavailable"] is None and result["root_mode"] is False
    assert result["cgroup_reason"].startswith("cgroups are not usable")  # rlimits then
    assert result["seccomp_reason"] == "" and result["detail"] == "", result["log"]
    report = result["report"]
    assert report["secret"] == "ENOENT"
    assert "must-not-leak" not in json.dumps(report)
    assert report["dev"] == "EROFS" and report["root"] == "EROFS"
    assert report["shm"] == "ENOSPC" and report["shm_written"] <= 4 * 2**20
    assert report["tcp"] in ("ECONNREFUSED", "ENETUNREACH")
    assert report["unshare"] == "EPERM"  # seccomp (and bwrap's --disable-userns)
    assert len(report["pids"]) <= 3
