"""The private test Docker daemon (``make docker-setup``, tools/dockerd/start.sh).

Its socket is ``/run/tidegate-test-docker/docker.sock`` unless ``TIDEGATE_TEST_DOCKER_HOST``
says otherwise; its images (built offline there): ``tidegate-test/busybox:1`` and
``ubuntu:latest`` (Debian with python3 and nodejs). Without a daemon, tests that need
one are skipped with the reason (they fail on CI, where ``CI`` is set); nothing is faked.

:class:`PrivateDaemon` starts a further daemon of a test's own (several hosts), and
:func:`small_filesystem` mounts a small tmpfs (disk-space guards) - both need root.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import aiodocker
import pytest
from aiodocker.exceptions import DockerError

DOCKER_HOST = os.environ.get("TIDEGATE_TEST_DOCKER_HOST",
                             "unix:///run/tidegate-test-docker/docker.sock")


def _fail_or_skip(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI must run the Docker engine's tests)")
    pytest.skip(reason)


async def daemon_or_skip() -> aiodocker.Docker:
    """A client of the test daemon (close it); skips the test, saying why, without one."""
    client = aiodocker.Docker(url=DOCKER_HOST)
    try:
        await asyncio.wait_for(client.version(), 5)
    except (DockerError, OSError, TimeoutError, ValueError) as exc:
        await client.close()
        _fail_or_skip(f"no test Docker daemon at {DOCKER_HOST} ({type(exc).__name__}): run "
                      "`make docker-setup` (tools/dockerd/start.sh) as root")
    return client

REGISTRY = os.environ.get("TIDEGATE_TEST_REGISTRY", "127.0.0.1:5055")
"""The test registry (loopback); it holds ``tidegate-test/pulled:1`` (busybox)."""
PRIVATE_REGISTRY = os.environ.get("TIDEGATE_TEST_PRIVATE_REGISTRY", "127.0.0.1:5056")
"""The test registry that wants credentials; it holds ``tidegate-test/private:1``."""
PRIVATE_CREDENTIALS = ("tidegate", "tidegate-test-registry")
"""Test-only (tools/dockerd/start.sh publishes them): the registry holds a busybox copy."""


class PrivateDaemon:
    """A ``dockerd`` of the tests' own, beside the shared one: its socket, data root,
    exec root, pidfile and log under ``root`` (short: socket paths are limited), no
    bridge, never touching iptables (as tools/dockerd/start.sh starts the shared one).

    ``data_root``: where its images and containers live (a small filesystem a test
    mounted, to fill it); default ``root/data``. :meth:`kill` takes it away as a crash
    does (SIGKILL); :meth:`start` brings it back on the same state.
    """

    def __init__(self, root: Path, data_root: Path | None = None) -> None:
        self.root = root
        self.data_root = data_root or root / "data"
        self._own_data = data_root is None
        self.socket = root / "docker.sock"
        self.url = f"unix://{self.socket}"
        self._process: subprocess.Popen[bytes] | None = None
        self._driver: str | None = None

    def _answers(self) -> bool:
        try:
            return subprocess.run(["docker", "-H", self.url, "version", "--format",
                                   "{{.Server.Version}}"], capture_output=True,
                                  timeout=10, check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False  # up, not answering yet (restoring after a crash)

    def start(self, timeout: float = 90.0) -> None:
        """Start it (overlay2, else vfs); skips (fails on CI) if it cannot start.

        After a :meth:`kill` the first start may give up waiting for its containerd
        (still restoring the killed one's shims): it is tried up to three times.
        """
        if os.geteuid() != 0 or shutil.which("dockerd") is None:
            _fail_or_skip("a second test dockerd needs root and Debian's docker.io")
        for path in (self.root, self.data_root):
            path.mkdir(parents=True, exist_ok=True)
        tries = [self._driver] * 3 if self._driver else ["overlay2", "vfs"]
        for driver in tries:
            with (self.root / "dockerd.log").open("ab") as log:
                self._process = subprocess.Popen(
                    ["dockerd", "--host", self.url, "--data-root", str(self.data_root),
                     "--exec-root", str(self.root / "exec"),
                     "--pidfile", str(self.root / "dockerd.pid"), "--bridge", "none",
                     "--iptables=false", "--ip6tables=false", "--ip-forward=false",
                     "--ip-masq=false", "--storage-driver", driver, "--log-level", "warn"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self._process.poll() is None:
                if self._answers():
                    self._driver = driver
                    return
                time.sleep(0.2)
            self.stop()
        _fail_or_skip(f"a second test dockerd did not start: see {self.root}/dockerd.log")

    def kill(self) -> None:
        """SIGKILL the daemon (its host is gone for Tidegate); :meth:`start` again."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(30)
        self._process = None

    def stop(self) -> None:
        """Stop it cleanly (its containers end), and the containerd it started."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(30)
        self._process = None
        pidfile = self.root / "exec" / "containerd" / "containerd.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
        self._kill_leftovers()
        if self._own_data:  # dockerd leaves its data root bind-mounted on itself
            subprocess.run(["umount", "-l", str(self.data_root)], capture_output=True,
                           check=False)

    def _kill_leftovers(self) -> None:
        """SIGKILL shims of this daemon that outlived it (after a :meth:`kill` with no
        restart) and the container processes under them."""
        marker = str(self.root / "exec").encode()
        shims: set[int] = set()
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                if marker in (entry / "cmdline").read_bytes():
                    shims.add(int(entry.name))
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
        for pid in [child for shim in shims for child in children.get(shim, [])] + list(shims):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def load_image(self, image: str, source: str = DOCKER_HOST) -> None:
        """Copy ``image`` from the daemon at ``source`` (``docker save | docker load``)."""
        save = subprocess.Popen(["docker", "-H", source, "save", image],
                                stdout=subprocess.PIPE)
        loaded = subprocess.run(["docker", "-H", self.url, "load", "-q"], stdin=save.stdout,
                                capture_output=True, timeout=120, check=False)
        assert save.stdout is not None
        save.stdout.close()
        if save.wait(60) != 0 or loaded.returncode != 0:
            raise RuntimeError(f"could not copy {image} to the second daemon: "
                               f"{loaded.stderr.decode(errors='replace')}")


@contextlib.contextmanager
def small_filesystem(path: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of ``size_mb`` MB mounted at ``path`` (root only; unmounted after)."""
    if os.geteuid() != 0:
        _fail_or_skip("mounting a small filesystem needs root")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs",
                    str(path)], check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-R", "-l", str(path)], check=False, capture_output=True)


