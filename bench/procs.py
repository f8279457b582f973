"""Child processes of the benchmark: start, wait until ready, measure memory, stop.

Every process the benchmark starts is tracked here and stopped by its own PID (its
process group for servers with workers), never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proc:
    """A child process in its own session; ``stop()`` ends it and its children."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            self.argv, env=dict(env) if env is not None else None, cwd=cwd,
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _RUNNING.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self, limit: int = 3000) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-limit:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=8)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
        # Workers of a supervisor that died first are in the same process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        if self in _RUNNING:
            _RUNNING.remove(self)
        self.log.close()


_RUNNING: list[Proc] = []


def stop_all() -> None:
    for proc in reversed(list(_RUNNING)):
        with contextlib.suppress(Exception):
            proc.stop()


def wait_http(url: str, proc: Proc | None, timeout: float = 60.0,
              ok: tuple[int, ...] = (200,)) -> None:
    """Poll ``url`` until it answers one of ``ok``; raise with the process output if not."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.output()}")
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code in ok:
                return
            last = f"status {response.status_code}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    detail = proc.output() if proc is not None else ""
    raise RuntimeError(f"{url} not ready within {timeout:.0f} s ({last})\n{detail}")


def descendants(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def server_pids(proc: Proc) -> list[int]:
    """The Python processes serving: the uvicorn process and its workers.

    With ``--workers N > 1`` uvicorn runs a supervisor plus N worker processes; the
    supervisor only forwards signals, so the workers are what serve requests.
    """
    pids = descendants(proc.pid)
    workers = [p for p in pids if p != proc.pid and _is_python(p)]
    return workers or [proc.pid]


def _is_python(pid: int) -> bool:
    try:
        return "python" in Path(f"/proc/{pid}/comm").read_text() or \
            b"python" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def reset_peak_rss(pids: Sequence[int]) -> None:
    """Reset VmHWM to the current RSS (``clear_refs`` 5); ignored where not allowed."""
    for pid in pids:
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss_mib(pids: Sequence[int]) -> list[float]:
    """VmHWM of each process, MiB."""
    return [_status_kib(pid, "VmHWM") / 1024 for pid in pids]


def rss_mib(pids: Sequence[int]) -> list[float]:
    return [_status_kib(pid, "VmRSS") / 1024 for pid in pids]


def cpu_ticks(pids: Sequence[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total


def wait_settled(proc: Proc, workers: int, timeout: float = 30.0) -> None:
    """Wait until all ``workers`` worker processes exist and stop burning start-up CPU."""
    deadline = time.monotonic() + timeout
    previous = -1
    while time.monotonic() < deadline:
        pids = server_pids(proc)
        if len(pids) >= workers:
            ticks = cpu_ticks(pids)
            if previous >= 0 and ticks - previous <= 3 * len(pids):
                return
            previous = ticks
        time.sleep(0.3)
