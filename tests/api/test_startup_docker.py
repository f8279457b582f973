"""The start-up check describes the Docker engine, and refuses a TCP daemon without TLS."""

from collections.abc import Callable

import pytest

from tests.docker_daemon import DOCKER_HOST, daemon_or_skip
from tidegate.settings import Settings
from tidegate.startup import StartupError, check_startup


async def test_the_banner_names_the_docker_daemon(chain_settings: Callable[..., Settings]) -> None:
    await (await daemon_or_skip()).close()
    report = await check_startup(chain_settings(DOCKER_HOST=DOCKER_HOST))
    assert report.compute.startswith("docker (DOCKER_HOST, daemon "), report.compute
    assert "docker.sock" not in report.compute
    mixed = await check_startup(chain_settings(
        DOCKER_HOST=DOCKER_HOST,
        TIDEGATE_COMPUTE_ENVIRONMENTS='[{"id": "a", "chainId": 8996, "engine": "local"}]'))
    assert mixed.compute.startswith("docker (") and "; local" in mixed.compute


async def test_a_daemon_that_does_not_answer_is_named_not_fatal(
        chain_settings: Callable[..., Settings], tmp_path: object) -> None:
    report = await check_startup(chain_settings(DOCKER_HOST=f"unix://{tmp_path}/none.sock"))
    assert report.compute.startswith("docker, unavailable (the daemon does not answer")
    assert "none.sock" not in report.compute


async def test_a_tcp_daemon_without_tls_stops_the_start(
        chain_settings: Callable[..., Settings]) -> None:
    with pytest.raises(StartupError) as stopped:
        await check_startup(chain_settings(DOCKER_HOST="tcp://10.1.2.3:2375"))
    assert any("needs TLS" in p for p in stopped.value.problems)
    assert not any("10.1.2.3" in p for p in stopped.value.problems)
