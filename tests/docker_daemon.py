"""The private test Docker daemon (``make docker-setup``, tools/dockerd/start.sh).

Its socket is ``/run/tidegate-test-docker/docker.sock`` unless ``TIDEGATE_TEST_DOCKER_HOST``
says otherwise; its images (built offline there): ``tidegate-test/busybox:1`` and
``ubuntu:latest`` (Debian with python3 and nodejs). Without a daemon, tests that need
one are skipped with the reason (they fail on CI, where ``CI`` is set); nothing is faked.
"""

from __future__ import annotations

import asyncio
import os

import aiodocker
import pytest
from aiodocker.exceptions import DockerError

DOCKER_HOST = os.environ.get("TIDEGATE_TEST_DOCKER_HOST",
                             "unix:///run/tidegate-test-docker/docker.sock")


async def daemon_or_skip() -> aiodocker.Docker:
    """A client of the test daemon (close it); skips the test, saying why, without one."""
    client = aiodocker.Docker(url=DOCKER_HOST)
    try:
        await asyncio.wait_for(client.version(), 5)
    except (DockerError, OSError, TimeoutError, ValueError) as exc:
        await client.close()
        reason = (f"no test Docker daemon at {DOCKER_HOST} ({type(exc).__name__}): run "
                  "`make docker-setup` (tools/dockerd/start.sh) as root")
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI must run the Docker engine's tests)")
        pytest.skip(reason)
    return client

REGISTRY = os.environ.get("TIDEGATE_TEST_REGISTRY", "127.0.0.1:5055")
"""The test registry (loopback); it holds ``tidegate-test/pulled:1`` (busybox)."""
PRIVATE_REGISTRY = os.environ.get("TIDEGATE_TEST_PRIVATE_REGISTRY", "127.0.0.1:5056")
"""The test registry that wants credentials; it holds ``tidegate-test/private:1``."""
PRIVATE_CREDENTIALS = ("tidegate", "tidegate-test-registry")
"""Test-only (tools/dockerd/start.sh publishes them): the registry holds a busybox copy."""
