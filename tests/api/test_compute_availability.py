"""Advertise only what runs: without a working sandbox no compute environment is
listed, ``/health/ready`` says why, and a job request is a 503 naming the reason.

The machine's bubblewrap is hidden by running the app with a ``PATH`` that holds
only the other tools the sandbox needs (prlimit, sh, setpriv): what an operator's host
without the bubblewrap package looks like to Tidegate.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.api.schema_samples import BASELINES
from tests.conftest import start_app
from tidegate.settings import Settings


@pytest.fixture
def path_without_bubblewrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("prlimit", "sh", "setpriv"):
        found = shutil.which(name)
        if found is None:
            pytest.skip(f"{name} is not installed")
        (tools / name).symlink_to(found)
    monkeypatch.setenv("PATH", str(tools))
    assert shutil.which("bwrap") is None


async def test_without_bubblewrap_compute_is_not_advertised_and_ready_says_why(
        chain_settings: Callable[..., Settings], path_without_bubblewrap: None) -> None:
    async for client in start_app(chain_settings()):
        environments = await client.get("/api/services/computeEnvironments")
        assert environments.status_code == 200
        assert environments.json() == {"8996": []}  # the chain, with nothing that runs

        ready = await client.get("/health/ready")
        assert ready.status_code == 200  # everything but compute serves
        body = ready.json()
        assert body["status"] == "ready" and body["compute"] == "unavailable"
        assert "bwrap is not installed" in body["reasons"]["compute"]

        initialize = await client.post("/api/services/initializeCompute",
                                       json=BASELINES["initializeCompute"])
        assert initialize.status_code == 503, initialize.text
        assert initialize.json()["code"] == "sandbox_unavailable"
        assert "bwrap is not installed" in initialize.json()["error"]


async def test_with_a_working_sandbox_the_environment_is_advertised(
        chain_client: httpx.AsyncClient) -> None:
    """The control: the same app on this machine's bubblewrap lists its environment."""
    if shutil.which("bwrap", path=os.environ.get("PATH")) is None:
        pytest.skip("bubblewrap is not installed")
    environments = (await chain_client.get("/api/services/computeEnvironments")).json()
    assert [env["id"] for env in environments["8996"]] == ["tidegate-local-free"]
    ready = (await chain_client.get("/health/ready")).json()
    assert ready["compute"] == "ok" and "reasons" not in ready