def fill(directory: Path, leave_bytes: int) -> Path:
    """Write a file in ``directory`` until its filesystem has about ``leave_bytes``
    free; the file (remove it to free the space)."""
    filler = directory / "filler"
    free = shutil.disk_usage(directory).free
    with filler.open("wb") as handle:
        left = max(0, free - leave_bytes)
        chunk = b"\0" * (1 << 20)
        while left > 0:
            handle.write(chunk[:left])
            left -= min(left, len(chunk))
    return filler


HOSTS_ROOT = Path("/tmp/hosts-docker")
"""Where :func:`second_daemon` puts its daemons (short: socket paths are limited)."""


@contextlib.contextmanager
def second_daemon(data_mb: int = 256, images: tuple[str, ...] = ("tidegate-test/busybox:1",)
                  ) -> Iterator[PrivateDaemon]:
    """A running :class:`PrivateDaemon` with ``images`` copied from the shared daemon,
    its data root a ``data_mb`` MB tmpfs; stopped and removed after."""
    if shutil.which("docker") is None:
        _fail_or_skip("a second test dockerd needs the docker client (Debian's docker.io)")
    if subprocess.run(["docker", "-H", DOCKER_HOST, "version"], capture_output=True,
                      timeout=10, check=False).returncode != 0:
        _fail_or_skip(f"no test Docker daemon at {DOCKER_HOST} to copy images from: run "
                      "`make docker-setup` (tools/dockerd/start.sh) as root")
    root = HOSTS_ROOT / f"d{os.getpid()}-{time.monotonic_ns() % 10**6}"
    try:
        with small_filesystem(root / "data", data_mb) as data:
            daemon = PrivateDaemon(root, data)
            daemon.start()
            try:
                for image in images:
                    daemon.load_image(image)
                yield daemon
            finally:
                daemon.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
