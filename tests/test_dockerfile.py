"""The Dockerfile builds and its image runs (#14 item 8: the image is built in CI).

Built by the private test daemon (``make docker-setup``) on ``tidegate-test/python:3.11``
(Debian bookworm's python3 with venv, made offline by tools/dockerd/start.sh) in place
of ``python:3.11-slim-bookworm``, which would come from Docker Hub; pip reaches PyPI
over the host's network (``--network host``), as the Dockerfile says a build needs. The
context is a copy of what .dockerignore admits, plus the host's CA bundle as
``pip-ca.pem`` (this machine reaches PyPI through a TLS-inspecting proxy, whose CA the
host trusts and a fresh Debian does not): the Dockerfile's documented way for that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.docker_daemon import DOCKER_HOST

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "tidegate-test/tidegate:ci"
BASE = "tidegate-test/python:3.11"


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "-H", DOCKER_HOST, *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def _context(tmp_path: Path) -> Path:
    context = tmp_path / "context"
    context.mkdir()
    for name in ("Dockerfile", ".dockerignore", "pyproject.toml", "constraints.txt",
                 "README.md"):
        shutil.copy2(ROOT / name, context / name)
    shutil.copytree(ROOT / "src", context / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    bundle = Path(os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
                  or "/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file():
        shutil.copy2(bundle, context / "pip-ca.pem")
    return context


def test_the_dockerfile_builds_an_image_that_runs_as_non_root(tmp_path: Path) -> None:
    if shutil.which("docker") is None or _docker("version").returncode != 0:
        reason = (f"no test Docker daemon at {DOCKER_HOST}: run `make docker-setup` "
                  "(tools/dockerd/start.sh) as root")
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI builds the image)")
        pytest.skip(reason)
    if _docker("image", "inspect", BASE).returncode != 0:
        pytest.fail(f"{BASE} is missing: run `make docker-setup`")
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}  # the classic builder: no buildx needed
    built = subprocess.run(
        ["docker", "-H", DOCKER_HOST, "build", "--network", "host", "--pull=false",
         "--build-arg", f"PYTHON_IMAGE={BASE}", "-t", IMAGE, "."],
        cwd=_context(tmp_path), env=env, capture_output=True, text=True, timeout=1200,
        check=False)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    try:
        run = _docker("run", "--rm", "--network", "none", IMAGE, "--version")
        assert run.returncode == 0, run.stderr
        assert version("tidegate") in run.stdout
        user = _docker("run", "--rm", "--network", "none", "--entrypoint", "id", IMAGE)
        assert user.stdout.split()[0] == "uid=10001(tidegate)", user.stdout
        # The start-up checks run in the image and name what is missing (exit 2).
        check = _docker("run", "--rm", "--network", "none", IMAGE, "check")
        assert check.returncode == 2, check.stdout + check.stderr
        assert "PROVIDER_PRIVATE_KEY" in check.stdout + check.stderr
    finally:
        _docker("image", "rm", "-f", IMAGE)
